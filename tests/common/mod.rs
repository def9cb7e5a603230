//! Test support for FQI with neural q-functions: a q-network on `[s, a]` and a 1-D
//! coarse-to-fine grid maximizer.
//!
//! Both stand in for the library's `qfunction::mlp::MlpQ` and `maximize::grid` (written
//! in parallel); once those are merged, the tests switch to them and this file goes.

#![allow(dead_code)]

use policy_param::algo::NetworkQ;
use policy_param::env::ActionSpace;
use policy_param::maximize::{Maximizer, Maximum, QFunction};
use policy_param::nn::{Mlp, Workspace};
use policy_param::rng::Rng;
use policy_param::{Error, Result};
use rand::Rng as _;

/// q(s, a) = the network's output on the row `[s, a]`.
pub struct StateActionMlp {
    network: Mlp<f32>,
    state_dim: usize,
}

impl StateActionMlp {
    pub fn new(network: Mlp<f32>, state_dim: usize) -> Self {
        assert!(network.input_dim() > state_dim && network.output_dim() == 1);
        StateActionMlp { network, state_dim }
    }

    fn load(&self, input: &mut [f32], state: &[f64], action: &[f64]) -> Result<()> {
        if state.len() != self.state_dim || action.len() != self.action_dim() {
            return Err(Error::invalid("state/action", "wrong length"));
        }
        for (x, &v) in input.iter_mut().zip(state.iter().chain(action)) {
            *x = v as f32;
        }
        Ok(())
    }
}

/// Network activations, the input row and its gradient.
pub struct MlpQWorkspace {
    network: Workspace<f32>,
    input: Vec<f32>,
    grad_input: Vec<f32>,
}

impl QFunction for StateActionMlp {
    type Workspace = MlpQWorkspace;

    fn state_dim(&self) -> usize {
        self.state_dim
    }

    fn action_dim(&self) -> usize {
        self.network.input_dim() - self.state_dim
    }

    fn workspace(&self) -> MlpQWorkspace {
        MlpQWorkspace {
            network: self.network.workspace(1),
            input: vec![0.0; self.network.input_dim()],
            grad_input: vec![0.0; self.network.input_dim()],
        }
    }

    fn value(&self, ws: &mut MlpQWorkspace, state: &[f64], action: &[f64]) -> Result<f64> {
        self.load(&mut ws.input, state, action)?;
        Ok(f64::from(
            self.network.forward(&ws.input, &mut ws.network)?[0],
        ))
    }

    fn value_and_action_gradient(
        &self,
        ws: &mut MlpQWorkspace,
        state: &[f64],
        action: &[f64],
        gradient: &mut [f64],
    ) -> Result<f64> {
        let value = self.value(ws, state, action)?;
        self.network
            .input_gradient(&mut ws.network, &[1.0], &mut ws.grad_input)?;
        for (g, &x) in gradient.iter_mut().zip(&ws.grad_input[self.state_dim..]) {
            *g = f64::from(x);
        }
        Ok(value)
    }
}

impl NetworkQ for StateActionMlp {
    fn network(&self) -> &Mlp<f32> {
        &self.network
    }

    fn network_mut(&mut self) -> &mut Mlp<f32> {
        &mut self.network
    }
}

/// Maximize over a 1-D box by a grid of `points` values, then `refinements` times a grid
/// of the same size over the two cells around the best point so far. With `jitter` the
/// first grid is shifted by a random fraction of its step drawn from the call's stream
/// (a randomized maximizer, to check that FQI hands every base point its own stream).
pub struct RefinedGrid {
    space: ActionSpace,
    low: f64,
    high: f64,
    points: usize,
    refinements: usize,
    pub jitter: bool,
}

impl RefinedGrid {
    pub fn new(space: &ActionSpace, points: usize, refinements: usize) -> Self {
        let ActionSpace::Box { low, high } = space else {
            panic!("box action space expected")
        };
        assert!(low.len() == 1 && points >= 3);
        RefinedGrid {
            space: space.clone(),
            low: low[0],
            high: high[0],
            points,
            refinements,
            jitter: false,
        }
    }
}

impl Maximizer for RefinedGrid {
    type Workspace = ();

    fn name(&self) -> &str {
        "refined-grid"
    }

    fn action_space(&self) -> &ActionSpace {
        &self.space
    }

    fn workspace(&self) {}

    fn maximize<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        _ws: &mut (),
        state: &[f64],
        action: &mut [f64],
        rng: &mut Rng,
    ) -> Result<Maximum> {
        let (mut low, mut high) = (self.low, self.high);
        let (mut best, mut best_value) = (low, f64::NEG_INFINITY);
        let mut evaluations = 0;
        let mut shift = if self.jitter { rng.gen::<f64>() } else { 0.0 };
        for _ in 0..=self.refinements {
            let step = (high - low) / (self.points - 1) as f64;
            for i in 0..self.points {
                let a = (low + step * (i as f64 + shift)).min(high);
                let v = q.value(q_ws, state, &[a])?;
                evaluations += 1;
                if v > best_value {
                    best_value = v;
                    best = a;
                }
            }
            shift = 0.0;
            low = (best - step).max(self.low);
            high = (best + step).min(self.high);
        }
        action[0] = best;
        Ok(Maximum {
            value: best_value,
            evaluations,
        })
    }
}
