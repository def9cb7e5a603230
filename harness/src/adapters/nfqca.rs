//! `nfqca` (the chapter's pseudocode of Neural Fitted Q-iteration with Continuous Actions)
//! on a fixed batch of transitions 𝓑, on `Lqr` against Riccati's gain and on the
//! environments of [`box_task::ENVIRONMENTS`](super::box_task::ENVIRONMENTS) by the return
//! of d(s; w).
//!
//! 𝓑 on `Lqr`: states uniform in `[−state_bound, state_bound]ⁿ`, actions uniform in
//! `[−action_bound, action_bound]ᵐ`, one noise-free step each, kept only when the next
//! state lies in the state box too (so step 2.1 never asks the networks about states
//! outside the data). 𝓑 elsewhere: one-step transitions from states uniform over the
//! environment's state box with uniform actions (as `fqi_mlp`'s base points).
//!
//! Metrics every `record_every` iterations and after the last (step n = iterations done):
//! `critic_loss` and `actor_objective` (of [`NfqcaReport`]); on `Lqr` `gain_error`,
//! ‖K̂ₙ − K*‖_F / ‖K*‖_F, with K̂ₙ the least-squares linear fit `a ≈ −K̂s + b` of d(s; wₙ)
//! over a grid of states in `[−1, 1]ⁿ` (41 points, or 21 per dimension) and K* Riccati's
//! gain; elsewhere `eval_return` (mean undiscounted return of d(s; wₙ) over
//! `eval_episodes` episodes as long as the time limit; Pendulum: random torques score
//! about −1200). Once (step 0): `final_gain_error` or `final_eval_return`, `run_seconds`.

use nalgebra::{DMatrix, DVector};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use policy_param::algo::nfqca::{Nfqca, NfqcaConfig, NfqcaReport};
use policy_param::algo::Transitions as BasePoints;
use policy_param::env::lqr::Lqr;
use policy_param::env::Env;
use policy_param::eval::EvalSettings;
use policy_param::nn::{Activation, AdamConfig};
use policy_param::policy::PolicyOutput;
use policy_param::replay::{Transition, Transitions};
use policy_param::rng::RunSeed;

use super::box_task::BoxTask;
use super::lqr_setup::relative;
use super::{at_least, discount, positive, LqrSystemName};
use crate::error::{CellError, Invalid};
use crate::experiment::{CellContext, Experiment};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Which LQR system (on `Lqr`). Default `scalar`.
    pub system: LqrSystemName,
    /// |𝓑| (≥ 1). Default 2000.
    pub points: usize,
    /// Half-width of the LQR state box of 𝓑 (> 0). Default 2.
    pub state_bound: f64,
    /// Half-width of the LQR action box of 𝓑 (> 0). Default 3.
    pub action_bound: f64,
    /// γ, except on `Lqr`, where the system's γ is the task (Riccati's) and this key must
    /// be left out. Default 0.99.
    pub gamma: Option<f64>,
    /// N, the iterations of step 2 (≥ 1). Default 30.
    pub iterations: usize,
    /// Record the metrics every this many iterations (≥ 1). Default 1.
    pub record_every: usize,
    /// Minibatch size of the fit and policy steps (≥ 1). Default 64.
    pub batch_size: usize,
    /// Passes over 𝓑 of step 2.3's `fit` per iteration (≥ 1). Default 10.
    pub fit_epochs: usize,
    /// Passes over 𝓑 of step 2.4's `minimize` per iteration (≥ 1). Default 2.
    pub policy_epochs: usize,
    /// Adam's learning rate for q(s, a; θ) (> 0). Default 3e-3.
    pub critic_lr: f64,
    /// Adam's learning rate α for d(s; w) (> 0). Default 1e-3.
    pub actor_lr: f64,
    /// Hidden widths of q(s, a; θ). Default [64, 64].
    pub critic_hidden: Vec<usize>,
    /// Hidden widths of d(s; w). Default [32].
    pub actor_hidden: Vec<usize>,
    /// `tanh` or `relu`. Default `tanh`.
    pub hidden_activation: HiddenActivation,
    /// `linear` (the chapter's d(s; w), unbounded) or `tanh` (squashed onto the action
    /// box). Default `linear`.
    pub policy_output: Output,
    /// Evaluation episodes (not on `Lqr`, ≥ 1). Default 10.
    pub eval_episodes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            system: LqrSystemName::Scalar,
            points: 2000,
            state_bound: 2.0,
            action_bound: 3.0,
            gamma: None,
            iterations: 30,
            record_every: 1,
            batch_size: 64,
            fit_epochs: 10,
            policy_epochs: 2,
            critic_lr: 3e-3,
            actor_lr: 1e-3,
            critic_hidden: vec![64, 64],
            actor_hidden: vec![32],
            hidden_activation: HiddenActivation::Tanh,
            policy_output: Output::Linear,
            eval_episodes: 10,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenActivation {
    Tanh,
    Relu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    Linear,
    Tanh,
}

