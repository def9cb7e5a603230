//! One training run of an online agent, from flat hyperparameters to evaluations: the only
//! owner of the training loop, used by grid cells, `policy-param train` and the examples.
//!
//! * [`OnlineAlgorithm`]: an algorithm's flat [`Hyperparameters`] that build its agent;
//! * [`RunSettings`]: how long to train and when to evaluate (keys `steps`, `eval_every`,
//!   `eval_episodes`, `max_loss`, shared by every online algorithm);
//! * [`TrainConfig`]: both, as one flat table of keys;
//! * [`train`]: the loop: [`Online::step`] until `steps`, an evaluation of the agent's
//!   deterministic policy every `eval_every` steps and at the end (episodes as long as
//!   the environment's own time limit), the means of the update metrics between two
//!   evaluations, divergence checks, and a [`TrainObserver`] told of every episode and
//!   evaluation (to log, draw progress or checkpoint).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::algo::online::{Agent, AgentConfig, EpisodeEnd, Online, UpdateMetrics};
use crate::busy_workers::BusyWorkers;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::eval::{EvalSettings, Evaluation};
use crate::hyperparams::{self, as_object, Hyperparameters, Key, Preset, Range};
use crate::rng::RunSeed;

pub use crate::algo::online::OnlineAlgorithm;

/// Evaluation episodes in an environment without a time limit are cut at this length.
pub const EVAL_STEPS_WITHOUT_TIME_LIMIT: usize = 1000;

/// How long to train and when to evaluate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSettings {
    /// Environment steps. Default 20 000.
    pub steps: u64,
    /// Evaluate every this many steps (and after the last). Default 2000.
    pub eval_every: u64,
    /// Episodes per evaluation. Default 10.
    pub eval_episodes: usize,
    /// A critic loss above this (or not finite) ends the run as diverged. Default 1e8.
    pub max_loss: f64,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            steps: 20_000,
            eval_every: 2000,
            eval_episodes: 10,
            max_loss: 1e8,
        }
    }
}

impl Hyperparameters for RunSettings {
    const ALGORITHM: &'static str = "run";
    const KEYS: &'static [Key] = &[
        Key {
            name: "steps",
            range: Range::AtLeast(1),
            meaning: "environment steps of training",
        },
        Key {
            name: "eval_every",
            range: Range::AtLeast(1),
            meaning: "evaluate the deterministic policy every this many steps, and after the last",
        },
        Key {
            name: "eval_episodes",
            range: Range::AtLeast(1),
            meaning: "episodes per evaluation (undiscounted return, the environment's time limit)",
        },
        Key {
            name: "max_loss",
            range: Range::Positive,
            meaning: "a critic loss above this, or not finite, ends the run as diverged",
        },
    ];

    fn presets() -> &'static [Preset<Self>] {
        &[Preset {
            name: "default",
            meaning: "20 000 steps, 10 evaluation episodes every 2000 steps",
            values: RunSettings::default,
        }]
    }
}

/// An algorithm's hyperparameters and the run's settings: one flat table of keys.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig<P> {
    pub run: RunSettings,
    pub params: P,
}

impl<P: OnlineAlgorithm> TrainConfig<P> {
    /// `overrides` laid over preset `preset` of `P` (default: its first) and the default
    /// run settings; every key checked. Errors name the key.
    pub fn resolve(preset: Option<&str>, overrides: &Map<String, Value>) -> Result<Self> {
        let (run, params) = split::<P>(overrides)?;
        let config = TrainConfig {
            run: hyperparams::resolve::<RunSettings>(None, &run)?,
            params: hyperparams::resolve::<P>(preset, &params)?,
        };
        config.params.agent_config().check()?;
        Ok(config)
    }

    /// Every key with its value, one flat object.
    pub fn to_json(&self) -> Result<Map<String, Value>> {
        let mut all = as_object(&self.run)?;
        all.extend(as_object(&self.params)?);
        Ok(all)
    }

    /// What identifies a run: [`TrainConfig::to_json`] without the algorithm's
    /// [`OnlineAlgorithm::ADDED_KEYS`] that hold their default.
    pub fn identity(&self) -> Result<Map<String, Value>> {
        let mut all = self.to_json()?;
        let defaults = as_object(&P::defaults())?;
        for key in P::ADDED_KEYS {
            if all.get(*key) == defaults.get(*key) {
                all.remove(*key);
            }
        }
        Ok(all)
    }

    /// Reads back [`TrainConfig::to_json`] or [`TrainConfig::identity`] (missing added
    /// keys take their default), checked.
    pub fn from_json(values: &Map<String, Value>) -> Result<Self> {
        let defaults = as_object(&P::defaults())?;
        let mut complete = values.clone();
        for key in P::ADDED_KEYS {
            if let (false, Some(default)) = (complete.contains_key(*key), defaults.get(*key)) {
                complete.insert(key.to_string(), default.clone());
            }
        }
        let (run, params) = split::<P>(&complete)?;
        Ok(TrainConfig {
            run: hyperparams::resolve::<RunSettings>(None, &run)?,
            params: hyperparams::resolve::<P>(None, &params)?,
        })
    }
}

/// Every key of a `P` run: the run's, then the algorithm's.
pub fn keys<P: OnlineAlgorithm>() -> impl Iterator<Item = &'static Key> {
    RunSettings::KEYS.iter().chain(P::KEYS)
}

