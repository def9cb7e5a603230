//! Fitted Q-iteration with amortized optimization (`fitted-q-iteration-amortized`) next
//! to FQI-explicit (`fitted-q-iteration-explicit`), on two tasks:
//!
//! - **LQR** (scalar `s' = 1.1s + a` and the double integrator): quadratic q fitted by
//!   least squares, `maximize` by multi-start L-BFGS (argmin), decision rule
//!   d(s; W, b) = W s + b fitted by least squares. Reported: the relative error of the
//!   gains (greedy policy of q, and the rule −W) against Riccati's.
//! - **Pendulum-v1**: q-network on `[cos θ, sin θ, θ̇, a]` (Adam), `maximize` by a grid of
//!   torques, decision rule an MLP with tanh output scaled to ±2 (Adam regression on 𝒟_d).
//!   Reported: mean return over 20 episodes of the greedy policy of q ('return q', which
//!   still calls the solver at every decision) and of the rule ('return d', solver-free).
//!
//! For every budget and window K: iterations, solver calls, time inside `maximize` and
//! wall time, and the savings against FQI-explicit run on the same base points and seed.
//!
//! ```text
//! cargo run --release --example amortized_fqi [-- key=value ...]
//! ```
//! Keys (defaults in brackets): task [both] (lqr, pendulum, both),
//! budgets [1,0.5,0.1,0.02,0], windows [0,3,inf], seed [0];
//! LQR: lqr_points [400], lqr_iterations [200], lqr_tolerance [1e-12];
//! Pendulum: points [10000], iterations [40], width [64], epochs [4], policy_fit [steps:200]
//! (minibatch steps per iteration, or epochs:E passes over 𝒟_d),
//! grid [21], pendulum_budgets [1,0.1,0.02,0], pendulum_windows [3,inf].

use std::time::Instant;

use nalgebra::DMatrix;
use policy_param::algo::decision_rule::mlp_policy_map;
use policy_param::algo::deterministic_policy::PolicyOutput;
use policy_param::algo::{
    sample_transitions, AdamFit, AdamFitSettings, AmortizedFqi, AmortizedFqiParams, FitLength,
    FittedQIteration, FqiParams, LeastSquares, LinearPolicy, LinearPolicySettings, MlpPolicy,
    MlpPolicySettings, SolveBudget, Transitions, UniformBox,
};
use policy_param::env::lqr::{Lqr, LqrParams};
use policy_param::env::pendulum::Pendulum;
use policy_param::env::{ActionSpace, Env};
use policy_param::eval::{evaluate_with, EvalSettings};
use policy_param::maximize::{GridMaximizer, LbfgsSettings, ProjectedLbfgs};
use policy_param::nn::{AdamConfig, Mlp, MlpConfig};
use policy_param::qfunction::linear::{LinearQ, QuadraticFeatures};
use policy_param::qfunction::MlpQ;
use policy_param::rng::RunSeed;
use policy_param::{Error, Result};

struct Settings {
    task: String,
    budgets: Vec<f64>,
    windows: Vec<Option<usize>>,
    seed: u64,
    lqr_points: usize,
    lqr_iterations: usize,
    lqr_tolerance: f64,
    points: usize,
    iterations: usize,
    width: usize,
    epochs: usize,
    policy_length: FitLength,
    grid: usize,
    pendulum_budgets: Vec<f64>,
    pendulum_windows: Vec<Option<usize>>,
}

fn list<T>(value: &str, parse: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    value.split(',').map(|v| parse(v.trim())).collect()
}

fn window(v: &str) -> Option<Option<usize>> {
    if v == "inf" {
        Some(None)
    } else {
        v.parse().ok().map(Some)
    }
}

