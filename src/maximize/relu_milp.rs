//! `maximize(q(s', ·; θ))` of a ReLU network exactly, as a mixed-integer linear program.
//!
//! The chapter's `maximize` must handle "mixed-integer nonlinear" programs when q is
//! nonlinear in an integer action. A network whose hidden layers are ReLUs and whose
//! output is linear is piecewise linear, and its maximization over a bounded set is a
//! MILP (Fischetti & Jo 2018; CAQL, Ryu et al. 2020). With s' fixed, the first layer's
//! pre-activations are affine in the action; each hidden unit `h = max(z, 0)` with
//! pre-activation bounds `L ≤ z ≤ U` becomes
//!
//! ```text
//! U ≤ 0:      h = 0                                    (always off: absent)
//! L ≥ 0:      h = z                                    (always on: z itself, no variable)
//! otherwise:  h ≥ z,  h ≥ 0,  h ≤ z − L(1 − δ),  h ≤ U δ,  δ ∈ {0, 1}
//! ```
//!
//! (big-M with the tightest constants the bounds give), and the objective is the output
//! layer's affine map of the last hidden layer. The bounds are the tighter of interval
//! arithmetic and of symbolic (affine-in-the-action) bounds propagated through the layers;
//! every unit they decide saves a binary, and the branch and bound's time grows with the
//! binaries. The action is a vector of continuous variables in a box, or of integer
//! variables under the bounds and linear constraints of an
//! [`IntegerSpace`](crate::env::IntegerSpace). good_lp solves it with microlp (pure Rust,
//! the default) or HiGHS (crate feature `highs`).
//!
//! The network computes in f32; the program is stated in f64 from the same weights, with
//! the bounds widened by a relative 1e-6 so rounding cannot cut off the optimum. The value
//! returned is the network's own q at the solver's action, as for every other maximizer.

use good_lp::{
    microlp, variable, Constraint, Expression, ProblemVariables, ResolutionError, Solution,
    SolverModel, Variable,
};

use super::milp::{check_solver_bounds, integer_constraints, solver_error};
use super::{check_call, Maximizer, Maximum, QFunction};
use crate::env::allocation::check_integer_space;
use crate::env::ActionSpace;
use crate::error::{Error, Result};
use crate::nn::{Activation, Mlp};
use crate::qfunction::InputScaling;
use crate::rng::Rng;

const NAME: &str = "relu_milp";
/// Relative widening of the interval bounds: the f64 program must contain every value
/// the f32 network can take.
const BOUND_SLACK: f64 = 1e-6;

/// A q-function that is a ReLU network on the input [s, a]: hidden layers ReLU, output
/// linear with one unit. What [`QFunction::relu_network`] exposes.
#[derive(Clone, Copy, Debug)]
pub struct ReluNetwork<'a> {
    pub network: &'a Mlp<f32>,
    /// The first `state_dim` inputs are the state, the rest the action.
    pub state_dim: usize,
    /// The map q applies to the raw [s, a] before the network, if any.
    pub input_scaling: Option<&'a InputScaling>,
}

impl<'a> ReluNetwork<'a> {
    /// `network` as a ReLU q on [s, a], or `None` when its activations or output width
    /// do not make it one.
    pub fn new(network: &'a Mlp<f32>, state_dim: usize) -> Option<Self> {
        let piecewise_linear =
            network.hidden_activation() == Activation::Relu || network.sizes().len() == 2;
        (piecewise_linear
            && network.output_activation() == Activation::Identity
            && network.output_dim() == 1
            && network.input_dim() > state_dim)
            .then_some(ReluNetwork {
                network,
                state_dim,
                input_scaling: None,
            })
    }

    /// The same network behind `scaling` (None: raw inputs).
    pub fn with_input_scaling(self, scaling: Option<&'a InputScaling>) -> Self {
        ReluNetwork {
            input_scaling: scaling,
            ..self
        }
    }
}

/// The good_lp backend that solves the program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MilpBackend {
    /// microlp: pure Rust, always built.
    #[default]
    Microlp,
    /// HiGHS (presolve, cuts, its own branch and bound) on one thread, gaps at 0; needs
    /// the crate feature `highs`.
    #[cfg(feature = "highs")]
    Highs,
}

impl MilpBackend {
    /// The solver as errors name it.
    fn label(self) -> &'static str {
        match self {
            MilpBackend::Microlp => "MILP (good_lp/microlp)",
            #[cfg(feature = "highs")]
            MilpBackend::Highs => "MILP (good_lp/HiGHS)",
        }
    }
}

