//! One adapter per algorithm × environment kind; each file holds its config (with
//! documented defaults) and its [`Experiment`](crate::experiment::Experiment) impl.
//! Register a new one in [`crate::experiment::REGISTRY`].

pub mod allocation_milp;
pub mod ddpg_pendulum;
pub mod fqi_lqr;
pub mod fqi_pendulum;
pub mod lqr_gain_scale;
pub mod sac_pendulum;

use serde::{Deserialize, Serialize};

use crate::error::Invalid;

/// The named LQR systems of [`policy_param::env::lqr::LqrParams`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LqrSystemName {
    /// `s' = 1.1 s + a`, `r = −(s² + a²)`, γ = 0.95.
    #[default]
    Scalar,
    /// Position and velocity pushed by a force, dt = 0.1, γ = 0.99.
    DoubleIntegrator,
}

impl LqrSystemName {
    pub fn params(self) -> policy_param::env::lqr::LqrParams {
        use policy_param::env::lqr::LqrParams;
        match self {
            LqrSystemName::Scalar => LqrParams::scalar(),
            LqrSystemName::DoubleIntegrator => LqrParams::double_integrator(),
        }
    }
}

/// `value` must be finite and > 0.
pub(crate) fn positive(key: &str, value: f64) -> Result<(), Invalid> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Invalid::new(
            key,
            format!("{value} is not a positive finite number"),
        ))
    }
}

/// `value` must be at least `min`.
pub(crate) fn at_least(key: &str, value: usize, min: usize) -> Result<(), Invalid> {
    if value >= min {
        Ok(())
    } else {
        Err(Invalid::new(key, format!("{value} is less than {min}")))
    }
}

/// `value` must be in (0, 1].
pub(crate) fn discount(key: &str, value: f64) -> Result<(), Invalid> {
    if value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(Invalid::new(key, format!("{value} is not in (0, 1]")))
    }
}