fn parse() -> Result<Settings> {
    let mut s = Settings {
        task: "both".into(),
        budgets: vec![1.0, 0.5, 0.1, 0.02, 0.0],
        windows: vec![Some(0), Some(3), None],
        seed: 0,
        lqr_points: 400,
        lqr_iterations: 200,
        lqr_tolerance: 1e-12,
        points: 10_000,
        iterations: 40,
        width: 64,
        epochs: 4,
        policy_length: FitLength::Steps(200),
        grid: 21,
        pendulum_budgets: vec![1.0, 0.1, 0.02, 0.0],
        pendulum_windows: vec![Some(3), None],
    };
    for arg in std::env::args().skip(1) {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| Error::invalid("argument", format!("{arg:?} is not key=value")))?;
        let bad = || Error::invalid(key, format!("cannot parse {value:?}"));
        let f64s = |v: &str| list(v, |x| x.parse().ok()).ok_or_else(bad);
        match key {
            "task" => s.task = value.into(),
            "budgets" => s.budgets = f64s(value)?,
            "windows" => s.windows = list(value, window).ok_or_else(bad)?,
            "seed" => s.seed = value.parse().map_err(|_| bad())?,
            "lqr_points" => s.lqr_points = value.parse().map_err(|_| bad())?,
            "lqr_iterations" => s.lqr_iterations = value.parse().map_err(|_| bad())?,
            "lqr_tolerance" => s.lqr_tolerance = value.parse().map_err(|_| bad())?,
            "points" => s.points = value.parse().map_err(|_| bad())?,
            "iterations" => s.iterations = value.parse().map_err(|_| bad())?,
            "width" => s.width = value.parse().map_err(|_| bad())?,
            "epochs" => s.epochs = value.parse().map_err(|_| bad())?,
            "policy_fit" => {
                s.policy_length = match value.split_once(':') {
                    Some(("epochs", e)) => FitLength::Epochs(e.parse().map_err(|_| bad())?),
                    Some(("steps", k)) => FitLength::Steps(k.parse().map_err(|_| bad())?),
                    _ => return Err(bad()),
                }
            }
            "grid" => s.grid = value.parse().map_err(|_| bad())?,
            "pendulum_budgets" => s.pendulum_budgets = f64s(value)?,
            "pendulum_windows" => s.pendulum_windows = list(value, window).ok_or_else(bad)?,
            _ => return Err(Error::invalid(key, "unknown setting")),
        }
    }
    Ok(s)
}

fn show_window(window: Option<usize>) -> String {
    window.map_or("∞".into(), |k| k.to_string())
}

/// The gain of the greedy policy of a quadratic q: `M_aa⁻¹ M_as`.
fn greedy_gain(q: &LinearQ<QuadraticFeatures>, n: usize, m: usize) -> DMatrix<f64> {
    let form = q.quadratic_form();
    let m_aa = form.matrix.view((n, n), (m, m)).into_owned();
    let m_as = form.matrix.view((n, 0), (m, n)).into_owned();
    m_aa.lu()
        .solve(&m_as)
        .unwrap_or_else(|| DMatrix::from_element(m, n, f64::NAN))
}

fn relative(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    (a - b).norm() / b.norm()
}

fn lbfgs(space: &ActionSpace) -> Result<ProjectedLbfgs> {
    ProjectedLbfgs::new(
        space.clone(),
        LbfgsSettings {
            starts: 2,
            candidates: 8,
            ..LbfgsSettings::default()
        },
    )
}

