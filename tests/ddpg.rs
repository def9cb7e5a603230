//! DDPG: recovers the LQR gain, follows the pseudocode's schedule (learning starts,
//! target copies every K updates), continues bit for bit from a checkpoint, gives the
//! same bits on any number of threads, allocates nothing per step, and reports bad hyperparameters and numerical failures as typed
//! errors.

use policy_param::algo::ddpg::{Ddpg, DdpgConfig, StepReport, TargetUpdate};
use policy_param::algo::deterministic_policy::{ActionMap, PolicyOutput};
use policy_param::env::lqr::{Lqr, LqrParams};
use policy_param::env::pendulum::Pendulum;
use policy_param::env::{self, ActionSpace, Env};
use policy_param::nn::{Activation, AdamConfig};
use policy_param::noise::{NoiseConfig, OrnsteinUhlenbeckParams};
use policy_param::rng::RunSeed;
use policy_param::Error;

mod counting_allocator;
mod thread_pool;
use counting_allocator::allocated_by;
use thread_pool::with_threads;

/// Least-squares slope of `policy(s)` over a grid of states in [−1, 1], as the gain K
/// of `a = −K s`.
fn fitted_gain(mut act: impl FnMut(f32) -> f64) -> f64 {
    let grid: Vec<f64> = (0..=40).map(|i| -1.0 + 0.05 * i as f64).collect();
    let actions: Vec<f64> = grid.iter().map(|&s| act(s as f32)).collect();
    let n = grid.len() as f64;
    let (ms, ma) = (
        grid.iter().sum::<f64>() / n,
        actions.iter().sum::<f64>() / n,
    );
    let sxy: f64 = grid
        .iter()
        .zip(&actions)
        .map(|(s, a)| (s - ms) * (a - ma))
        .sum();
    let sxx: f64 = grid.iter().map(|s| (s - ms).powi(2)).sum();
    -sxy / sxx
}

fn gain_of(ddpg: &Ddpg) -> f64 {
    let policy = ddpg.policy();
    let mut ws = policy.workspace();
    fitted_gain(|s| {
        let mut a = [0.0];
        policy.act(&mut ws, &[s], &mut a).unwrap();
        a[0]
    })
}

/// On `s' = 1.1 s + a`, reward `−(s² + a²)`, γ = 0.95 (`LqrParams::scalar`), the optimal
/// policy is `a = −K s` with K from the discounted Riccati equation. DDPG as the chapter
/// states it (Ornstein–Uhlenbeck noise, target networks copied every K = 100 updates,
/// an unbounded linear-output policy) must learn a policy whose least-squares slope on a
/// grid of states is within 10% of −K.
///
/// Settings that make the unstable system learnable online: the DDPG paper's small last
/// layers (the first policy is ≈ 0, not a random feedback that makes states explode),
/// 1000 steps of that policy before the first update, exploratory actions clipped to
/// [−3, 3], and 5-step episodes from s₀ ~ U[−1, 1] (truncation, not termination: the
/// targets still bootstrap, so the task is the infinite-horizon one).
#[test]
fn ddpg_recovers_the_lqr_gain() {
    let params = LqrParams {
        horizon: Some(5),
        action_limit: 3.0,
        ..LqrParams::scalar()
    };
    let env = Lqr::new(params).unwrap();
    let optimal = env.solve().unwrap().gain()[(0, 0)];
    let config = DdpgConfig {
        gamma: env.system().gamma(),
        buffer_size: 3000,
        batch_size: 64,
        actor_hidden: vec![32],
        critic_hidden: vec![64, 64],
        hidden_activation: Activation::Tanh,
        actor_optimizer: AdamConfig::with_lr(3e-4),
        critic_optimizer: AdamConfig::with_lr(1e-3),
        noise: NoiseConfig::OrnsteinUhlenbeck(OrnsteinUhlenbeckParams {
            theta: 0.5,
            mu: 0.0,
            sigma: 0.5,
            dt: 0.1,
        }),
        target_update: TargetUpdate::HardCopy { every: 100 },
        clip_actions: true,
        learning_starts: 1000,
        random_actions_before_learning: false,
        ..DdpgConfig::chapter()
    }
    .check()
    .unwrap();
    assert_eq!(config.policy_output, PolicyOutput::Linear);
    assert_eq!(config.last_layer_init, Some(3e-3));
    let mut ddpg = Ddpg::new(&config, Box::new(env), RunSeed(0)).unwrap();
    let initial = gain_of(&ddpg);
    assert!(initial.abs() < 0.1, "initial gain {initial}");

    ddpg.run(5000, |_, _| Ok(())).unwrap();
    let gain = gain_of(&ddpg);
    assert!(
        (gain / optimal - 1.0).abs() < 0.1,
        "learned gain {gain}, Riccati gain {optimal}"
    );
}

