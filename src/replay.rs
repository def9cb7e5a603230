//! Transitions `(s, a, r, s')` and the replay buffer 𝓡 of DDPG.
//!
//! * [`Transitions`]: a growable table of transitions, one column per field, flat and
//!   row-major (the fixed batch 𝓑 of NFQCA is one).
//! * [`ReplayBuffer`]: a ring of fixed capacity B over the same columns, allocated once:
//!   "store (s, a, r, s') in 𝓡, replacing oldest if full" is one row write.
//! * [`Minibatch`]: b rows gathered from either, into buffers allocated once, in the
//!   layout the networks read (`b × obs_dim` observations, `b × action_dim` actions...).
//!
//! Besides the chapter's `(s, a, r, s')`, every transition records whether `s'` is
//! terminal: the target `r + γ q(s', ·)` must not bootstrap from a state after which
//! nothing follows. Time-limit truncation is not termination (the state `s'` still has
//! a future), so it is not recorded. Observations, actions and rewards are kept in `f32`,
//! the precision the networks compute in.

use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::Rng;

/// A table of transitions; row `i` is `(sᵢ, aᵢ, rᵢ, s'ᵢ, terminalᵢ)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TransitionsRecord")]
pub struct Transitions {
    obs_dim: usize,
    action_dim: usize,
    observations: Vec<f32>,
    actions: Vec<f32>,
    rewards: Vec<f32>,
    next_observations: Vec<f32>,
    terminal: Vec<bool>,
}

/// One transition, borrowed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition<'a> {
    pub observation: &'a [f32],
    pub action: &'a [f32],
    pub reward: f32,
    pub next_observation: &'a [f32],
    /// `s'` is terminal: its value is zero, the target does not bootstrap.
    pub terminal: bool,
}

impl Transitions {
    /// An empty table for observations of `obs_dim` and actions of `action_dim` values.
    pub fn new(obs_dim: usize, action_dim: usize) -> Result<Self> {
        Self::with_capacity(obs_dim, action_dim, 0)
    }

    /// An empty table with room for `capacity` rows before it reallocates.
    pub fn with_capacity(obs_dim: usize, action_dim: usize, capacity: usize) -> Result<Self> {
        if obs_dim == 0 {
            return Err(Error::invalid("obs_dim", "must be at least 1"));
        }
        if action_dim == 0 {
            return Err(Error::invalid("action_dim", "must be at least 1"));
        }
        Ok(Transitions {
            obs_dim,
            action_dim,
            observations: Vec::with_capacity(capacity * obs_dim),
            actions: Vec::with_capacity(capacity * action_dim),
            rewards: Vec::with_capacity(capacity),
            next_observations: Vec::with_capacity(capacity * obs_dim),
            terminal: Vec::with_capacity(capacity),
        })
    }

    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    pub fn action_dim(&self) -> usize {
        self.action_dim
    }

    pub fn len(&self) -> usize {
        self.rewards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }

    /// Appends a transition after checking its lengths and finiteness.
    pub fn push(&mut self, transition: Transition<'_>) -> Result<()> {
        self.check(&transition)?;
        self.observations.extend_from_slice(transition.observation);
        self.actions.extend_from_slice(transition.action);
        self.rewards.push(transition.reward);
        self.next_observations
            .extend_from_slice(transition.next_observation);
        self.terminal.push(transition.terminal);
        Ok(())
    }

