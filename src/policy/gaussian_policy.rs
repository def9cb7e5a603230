//! The Gaussian policy d(a|s; φ) = N(μ_φ(s), σ_φ(s)) of SAC as a whole: a network
//! `s ↦ (μ_φ(s), log σ_φ(s))`, its [`GaussianHead`] (plain or tanh-squashed) and the
//! [`ActionMap`] to environment actions; a snapshot to act with (its mean, or samples)
//! and to evaluate.

use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::{ActionMap, GaussianHead};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::eval::{evaluate_with, EvalSettings, Evaluation};
use crate::nn::{Mlp, Workspace};
use crate::rng::Rng;

/// Copies the head's f32 action into an f64 one.
fn widen(action: &[f32], out: &mut [f64]) {
    for (u, &a) in out.iter_mut().zip(action) {
        *u = f64::from(a);
    }
}

/// A Gaussian policy d(a|s; φ) with its map to environment actions: a snapshot to act
/// with (its mean, or samples) and to evaluate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaussianPolicy {
    network: Mlp,
    head: GaussianHead,
    map: ActionMap,
}

/// Scratch for [`GaussianPolicy`]: one observation row and its action.
#[derive(Clone, Debug)]
pub struct GaussianPolicyWorkspace {
    network: Workspace,
    noise: Vec<f32>,
    action: Vec<f32>,
    log_prob: [f32; 1],
    agent_action: Vec<f64>,
}

impl GaussianPolicy {
    /// `network` maps observations to `2m` outputs ([`GaussianHead`]), `map` the head's
    /// actions (in (−1, 1)ᵐ when squashed) to the environment's.
    pub fn new(network: Mlp, head: GaussianHead, map: ActionMap) -> Result<Self> {
        if network.output_dim() != head.output_dim() || head.action_dim() != map.dim() {
            return Err(Error::invalid(
                "gaussian_policy",
                format!(
                    "network outputs {}, the head reads {} for {} actions, the action space has {}",
                    network.output_dim(),
                    head.output_dim(),
                    head.action_dim(),
                    map.dim()
                ),
            ));
        }
        Ok(GaussianPolicy { network, head, map })
    }

    pub fn network(&self) -> &Mlp {
        &self.network
    }

    /// For SAC's policy step, which moves φ in place.
    pub(crate) fn network_mut(&mut self) -> &mut Mlp {
        &mut self.network
    }

    pub fn head(&self) -> &GaussianHead {
        &self.head
    }

    pub fn action_map(&self) -> &ActionMap {
        &self.map
    }

    pub fn workspace(&self) -> GaussianPolicyWorkspace {
        let m = self.head.action_dim();
        GaussianPolicyWorkspace {
            network: self.network.workspace(1),
            noise: vec![0.0; m],
            action: vec![0.0; m],
            log_prob: [0.0],
            agent_action: vec![0.0; m],
        }
    }

    /// The Gaussian's mean μ_φ(s) and standard deviation σ_φ(s) (clamped) before any
    /// squashing, per component.
    pub fn distribution(
        &self,
        ws: &mut GaussianPolicyWorkspace,
        observation: &[f32],
        mean: &mut [f64],
        std: &mut [f64],
    ) -> Result<()> {
        let m = self.head.action_dim();
        let output = self.network.forward(observation, &mut ws.network)?;
        let (low, high) = self.head.log_std_bounds();
        for i in 0..m {
            mean[i] = f64::from(output[i]);
            std[i] = f64::from(output[m + i]).clamp(low, high).exp();
        }
        Ok(())
    }

    /// The deterministic environment action: the mean (or `tanh` of it) mapped to the box.
    pub fn act(
        &self,
        ws: &mut GaussianPolicyWorkspace,
        observation: &[f32],
        action: &mut [f64],
    ) -> Result<()> {
        let output = self.network.forward(observation, &mut ws.network)?;
        self.head.mean_action(output, &mut ws.action)?;
        self.to_env(ws, action);
        Ok(())
    }

    /// An environment action sampled from d(·|s; φ) with noise from `rng`.
    pub fn sample(
        &self,
        ws: &mut GaussianPolicyWorkspace,
        observation: &[f32],
        rng: &mut Rng,
        action: &mut [f64],
    ) -> Result<()> {
        self.draw(ws, observation, rng)?;
        self.to_env(ws, action);
        Ok(())
    }

    /// An action sampled from d(·|s; φ) with noise from `rng`, in the head's coordinates
    /// (in (−1, 1)ᵐ when squashed), before the map to the environment's: what SAC stores
    /// in its replay buffer.
    pub fn sample_agent_action(
        &self,
        ws: &mut GaussianPolicyWorkspace,
        observation: &[f32],
        rng: &mut Rng,
        agent_action: &mut [f64],
    ) -> Result<()> {
        self.draw(ws, observation, rng)?;
        widen(&ws.action, agent_action);
        Ok(())
    }

    /// As [`GaussianPolicy::sample_agent_action`] with ε given instead of drawn: SAC's
    /// temporally correlated exploration, where ε comes from a noise process.
    pub fn sample_agent_action_from(
        &self,
        ws: &mut GaussianPolicyWorkspace,
        observation: &[f32],
        noise: &[f64],
        agent_action: &mut [f64],
    ) -> Result<()> {
        for (e, &x) in ws.noise.iter_mut().zip(noise) {
            *e = x as f32;
        }
        self.reparameterize(ws, observation)?;
        widen(&ws.action, agent_action);
        Ok(())
    }

    /// `ws.action = f_φ(s, ε)` with ε ~ N(0, I) drawn from `rng`, and its log-density.
    fn draw(
        &self,
        ws: &mut GaussianPolicyWorkspace,
        observation: &[f32],
        rng: &mut Rng,
    ) -> Result<()> {
        for e in ws.noise.iter_mut() {
            *e = StandardNormal.sample(rng);
        }
        self.reparameterize(ws, observation)
    }

    /// `ws.action = f_φ(s, ε)` for the ε in `ws.noise`, and its log-density.
    fn reparameterize(&self, ws: &mut GaussianPolicyWorkspace, observation: &[f32]) -> Result<()> {
        let output = self.network.forward(observation, &mut ws.network)?;
        self.head
            .sample(output, &ws.noise, &mut ws.action, &mut ws.log_prob)
    }

    fn to_env(&self, ws: &mut GaussianPolicyWorkspace, action: &mut [f64]) {
        widen(&ws.action, &mut ws.agent_action);
        self.map.to_env(&ws.agent_action, action);
    }

    /// Evaluates the deterministic policy (the mean action) over seeded episodes, in
    /// parallel.
    pub fn evaluate<F>(&self, make_env: F, settings: &EvalSettings) -> Result<Evaluation>
    where
        F: Fn() -> Result<Box<dyn Env>> + Sync,
    {
        evaluate_with(
            make_env,
            || self.workspace(),
            |ws: &mut GaussianPolicyWorkspace, obs: &[f32], _: &mut Rng, action: &mut [f64]| {
                self.act(ws, obs, action)
            },
            settings,
        )
    }

    /// Evaluates the stochastic policy, each episode sampling from its own stream.
    pub fn evaluate_stochastic<F>(&self, make_env: F, settings: &EvalSettings) -> Result<Evaluation>
    where
        F: Fn() -> Result<Box<dyn Env>> + Sync,
    {
        evaluate_with(
            make_env,
            || self.workspace(),
            |ws: &mut GaussianPolicyWorkspace, obs: &[f32], rng: &mut Rng, action: &mut [f64]| {
                self.sample(ws, obs, rng, action)
            },
            settings,
        )
    }
}
