//! Function approximators q(s, a; θ) that FQI fits and the maximizers of
//! [`crate::maximize`] search: linear in the parameters (f64, exact least-squares fits,
//! LQR ground truth) here; neural networks in their own module.

pub mod features;
pub mod linear;