/// A small Pendulum configuration that exercises every moving part: random warm-up,
/// Ornstein–Uhlenbeck noise, clipping, tanh scaling, updates, episode resets.
fn small_pendulum_config(target_update: TargetUpdate) -> DdpgConfig {
    DdpgConfig {
        gamma: 0.98,
        buffer_size: 150,
        batch_size: 16,
        actor_hidden: vec![16, 16],
        critic_hidden: vec![16, 16],
        noise: NoiseConfig::OrnsteinUhlenbeck(OrnsteinUhlenbeckParams::default()),
        target_update,
        learning_starts: 40,
        ..DdpgConfig::default()
    }
}

fn pendulum() -> Box<dyn Env> {
    Box::new(Pendulum::new())
}

#[test]
fn updates_start_after_learning_starts_and_hard_copies_come_every_k_updates() {
    let config = small_pendulum_config(TargetUpdate::HardCopy { every: 7 })
        .check()
        .unwrap();
    let mut ddpg = Ddpg::new(&config, pendulum(), RunSeed(1)).unwrap();
    let initial_actor = ddpg.actor().clone();
    for step in 1..=40u64 {
        let report = ddpg.step().unwrap();
        assert_eq!(report.step, step);
        assert!(report.update.is_none(), "update at step {step}");
        // Warm-up actions are uniform on the box (plus noise, clipped to it).
        let action = ddpg.replay().get(step as usize - 1).unwrap().action[0];
        assert!((-1.0..=1.0).contains(&action));
    }
    assert_eq!(ddpg.actor(), &initial_actor);
    assert_eq!(ddpg.updates(), 0);
    for step in 41..=100u64 {
        let report = ddpg.step().unwrap();
        assert!(report.update.is_some());
        assert_eq!(ddpg.updates(), step - 40);
        // Update n (0-based) copies when n mod K = 0; in between, the online networks
        // move away from the targets.
        let n = ddpg.updates() - 1;
        let copied = ddpg.actor() == ddpg.actor_target() && ddpg.critic() == ddpg.critic_target();
        assert_eq!(copied, n.is_multiple_of(7), "update {n}");
    }
    assert_ne!(ddpg.actor(), &initial_actor);
    // The replay buffer (capacity 150) holds the last 100 transitions.
    assert_eq!(ddpg.replay().len(), 100);
}

#[test]
fn polyak_targets_trail_the_online_networks() {
    let config = small_pendulum_config(TargetUpdate::Polyak { tau: 0.05 })
        .check()
        .unwrap();
    let mut ddpg = Ddpg::new(&config, pendulum(), RunSeed(2)).unwrap();
    for _ in 0..40 {
        ddpg.step().unwrap();
    }
    let before = ddpg.critic_target().clone();
    ddpg.step().unwrap();
    // θ' ← τθ + (1 − τ)θ' with the θ after this step's critic update.
    for ((&new, &old), &online) in ddpg
        .critic_target()
        .params()
        .iter()
        .zip(before.params())
        .zip(ddpg.critic().params())
    {
        let expected = 0.95f32 * old + 0.05f32 * online;
        assert_eq!(new, expected);
    }
    assert_ne!(ddpg.critic_target(), &before);
}

/// The steps of a run, as bits, with the final parameters.
fn fingerprint(reports: &[StepReport], ddpg: &Ddpg) -> (Vec<u64>, Vec<u32>, Vec<u32>) {
    let steps = reports
        .iter()
        .flat_map(|r| {
            let update = r.update.map_or(0, |u| u.critic_loss.to_bits());
            [r.reward.to_bits(), update]
        })
        .collect();
    let bits = |p: &[f32]| p.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    (
        steps,
        bits(ddpg.actor().params()),
        bits(ddpg.critic_target().params()),
    )
}

