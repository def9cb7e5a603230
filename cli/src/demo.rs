//! `policy-param demo lqr`: the ground truth every later algorithm is checked against,
//! shown on its own. For each named LQR system, the Riccati gain K is scaled by κ and the
//! linear policy a = −κKs is evaluated two ways: exactly (a discounted Lyapunov equation)
//! and by seeded Monte Carlo rollouts of the environment. κ = 1 must be best, and both
//! columns must agree; the table and figure land in the output directory.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context};
use nalgebra::DMatrix;
use plotly::common::{ErrorData, ErrorType, Mode, Title};
use plotly::layout::Axis;
use plotly::{Layout, Plot, Scatter};
use policy_param::env::lqr::{InitialState, Lqr, LqrParams, LqrSystem};
use policy_param::env::Env;
use policy_param::eval::{evaluate, EvalSettings};
use policy_param::rng::RunSeed;

/// Gain scales κ in a = −κKs.
const GAIN_SCALES: &[f64] = &[0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0];
/// Long enough that the discount makes the truncated tail negligible (γ^H < 1e-8 for γ ≤ 0.99).
const EVAL_HORIZON: usize = 2000;

/// One row of `lqr_demo.csv`.
struct Row {
    system: &'static str,
    gain_scale: f64,
    exact_value: f64,
    monte_carlo_value: f64,
    monte_carlo_std_error: f64,
    episodes: usize,
}

