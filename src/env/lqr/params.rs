//! LQR parameters as a user writes them ([`LqrParams`]), and the checked system
//! ([`LqrSystem`]) that the environment and the Riccati ground truth are built from.
//! Checking happens once, here; nothing downstream re-checks.

use nalgebra::DMatrix;
use rand::{Rng as _, SeedableRng};
use rand_distr::StandardNormal;

use super::linalg::{check_pd, check_psd, check_shape, psd_factor, spectral_radius};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// How the first state of an episode is drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum InitialState {
    /// Each component independently uniform in `[low[i], high[i]]`.
    Uniform { low: Vec<f64>, high: Vec<f64> },
    /// Gaussian `N(mean, covariance)` (the covariance may be singular).
    Gaussian {
        mean: Vec<f64>,
        covariance: DMatrix<f64>,
    },
    /// Always this state.
    Fixed(Vec<f64>),
}

/// An LQR task as written by hand: `s' = A s + B a + w`, `w ~ N(0, Σ)`, reward
/// `-(sᵀQs + aᵀRa)`, discount `γ`. Check it into an [`LqrSystem`] with [`LqrParams::check`].
#[derive(Clone, Debug, PartialEq)]
pub struct LqrParams {
    /// Dynamics, n×n.
    pub a: DMatrix<f64>,
    /// Input matrix, n×m.
    pub b: DMatrix<f64>,
    /// State cost, n×n symmetric positive semidefinite.
    pub q: DMatrix<f64>,
    /// Action cost, m×m symmetric positive definite.
    pub r: DMatrix<f64>,
    /// Discount in (0, 1].
    pub gamma: f64,
    /// Covariance Σ of the additive Gaussian process noise (n×n PSD); `None` for none.
    pub noise_covariance: Option<DMatrix<f64>>,
    pub initial_state: InitialState,
    /// Episode length after which `truncated` is set; `None` for no limit.
    pub horizon: Option<usize>,
    /// The action space reported to algorithms is `[-action_limit, action_limit]^m`
    /// (may be `f64::INFINITY`). It is a search box for maximizers and quadrature, not a
    /// constraint: the dynamics never clip, so the Riccati ground truth stays exact.
    pub action_limit: f64,
}

/// Checked LQR parameters, with the factors used to sample noise and initial states.
#[derive(Clone, Debug, PartialEq)]
pub struct LqrSystem {
    a: DMatrix<f64>,
    b: DMatrix<f64>,
    q: DMatrix<f64>,
    r: DMatrix<f64>,
    gamma: f64,
    noise_covariance: Option<DMatrix<f64>>,
    /// `F` with `F Fᵀ = Σ`.
    noise_factor: Option<DMatrix<f64>>,
    initial_state: InitialState,
    /// `F` with `F Fᵀ` the initial covariance, for [`InitialState::Gaussian`].
    initial_factor: Option<DMatrix<f64>>,
    horizon: Option<usize>,
    action_limit: f64,
}

fn matrix(rows: usize, cols: usize, row_major: &[f64]) -> DMatrix<f64> {
    DMatrix::from_row_slice(rows, cols, row_major)
}

impl LqrParams {
    /// The unstable scalar system `s' = 1.1 s + a`, `r = -(s² + a²)`, `γ = 0.95`,
    /// `s₀ ~ U[-1, 1]`, 200 steps, actions searched in `[-10, 10]`.
    pub fn scalar() -> Self {
        LqrParams {
            a: matrix(1, 1, &[1.1]),
            b: matrix(1, 1, &[1.0]),
            q: matrix(1, 1, &[1.0]),
            r: matrix(1, 1, &[1.0]),
            gamma: 0.95,
            noise_covariance: None,
            initial_state: InitialState::Uniform {
                low: vec![-1.0],
                high: vec![1.0],
            },
            horizon: Some(200),
            action_limit: 10.0,
        }
    }

