//! What the online-training adapters (DDPG and SAC on Pendulum-v1) share: how a policy is
//! evaluated, when a cell has diverged, and how the update phase is timed.

use std::time::{Duration, Instant};

use policy_param::eval::EvalSettings;
use policy_param::rng::RunSeed;

use crate::error::CellError;
use crate::experiment::CellContext;

/// `episodes` undiscounted Pendulum-v1 episodes (200 steps each), seeded from the cell's
/// `"evaluation"` stream.
pub(crate) fn pendulum_evaluation(episodes: usize, seed: RunSeed) -> EvalSettings {
    EvalSettings {
        episodes,
        seed: seed.child("evaluation", 0),
        gamma: 1.0,
        max_steps: 200,
    }
}

/// A critic loss that is not finite or exceeds `max_loss` ends the cell as diverged.
pub(crate) fn check_critic_loss(loss: f64, step: u64, max_loss: f64) -> Result<(), CellError> {
    if !loss.is_finite() || loss > max_loss {
        return Err(CellError::Diverged(format!(
            "critic loss {loss} at step {step} (max_loss {max_loss})"
        )));
    }
    Ok(())
}

/// Wall time of the steps that made an update, for `update_steps_per_second`.
#[derive(Default)]
pub(crate) struct UpdateClock {
    time: Duration,
    steps: u64,
}

impl UpdateClock {
    /// Counts a step that made an update and began at `start`.
    pub(crate) fn add(&mut self, start: Instant) {
        self.time += start.elapsed();
        self.steps += 1;
    }

    /// Records `update_steps_per_second` (nothing if no step made an update).
    pub(crate) fn record(&self, ctx: &mut CellContext) {
        if self.steps > 0 {
            ctx.record(
                0,
                "update_steps_per_second",
                self.steps as f64 / self.time.as_secs_f64(),
            );
        }
    }
}