fn lqr(s: &Settings, name: &str, params: LqrParams, bound: f64) -> Result<()> {
    let mut env = Lqr::new(params)?;
    let riccati = env.solve()?;
    let (n, m) = (env.system().state_dim(), env.system().action_dim());
    let uniform = |dim| UniformBox {
        low: vec![-bound; dim],
        high: vec![bound; dim],
    };
    let seed = RunSeed(s.seed);
    let data = sample_transitions(
        &mut env,
        &uniform(n),
        Some(&uniform(m)),
        s.lqr_points,
        seed.child("data", 0),
    )?;
    let gamma = env.system().gamma();

    let start = Instant::now();
    let mut explicit = FittedQIteration::new(
        &FqiParams {
            gamma,
            max_iterations: s.lqr_iterations,
            tolerance: s.lqr_tolerance,
            delta_actions_per_state: 0,
            seed,
        },
        LinearQ::zeros(QuadraticFeatures::new(n, m)?),
        lbfgs(env.action_space())?,
        LeastSquares::default(),
        data.clone(),
    )?;
    let mut explicit_calls = 0;
    let mut explicit_solve = 0.0;
    let summary = explicit.run(|r| {
        explicit_calls += r.maximize_calls;
        explicit_solve += r.target_time.as_secs_f64();
    })?;
    let explicit_wall = start.elapsed().as_secs_f64();
    let explicit_error = relative(&greedy_gain(explicit.q(), n, m), riccati.gain());
    println!(
        "\nLQR {name}: {} base points, γ = {gamma}, Riccati gain {:.6}, L-BFGS maximize, \
         tolerance {:.0e}, at most {} iterations",
        s.lqr_points,
        riccati.gain(),
        s.lqr_tolerance,
        s.lqr_iterations
    );
    println!(
        "{:>9} {:>3} {:>5} {:>5} {:>12} {:>12} {:>9} {:>9} {:>8} {:>8} {:>8}",
        "budget",
        "K",
        "iters",
        "conv",
        "gain err q",
        "gain err d",
        "solves",
        "saved",
        "solve s",
        "wall s",
        "wall/ex"
    );
    println!(
        "{:>9} {:>3} {:>5} {:>5} {:>12.3e} {:>12} {:>9} {:>9} {:>8.3} {:>8.3} {:>8.2}",
        "explicit",
        "-",
        summary.iterations,
        summary.converged,
        explicit_error,
        "-",
        explicit_calls,
        "-",
        explicit_solve,
        explicit_wall,
        1.0
    );
    for &budget in &s.budgets {
        for &window in &s.windows {
            let start = Instant::now();
            let mut fqi = AmortizedFqi::new(
                &AmortizedFqiParams {
                    gamma,
                    max_iterations: s.lqr_iterations,
                    tolerance: s.lqr_tolerance,
                    budget: SolveBudget::Fraction(budget),
                    window,
                    fixed_subset: false,
                    delta_actions_per_state: 0,
                    seed,
                },
                LinearQ::zeros(QuadraticFeatures::new(n, m)?),
                lbfgs(env.action_space())?,
                LeastSquares::default(),
                LinearPolicy::zeros(n, env.action_space(), LinearPolicySettings::default())?,
                data.clone(),
            )?;
            let summary = match fqi.run(|_| {}) {
                Ok(summary) => summary,
                Err(error) => {
                    println!("{budget:>9} {:>3} failed: {error}", show_window(window));
                    continue;
                }
            };
            let wall = start.elapsed().as_secs_f64();
            let greedy = relative(&greedy_gain(fqi.q(), n, m), riccati.gain());
            let rule = relative(&(-fqi.rule().weights()), riccati.gain());
            println!(
                "{:>9} {:>3} {:>5} {:>5} {:>12.3e} {:>12.3e} {:>9} {:>8.1}% {:>8.3} {:>8.3} {:>8.2}",
                budget,
                show_window(window),
                summary.iterations,
                summary.converged,
                greedy,
                rule,
                summary.solver_calls,
                100.0 * (1.0 - summary.solver_calls as f64 / explicit_calls as f64),
                summary.solve_time.as_secs_f64(),
                wall,
                wall / explicit_wall
            );
        }
    }
    Ok(())
}

fn pendulum_data(s: &Settings) -> Result<Transitions> {
    let mut env = Pendulum::new();
    let states = UniformBox {
        low: vec![-std::f64::consts::PI, -8.0],
        high: vec![std::f64::consts::PI, 8.0],
    };
    sample_transitions(
        &mut env,
        &states,
        None,
        s.points,
        RunSeed(s.seed).child("data", 0),
    )
}

fn q_network(s: &Settings) -> Result<MlpQ> {
    let network = Mlp::new(
        &MlpConfig::new(&[4, s.width, s.width, 1]),
        &mut RunSeed(s.seed).stream("q-init"),
    )?;
    MlpQ::new(network, 3)
}

fn q_fit(s: &Settings) -> Result<AdamFit> {
    AdamFit::new(AdamFitSettings {
        epochs: s.epochs,
        batch_size: 256,
        adam: AdamConfig::with_lr(1e-3),
        average_last_epochs: 0,
    })
}