pub fn lqr(out: &Path, episodes: usize, seed: u64) -> anyhow::Result<()> {
    if episodes < 2 {
        bail!("--episodes must be at least 2 (a standard error needs two), got {episodes}");
    }
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let systems: [(&'static str, LqrParams); 2] = [
        ("scalar", LqrParams::scalar()),
        ("double_integrator", LqrParams::double_integrator()),
    ];
    let mut rows = Vec::new();
    for (name, mut params) in systems {
        params.horizon = Some(EVAL_HORIZON);
        let lqr = Lqr::new(params.clone())?;
        let gain = lqr.solve()?.gain().clone();
        let system = lqr.system().clone();
        for &kappa in GAIN_SCALES {
            let scaled = &gain * kappa;
            let exact_value = expected_value(&system, &scaled)?;
            let settings = EvalSettings {
                episodes,
                seed: RunSeed(seed),
                gamma: system.gamma(),
                max_steps: EVAL_HORIZON,
            };
            let policy = |obs: &[f32], _: &mut _, action: &mut [f64]| {
                for (i, a) in action.iter_mut().enumerate() {
                    *a = -(0..obs.len())
                        .map(|j| scaled[(i, j)] * f64::from(obs[j]))
                        .sum::<f64>();
                }
                Ok(())
            };
            let make = || -> policy_param::Result<Box<dyn Env>> {
                Ok(Box::new(Lqr::new(params.clone())?))
            };
            let evaluation = evaluate(make, policy, &settings)?;
            let returns: Vec<f64> = evaluation
                .episodes
                .iter()
                .map(|e| e.discounted_return)
                .collect();
            let mean = returns.iter().sum::<f64>() / returns.len() as f64;
            let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>()
                / (returns.len() - 1) as f64;
            rows.push(Row {
                system: name,
                gain_scale: kappa,
                exact_value,
                monte_carlo_value: mean,
                monte_carlo_std_error: (var / returns.len() as f64).sqrt(),
                episodes,
            });
        }
    }
    write_csv(&out.join("lqr_demo.csv"), &rows)?;
    write_figure(&out.join("lqr_demo.html"), &rows)?;
    println!(
        "{:<18} {:>6} {:>14} {:>14} {:>10}",
        "system", "kappa", "exact", "monte_carlo", "std_err"
    );
    for r in &rows {
        println!(
            "{:<18} {:>6.2} {:>14.6} {:>14.6} {:>10.2e}",
            r.system, r.gain_scale, r.exact_value, r.monte_carlo_value, r.monte_carlo_std_error
        );
    }
    println!(
        "wrote {} and {}",
        out.join("lqr_demo.csv").display(),
        out.join("lqr_demo.html").display()
    );
    Ok(())
}

/// E[Σ γᵗ rₜ] under a = −Ks from the initial-state distribution: −E[s₀ᵀ P_K s₀] with
/// P_K = Q + KᵀRK + γ(A − BK)ᵀ P_K (A − BK), found by fixed-point iteration (the demo's
/// systems are noise-free; −∞ when the discounted closed loop is unstable).
fn expected_value(system: &LqrSystem, gain: &DMatrix<f64>) -> anyhow::Result<f64> {
    if system.noise_covariance().is_some() {
        bail!("the exact value here assumes noise-free dynamics");
    }
    let closed = system.a() - system.b() * gain;
    let cost = system.q() + gain.transpose() * system.r() * gain;
    let gamma = system.gamma();
    let mut p = cost.clone();
    for _ in 0..1_000_000 {
        let next = &cost + (closed.transpose() * &p * &closed) * gamma;
        let change = (&next - &p).norm();
        p = next;
        if !p.norm().is_finite() || p.norm() > 1e12 {
            return Ok(f64::NEG_INFINITY);
        }
        if change <= 1e-13 * p.norm() {
            let second_moment = initial_second_moment(system.initial_state())?;
            return Ok(-(p.component_mul(&second_moment)).sum());
        }
    }
    bail!("the policy evaluation equation did not converge")
}

/// E[s₀ s₀ᵀ] for the initial-state distribution.
fn initial_second_moment(initial: &InitialState) -> anyhow::Result<DMatrix<f64>> {
    Ok(match initial {
        InitialState::Uniform { low, high } => {
            let n = low.len();
            let mean: Vec<f64> = low.iter().zip(high).map(|(l, h)| (l + h) / 2.0).collect();
            DMatrix::from_fn(n, n, |i, j| {
                if i == j {
                    (high[i] - low[i]).powi(2) / 12.0 + mean[i] * mean[i]
                } else {
                    mean[i] * mean[j]
                }
            })
        }
        InitialState::Gaussian { mean, covariance } => {
            let m = nalgebra::DVector::from_column_slice(mean);
            covariance + &m * m.transpose()
        }
        InitialState::Fixed(s) => {
            let s = nalgebra::DVector::from_column_slice(s);
            &s * s.transpose()
        }
    })
}

fn write_csv(path: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    w.write_record([
        "system",
        "gain_scale",
        "exact_value",
        "monte_carlo_value",
        "monte_carlo_std_error",
        "episodes",
    ])?;
    for r in rows {
        w.write_record([
            r.system.to_string(),
            r.gain_scale.to_string(),
            r.exact_value.to_string(),
            r.monte_carlo_value.to_string(),
            r.monte_carlo_std_error.to_string(),
            r.episodes.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

fn write_figure(path: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let mut plot = Plot::new();
    for system in ["scalar", "double_integrator"] {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.system == system).collect();
        let x: Vec<f64> = rs.iter().map(|r| r.gain_scale).collect();
        plot.add_trace(
            Scatter::new(x.clone(), rs.iter().map(|r| r.exact_value).collect())
                .mode(Mode::Lines)
                .name(format!("{system}: exact")),
        );
        plot.add_trace(
            Scatter::new(x, rs.iter().map(|r| r.monte_carlo_value).collect())
                .mode(Mode::Markers)
                .error_y(
                    ErrorData::new(ErrorType::Data)
                        .array(rs.iter().map(|r| 1.96 * r.monte_carlo_std_error).collect()),
                )
                .name(format!("{system}: Monte Carlo (95% CI)")),
        );
    }
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(
                "LQR: expected discounted return of a = −κKs (K from Riccati)",
            ))
            .x_axis(Axis::new().title(Title::with_text("gain scale κ")))
            .y_axis(Axis::new().title(Title::with_text("expected discounted return"))),
    );
    fs::write(path, plot.to_html()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