/// Exact maximizer of a ReLU-network q over a box or an integer action set.
#[derive(Clone, Debug)]
pub struct ReluMilpMaximizer {
    space: ActionSpace,
    /// The bounds of each action component, as the program states them.
    low: Vec<f64>,
    high: Vec<f64>,
    backend: MilpBackend,
}

impl ReluMilpMaximizer {
    /// A maximizer over `space`: a box with finite bounds, or an integer space whose
    /// bounds fit the solver's 32-bit integers.
    pub fn new(space: ActionSpace) -> Result<Self> {
        let (low, high) = match &space {
            ActionSpace::Box { low, high } => {
                if low.len() != high.len() || low.is_empty() {
                    return Err(Error::invalid(
                        "relu_milp.action_space",
                        format!("box bounds of {} and {} components", low.len(), high.len()),
                    ));
                }
                if let Some(i) = (0..low.len())
                    .find(|&i| !(low[i].is_finite() && high[i].is_finite() && low[i] <= high[i]))
                {
                    return Err(Error::invalid(
                        "relu_milp.action_space",
                        format!(
                            "component {i} has bounds [{}, {}]: a MILP needs finite bounds, low ≤ high",
                            low[i], high[i]
                        ),
                    ));
                }
                (low.clone(), high.clone())
            }
            ActionSpace::Integer(integer) => {
                check_integer_space(integer)?;
                check_solver_bounds("relu_milp.action_space", integer)?;
                let as_f64 = |bounds: &[i64]| bounds.iter().map(|&v| v as f64).collect();
                (as_f64(&integer.lower), as_f64(&integer.upper))
            }
        };
        Ok(ReluMilpMaximizer {
            space,
            low,
            high,
            backend: MilpBackend::default(),
        })
    }

    /// The same maximizer solving with `backend`.
    pub fn with_backend(self, backend: MilpBackend) -> Self {
        ReluMilpMaximizer { backend, ..self }
    }
}

/// Per-thread scratch: bounds of the layer being stated and of its inputs, and what the
/// last program held (for reports).
///
/// Each unit carries interval bounds `[lower, upper]` and symbolic bounds: two affine
/// functions of the action, one below the unit's value and one above (rows of `dim + 1`
/// numbers, coefficients then constant; ReluVal/DeepPoly, Wang et al. 2018, Singh et al.
/// 2019). Bounding a unit by the best of both keeps the big-M constants tight past the
/// first hidden layer, where interval arithmetic alone loses the correlation between
/// units and the branch and bound slows by orders of magnitude.
#[derive(Clone, Debug, Default)]
pub struct ReluMilpWorkspace {
    lower: Vec<f64>,
    upper: Vec<f64>,
    symbolic_lower: Vec<f64>,
    symbolic_upper: Vec<f64>,
    input_lower: Vec<f64>,
    input_upper: Vec<f64>,
    input_symbolic_lower: Vec<f64>,
    input_symbolic_upper: Vec<f64>,
    /// Binaries δ of the last program: the hidden units the bounds could not fix.
    pub binaries: usize,
    /// Hidden units of the network.
    pub hidden_units: usize,
    /// Restatements of the last program after microlp reported a singular basis.
    pub retries: u32,
}

/// The program under construction: its variables, the action variables and the rows.
struct Program {
    variables: ProblemVariables,
    action: Vec<Variable>,
    constraints: Vec<Constraint>,
}

impl Maximizer for ReluMilpMaximizer {
    type Workspace = ReluMilpWorkspace;

    fn name(&self) -> &str {
        NAME
    }

    fn action_space(&self) -> &ActionSpace {
        &self.space
    }

    fn workspace(&self) -> ReluMilpWorkspace {
        ReluMilpWorkspace::default()
    }

