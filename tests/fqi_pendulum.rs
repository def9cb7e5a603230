//! `fitted-q-iteration-explicit` on Pendulum-v1 with a q-network: the greedy policy of
//! the fitted q must swing up and balance far better than acting at random.
//!
//! Base points are one-step transitions from states drawn uniformly over the whole state
//! space (θ ∈ [−π, π], θ̇ ∈ [−8, 8]) with uniformly random torques; `maximize` is a
//! grid of 21 torques. Small settings, so the test runs in seconds.

use policy_param::algo::{
    sample_transitions, AdamFit, AdamFitSettings, FittedQIteration, FqiParams, UniformBox,
};
use policy_param::env::pendulum::Pendulum;
use policy_param::env::Env;
use policy_param::eval::{evaluate, evaluate_with, EvalSettings, Evaluation};
use policy_param::maximize::GridMaximizer;
use policy_param::nn::{AdamConfig, Mlp, MlpConfig};
use policy_param::qfunction::MlpQ;
use policy_param::rng::RunSeed;
use rand::Rng as _;

type PendulumFqi = FittedQIteration<MlpQ, GridMaximizer, AdamFit>;

fn train() -> PendulumFqi {
    let seed = RunSeed(0);
    let mut env = Pendulum::new();
    let states = UniformBox {
        low: vec![-std::f64::consts::PI, -8.0],
        high: vec![std::f64::consts::PI, 8.0],
    };
    let data = sample_transitions(&mut env, &states, None, 3000, seed.child("data", 0)).unwrap();
    let network = Mlp::new(&MlpConfig::new(&[4, 64, 64, 1]), &mut seed.stream("q-init")).unwrap();
    let mut fqi = FittedQIteration::new(
        &FqiParams {
            gamma: 0.97,
            max_iterations: 30,
            tolerance: 1e-6,
            delta_actions_per_state: 2,
            seed,
        },
        MlpQ::new(network, 3).unwrap(),
        GridMaximizer::new(env.action_space().clone(), 21).unwrap(),
        AdamFit::new(AdamFitSettings {
            epochs: 5,
            batch_size: 128,
            adam: AdamConfig::with_lr(1e-3),
            average_last_epochs: 0,
        })
        .unwrap(),
        data,
    )
    .unwrap();
    fqi.run(|_| {}).unwrap();
    fqi
}

fn settings() -> EvalSettings {
    EvalSettings {
        episodes: 10,
        seed: RunSeed(77),
        gamma: 1.0,
        max_steps: 200,
    }
}

fn make_env() -> policy_param::Result<Box<dyn Env>> {
    Ok(Box::new(Pendulum::new()))
}

fn greedy_evaluation(fqi: &PendulumFqi) -> Evaluation {
    let policy = fqi.greedy_policy();
    evaluate_with(
        make_env,
        || policy.workspace(),
        |ws, obs, rng, action| policy.greedy_action(ws, obs, rng, action),
        &settings(),
    )
    .unwrap()
}

#[test]
fn greedy_policy_beats_random_actions_and_runs_are_deterministic() {
    let fqi = train();
    let greedy = greedy_evaluation(&fqi);
    let random = evaluate(
        make_env,
        |_, rng, action| {
            action[0] = rng.gen_range(-2.0..2.0);
            Ok(())
        },
        &settings(),
    )
    .unwrap();
    eprintln!(
        "greedy {:.1} ± {:.1}, random {:.1} ± {:.1}",
        greedy.mean_return(),
        greedy.std_return(),
        random.mean_return(),
        random.std_return()
    );
    // Random torques average about −1200 per episode; swinging up from the bottom and
    // balancing costs a few hundred at most.
    assert!(
        greedy.mean_return() > random.mean_return() + 500.0,
        "greedy {} vs random {}",
        greedy.mean_return(),
        random.mean_return()
    );
    assert!(
        greedy
            .episodes
            .iter()
            .all(|e| e.undiscounted_return > -600.0),
        "an episode failed to swing up: {:?}",
        greedy.episodes
    );

    // The same seed gives the same network and the same evaluation, bit for bit.
    let again = train();
    assert_eq!(fqi.q().network().params(), again.q().network().params());
    assert_eq!(greedy, greedy_evaluation(&again));
}
