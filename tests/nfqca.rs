//! NFQCA against the Riccati solution of a scalar LQR task.
//!
//! On `s' = 1.1 s + a`, reward `−(s² + a²)`, γ = 0.95, the optimal policy is linear,
//! `a = −K s` with K from the discounted Riccati equation. NFQCA, given a fixed batch of
//! uniformly drawn transitions, must learn a policy network whose least-squares slope on
//! a grid of states is within 5% of −K on each of five seeds.

use policy_param::algo::nfqca::{Nfqca, NfqcaConfig, NfqcaReport};
use policy_param::env::lqr::{Lqr, LqrParams};
use policy_param::env::Env;
use policy_param::nn::{Activation, AdamConfig};
use policy_param::replay::{Transition, Transitions};
use policy_param::rng::RunSeed;
use policy_param::Error;
use rand::Rng as _;

/// `n` transitions from states uniform in [−2, 2] and actions uniform in [−3, 3], kept
/// only when the next state is in [−2, 2] too: the targets then never ask the critic
/// about states outside the data.
fn uniform_transitions(env: &mut Lqr, n: usize, seed: u64) -> Transitions {
    let mut rng = RunSeed(seed).stream("nfqca-test-data");
    let mut table = Transitions::new(1, 1).unwrap();
    let mut next = [0.0f32];
    while table.len() < n {
        let s: f64 = rng.gen_range(-2.0..2.0);
        let a: f64 = rng.gen_range(-3.0..3.0);
        env.set_state(&[s], 0).unwrap();
        let out = env.step_into(&[a], &mut next).unwrap();
        if next[0].abs() > 2.0 {
            continue;
        }
        table
            .push(Transition {
                observation: &[s as f32],
                action: &[a as f32],
                reward: out.reward as f32,
                next_observation: &next,
                terminal: out.terminated,
            })
            .unwrap();
    }
    table
}

/// Least-squares slope of `policy(s)` over a grid of states in [−1, 1].
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
    // a ≈ −K s.
    -sxy / sxx
}

fn config(gamma: f64) -> NfqcaConfig {
    NfqcaConfig {
        gamma,
        batch_size: 64,
        fit_epochs: 10,
        policy_epochs: 2,
        critic_hidden: vec![64, 64],
        actor_hidden: vec![32],
        hidden_activation: Activation::Tanh,
        critic_optimizer: AdamConfig::with_lr(3e-3),
        actor_optimizer: AdamConfig::with_lr(1e-3),
        ..NfqcaConfig::default()
    }
}

fn gain_of(nfqca: &Nfqca) -> f64 {
    let policy = nfqca.policy();
    let mut ws = policy.workspace();
    fitted_gain(|s| {
        let mut a = [0.0];
        policy.act(&mut ws, &[s], &mut a).unwrap();
        a[0]
    })
}

/// One run: 2000 transitions from data seed `seed + 1`, 30 iterations from `RunSeed(seed)`;
/// returns the initial and final gains, the Riccati gain and the reports.
fn run_on_scalar_lqr(seed: u64) -> (f64, f64, f64, Vec<NfqcaReport>) {
    let mut env = Lqr::new(LqrParams::scalar()).unwrap();
    let optimal = env.solve().unwrap().gain()[(0, 0)];
    let base = uniform_transitions(&mut env, 2000, seed + 1);
    let config = config(env.system().gamma()).check().unwrap();
    let mut nfqca = Nfqca::new(&config, &base, env.action_space(), RunSeed(seed)).unwrap();
    let initial = gain_of(&nfqca);
    let mut reports = Vec::new();
    nfqca
        .run(30, |_, report| {
            reports.push(*report);
            Ok(())
        })
        .unwrap();
    (initial, gain_of(&nfqca), optimal, reports)
}

