//! Evaluation of a policy over seeded episodes, in parallel.
//!
//! Every episode `i` gets its own reset seed and its own policy stream, both derived
//! from the evaluation's [`RunSeed`] by index, and results are collected in episode
//! order. So the numbers depend only on the seed, never on how rayon schedules the
//! episodes over threads.

use rand::RngCore;
use rayon::prelude::*;

use crate::env::Env;
use crate::error::{Error, Result};
use crate::rng::{Rng, RunSeed};

/// How to evaluate: how many episodes, from which seed, with which discount.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalSettings {
    pub episodes: usize,
    pub seed: RunSeed,
    /// Discount for [`Episode::discounted_return`] (the undiscounted return is always kept).
    pub gamma: f64,
    /// Cut episodes after this many steps even if the environment has no time limit.
    pub max_steps: usize,
}

impl Default for EvalSettings {
    fn default() -> Self {
        EvalSettings {
            episodes: 10,
            seed: RunSeed(0),
            gamma: 1.0,
            max_steps: 10_000,
        }
    }
}

impl EvalSettings {
    fn validate(&self) -> Result<()> {
        if self.episodes == 0 {
            return Err(Error::invalid("episodes", "must be at least 1"));
        }
        if !(self.gamma > 0.0 && self.gamma <= 1.0) {
            return Err(Error::invalid(
                "gamma",
                format!("{} is not in (0, 1]", self.gamma),
            ));
        }
        if self.max_steps == 0 {
            return Err(Error::invalid("max_steps", "must be at least 1"));
        }
        Ok(())
    }
}

/// One finished episode.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Episode {
    /// The seed its environment was reset with.
    pub reset_seed: u64,
    pub undiscounted_return: f64,
    pub discounted_return: f64,
    pub length: usize,
    /// Ended in a terminal state (rather than by truncation or `max_steps`).
    pub terminated: bool,
}

/// All episodes of an evaluation, in episode order.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    pub episodes: Vec<Episode>,
}

impl Evaluation {
    /// Mean undiscounted return.
    pub fn mean_return(&self) -> f64 {
        let n = self.episodes.len() as f64;
        self.episodes
            .iter()
            .map(|e| e.undiscounted_return)
            .sum::<f64>()
            / n
    }

    /// Sample standard deviation of the undiscounted return (0 for one episode).
    pub fn std_return(&self) -> f64 {
        let n = self.episodes.len();
        if n < 2 {
            return 0.0;
        }
        let mean = self.mean_return();
        let ss: f64 = self
            .episodes
            .iter()
            .map(|e| (e.undiscounted_return - mean).powi(2))
            .sum();
        (ss / (n - 1) as f64).sqrt()
    }

    /// Mean discounted return.
    pub fn mean_discounted_return(&self) -> f64 {
        let n = self.episodes.len() as f64;
        self.episodes
            .iter()
            .map(|e| e.discounted_return)
            .sum::<f64>()
            / n
    }
}

/// Evaluate a stateless policy `policy(observation, rng, action)`.
///
/// `make_env` builds one environment per episode; `rng` is the episode's own stream,
/// for stochastic policies (deterministic ones ignore it).
pub fn evaluate<F, P>(make_env: F, policy: P, settings: &EvalSettings) -> Result<Evaluation>
where
    F: Fn() -> Result<Box<dyn Env>> + Sync,
    P: Fn(&[f32], &mut Rng, &mut [f64]) -> Result<()> + Sync,
{
    evaluate_with(
        make_env,
        || (),
        |_: &mut (), obs: &[f32], rng: &mut Rng, action: &mut [f64]| policy(obs, rng, action),
        settings,
    )
}

