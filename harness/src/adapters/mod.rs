//! One adapter per algorithm × environment kind; each file holds its config (with
//! documented defaults) and its [`Experiment`](crate::experiment::Experiment) impl.
//! Register a new one in [`crate::registry::BATCH`].

pub mod allocation_milp;
pub mod amortized_fqi_lqr;
pub mod amortized_fqi_mlp;
pub mod box_task;
pub mod fqi_allocation;
pub mod fqi_lqr;
pub mod fqi_mlp;
pub mod lqr_gain_scale;
mod lqr_setup;
pub mod nfqca;
pub mod relu_milp;
pub mod smooth_fqi_lqr;
mod timings;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// `value` must be finite and ≥ 0.
pub(crate) fn non_negative(key: &str, value: f64) -> Result<(), Invalid> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Invalid::new(
            key,
            format!("{value} is not a finite number ≥ 0"),
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

/// Which pseudocode an `fqi_amortized` cell runs: the amortized one, or FQI-explicit on
/// the same base points, networks and random streams (the reference that solver calls
/// and time are saved against).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FqiMethod {
    /// `fitted-q-iteration-amortized` with `budget` and `window`.
    #[default]
    Amortized,
    /// `fitted-q-iteration-explicit` (`budget` and `window` are ignored).
    Explicit,
}

/// The window K of `fitted-q-iteration-amortized`: the decision rule is fitted on the
/// solver's answers of iterations n − K … n. In a grid file, a number of iterations
/// (`0`, `3`, …; K = 0 keeps only the current iteration's answers, the pseudocode as
/// written) or the string `"inf"` for K = ∞ (every answer ever computed), so that a sweep
/// can list them together: `window = [1, 3, 10, "inf"]`. Tables show K = ∞ as `inf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// K iterations.
    Iterations(usize),
    /// K = ∞.
    Infinite,
}

impl Window {
    /// As the library takes it: `None` is K = ∞.
    pub fn as_option(self) -> Option<usize> {
        match self {
            Window::Iterations(k) => Some(k),
            Window::Infinite => None,
        }
    }
}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Window::Iterations(k) => serializer.serialize_u64(*k as u64),
            Window::Infinite => serializer.serialize_str("inf"),
        }
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Window;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of iterations K ≥ 0 or \"inf\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Window, E> {
                usize::try_from(v)
                    .map(Window::Iterations)
                    .map_err(|_| E::custom(format!("window {v} is too large")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Window, E> {
                if v < 0 {
                    Err(E::custom(format!(
                        "window {v} is negative: give K ≥ 0 iterations, or \"inf\" for K = ∞"
                    )))
                } else {
                    self.visit_u64(v as u64)
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Window, E> {
                if v == "inf" {
                    Ok(Window::Infinite)
                } else {
                    Err(E::custom(format!(
                        "window {v:?} is neither a number of iterations nor \"inf\""
                    )))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A solver budget must be a fraction in [0, 1].
pub(crate) fn fraction(key: &str, value: f64) -> Result<(), Invalid> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Invalid::new(key, format!("{value} is not in [0, 1]")))
    }
}

/// CPU time consumed so far by the calling thread, in seconds (`CLOCK_THREAD_CPUTIME_ID`);
/// `None` where that clock is not available. A cell runs inside a rayon pool of one
/// thread by default, so the thread that runs the adapter does all of the cell's work and
/// differences of this clock measure it, undisturbed by other jobs that share the cores
/// (unlike wall time). With more threads per cell it sees the calling thread's share only.
#[cfg(unix)]
pub(crate) fn thread_cpu_seconds() -> Option<f64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` only writes the `timespec` it is given, which lives here.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (rc == 0).then_some(now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9)
}

/// CPU time of the calling thread: not available on this platform.
#[cfg(not(unix))]
pub(crate) fn thread_cpu_seconds() -> Option<f64> {
    None
}