    /// Row `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<Transition<'_>> {
        (i < self.len()).then(|| self.row(i))
    }

    /// The rows in order.
    pub fn iter(&self) -> impl Iterator<Item = Transition<'_>> + '_ {
        (0..self.len()).map(|i| self.row(i))
    }

    /// All observations, `len × obs_dim` row-major.
    pub fn observations(&self) -> &[f32] {
        &self.observations
    }

    /// All actions, `len × action_dim` row-major.
    pub fn actions(&self) -> &[f32] {
        &self.actions
    }

    pub fn rewards(&self) -> &[f32] {
        &self.rewards
    }

    /// All next observations, `len × obs_dim` row-major.
    pub fn next_observations(&self) -> &[f32] {
        &self.next_observations
    }

    pub fn terminal(&self) -> &[bool] {
        &self.terminal
    }

    fn row(&self, i: usize) -> Transition<'_> {
        let (o, m) = (self.obs_dim, self.action_dim);
        Transition {
            observation: &self.observations[i * o..(i + 1) * o],
            action: &self.actions[i * m..(i + 1) * m],
            reward: self.rewards[i],
            next_observation: &self.next_observations[i * o..(i + 1) * o],
            terminal: self.terminal[i],
        }
    }

    /// Overwrites row `i` (which must exist) without allocating.
    fn write_row(&mut self, i: usize, transition: &Transition<'_>) {
        let (o, m) = (self.obs_dim, self.action_dim);
        self.observations[i * o..(i + 1) * o].copy_from_slice(transition.observation);
        self.actions[i * m..(i + 1) * m].copy_from_slice(transition.action);
        self.rewards[i] = transition.reward;
        self.next_observations[i * o..(i + 1) * o].copy_from_slice(transition.next_observation);
        self.terminal[i] = transition.terminal;
    }

    fn check(&self, t: &Transition<'_>) -> Result<()> {
        let lengths = [
            ("observation", t.observation.len(), self.obs_dim),
            ("action", t.action.len(), self.action_dim),
            ("next_observation", t.next_observation.len(), self.obs_dim),
        ];
        for (field, got, expected) in lengths {
            if got != expected {
                return Err(Error::invalid(
                    format!("transition.{field}"),
                    format!("{got} values, expected {expected}"),
                ));
            }
        }
        let values = [
            ("observation", t.observation),
            ("action", t.action),
            ("reward", std::slice::from_ref(&t.reward)),
            ("next_observation", t.next_observation),
        ];
        for (field, values) in values {
            if let Some(x) = values.iter().find(|x| !x.is_finite()) {
                return Err(Error::invalid(
                    format!("transition.{field}"),
                    format!("{x} is not finite"),
                ));
            }
        }
        Ok(())
    }

    /// Gathers rows `indices` into `batch` (which must be sized for these dimensions and
    /// at least `indices.len()` rows); sets `batch.len()` to `indices.len()`.
    pub fn gather(&self, indices: &[usize], batch: &mut Minibatch) -> Result<()> {
        batch.check_fits(self.obs_dim, self.action_dim, indices.len())?;
        if let Some(&i) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::invalid(
                "indices",
                format!("row {i} does not exist ({} rows)", self.len()),
            ));
        }
        self.gather_unchecked(indices, batch);
        Ok(())
    }

    fn gather_unchecked(&self, indices: &[usize], batch: &mut Minibatch) {
        let (o, m) = (self.obs_dim, self.action_dim);
        for (row, &i) in indices.iter().enumerate() {
            batch.observations[row * o..(row + 1) * o]
                .copy_from_slice(&self.observations[i * o..(i + 1) * o]);
            batch.actions[row * m..(row + 1) * m]
                .copy_from_slice(&self.actions[i * m..(i + 1) * m]);
            batch.rewards[row] = self.rewards[i];
            batch.next_observations[row * o..(row + 1) * o]
                .copy_from_slice(&self.next_observations[i * o..(i + 1) * o]);
            batch.not_terminal[row] = if self.terminal[i] { 0.0 } else { 1.0 };
        }
        batch.len = indices.len();
    }
}

/// The stored form of [`Transitions`], checked when read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransitionsRecord {
    obs_dim: usize,
    action_dim: usize,
    observations: Vec<f32>,
    actions: Vec<f32>,
    rewards: Vec<f32>,
    next_observations: Vec<f32>,
    terminal: Vec<bool>,
}

impl TryFrom<TransitionsRecord> for Transitions {
    type Error = Error;

