//! What the LQR adapters share: the `maximize` choice, the base points with Riccati's
//! solution, and the greedy gain and value matrix of a fitted quadratic q.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use policy_param::algo::{sample_transitions, Transitions, UniformBox};
use policy_param::env::lqr::{Lqr, RiccatiSolution};
use policy_param::qfunction::linear::{LinearQ, QuadraticFeatures};
use policy_param::rng::RunSeed;

use super::LqrSystemName;
use crate::error::CellError;

/// How `maximize` is done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LqrMaximizer {
    /// Exact argmax of the concave quadratic q(s', ·) in the action box.
    #[default]
    Quadratic,
    /// Multi-start projected L-BFGS (argmin) with the precise tolerances.
    Lbfgs,
}

pub(crate) fn relative(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    (a - b).norm() / b.norm()
}

/// K = H_aa⁻¹ H_as and P = H_ss − H_sa H_aa⁻¹ H_as of q = −zᵀHz + lᵀz + c. A fitted q that
/// is not strictly concave in the action has no greedy gain: divergence.
pub(crate) fn greedy_gain_and_p(
    q: &LinearQ<QuadraticFeatures>,
    n: usize,
) -> Result<(DMatrix<f64>, DMatrix<f64>), CellError> {
    let h = -q.quadratic_form().matrix;
    let d = h.nrows();
    let m = d - n;
    let h_ss = h.view((0, 0), (n, n)).into_owned();
    let h_as = h.view((n, 0), (m, n)).into_owned();
    let h_aa = h.view((n, n), (m, m)).into_owned();
    let chol = h_aa.clone().cholesky().ok_or_else(|| {
        CellError::Diverged(format!(
            "the fitted q is not concave in the action (H_aa = {h_aa})"
        ))
    })?;
    let gain = chol.solve(&h_as);
    let p = &h_ss - h_as.transpose() * &gain;
    Ok((gain, p))
}

/// The LQR `system`, its Riccati solution and `points` base points: states uniform in
/// `[−state_bound, state_bound]ⁿ`, actions in `[−action_bound, action_bound]ᵐ`, one step
/// each, from the cell's `"data"` stream.
pub(crate) fn lqr_base_points(
    system: LqrSystemName,
    state_bound: f64,
    action_bound: f64,
    points: usize,
    seed: u64,
) -> Result<(Lqr, RiccatiSolution, Transitions), CellError> {
    let mut env = Lqr::new(system.params())?;
    let solution = env.solve()?;
    let (n, m) = (env.system().state_dim(), env.system().action_dim());
    let uniform = |bound: f64, dim: usize| UniformBox {
        low: vec![-bound; dim],
        high: vec![bound; dim],
    };
    let data = sample_transitions(
        &mut env,
        &uniform(state_bound, n),
        Some(&uniform(action_bound, m)),
        points,
        RunSeed(seed).child("data", 0),
    )?;
    Ok((env, solution, data))
}