/// γ of an environment other than `Lqr` when the grid does not set it.
const DEFAULT_GAMMA: f64 = 0.99;

pub struct NfqcaExperiment;

impl Experiment for NfqcaExperiment {
    const NAME: &'static str = "nfqca";
    const ALGORITHM: &'static str = "nfqca";
    const ENVIRONMENTS: &'static [&'static str] =
        &["Lqr", "Pendulum-v1", "MountainCarContinuous-v0"];
    const DESCRIPTION: &'static str =
        "NFQCA on a fixed batch: gain error vs Riccati (Lqr) or return of d(s; w) by iteration";
    type Config = Config;

    fn check(c: &Config) -> Result<(), Invalid> {
        at_least("points", c.points, 1)?;
        positive("state_bound", c.state_bound)?;
        positive("action_bound", c.action_bound)?;
        if let Some(gamma) = c.gamma {
            discount("gamma", gamma)?;
        }
        at_least("iterations", c.iterations, 1)?;
        at_least("record_every", c.record_every, 1)?;
        positive("critic_lr", c.critic_lr)?;
        positive("actor_lr", c.actor_lr)?;
        at_least("eval_episodes", c.eval_episodes, 1)?;
        // The remaining ranges are the library's: one check, naming the key.
        nfqca_config(c, DEFAULT_GAMMA)
            .check()
            .map_err(|e| Invalid::new("", e.to_string()))?;
        Ok(())
    }

    fn run(
        c: &Config,
        environment: &str,
        seed: u64,
        ctx: &mut CellContext,
    ) -> Result<(), CellError> {
        let seed = RunSeed(seed);
        if environment == "Lqr" {
            if c.gamma.is_some() {
                return Err(invalid(
                    "gamma",
                    "on Lqr γ is the system's (the Riccati gain is computed with it): leave gamma out",
                ));
            }
            let mut env = Lqr::new(c.system.params())?;
            let optimal = env.solve()?.gain().clone();
            let base = lqr_batch(&mut env, c, seed)?;
            let config = nfqca_config(c, env.system().gamma()).check()?;
            let nfqca = Nfqca::new(&config, &base, env.action_space(), seed)?;
            let states = state_grid(env.system().state_dim());
            iterate(nfqca, c, ctx, "gain_error", |nfqca| {
                Ok(relative(&fitted_gain(nfqca, &states)?, &optimal))
            })
        } else {
            let mut task = BoxTask::new(environment)?;
            let base = to_replay(&task.base_points(c.points, seed)?)?;
            let config = nfqca_config(c, c.gamma.unwrap_or(DEFAULT_GAMMA)).check()?;
            let nfqca = Nfqca::new(&config, &base, &task.space, seed)?;
            let settings = EvalSettings {
                episodes: c.eval_episodes,
                seed: seed.child("eval", 0),
                gamma: 1.0,
                max_steps: task.eval_steps,
            };
            let make_env = task.make_env();
            iterate(nfqca, c, ctx, "eval_return", |nfqca| {
                Ok(nfqca.policy().evaluate(make_env, &settings)?.mean_return())
            })
        }
    }
}

fn invalid(key: &str, reason: &str) -> CellError {
    CellError::Failed(policy_param::Error::invalid(key, reason))
}