    /// A double integrator (position, velocity) pushed by a force, sampled with
    /// `dt = 0.1`: `A = [[1, dt], [0, 1]]`, `B = [[dt²/2], [dt]]`, `Q = I`, `R = 0.1`,
    /// `γ = 0.99`, `s₀ ~ U[-1, 1]²`, 200 steps, actions searched in `[-10, 10]`.
    /// This is the default `make("Lqr")` instance.
    pub fn double_integrator() -> Self {
        let dt = 0.1;
        LqrParams {
            a: matrix(2, 2, &[1.0, dt, 0.0, 1.0]),
            b: matrix(2, 1, &[0.5 * dt * dt, dt]),
            q: DMatrix::identity(2, 2),
            r: matrix(1, 1, &[0.1]),
            gamma: 0.99,
            noise_covariance: None,
            initial_state: InitialState::Uniform {
                low: vec![-1.0; 2],
                high: vec![1.0; 2],
            },
            horizon: Some(200),
            action_limit: 10.0,
        }
    }

    /// A random open-loop-stable system with 4 states and 2 actions: `A` Gaussian scaled
    /// to spectral radius 0.9, `B` Gaussian, `Q = I`, `R = I`, `γ = 0.95`, noise
    /// `Σ = 0.01 I`, `s₀ ~ U[-1, 1]⁴`, 200 steps, actions searched in `[-10, 10]`.
    /// The same `seed` always gives the same system.
    pub fn random_stable(seed: u64) -> Self {
        let (n, m) = (4, 2);
        let mut rng = Rng::seed_from_u64(seed);
        let mut gaussian =
            |rows, cols| DMatrix::from_fn(rows, cols, |_, _| rng.sample::<f64, _>(StandardNormal));
        let mut a = gaussian(n, n);
        let b = gaussian(n, m);
        // A Gaussian 4×4 matrix is singular with probability 0, so its radius is positive.
        let radius = spectral_radius("random_stable A", &a)
            .unwrap_or(1.0)
            .max(1e-12);
        a *= 0.9 / radius;
        LqrParams {
            a,
            b,
            q: DMatrix::identity(n, n),
            r: DMatrix::identity(m, m),
            gamma: 0.95,
            noise_covariance: Some(DMatrix::identity(n, n) * 0.01),
            initial_state: InitialState::Uniform {
                low: vec![-1.0; n],
                high: vec![1.0; n],
            },
            horizon: Some(200),
            action_limit: 10.0,
        }
    }

    /// Check every field, naming the first bad one.
    pub fn check(self) -> Result<LqrSystem> {
        let n = self.a.nrows();
        if n == 0 {
            return Err(Error::invalid("a", "must have at least one row"));
        }
        check_shape("a", &self.a, n, n)?;
        let m = self.b.ncols();
        if m == 0 {
            return Err(Error::invalid("b", "must have at least one column"));
        }
        check_shape("b", &self.b, n, m)?;
        check_shape("q", &self.q, n, n)?;
        check_psd("q", &self.q)?;
        check_shape("r", &self.r, m, m)?;
        check_pd("r", &self.r)?;
        if !(self.gamma > 0.0 && self.gamma <= 1.0) {
            return Err(Error::invalid(
                "gamma",
                format!("{} is not in (0, 1]", self.gamma),
            ));
        }
        let noise_factor = match &self.noise_covariance {
            Some(sigma) => {
                check_shape("noise_covariance", sigma, n, n)?;
                Some(psd_factor("noise_covariance", sigma)?)
            }
            None => None,
        };
        let initial_factor = check_initial_state(&self.initial_state, n)?;
        if self.horizon == Some(0) {
            return Err(Error::invalid("horizon", "must be at least 1 step"));
        }
        if self.action_limit.is_nan() || self.action_limit <= 0.0 {
            return Err(Error::invalid(
                "action_limit",
                format!("{} is not positive", self.action_limit),
            ));
        }
        Ok(LqrSystem {
            a: self.a,
            b: self.b,
            q: self.q,
            r: self.r,
            gamma: self.gamma,
            noise_covariance: self.noise_covariance,
            noise_factor,
            initial_state: self.initial_state,
            initial_factor,
            horizon: self.horizon,
            action_limit: self.action_limit,
        })
    }
}