/// The run's keys and the algorithm's, apart; a key neither has is an error naming it.
fn split<P: OnlineAlgorithm>(
    values: &Map<String, Value>,
) -> Result<(Map<String, Value>, Map<String, Value>)> {
    let (mut run, mut params) = (Map::new(), Map::new());
    for (key, value) in values {
        if RunSettings::KEYS.iter().any(|k| k.name == key) {
            run.insert(key.clone(), value.clone());
        } else if P::KEYS.iter().any(|k| k.name == key) {
            params.insert(key.clone(), value.clone());
        } else {
            return Err(hyperparams::unknown_key::<P>(key, keys::<P>()));
        }
    }
    Ok((run, params))
}

/// One evaluation point of a run.
#[derive(Clone, Debug)]
pub struct EvalPoint {
    pub step: u64,
    pub evaluation: Evaluation,
    /// Means over the updates since the previous point, in the agent's order (empty when
    /// none ran).
    pub update_means: Vec<(&'static str, f64)>,
}

/// Told of what happens during [`train`]; an error stops the run.
pub trait TrainObserver<A: Agent> {
    /// After every environment step (`episode_end` when it ended an episode).
    fn step(&mut self, _step: u64, _episode_end: Option<&EpisodeEnd>) -> Result<()> {
        Ok(())
    }

    /// At every evaluation point, after the evaluation, with the run as it stands.
    fn evaluation(&mut self, _online: &Online<A>, _point: &EvalPoint) -> Result<()> {
        Ok(())
    }
}

impl<A: Agent> TrainObserver<A> for () {}

/// What [`train`] measured besides the evaluations.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrainTiming {
    /// Steps that made at least one update, and their wall time (evaluations excluded).
    pub update_steps: u64,
    pub update_seconds: f64,
    /// Wall time of the whole call.
    pub seconds: f64,
}

impl TrainTiming {
    /// Environment steps with updates per second, when any step made one.
    pub fn update_steps_per_second(&self) -> Option<f64> {
        (self.update_steps > 0).then(|| self.update_steps as f64 / self.update_seconds)
    }
}

/// The evaluation settings of a run on `env`: `episodes` undiscounted episodes as long as
/// its time limit, seeded from the run's `"evaluation"` stream.
pub fn evaluation_settings(env: &dyn Env, episodes: usize, seed: RunSeed) -> EvalSettings {
    EvalSettings {
        episodes,
        seed: seed.child("evaluation", 0),
        gamma: 1.0,
        max_steps: env
            .max_episode_steps()
            .unwrap_or(EVAL_STEPS_WITHOUT_TIME_LIMIT),
    }
}

/// Trains `online` from where it stands to `run.steps` environment steps, evaluating on
/// environments from `make_env` every `run.eval_every` steps and after the last. The
/// current pool's other workers busy-wait for work meanwhile ([`BusyWorkers`]).
/// Errors: the agent's, the environment's, and [`Error::Numerical`] when a critic loss
/// is not finite or exceeds `run.max_loss`.
pub fn train<A: Agent>(
    online: &mut Online<A>,
    run: &RunSettings,
    make_env: &(dyn Fn() -> Result<Box<dyn Env>> + Sync),
    seed: RunSeed,
    observer: &mut dyn TrainObserver<A>,
) -> Result<TrainTiming> {
    let start = Instant::now();
    let evaluation = evaluation_settings(online.env(), run.eval_episodes, seed);
    let mut timing = TrainTiming::default();
    let mut update_time = Duration::ZERO;
    let mut means = UpdateMeans::default();
    let _busy = BusyWorkers::start();
    while online.steps() < run.steps {
        let before = Instant::now();
        let report = online.step()?;
        let step = report.step;
        if let Some(update) = &report.update {
            update_time += before.elapsed();
            timing.update_steps += 1;
            let loss = update.critic_loss();
            if !loss.is_finite() || loss > run.max_loss {
                return Err(Error::Numerical {
                    context: format!("{} step {step}", A::NAME),
                    reason: format!("critic loss {loss} (max_loss {})", run.max_loss),
                });
            }
            means.add(update);
        }
        observer.step(step, report.episode_end.as_ref())?;
        if step % run.eval_every == 0 || step == run.steps {
            let point = EvalPoint {
                step,
                evaluation: online.agent().evaluate(make_env, &evaluation)?,
                update_means: means.take(),
            };
            observer.evaluation(online, &point)?;
        }
    }
    timing.update_seconds = update_time.as_secs_f64();
    timing.seconds = start.elapsed().as_secs_f64();
    Ok(timing)
}

/// Sums of each update metric since the last evaluation point, in first-seen order.
#[derive(Default)]
struct UpdateMeans {
    sums: Vec<(&'static str, f64, u64)>,
}

impl UpdateMeans {
    fn add(&mut self, stats: &impl UpdateMetrics) {
        stats.each(
            &mut |name, value| match self.sums.iter_mut().find(|(n, _, _)| *n == name) {
                Some((_, sum, count)) => {
                    *sum += value;
                    *count += 1;
                }
                None => self.sums.push((name, value, 1)),
            },
        );
    }

    fn take(&mut self) -> Vec<(&'static str, f64)> {
        let means = self
            .sums
            .iter()
            .map(|&(name, sum, count)| (name, sum / count as f64))
            .collect();
        self.sums.clear();
        means
    }
}