/// The library's configuration for this cell, with discount `gamma`.
fn nfqca_config(c: &Config, gamma: f64) -> NfqcaConfig {
    NfqcaConfig {
        gamma,
        batch_size: c.batch_size,
        fit_epochs: c.fit_epochs,
        policy_epochs: c.policy_epochs,
        critic_optimizer: AdamConfig::with_lr(c.critic_lr),
        actor_optimizer: AdamConfig::with_lr(c.actor_lr),
        actor_hidden: c.actor_hidden.clone(),
        critic_hidden: c.critic_hidden.clone(),
        hidden_activation: match c.hidden_activation {
            HiddenActivation::Tanh => Activation::Tanh,
            HiddenActivation::Relu => Activation::Relu,
        },
        policy_output: match c.policy_output {
            Output::Linear => PolicyOutput::Linear,
            Output::Tanh => PolicyOutput::TanhScaled,
        },
        last_layer_init: None,
    }
}

/// Runs the N iterations, recording `metric` (computed by `measure`) with the reports.
fn iterate(
    mut nfqca: Nfqca,
    c: &Config,
    ctx: &mut CellContext,
    metric: &str,
    measure: impl Fn(&Nfqca) -> policy_param::Result<f64>,
) -> Result<(), CellError> {
    ctx.set_total(c.iterations as u64);
    let start = std::time::Instant::now();
    let mut last = f64::NAN;
    for n in 1..=c.iterations {
        let report: NfqcaReport = nfqca.iterate()?;
        if !report.critic_loss.is_finite() {
            return Err(CellError::Diverged(format!(
                "critic loss {} at iteration {n}",
                report.critic_loss
            )));
        }
        if n.is_multiple_of(c.record_every) || n == c.iterations {
            let step = n as u64;
            ctx.record(step, "critic_loss", report.critic_loss);
            ctx.record(step, "actor_objective", report.actor_objective);
            last = measure(&nfqca)?;
            ctx.record(step, metric, last);
        }
        ctx.advance();
    }
    ctx.record(0, &format!("final_{metric}"), last);
    ctx.record(0, "run_seconds", start.elapsed().as_secs_f64());
    Ok(())
}

/// 𝓑 on LQR: uniform states and actions, kept when the next state stays in the box.
fn lqr_batch(env: &mut Lqr, c: &Config, seed: RunSeed) -> Result<Transitions, CellError> {
    let (n, m) = (env.system().state_dim(), env.system().action_dim());
    let mut rng = seed.stream("data");
    let mut batch = Transitions::with_capacity(n, m, c.points)?;
    let (mut s, mut a) = (vec![0.0; n], vec![0.0; m]);
    let (mut s32, mut a32, mut next) = (vec![0.0f32; n], vec![0.0f32; m], vec![0.0f32; n]);
    let inside = |x: f32| f64::from(x).abs() <= c.state_bound;
    // Every draw has a positive chance of staying inside (s = 0, a small); a bound on the
    // draws turns a box that (almost) nothing stays in into an error, not a hang.
    let mut draws = 0usize;
    while batch.len() < c.points {
        draws += 1;
        if draws > 1000 * c.points {
            return Err(invalid(
                "state_bound",
                "fewer than 1 in 1000 transitions stay in the state box",
            ));
        }
        s.iter_mut()
            .for_each(|x| *x = rng.gen_range(-c.state_bound..c.state_bound));
        a.iter_mut()
            .for_each(|x| *x = rng.gen_range(-c.action_bound..c.action_bound));
        env.set_state(&s, 0)?;
        let out = env.step_into(&a, &mut next)?;
        if !next.iter().copied().all(inside) {
            continue;
        }
        s32.iter_mut().zip(&s).for_each(|(y, &x)| *y = x as f32);
        a32.iter_mut().zip(&a).for_each(|(y, &x)| *y = x as f32);
        batch.push(Transition {
            observation: &s32,
            action: &a32,
            reward: out.reward as f32,
            next_observation: &next,
            terminal: out.terminated,
        })?;
    }
    Ok(batch)
}