    /// One solver call per maximization (`evaluations` = 1).
    fn maximize<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut ReluMilpWorkspace,
        state: &[f64],
        action: &mut [f64],
        _rng: &mut Rng,
    ) -> Result<Maximum> {
        check_call(NAME, &self.space, q, state, action)?;
        let Some(relu) = q.relu_network() else {
            return Err(Error::solver(
                self.backend.label(),
                "q is not a network of ReLU hidden layers with a linear output, so a MILP \
                 cannot state its maximization (use relu_milp with an MLP q of ReLU units)",
            ));
        };
        let network = relu.network;
        if relu.state_dim != state.len()
            || network.input_dim() != state.len() + action.len()
            || relu
                .input_scaling
                .is_some_and(|scaling| scaling.len() != network.input_dim())
        {
            return Err(Error::invalid(
                "relu_milp: q",
                format!(
                    "network inputs {} (input scaling: {:?} components) do not take {} state \
                     and {} action components",
                    network.input_dim(),
                    relu.input_scaling.map(InputScaling::len),
                    state.len(),
                    action.len()
                ),
            ));
        }
        if let Some(i) = state.iter().position(|v| !v.is_finite()) {
            return Err(Error::Numerical {
                context: NAME.into(),
                reason: format!("state component {i} is {}", state[i]),
            });
        }
        // microlp's LU factorization now and then reports a singular basis on a sound
        // program; the same program with other big-M constants is another pivot sequence.
        ws.retries = 0;
        let mut result = self.solve(relu, state, action.len(), BOUND_SLACK, ws);
        for retry in 1..=2u8 {
            match &result {
                Err(ResolutionError::Str(message)) if message.contains("Singular") => {
                    ws.retries = retry.into();
                    let slack = BOUND_SLACK * 1e3f64.powi(retry.into());
                    result = self.solve(relu, state, action.len(), slack, ws);
                }
                _ => break,
            }
        }
        action.copy_from_slice(&result.map_err(|e| solver_error(self.backend.label(), e))?);
        self.read_action(action)?;
        Ok(Maximum {
            value: q.value(q_ws, state, action)?,
            evaluations: 1,
        })
    }
}

impl ReluMilpMaximizer {
    fn program(&self, dim: usize) -> Result<Program> {
        let mut variables = ProblemVariables::new();
        let action = (0..dim)
            .map(|i| {
                let v = variable().min(self.low[i]).max(self.high[i]);
                variables.add(match self.space {
                    ActionSpace::Integer(_) => v.integer(),
                    ActionSpace::Box { .. } => v,
                })
            })
            .collect::<Vec<_>>();
        let constraints = match &self.space {
            ActionSpace::Integer(space) => {
                integer_constraints(&action, space, self.backend.label())?
            }
            ActionSpace::Box { .. } => Vec::new(),
        };
        Ok(Program {
            variables,
            action,
            constraints,
        })
    }

    /// State the program of `relu` at `state` with big-M bounds widened by `slack`
    /// (relative) and solve it: the action it finds.
    fn solve(
        &self,
        relu: ReluNetwork<'_>,
        state: &[f64],
        dim: usize,
        slack: f64,
        ws: &mut ReluMilpWorkspace,
    ) -> Result<Vec<f64>, ResolutionError> {
        let network = relu.network;
        let mut program = self
            .program(dim)
            .map_err(|e| ResolutionError::Str(e.to_string()))?;
        ws.binaries = 0;
        ws.hidden_units = 0;
        // The inputs of layer 0 past the state are the action variables as the network
        // sees them, sₖ(aₖ − cₖ) under an input scaling (sₖ = 1, cₖ = 0 without), in
        // their bounds; each is its own symbolic bound (row: sₖ at k, constant −sₖcₖ).
        let n = relu.state_dim;
        let scaling = relu.input_scaling;
        let mut inputs = Vec::with_capacity(dim);
        ws.input_lower.clear();
        ws.input_upper.clear();
        ws.input_symbolic_lower.clear();
        ws.input_symbolic_lower.resize(dim * (dim + 1), 0.0);
        for (k, &variable) in program.action.iter().enumerate() {
            let (c, s) = scaling.map_or((0.0, 1.0), |scaling| scaling.component(n + k));
            let mut expression = Expression::from(-s * c);
            expression.add_mul(s, variable);
            inputs.push(Some(expression));
            ws.input_lower.push(s * (self.low[k] - c));
            ws.input_upper.push(s * (self.high[k] - c));
            ws.input_symbolic_lower[k * (dim + 1) + k] = s;
            ws.input_symbolic_lower[k * (dim + 1) + dim] = -s * c;
        }
        ws.input_symbolic_upper.clone_from(&ws.input_symbolic_lower);
        // The state as the network sees it (one small vector beside the program's own).
        let state: Vec<f64> = state
            .iter()
            .enumerate()
            .map(|(i, &x)| scaling.map_or(x, |scaling| scaling.map(i, x)))
            .collect();
        let box_ = ActionBox {
            low: &self.low,
            high: &self.high,
        };
        let layers = network.sizes().len() - 1;
        for layer in 0..layers - 1 {
            let z = pre_activations(network, layer, &state, &inputs, box_, ws);
            inputs = relu_units(&mut program, z, layer, dim, slack, ws)?;
        }
        // Step "maximize": q is the output unit, affine in the last hidden layer.
        let z = pre_activations(network, layers - 1, &state, &inputs, box_, ws);
        let objective = z.into_iter().next().expect("q has one output");
        let problem = program.variables.maximise(objective);
        let read =
            |solution: &dyn Solution| program.action.iter().map(|&v| solution.value(v)).collect();
        match self.backend {
            MilpBackend::Microlp => {
                let mut model = problem.using(microlp);
                for c in program.constraints {
                    model.add_constraint(c);
                }
                Ok(read(&model.solve()?))
            }
            #[cfg(feature = "highs")]
            MilpBackend::Highs => {
                let mut model = problem
                    .using(good_lp::highs)
                    .set_threads(1)
                    .set_mip_rel_gap(0.0)
                    .and_then(|m| m.set_mip_abs_gap(0.0))
                    .map_err(|e| ResolutionError::Str(e.to_string()))?;
                for c in program.constraints {
                    model.add_constraint(c);
                }
                Ok(read(&model.solve()?))
            }
        }
    }