/// Evaluate a policy that needs a scratch workspace (for example an MLP's activation
/// cache): `workspace()` is called once per episode, so the step loop allocates nothing.
pub fn evaluate_with<F, W, I, P>(
    make_env: F,
    workspace: I,
    policy: P,
    settings: &EvalSettings,
) -> Result<Evaluation>
where
    F: Fn() -> Result<Box<dyn Env>> + Sync,
    I: Fn() -> W + Sync,
    P: Fn(&mut W, &[f32], &mut Rng, &mut [f64]) -> Result<()> + Sync,
{
    settings.validate()?;
    let episodes = (0..settings.episodes as u64)
        .into_par_iter()
        .map(|i| {
            let mut env = make_env()?;
            let mut ws = workspace();
            run_episode(env.as_mut(), &mut ws, &policy, settings, i)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Evaluation { episodes })
}

fn run_episode<W, P>(
    env: &mut dyn Env,
    ws: &mut W,
    policy: &P,
    settings: &EvalSettings,
    index: u64,
) -> Result<Episode>
where
    P: Fn(&mut W, &[f32], &mut Rng, &mut [f64]) -> Result<()>,
{
    let reset_seed = settings.seed.indexed("eval-reset", index).next_u64();
    let mut policy_rng = settings.seed.indexed("eval-policy", index);
    let mut obs = vec![0.0f32; env.observation_dim()];
    let mut next_obs = obs.clone();
    let mut action = vec![0.0f64; env.action_space().dim()];
    env.reset_into(Some(reset_seed), &mut obs);

    let mut episode = Episode {
        reset_seed,
        undiscounted_return: 0.0,
        discounted_return: 0.0,
        length: 0,
        terminated: false,
    };
    let mut discount = 1.0;
    while episode.length < settings.max_steps {
        policy(ws, &obs, &mut policy_rng, &mut action)?;
        let out = env.step_into(&action, &mut next_obs)?;
        if !out.reward.is_finite() {
            return Err(Error::Numerical {
                context: format!("evaluation episode {index} on {}", env.id()),
                reason: format!("reward {} at step {}", out.reward, episode.length),
            });
        }
        episode.undiscounted_return += out.reward;
        episode.discounted_return += discount * out.reward;
        discount *= settings.gamma;
        episode.length += 1;
        std::mem::swap(&mut obs, &mut next_obs);
        if out.terminated || out.truncated {
            episode.terminated = out.terminated;
            break;
        }
    }
    Ok(episode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{validate_action, ActionSpace, StepOutcome};
    use rand::{Rng as _, SeedableRng};

    /// A noisy 1-D random walk with a terminal band, so episodes differ in length,
    /// reset draws and policy noise: enough to expose any scheduling dependence.
    struct Walk {
        space: ActionSpace,
        state: [f64; 1],
        steps: usize,
        rng: Rng,
    }

    impl Walk {
        fn boxed() -> Result<Box<dyn Env>> {
            Ok(Box::new(Walk {
                space: ActionSpace::Box {
                    low: vec![-1.0],
                    high: vec![1.0],
                },
                state: [0.0],
                steps: 0,
                rng: Rng::seed_from_u64(0),
            }))
        }
    }

    impl Env for Walk {
        fn id(&self) -> &str {
            "Walk"
        }
        fn observation_dim(&self) -> usize {
            1
        }
        fn action_space(&self) -> &ActionSpace {
            &self.space
        }
        fn max_episode_steps(&self) -> Option<usize> {
            Some(50)
        }
        fn reset_into(&mut self, seed: Option<u64>, observation: &mut [f32]) {
            if let Some(seed) = seed {
                self.rng = Rng::seed_from_u64(seed);
            }
            self.state[0] = self.rng.gen_range(-1.0..1.0);
            self.steps = 0;
            self.observe(observation);
        }
        fn step_into(&mut self, action: &[f64], next: &mut [f32]) -> Result<StepOutcome> {
            validate_action("Walk", &self.space, action)?;
            let noise: f64 = self.rng.gen_range(-0.3..0.3);
            self.state[0] += 0.1 * action[0] + noise;
            self.steps += 1;
            self.observe(next);
            Ok(StepOutcome {
                reward: -self.state[0].powi(2),
                terminated: self.state[0].abs() > 0.6,
                truncated: self.steps >= 50,
            })
        }
        fn state(&self) -> &[f64] {
            &self.state
        }
        fn set_state(&mut self, state: &[f64], elapsed: usize) -> Result<()> {
            crate::env::validate_state("Walk", 1, state)?;
            self.state[0] = state[0];
            self.steps = elapsed;
            Ok(())
        }
        fn observe(&self, observation: &mut [f32]) {
            observation[0] = self.state[0] as f32;
        }
    }

    fn noisy_policy(obs: &[f32], rng: &mut Rng, action: &mut [f64]) -> Result<()> {
        action[0] = (-(obs[0] as f64) + rng.gen_range(-0.5..0.5)).clamp(-1.0, 1.0);
        Ok(())
    }

    fn run_with_threads(threads: usize, settings: &EvalSettings) -> Evaluation {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool")
            .install(|| evaluate(Walk::boxed, noisy_policy, settings).expect("evaluation"))
    }

    #[test]
    fn bit_identical_with_one_and_two_threads() {
        let settings = EvalSettings {
            episodes: 64,
            seed: RunSeed(11),
            gamma: 0.99,
            max_steps: 1000,
        };
        let one = run_with_threads(1, &settings);
        let two = run_with_threads(2, &settings);
        let bits = |e: &Evaluation| {
            e.episodes
                .iter()
                .map(|x| (x.undiscounted_return.to_bits(), x.length, x.reset_seed))
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&one), bits(&two));
        // The episodes really differ, so the comparison above is not vacuous.
        assert!(one.std_return() > 0.0);
        assert!(one.episodes.iter().any(|e| e.terminated));
        assert!(one.episodes.iter().any(|e| !e.terminated));
    }

    #[test]
    fn different_seeds_give_different_evaluations() {
        let a = run_with_threads(2, &EvalSettings::default());
        let b = run_with_threads(
            2,
            &EvalSettings {
                seed: RunSeed(1),
                ..EvalSettings::default()
            },
        );
        assert_ne!(a.mean_return(), b.mean_return());
    }

    #[test]
    fn discounted_return_matches_its_definition() {
        // Replay one episode by hand and recompute both returns.
        let settings = EvalSettings {
            episodes: 1,
            seed: RunSeed(3),
            gamma: 0.9,
            max_steps: 1000,
        };
        let eval = run_with_threads(1, &settings);
        let ep = eval.episodes[0];
        let mut env = Walk::boxed().unwrap();
        let mut rng = settings.seed.indexed("eval-policy", 0);
        let mut obs = env.reset(Some(ep.reset_seed));
        let (mut g, mut total, mut discount) = (0.0, 0.0, 1.0);
        for _ in 0..ep.length {
            let mut a = [0.0];
            noisy_policy(&obs, &mut rng, &mut a).unwrap();
            let step = env.step(&a).unwrap();
            g += discount * step.reward;
            total += step.reward;
            discount *= 0.9;
            obs = step.observation;
        }
        assert_eq!(g.to_bits(), ep.discounted_return.to_bits());
        assert_eq!(total.to_bits(), ep.undiscounted_return.to_bits());
    }

    #[test]
    fn invalid_settings_and_policy_errors_are_reported() {
        let bad = EvalSettings {
            gamma: 1.5,
            ..EvalSettings::default()
        };
        assert!(matches!(
            evaluate(Walk::boxed, noisy_policy, &bad),
            Err(Error::InvalidParameter { .. })
        ));
        let nan_policy = |_: &[f32], _: &mut Rng, a: &mut [f64]| {
            a[0] = f64::NAN;
            Ok(())
        };
        assert!(matches!(
            evaluate(Walk::boxed, nan_policy, &EvalSettings::default()),
            Err(Error::NonFiniteAction { .. })
        ));
    }
}