/// Base points as the replay table NFQCA reads (observations and actions in f32).
fn to_replay(points: &BasePoints) -> Result<Transitions, CellError> {
    let (n, m) = (points.state_dim(), points.action_dim());
    let mut table = Transitions::with_capacity(n, m, points.len())?;
    let f32s = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    for i in 0..points.len() {
        table.push(Transition {
            observation: &f32s(points.state(i)),
            action: &f32s(points.action(i)),
            reward: points.reward(i) as f32,
            next_observation: &f32s(points.next_state(i)),
            terminal: points.terminated(i),
        })?;
    }
    Ok(table)
}

/// A grid over `[−1, 1]ⁿ`: 41 points for n = 1, 21 per dimension otherwise; one state per
/// row.
fn state_grid(n: usize) -> DMatrix<f64> {
    let per_dim: usize = if n == 1 { 41 } else { 21 };
    let count = per_dim.pow(n as u32);
    DMatrix::from_fn(count, n, |row, d| {
        let k = row / per_dim.pow((n - 1 - d) as u32) % per_dim;
        -1.0 + 2.0 * k as f64 / (per_dim - 1) as f64
    })
}

/// K̂ with `d(s; w) ≈ −K̂s + b` in least squares over the rows of `states`.
fn fitted_gain(nfqca: &Nfqca, states: &DMatrix<f64>) -> policy_param::Result<DMatrix<f64>> {
    let policy = nfqca.policy();
    let mut ws = policy.workspace();
    let (rows, n) = states.shape();
    let m = nfqca.transitions().action_dim();
    let mut design = DMatrix::from_element(rows, n + 1, 1.0);
    design.view_mut((0, 0), (rows, n)).copy_from(states);
    let mut actions = DMatrix::zeros(rows, m);
    let (mut s, mut a) = (vec![0.0f32; n], vec![0.0; m]);
    for row in 0..rows {
        for (d, x) in s.iter_mut().enumerate() {
            *x = states[(row, d)] as f32;
        }
        policy.act(&mut ws, &s, &mut a)?;
        actions
            .row_mut(row)
            .copy_from(&DVector::from_column_slice(&a).transpose());
    }
    // Normal equations of an (n + 1)-column design: well conditioned on a full grid.
    let gram = design.transpose() * &design;
    let coefficients = gram
        .cholesky()
        .ok_or_else(|| policy_param::Error::Numerical {
            context: "nfqca gain fit".into(),
            reason: "singular design".into(),
        })?
        .solve(&(design.transpose() * actions));
    // Rows 0..n are −K̂ᵀ.
    Ok(-coefficients.rows(0, n).transpose())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_grid_covers_the_box_once() {
        let grid = state_grid(2);
        assert_eq!(grid.shape(), (441, 2));
        assert_eq!((grid[(0, 0)], grid[(0, 1)]), (-1.0, -1.0));
        assert_eq!((grid[(1, 0)], grid[(1, 1)]), (-1.0, -0.9));
        assert_eq!((grid[(440, 0)], grid[(440, 1)]), (1.0, 1.0));
        let mut rows: Vec<(i64, i64)> = (0..441)
            .map(|r| {
                (
                    (grid[(r, 0)] * 10.0).round() as i64,
                    (grid[(r, 1)] * 10.0).round() as i64,
                )
            })
            .collect();
        rows.sort_unstable();
        rows.dedup();
        assert_eq!(rows.len(), 441);
    }

    #[test]
    fn the_lqr_batch_stays_in_the_state_box() {
        let mut env = Lqr::new(LqrSystemName::Scalar.params()).unwrap();
        let c = Config {
            points: 500,
            ..Config::default()
        };
        let batch = lqr_batch(&mut env, &c, RunSeed(3)).unwrap();
        assert_eq!(batch.len(), 500);
        for t in batch.iter() {
            assert!(t.observation[0].abs() <= 2.0 && t.next_observation[0].abs() <= 2.0);
            let (s, a) = (f64::from(t.observation[0]), f64::from(t.action[0]));
            assert!((f64::from(t.reward) + s * s + a * a).abs() < 1e-4);
        }
        let narrow = Config {
            state_bound: 1e-9,
            action_bound: 10.0,
            points: 10,
            ..Config::default()
        };
        assert!(matches!(
            lqr_batch(&mut env, &narrow, RunSeed(3)),
            Err(CellError::Failed(_))
        ));
    }
}