#[test]
fn a_restored_checkpoint_continues_bit_for_bit() {
    for target_update in [
        TargetUpdate::HardCopy { every: 3 },
        TargetUpdate::Polyak { tau: 0.01 },
    ] {
        let config = small_pendulum_config(target_update).check().unwrap();
        let (before, after) = (130, 170); // the episode ends at step 200, after the restore

        let mut straight = Ddpg::new(&config, pendulum(), RunSeed(3)).unwrap();
        let mut reports = Vec::new();
        straight
            .run(before + after, |_, r| {
                reports.push(*r);
                Ok(())
            })
            .unwrap();

        let mut first = Ddpg::new(&config, pendulum(), RunSeed(3)).unwrap();
        let mut resumed_reports = Vec::new();
        first
            .run(before, |_, r| {
                resumed_reports.push(*r);
                Ok(())
            })
            .unwrap();
        let path =
            std::env::temp_dir().join(format!("ddpg-checkpoint-{}.json", std::process::id()));
        first.save_json(&path).unwrap();
        drop(first);
        let mut resumed = Ddpg::load_json(&path, pendulum()).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(resumed.steps(), before);
        resumed
            .run(after, |_, r| {
                resumed_reports.push(*r);
                Ok(())
            })
            .unwrap();

        assert_eq!(resumed.episodes(), 1, "the run crossed an episode boundary");
        assert_eq!(
            fingerprint(&reports, &straight),
            fingerprint(&resumed_reports, &resumed)
        );
        assert_eq!(straight.replay(), resumed.replay());
        assert_eq!(straight.noise(), resumed.noise());
        assert_eq!(
            straight.checkpoint().agent.actor_adam.steps(),
            resumed.checkpoint().agent.actor_adam.steps()
        );
        assert_eq!(straight.to_json().unwrap(), resumed.to_json().unwrap());
    }
}

