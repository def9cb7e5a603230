//! `fitted-q-iteration-amortized` on Pendulum-v1: with a tenth of the base points solved
//! per iteration, the decision rule d(s; w) — a network that acts without any solver —
//! must swing up and balance far better than random torques.
//!
//! Settings of tests/fqi_pendulum.rs (3000 one-step base points from states uniform
//! over the state space, q [4, 64, 64, 1], a grid of 21 torques, 30 iterations), plus
//! the rule [3, 64, 64, 1] with tanh output scaled to ±2, fitted by 100 Adam steps per
//! iteration on the solves of the last 4 iterations (K = 3).

use policy_param::algo::decision_rule::mlp_policy_map;
use policy_param::algo::deterministic_policy::PolicyOutput;
use policy_param::algo::{
    sample_transitions, AdamFit, AdamFitSettings, AmortizedFqi, AmortizedFqiParams, FitLength,
    MlpPolicy, MlpPolicySettings, SolveBudget, UniformBox,
};
use policy_param::env::pendulum::Pendulum;
use policy_param::env::Env;
use policy_param::eval::{evaluate, EvalSettings, Evaluation};
use policy_param::maximize::GridMaximizer;
use policy_param::nn::{AdamConfig, Mlp, MlpConfig};
use policy_param::qfunction::MlpQ;
use policy_param::rng::RunSeed;
use rand::Rng as _;

type PendulumAmortized = AmortizedFqi<MlpQ, GridMaximizer, AdamFit, MlpPolicy>;

fn train() -> (PendulumAmortized, usize) {
    let seed = RunSeed(0);
    let mut env = Pendulum::new();
    let space = env.action_space().clone();
    let states = UniformBox {
        low: vec![-std::f64::consts::PI, -8.0],
        high: vec![std::f64::consts::PI, 8.0],
    };
    let data = sample_transitions(&mut env, &states, None, 3000, seed.child("data", 0)).unwrap();
    let q = Mlp::new(&MlpConfig::new(&[4, 64, 64, 1]), &mut seed.stream("q-init")).unwrap();
    let actor = Mlp::new(
        &MlpConfig::new(&[3, 64, 64, 1]).output(PolicyOutput::TanhScaled.activation()),
        &mut seed.stream("d-init"),
    )
    .unwrap();
    let mut fqi = AmortizedFqi::new(
        &AmortizedFqiParams {
            gamma: 0.97,
            max_iterations: 30,
            tolerance: 1e-6,
            budget: SolveBudget::Fraction(0.1),
            window: Some(3),
            fixed_subset: false,
            delta_actions_per_state: 0,
            seed,
        },
        MlpQ::new(q, 3).unwrap(),
        GridMaximizer::new(space.clone(), 21).unwrap(),
        AdamFit::new(AdamFitSettings {
            epochs: 5,
            batch_size: 128,
            adam: AdamConfig::with_lr(1e-3),
            average_last_epochs: 0,
        })
        .unwrap(),
        MlpPolicy::new(
            actor,
            mlp_policy_map(PolicyOutput::TanhScaled, &space).unwrap(),
            MlpPolicySettings {
                length: FitLength::Steps(100),
                batch_size: 128,
                adam: AdamConfig::with_lr(1e-3),
            },
        )
        .unwrap(),
        data,
    )
    .unwrap();
    let summary = fqi.run(|_| {}).unwrap();
    (fqi, summary.solver_calls)
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

fn rule_evaluation(fqi: &PendulumAmortized) -> Evaluation {
    fqi.rule().policy().evaluate(make_env, &settings()).unwrap()
}

#[test]
fn the_rule_learned_from_a_tenth_of_the_solves_beats_random_actions() {
    let (fqi, solver_calls) = train();
    assert_eq!(solver_calls, 300 * fqi.iteration());
    let rule = rule_evaluation(&fqi);
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
        "rule d(s; w) {:.1} ± {:.1}, random {:.1} ± {:.1}, {} iterations, {solver_calls} solves",
        rule.mean_return(),
        rule.std_return(),
        random.mean_return(),
        random.std_return(),
        fqi.iteration()
    );
    assert!(
        rule.mean_return() > random.mean_return() + 500.0,
        "rule {} vs random {}",
        rule.mean_return(),
        random.mean_return()
    );
}