    fn try_from(r: TransitionsRecord) -> Result<Self> {
        let mut table = Transitions::with_capacity(r.obs_dim, r.action_dim, r.rewards.len())?;
        let n = r.rewards.len();
        let columns = [
            ("observations", r.observations.len(), n * r.obs_dim),
            ("actions", r.actions.len(), n * r.action_dim),
            (
                "next_observations",
                r.next_observations.len(),
                n * r.obs_dim,
            ),
            ("terminal", r.terminal.len(), n),
        ];
        for (field, got, expected) in columns {
            if got != expected {
                return Err(Error::invalid(
                    format!("transitions.{field}"),
                    format!("{got} values, {n} rows need {expected}"),
                ));
            }
        }
        let (o, m) = (r.obs_dim, r.action_dim);
        for i in 0..n {
            table.push(Transition {
                observation: &r.observations[i * o..(i + 1) * o],
                action: &r.actions[i * m..(i + 1) * m],
                reward: r.rewards[i],
                next_observation: &r.next_observations[i * o..(i + 1) * o],
                terminal: r.terminal[i],
            })?;
        }
        Ok(table)
    }
}

/// `b` transitions laid out for the networks: `observations` is `b × obs_dim`
/// row-major, and so on. `not_terminal[i]` is `1 − terminalᵢ`, the factor of γ in the
/// target. Buffers are sized once for a maximum `b`.
#[derive(Clone, Debug, PartialEq)]
pub struct Minibatch {
    obs_dim: usize,
    action_dim: usize,
    capacity: usize,
    len: usize,
    pub observations: Vec<f32>,
    pub actions: Vec<f32>,
    pub rewards: Vec<f32>,
    pub next_observations: Vec<f32>,
    pub not_terminal: Vec<f32>,
}

impl Minibatch {
    /// Buffers for up to `capacity` transitions.
    pub fn new(obs_dim: usize, action_dim: usize, capacity: usize) -> Self {
        Minibatch {
            obs_dim,
            action_dim,
            capacity,
            len: 0,
            observations: vec![0.0; capacity * obs_dim],
            actions: vec![0.0; capacity * action_dim],
            rewards: vec![0.0; capacity],
            next_observations: vec![0.0; capacity * obs_dim],
            not_terminal: vec![0.0; capacity],
        }
    }

    /// Rows gathered by the last sample or gather.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The gathered rows' observations (`len × obs_dim`).
    pub fn observations(&self) -> &[f32] {
        &self.observations[..self.len * self.obs_dim]
    }

    /// The gathered rows' actions (`len × action_dim`).
    pub fn actions(&self) -> &[f32] {
        &self.actions[..self.len * self.action_dim]
    }

    pub fn rewards(&self) -> &[f32] {
        &self.rewards[..self.len]
    }

    /// The gathered rows' next observations (`len × obs_dim`).
    pub fn next_observations(&self) -> &[f32] {
        &self.next_observations[..self.len * self.obs_dim]
    }

    pub fn not_terminal(&self) -> &[f32] {
        &self.not_terminal[..self.len]
    }

    fn check_fits(&self, obs_dim: usize, action_dim: usize, rows: usize) -> Result<()> {
        if self.obs_dim != obs_dim || self.action_dim != action_dim {
            return Err(Error::invalid(
                "minibatch",
                format!(
                    "built for observations of {} and actions of {}, the transitions have {obs_dim} and {action_dim}",
                    self.obs_dim, self.action_dim
                ),
            ));
        }
        if rows == 0 || rows > self.capacity {
            return Err(Error::invalid(
                "minibatch",
                format!("{rows} rows requested, capacity is {}", self.capacity),
            ));
        }
        Ok(())
    }
}

/// The replay buffer 𝓡 of capacity B: a ring over [`Transitions`] whose storage is
/// allocated in full at construction, so that storing and sampling never allocate.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "ReplayRecord")]
pub struct ReplayBuffer {
    capacity: usize,
    /// Row that the next transition overwrites (the oldest, once full).
    next: usize,
    /// Rows in chronological order start at `next` once full, at 0 before.
    storage: Transitions,
    /// Scratch for the sampled row indices.
    #[serde(skip)]
    indices: Vec<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRecord {
    capacity: usize,
    next: usize,
    storage: Transitions,
}

impl TryFrom<ReplayRecord> for ReplayBuffer {
    type Error = Error;