    /// Round integer actions and check them, clamp continuous ones into the box.
    fn read_action(&self, action: &mut [f64]) -> Result<()> {
        match &self.space {
            ActionSpace::Integer(space) => {
                for a in action.iter_mut() {
                    *a = a.round();
                }
                if let Some(reason) = space.violation(action) {
                    return Err(Error::solver(
                        self.backend.label(),
                        format!("the rounded solution {action:?} is not feasible: {reason}"),
                    ));
                }
            }
            ActionSpace::Box { low, high } => {
                for ((a, &lo), &hi) in action.iter_mut().zip(low).zip(high) {
                    *a = a.clamp(lo, hi);
                }
            }
        }
        Ok(())
    }
}

/// The action bounds, for the extremes of an affine function of the action.
#[derive(Clone, Copy)]
struct ActionBox<'a> {
    low: &'a [f64],
    high: &'a [f64],
}

impl ActionBox<'_> {
    /// min and max over the box of `row · a + constant` (row: coefficients, then constant).
    fn range(self, row: &[f64]) -> (f64, f64) {
        let (coefficients, constant) = row.split_at(self.low.len());
        let (mut min, mut max) = (constant[0], constant[0]);
        for ((&c, &lo), &hi) in coefficients.iter().zip(self.low).zip(self.high) {
            let (a, b) = (c * lo, c * hi);
            min += a.min(b);
            max += a.max(b);
        }
        (min, max)
    }
}

/// Layer `layer`'s pre-activations z_j as expressions in the program's variables, and
/// their bounds into `ws`: the tighter of interval arithmetic on the inputs' bounds and
/// of the symbolic bounds' extremes over the box. Layer 0 reads the state as constants
/// and `inputs` for the action; later layers read `inputs` (None: a unit always off).
fn pre_activations(
    network: &Mlp<f32>,
    layer: usize,
    state: &[f64],
    inputs: &[Option<Expression>],
    box_: ActionBox<'_>,
    ws: &mut ReluMilpWorkspace,
) -> Vec<Expression> {
    let (fan_in, fan_out) = (network.sizes()[layer], network.sizes()[layer + 1]);
    let width = box_.low.len() + 1;
    let weights = network.weights(layer);
    ws.lower.clear();
    ws.lower
        .extend(network.bias(layer).iter().map(|&b| f64::from(b)));
    // Layer 0: fold the fixed state into the constants.
    let fixed = if layer == 0 { state.len() } else { 0 };
    for (i, &s) in state.iter().enumerate().take(fixed) {
        let row = &weights[i * fan_out..(i + 1) * fan_out];
        for (l, &w) in ws.lower.iter_mut().zip(row) {
            *l += f64::from(w) * s;
        }
    }
    let mut z: Vec<Expression> = ws.lower.iter().map(|&c| Expression::from(c)).collect();
    ws.symbolic_lower.clear();
    ws.symbolic_lower.resize(fan_out * width, 0.0);
    for (j, &c) in ws.lower.iter().enumerate() {
        ws.symbolic_lower[j * width + width - 1] = c;
    }
    ws.symbolic_upper.clone_from(&ws.symbolic_lower);
    ws.upper.clone_from(&ws.lower);
    for i in fixed..fan_in {
        let k = i - fixed;
        let Some(input) = &inputs[k] else { continue };
        let (lo, hi) = (ws.input_lower[k], ws.input_upper[k]);
        let below = &ws.input_symbolic_lower[k * width..(k + 1) * width];
        let above = &ws.input_symbolic_upper[k * width..(k + 1) * width];
        let row = &weights[i * fan_out..(i + 1) * fan_out];
        for (j, &w) in row.iter().enumerate() {
            let w = f64::from(w);
            if w == 0.0 {
                continue;
            }
            z[j].add_mul(w, input);
            let (a, b) = (w * lo, w * hi);
            ws.lower[j] += a.min(b);
            ws.upper[j] += a.max(b);
            // A positive weight takes the input's lower function into z's lower one.
            let (to_lower, to_upper) = if w > 0.0 {
                (below, above)
            } else {
                (above, below)
            };
            let target = j * width..(j + 1) * width;
            for (t, &v) in ws.symbolic_lower[target.clone()].iter_mut().zip(to_lower) {
                *t += w * v;
            }
            for (t, &v) in ws.symbolic_upper[target].iter_mut().zip(to_upper) {
                *t += w * v;
            }
        }
    }
    for j in 0..fan_out {
        let (min, _) = box_.range(&ws.symbolic_lower[j * width..(j + 1) * width]);
        let (_, max) = box_.range(&ws.symbolic_upper[j * width..(j + 1) * width]);
        ws.lower[j] = ws.lower[j].max(min);
        ws.upper[j] = ws.upper[j].min(max);
    }
    z
}