/// At the zoo's sizes ([400, 300], batch 256) large products split over the pool's
/// threads and step 6.6 runs beside the forward passes of 6.7–6.8: one, two and three
/// threads give the same bits.
#[test]
fn one_two_and_three_threads_give_identical_runs() {
    let run = |threads: usize| {
        with_threads(threads, || {
            let config = DdpgConfig {
                buffer_size: 1000,
                learning_starts: 100,
                ..DdpgConfig::zoo_pendulum()
            }
            .check()
            .unwrap();
            let mut ddpg = Ddpg::new(&config, pendulum(), RunSeed(7)).unwrap();
            let mut reports = Vec::new();
            ddpg.run(115, |_, r| {
                reports.push(*r);
                Ok(())
            })
            .unwrap();
            assert_eq!(ddpg.updates(), 15);
            fingerprint(&reports, &ddpg)
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

#[test]
fn a_checkpoint_for_another_setup_is_rejected() {
    let config = small_pendulum_config(TargetUpdate::Polyak { tau: 0.01 })
        .check()
        .unwrap();
    let mut ddpg = Ddpg::new(&config, pendulum(), RunSeed(4)).unwrap();
    ddpg.run(50, |_, _| Ok(())).unwrap();

    let lqr = || -> Box<dyn Env> { Box::new(Lqr::new(LqrParams::scalar()).unwrap()) };
    assert!(matches!(
        Ddpg::from_json(&ddpg.to_json().unwrap(), lqr()),
        Err(Error::InvalidParameter { field, .. }) if field == "checkpoint.env_id"
    ));
    let mut other = ddpg.checkpoint();
    other.config.critic_hidden = vec![32, 16];
    assert!(matches!(
        Ddpg::restore(other, pendulum()),
        Err(Error::InvalidParameter { field, .. }) if field == "checkpoint.agent.critic"
    ));
    let mut other = ddpg.checkpoint();
    other.config.buffer_size = 1000;
    assert!(Ddpg::restore(other, pendulum()).is_err());
    let truncated = &ddpg.to_json().unwrap()[..1000];
    assert!(matches!(
        Ddpg::from_json(truncated, pendulum()),
        Err(Error::Json { .. })
    ));
}

/// After warm-up (which sizes the GEMM scratch and the sample indices), DDPG steps at
/// the rl-baselines3-zoo Pendulum sizes — layers [400, 300], batch 256 — allocate
/// nothing, across updates and an episode reset.
#[test]
fn a_training_step_allocates_nothing() {
    let config = DdpgConfig {
        buffer_size: 1000,
        learning_starts: 370,
        ..DdpgConfig::zoo_pendulum()
    }
    .check()
    .unwrap();
    let mut ddpg = Ddpg::new(&config, pendulum(), RunSeed(5)).unwrap();
    ddpg.run(372, |_, _| Ok(())).unwrap();
    assert!(ddpg.updates() > 0);

    // Inside a pool, as a training loop runs: large products are split over its threads
    // (a call from outside any pool would go through rayon's global injector, which
    // allocates). The counter is per thread: it sees the training thread.
    let (bytes, episode_ended) = with_threads(2, || {
        // One uncounted step sizes this worker's GEMM scratch.
        ddpg.step().unwrap();
        let (episode_ended, allocated) = allocated_by(|| {
            let mut episode_ended = false;
            for _ in 0..40 {
                // `step` itself, not `run`, so that nothing but the step is counted.
                let report = ddpg.step().unwrap();
                episode_ended |= report.episode_end.is_some();
            }
            episode_ended
        });
        (allocated.bytes, episode_ended)
    });
    assert!(episode_ended, "the counted steps include an episode reset");
    assert_eq!(bytes, 0, "bytes allocated by 40 steps");
}

#[test]
fn bad_hyperparameters_are_typed_errors_naming_the_field() {
    let base = DdpgConfig::default;
    let cases = [
        (
            DdpgConfig {
                gamma: -0.1,
                ..base()
            },
            "ddpg.gamma",
        ),
        (
            DdpgConfig {
                gamma: f64::NAN,
                ..base()
            },
            "ddpg.gamma",
        ),
        (
            DdpgConfig {
                buffer_size: 0,
                ..base()
            },
            "ddpg.buffer_size",
        ),
        (
            DdpgConfig {
                batch_size: 0,
                ..base()
            },
            "ddpg.batch_size",
        ),
        (
            DdpgConfig {
                updates_per_step: 0,
                ..base()
            },
            "ddpg.updates_per_step",
        ),
        (
            DdpgConfig {
                actor_hidden: vec![0],
                ..base()
            },
            "ddpg.actor_hidden",
        ),
        (
            DdpgConfig {
                critic_optimizer: AdamConfig::with_lr(0.0),
                ..base()
            },
            "ddpg.critic_optimizer.lr",
        ),
        (
            DdpgConfig {
                actor_optimizer: AdamConfig {
                    beta1: 1.0,
                    ..AdamConfig::default()
                },
                ..base()
            },
            "ddpg.actor_optimizer.beta1",
        ),
        (
            DdpgConfig {
                last_layer_init: Some(-1.0),
                ..base()
            },
            "ddpg.last_layer_init",
        ),
        (
            DdpgConfig {
                noise: NoiseConfig::Gaussian { sigma: -1.0 },
                ..base()
            },
            "ddpg.noise.sigma",
        ),
        (
            DdpgConfig {
                noise: NoiseConfig::OrnsteinUhlenbeck(OrnsteinUhlenbeckParams {
                    theta: -0.15,
                    ..OrnsteinUhlenbeckParams::default()
                }),
                ..base()
            },
            "ddpg.noise.theta",
        ),
        (
            DdpgConfig {
                target_update: TargetUpdate::HardCopy { every: 0 },
                ..base()
            },
            "ddpg.target_update.every",
        ),
        (
            DdpgConfig {
                target_update: TargetUpdate::Polyak { tau: 1.5 },
                ..base()
            },
            "ddpg.target_update.tau",
        ),
        (
            DdpgConfig {
                target_update: TargetUpdate::Polyak { tau: 0.0 },
                ..base()
            },
            "ddpg.target_update.tau",
        ),
    ];
    for (config, expected) in cases {
        match config.check() {
            Err(Error::InvalidParameter { field, .. }) => assert_eq!(field, expected),
            other => panic!("{expected}: expected an invalid-parameter error, got {other:?}"),
        }
    }
    // Every preset is valid.
    for preset in [
        DdpgConfig::default(),
        DdpgConfig::chapter(),
        DdpgConfig::zoo_pendulum(),
    ] {
        preset.check().unwrap();
    }
    // A config file with a misspelled field is rejected, not silently defaulted.
    assert!(serde_json::from_str::<DdpgConfig>(r#"{"gama": 0.9}"#).is_err());
    let partial: DdpgConfig = serde_json::from_str(r#"{"gamma": 0.9}"#).unwrap();
    assert_eq!(
        partial,
        DdpgConfig {
            gamma: 0.9,
            ..DdpgConfig::default()
        }
    );
}

#[test]
fn environments_the_policy_cannot_act_in_are_typed_errors() {
    // Integer actions.
    let config = DdpgConfig::default().check().unwrap();
    assert!(matches!(
        Ddpg::new(&config, env::make("Allocation").unwrap(), RunSeed(0)),
        Err(Error::InvalidParameter { field, .. }) if field == "ddpg.policy_output"
    ));
    // An unbounded box cannot be tanh-scaled, nor sampled uniformly.
    let unbounded = || -> Box<dyn Env> {
        Box::new(
            Lqr::new(LqrParams {
                action_limit: f64::INFINITY,
                ..LqrParams::scalar()
            })
            .unwrap(),
        )
    };
    assert!(matches!(
        Ddpg::new(&config, unbounded(), RunSeed(0)),
        Err(Error::InvalidParameter { field, .. }) if field == "ddpg.policy_output"
    ));
    let linear = DdpgConfig {
        policy_output: PolicyOutput::Linear,
        ..DdpgConfig::default()
    }
    .check()
    .unwrap();
    assert!(matches!(
        Ddpg::new(&linear, unbounded(), RunSeed(0)),
        Err(Error::InvalidParameter { field, .. }) if field == "ddpg.random_actions_before_learning"
    ));
    // The chapter's version needs neither.
    let chapter = DdpgConfig::chapter().check().unwrap();
    Ddpg::new(&chapter, unbounded(), RunSeed(0)).unwrap();
}

#[test]
fn a_diverging_critic_is_a_numerical_error_naming_the_step() {
    // Costs of order 10¹², an absurd learning rate and no target smoothing: the critic's
    // weights overflow f32 within a few updates.
    let params = LqrParams {
        q: nalgebra::DMatrix::from_element(1, 1, 1e12),
        ..LqrParams::scalar()
    };
    let config = DdpgConfig {
        critic_optimizer: AdamConfig::with_lr(1e30),
        actor_hidden: vec![8],
        critic_hidden: vec![8],
        batch_size: 8,
        buffer_size: 100,
        target_update: TargetUpdate::HardCopy { every: 1 },
        ..DdpgConfig::chapter()
    }
    .check()
    .unwrap();
    let mut ddpg = Ddpg::new(&config, Box::new(Lqr::new(params).unwrap()), RunSeed(6)).unwrap();
    let error = (0..200).find_map(|_| ddpg.step().err());
    match error {
        Some(Error::Numerical { context, reason }) => {
            assert_eq!(context, format!("ddpg step {}", ddpg.steps()));
            assert!(
                reason.contains("critic loss") || reason.contains("actor objective"),
                "{reason}"
            );
        }
        other => panic!("expected a numerical error, got {other:?}"),
    }
}

#[test]
fn tanh_scaling_maps_the_unit_box_onto_the_action_box() {
    let space = ActionSpace::Box {
        low: vec![-2.0, 0.0],
        high: vec![2.0, 10.0],
    };
    let map = ActionMap::new(PolicyOutput::TanhScaled, &space, "test").unwrap();
    let mut env_action = [0.0; 2];
    map.to_env(&[-1.0, 1.0], &mut env_action);
    assert_eq!(env_action, [-2.0, 10.0]);
    map.to_env(&[0.0, 0.0], &mut env_action);
    assert_eq!(env_action, [0.0, 5.0]);
    let mut agent = [0.0; 2];
    map.to_agent(&[1.0, 2.5], &mut agent);
    assert_eq!(agent, [0.5, -0.5]);
    let mut out_of_box = [1.5, -3.0];
    map.clip(&mut out_of_box);
    assert_eq!(out_of_box, [1.0, -1.0]);

    let linear = ActionMap::new(PolicyOutput::Linear, &space, "test").unwrap();
    let mut out_of_box = [3.0, -3.0];
    linear.clip(&mut out_of_box);
    assert_eq!(out_of_box, [2.0, 0.0]);
}