fn pendulum(s: &Settings) -> Result<()> {
    let env = Pendulum::new();
    let space = env.action_space().clone();
    let data = pendulum_data(s)?;
    let seed = RunSeed(s.seed);
    let gamma = 0.97;
    let evaluation = EvalSettings {
        episodes: 20,
        seed: RunSeed(1_000 + s.seed),
        gamma: 1.0,
        max_steps: 200,
    };
    let make_env = || Ok(Box::new(Pendulum::new()) as Box<dyn Env>);

    let start = Instant::now();
    let mut explicit = FittedQIteration::new(
        &FqiParams {
            gamma,
            max_iterations: s.iterations,
            tolerance: 1e-6,
            delta_actions_per_state: 0,
            seed,
        },
        q_network(s)?,
        GridMaximizer::new(space.clone(), s.grid)?,
        q_fit(s)?,
        data.clone(),
    )?;
    let mut explicit_calls = 0;
    let mut explicit_solve = 0.0;
    let summary = explicit.run(|r| {
        explicit_calls += r.maximize_calls;
        explicit_solve += r.target_time.as_secs_f64();
    })?;
    let explicit_wall = start.elapsed().as_secs_f64();
    let policy = explicit.greedy_policy();
    let greedy = evaluate_with(
        make_env,
        || policy.workspace(),
        |ws, obs, rng, action| policy.greedy_action(ws, obs, rng, action),
        &evaluation,
    )?;
    println!(
        "\nPendulum-v1: {} base points, γ = {gamma}, q [4, {w}, {w}, 1], grid of {} torques, \
         rule [3, {w}, {w}, 1] tanh·2, {} iterations at most, {} rayon threads",
        s.points,
        s.grid,
        s.iterations,
        rayon::current_num_threads(),
        w = s.width
    );
    println!(
        "{:>9} {:>3} {:>5} {:>16} {:>16} {:>9} {:>9} {:>8} {:>8} {:>8}",
        "budget",
        "K",
        "iters",
        "return q",
        "return d",
        "solves",
        "saved",
        "solve s",
        "wall s",
        "wall/ex"
    );
    println!(
        "{:>9} {:>3} {:>5} {:>9.1} ± {:>5.1} {:>16} {:>9} {:>9} {:>8.2} {:>8.2} {:>8.2}",
        "explicit",
        "-",
        summary.iterations,
        greedy.mean_return(),
        greedy.std_return(),
        "-",
        explicit_calls,
        "-",
        explicit_solve,
        explicit_wall,
        1.0
    );
    for &budget in &s.pendulum_budgets {
        for &window in &s.pendulum_windows {
            let start = Instant::now();
            let actor = Mlp::new(
                &MlpConfig::new(&[3, s.width, s.width, 1])
                    .output(PolicyOutput::TanhScaled.activation()),
                &mut seed.stream("d-init"),
            )?;
            let rule = MlpPolicy::new(
                actor,
                mlp_policy_map(PolicyOutput::TanhScaled, &space)?,
                MlpPolicySettings {
                    length: s.policy_length,
                    batch_size: 256,
                    adam: AdamConfig::with_lr(1e-3),
                },
            )?;
            let mut fqi = AmortizedFqi::new(
                &AmortizedFqiParams {
                    gamma,
                    max_iterations: s.iterations,
                    tolerance: 1e-6,
                    budget: SolveBudget::Fraction(budget),
                    window,
                    fixed_subset: false,
                    delta_actions_per_state: 0,
                    seed,
                },
                q_network(s)?,
                GridMaximizer::new(space.clone(), s.grid)?,
                q_fit(s)?,
                rule,
                data.clone(),
            )?;
            let summary = match fqi.run(|_| {}) {
                Ok(summary) => summary,
                Err(error) => {
                    println!("{budget:>9} {:>3} failed: {error}", show_window(window));
                    continue;
                }
            };
            let wall = start.elapsed().as_secs_f64();
            let policy = fqi.greedy_policy();
            let greedy = evaluate_with(
                make_env,
                || policy.workspace(),
                |ws, obs, rng, action| policy.greedy_action(ws, obs, rng, action),
                &evaluation,
            )?;
            let rule = fqi.rule().policy().evaluate(make_env, &evaluation)?;
            println!(
                "{:>9} {:>3} {:>5} {:>9.1} ± {:>5.1} {:>9.1} ± {:>5.1} {:>9} {:>8.1}% {:>8.2} {:>8.2} {:>8.2}",
                budget,
                show_window(window),
                summary.iterations,
                greedy.mean_return(),
                greedy.std_return(),
                rule.mean_return(),
                rule.std_return(),
                summary.solver_calls,
                100.0 * (1.0 - summary.solver_calls as f64 / explicit_calls as f64),
                summary.solve_time.as_secs_f64(),
                wall,
                wall / explicit_wall
            );
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let s = parse()?;
    println!(
        "fitted-q-iteration-amortized vs fitted-q-iteration-explicit, seed {}, {} rayon threads. \
         'solve s' is time inside maximize summed over threads (explicit: its target step); \
         'saved' is the share of FQI-explicit's solver calls avoided.",
        s.seed,
        rayon::current_num_threads()
    );
    if s.task == "lqr" || s.task == "both" {
        lqr(&s, "scalar", LqrParams::scalar(), 2.0)?;
        lqr(&s, "double integrator", LqrParams::double_integrator(), 1.0)?;
    }
    if s.task == "pendulum" || s.task == "both" {
        pendulum(&s)?;
    }
    Ok(())
}