/// h_j = max(z_j, 0) for one hidden layer, stated by the encoding of the module
/// documentation: a unit always on is its own expression z_j (no variable, no row), a
/// unit always off is absent. The bounds of h become the next layer's input bounds; its
/// symbolic bounds relax the ReLU between the chord above and z or 0 below.
fn relu_units(
    program: &mut Program,
    z: Vec<Expression>,
    layer: usize,
    dim: usize,
    slack: f64,
    ws: &mut ReluMilpWorkspace,
) -> Result<Vec<Option<Expression>>, ResolutionError> {
    let width = dim + 1;
    ws.hidden_units += z.len();
    ws.input_lower.clear();
    ws.input_upper.clear();
    ws.input_symbolic_lower.clear();
    ws.input_symbolic_upper.clear();
    let mut outputs = Vec::with_capacity(z.len());
    for (j, zj) in z.into_iter().enumerate() {
        let widen = slack * (1.0 + ws.lower[j].abs().max(ws.upper[j].abs()));
        let (lo, hi) = (ws.lower[j] - widen, ws.upper[j] + widen);
        if !(lo.is_finite() && hi.is_finite()) {
            return Err(ResolutionError::Str(format!(
                "layer {layer} unit {j}: bounds [{lo}, {hi}] of its pre-activation are not finite"
            )));
        }
        let below = &ws.symbolic_lower[j * width..(j + 1) * width];
        let above = &ws.symbolic_upper[j * width..(j + 1) * width];
        if hi <= 0.0 {
            outputs.push(None);
            ws.input_lower.push(0.0);
            ws.input_upper.push(0.0);
            ws.input_symbolic_lower
                .extend(std::iter::repeat_n(0.0, width));
            ws.input_symbolic_upper
                .extend(std::iter::repeat_n(0.0, width));
            continue;
        }
        if lo >= 0.0 {
            // h = z ≥ L ≥ 0 on the whole box.
            outputs.push(Some(zj));
            ws.input_lower.push(lo);
            ws.input_upper.push(hi);
            ws.input_symbolic_lower.extend_from_slice(below);
            ws.input_symbolic_upper.extend_from_slice(above);
            continue;
        }
        let h = program.variables.add(variable().min(0.0).max(hi));
        let delta = program.variables.add(variable().binary());
        ws.binaries += 1;
        program
            .constraints
            .push(Expression::from(h).geq(zj.clone()));
        // h ≤ z − L(1 − δ)  ⇔  h − z − Lδ ≤ −L
        let mut on = Expression::from(h) - zj;
        on.add_mul(-lo, delta);
        program.constraints.push(on.leq(-lo));
        // h ≤ Uδ
        let mut off = Expression::from(h);
        off.add_mul(-hi, delta);
        program.constraints.push(off.leq(0.0));
        outputs.push(Some(h.into()));
        ws.input_lower.push(0.0);
        ws.input_upper.push(hi);
        // Above: the chord h ≤ U (z − L) / (U − L) ≤ U (upper(a) − L) / (U − L).
        // Below: h ≥ α z ≥ α lower(a), α ∈ {0, 1}, whichever leaves less area.
        let slope = hi / (hi - lo);
        let chord = above
            .iter()
            .enumerate()
            .map(|(c, &v)| slope * if c + 1 == width { v - lo } else { v });
        ws.input_symbolic_upper.extend(chord);
        let alpha = if hi > -lo { 1.0 } else { 0.0 };
        ws.input_symbolic_lower
            .extend(below.iter().map(|&v| alpha * v));
    }
    Ok(outputs)
}