/// Five seeds (data and initialization), run side by side. Tolerances from the measured
/// spread: at 30 iterations `experiments/nfqca.toml` gives 1.6% ± 0.5% (worst seed 2.1%)
/// and these five seeds 1.0–1.9% (mean 1.5%); every seed must be within 5% and their mean
/// within 2.5%.
#[test]
fn nfqca_recovers_the_lqr_gain_on_five_seeds() {
    let runs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..5u64)
            .map(|seed| scope.spawn(move || run_on_scalar_lqr(seed)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut errors = Vec::new();
    for (seed, (initial, gain, optimal, reports)) in runs.iter().enumerate() {
        // The initial policy is nowhere near the optimum, so the test measures learning.
        assert!(
            (initial / optimal - 1.0).abs() > 0.5,
            "seed {seed}: initial gain {initial}"
        );
        let error = (gain / optimal - 1.0).abs();
        assert!(
            error < 0.05,
            "seed {seed}: learned gain {gain}, Riccati gain {optimal}"
        );
        errors.push(error);
        assert_eq!(reports.len(), 30);
        assert_eq!(reports[29].iteration, 30);
        // The fit converges: the last Bellman residuals are far below the first.
        assert!(
            reports[29].critic_loss < 0.1 * reports[0].critic_loss,
            "seed {seed}: {reports:?}"
        );
    }
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    assert!(mean < 0.025, "gain errors {errors:?}");
}

#[test]
fn same_seed_same_run_different_seed_different_run() {
    let mut env = Lqr::new(LqrParams::scalar()).unwrap();
    let base = uniform_transitions(&mut env, 300, 2);
    let config = NfqcaConfig {
        fit_epochs: 2,
        policy_epochs: 1,
        ..config(0.95)
    }
    .check()
    .unwrap();
    let run = |seed| {
        let mut nfqca = Nfqca::new(&config, &base, env.action_space(), RunSeed(seed)).unwrap();
        nfqca.run(3, |_, _| Ok(())).unwrap();
        nfqca.actor().params().to_vec()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn bad_hyperparameters_and_inputs_are_typed_errors() {
    let cases = [
        (
            NfqcaConfig {
                gamma: 1.5,
                ..NfqcaConfig::default()
            },
            "nfqca.gamma",
        ),
        (
            NfqcaConfig {
                batch_size: 0,
                ..NfqcaConfig::default()
            },
            "nfqca.batch_size",
        ),
        (
            NfqcaConfig {
                fit_epochs: 0,
                ..NfqcaConfig::default()
            },
            "nfqca.fit_epochs",
        ),
        (
            NfqcaConfig {
                policy_epochs: 0,
                ..NfqcaConfig::default()
            },
            "nfqca.policy_epochs",
        ),
        (
            NfqcaConfig {
                critic_hidden: vec![64, 0],
                ..NfqcaConfig::default()
            },
            "nfqca.critic_hidden",
        ),
        (
            NfqcaConfig {
                actor_optimizer: AdamConfig::with_lr(-1.0),
                ..NfqcaConfig::default()
            },
            "nfqca.actor_optimizer.lr",
        ),
        (
            NfqcaConfig {
                last_layer_init: Some(0.0),
                ..NfqcaConfig::default()
            },
            "nfqca.last_layer_init",
        ),
    ];
    for (config, expected) in cases {
        match config.check() {
            Err(Error::InvalidParameter { field, .. }) => assert_eq!(field, expected),
            other => panic!("{expected}: expected an invalid-parameter error, got {other:?}"),
        }
    }

    let env = Lqr::new(LqrParams::scalar()).unwrap();
    let config = NfqcaConfig::default().check().unwrap();
    let empty = Transitions::new(1, 1).unwrap();
    assert!(matches!(
        Nfqca::new(&config, &empty, env.action_space(), RunSeed(0)),
        Err(Error::InvalidParameter { .. })
    ));
    let two_actions = Transitions::new(1, 2).unwrap();
    assert!(Nfqca::new(&config, &two_actions, env.action_space(), RunSeed(0)).is_err());
}