    fn try_from(r: ReplayRecord) -> Result<Self> {
        let mut buffer = ReplayBuffer::new(r.storage.obs_dim, r.storage.action_dim, r.capacity)?;
        let len = r.storage.len();
        if len > r.capacity || r.next >= r.capacity || (len < r.capacity && r.next != len) {
            return Err(Error::invalid(
                "replay",
                format!(
                    "{len} rows with next row {} do not fit a ring of capacity {}",
                    r.next, r.capacity
                ),
            ));
        }
        // Refill in chronological order so the ring's layout is exactly the saved one.
        for i in 0..len {
            buffer.push(r.storage.row(i))?;
        }
        buffer.next = r.next;
        Ok(buffer)
    }
}

/// Equal contents and ring position (the sampling scratch does not count).
impl PartialEq for ReplayBuffer {
    fn eq(&self, other: &Self) -> bool {
        self.capacity == other.capacity && self.next == other.next && self.storage == other.storage
    }
}

impl ReplayBuffer {
    /// An empty buffer holding up to `capacity` transitions, its storage allocated now.
    pub fn new(obs_dim: usize, action_dim: usize, capacity: usize) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::invalid("replay.capacity", "must be at least 1"));
        }
        Ok(ReplayBuffer {
            capacity,
            next: 0,
            storage: Transitions::with_capacity(obs_dim, action_dim, capacity)?,
            indices: Vec::new(),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Transitions held: `min(pushed, capacity)`.
    pub fn len(&self) -> usize {
        self.storage.len()
    }

    pub fn is_empty(&self) -> bool {
        self.storage.is_empty()
    }

    pub fn obs_dim(&self) -> usize {
        self.storage.obs_dim
    }

    pub fn action_dim(&self) -> usize {
        self.storage.action_dim
    }

    /// Stores a transition, replacing the oldest once the buffer is full.
    pub fn push(&mut self, transition: Transition<'_>) -> Result<()> {
        if self.storage.len() < self.capacity {
            // Within the capacity reserved at construction: no reallocation.
            self.storage.push(transition)?;
        } else {
            self.storage.check(&transition)?;
            self.storage.write_row(self.next, &transition);
        }
        self.next = (self.next + 1) % self.capacity;
        Ok(())
    }

    /// The `i`-th oldest transition held, or `None`.
    pub fn get(&self, i: usize) -> Option<Transition<'_>> {
        if i >= self.len() {
            return None;
        }
        let start = if self.len() == self.capacity {
            self.next
        } else {
            0
        };
        Some(self.storage.row((start + i) % self.capacity))
    }

    /// The storage in ring order (not chronological once full).
    pub fn storage(&self) -> &Transitions {
        &self.storage
    }

    /// Makes room for the indices of samples of up to `size` transitions, so that
    /// [`ReplayBuffer::sample_into`] does not allocate.
    pub fn reserve_sample(&mut self, size: usize) {
        self.indices
            .reserve(size.saturating_sub(self.indices.len()));
    }

    /// Samples `size` transitions uniformly with replacement into `batch`. Allocates
    /// only when `size` exceeds every earlier request and [`ReplayBuffer::reserve_sample`].
    pub fn sample_into(&mut self, rng: &mut Rng, size: usize, batch: &mut Minibatch) -> Result<()> {
        if self.is_empty() {
            return Err(Error::invalid(
                "replay",
                "cannot sample from an empty buffer",
            ));
        }
        batch.check_fits(self.obs_dim(), self.action_dim(), size)?;
        let len = self.len();
        self.indices.resize(size, 0);
        for i in self.indices.iter_mut() {
            *i = rng.gen_range(0..len);
        }
        self.storage.gather_unchecked(&self.indices, batch);
        Ok(())
    }
}