/// Check the initial-state distribution; return the covariance factor of a Gaussian one.
fn check_initial_state(initial: &InitialState, n: usize) -> Result<Option<DMatrix<f64>>> {
    let check_vector = |field: &str, v: &[f64]| -> Result<()> {
        if v.len() != n {
            return Err(Error::invalid(
                field,
                format!("has {} components, the state has {n}", v.len()),
            ));
        }
        if let Some(x) = v.iter().find(|x| !x.is_finite()) {
            return Err(Error::invalid(field, format!("has a non-finite entry {x}")));
        }
        Ok(())
    };
    match initial {
        InitialState::Uniform { low, high } => {
            check_vector("initial_state.low", low)?;
            check_vector("initial_state.high", high)?;
            if let Some(i) = (0..n).find(|&i| low[i] > high[i]) {
                return Err(Error::invalid(
                    "initial_state",
                    format!("low[{i}] = {} exceeds high[{i}] = {}", low[i], high[i]),
                ));
            }
            Ok(None)
        }
        InitialState::Gaussian { mean, covariance } => {
            check_vector("initial_state.mean", mean)?;
            check_shape("initial_state.covariance", covariance, n, n)?;
            Ok(Some(psd_factor("initial_state.covariance", covariance)?))
        }
        InitialState::Fixed(state) => {
            check_vector("initial_state", state)?;
            Ok(None)
        }
    }
}

impl LqrSystem {
    /// Number of state components n.
    pub fn state_dim(&self) -> usize {
        self.a.nrows()
    }
    /// Number of action components m.
    pub fn action_dim(&self) -> usize {
        self.b.ncols()
    }
    pub fn a(&self) -> &DMatrix<f64> {
        &self.a
    }
    pub fn b(&self) -> &DMatrix<f64> {
        &self.b
    }
    pub fn q(&self) -> &DMatrix<f64> {
        &self.q
    }
    pub fn r(&self) -> &DMatrix<f64> {
        &self.r
    }
    pub fn gamma(&self) -> f64 {
        self.gamma
    }
    /// The process-noise covariance Σ, `None` for a deterministic system.
    pub fn noise_covariance(&self) -> Option<&DMatrix<f64>> {
        self.noise_covariance.as_ref()
    }
    /// `F` with `F Fᵀ = Σ`: the noise is `F z` for standard normal `z`.
    pub fn noise_factor(&self) -> Option<&DMatrix<f64>> {
        self.noise_factor.as_ref()
    }
    pub fn initial_state(&self) -> &InitialState {
        &self.initial_state
    }
    pub fn horizon(&self) -> Option<usize> {
        self.horizon
    }
    pub fn action_limit(&self) -> f64 {
        self.action_limit
    }

    /// `tr(P Σ)`, the expected extra cost `E[wᵀ P w]` that noise adds per step (0 without noise).
    pub(crate) fn noise_trace(&self, p: &DMatrix<f64>) -> f64 {
        self.noise_covariance
            .as_ref()
            .map_or(0.0, |sigma| (p * sigma).trace())
    }

    /// Draw an initial state into `state`.
    pub(crate) fn sample_initial_into(
        &self,
        rng: &mut Rng,
        scratch: &mut [f64],
        state: &mut [f64],
    ) {
        match &self.initial_state {
            InitialState::Uniform { low, high } => {
                for (i, s) in state.iter_mut().enumerate() {
                    // `gen_range` rejects empty ranges; a degenerate box is a fixed component.
                    *s = if low[i] < high[i] {
                        rng.gen_range(low[i]..=high[i])
                    } else {
                        low[i]
                    };
                }
            }
            InitialState::Gaussian { mean, .. } => {
                for z in scratch.iter_mut() {
                    *z = rng.sample(StandardNormal);
                }
                if let Some(factor) = &self.initial_factor {
                    super::linalg::mat_vec_into(factor, scratch, state);
                }
                for (s, mu) in state.iter_mut().zip(mean) {
                    *s += mu;
                }
            }
            InitialState::Fixed(fixed) => state.copy_from_slice(fixed),
        }
    }

    /// `sᵀQs + aᵀRa`, the cost whose negative is the reward (lengths checked by the caller).
    pub(crate) fn cost(&self, state: &[f64], action: &[f64]) -> f64 {
        super::linalg::quadratic_form(&self.q, state)
            + super::linalg::quadratic_form(&self.r, action)
    }
}
