//! The `fit(𝒟)` step of fitted Q-iteration (step 3.3 of `fitted-q-iteration-explicit`):
//! given the regression dataset 𝒟 = {((s, a), y)}, move θₙ to θₙ₊₁.
//!
//! One trait, [`Fit`], with one implementation per approximator class:
//! - [`LeastSquares`] for q linear in θ ([`LinearQ`]): the exact ridge least-squares
//!   solution, in f64 (Cholesky of the normal equations), independent of θₙ;
//! - [`AdamFit`] for neural q-functions ([`NetworkQ`]: an `Mlp<f32>` on `[s, a]`):
//!   minibatch Adam on the mean squared error, warm-started from θₙ, for a fixed number
//!   of epochs — the usual practice, since an exact minimizer does not exist.

use nalgebra::{DMatrix, DVector};
use rand::seq::SliceRandom;

use super::transitions::Transitions;
use crate::error::{Error, Result};
use crate::nn::{mse_with_gradient, Adam, AdamConfig, Workspace};
use crate::qfunction::linear::{Features, LinearQ};
use crate::qfunction::NetworkQ;
use crate::rng::Rng;

/// `θ ← fit(𝒟)` for approximators of type `Q`.
pub trait Fit<Q> {
    /// Fit `q` in place (starting from its current parameters θₙ) to `targets[i]` at
    /// `(data.state(i), data.action(i))`, drawing any randomness (minibatch order) from
    /// `rng`. Returns the mean squared error of the fitted q on 𝒟.
    fn fit(&mut self, q: &mut Q, data: &Transitions, targets: &[f64], rng: &mut Rng)
        -> Result<f64>;
}

fn check_targets(data: &Transitions, targets: &[f64]) -> Result<()> {
    if targets.len() != data.len() || data.is_empty() {
        return Err(Error::invalid(
            "targets",
            format!(
                "{} targets for {} base points (need equal, nonzero)",
                targets.len(),
                data.len()
            ),
        ));
    }
    Ok(())
}

/// Ridge least squares: `θ = argmin (1/|𝒟|) Σ (θᵀφ(s,a) − y)² + λ‖θ‖²`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeastSquares {
    ridge: f64,
}

impl LeastSquares {
    /// The default ridge λ = 1e-10: enough to make the normal equations solvable when
    /// features are collinear on the data, too small to bias a well-posed fit.
    pub const DEFAULT_RIDGE: f64 = 1e-10;

    /// A fitter with ridge `ridge` ≥ 0 (0: plain least squares, which fails on
    /// collinear features).
    pub fn new(ridge: f64) -> Result<Self> {
        if !(ridge.is_finite() && ridge >= 0.0) {
            return Err(Error::invalid(
                "ridge",
                format!("{ridge} is not a finite number ≥ 0"),
            ));
        }
        Ok(LeastSquares { ridge })
    }

    pub fn ridge(&self) -> f64 {
        self.ridge
    }
}

impl Default for LeastSquares {
    fn default() -> Self {
        LeastSquares {
            ridge: Self::DEFAULT_RIDGE,
        }
    }
}

impl<F: Features> Fit<LinearQ<F>> for LeastSquares {
    fn fit(
        &mut self,
        q: &mut LinearQ<F>,
        data: &Transitions,
        targets: &[f64],
        _rng: &mut Rng,
    ) -> Result<f64> {
        check_targets(data, targets)?;
        let features = q.features();
        let p = features.len();
        let count = data.len() as f64;
        // Normal equations (ΦᵀΦ/N + λI) θ = Φᵀy/N, upper triangle accumulated then mirrored.
        let mut gram = DMatrix::<f64>::zeros(p, p);
        let mut rhs = DVector::<f64>::zeros(p);
        let mut phi = vec![0.0; p];
        for (i, &y) in targets.iter().enumerate() {
            features.features_into(data.state(i), data.action(i), &mut phi);
            for r in 0..p {
                let pr = phi[r];
                rhs[r] += pr * y;
                for c in r..p {
                    gram[(r, c)] += pr * phi[c];
                }
            }
        }
        for r in 0..p {
            for c in r..p {
                let value = gram[(r, c)] / count;
                gram[(r, c)] = value;
                gram[(c, r)] = value;
            }
            gram[(r, r)] += self.ridge;
        }
        rhs /= count;
        let theta = gram
            .cholesky()
            .ok_or_else(|| Error::Numerical {
                context: "least-squares fit".into(),
                reason: format!(
                    "the normal equations are singular (features collinear on the data); \
                     use a ridge > {}",
                    self.ridge
                ),
            })?
            .solve(&rhs);
        let mut squared_error = 0.0;
        for (i, &y) in targets.iter().enumerate() {
            features.features_into(data.state(i), data.action(i), &mut phi);
            let prediction: f64 = phi.iter().zip(theta.iter()).map(|(a, b)| a * b).sum();
            squared_error += (prediction - y) * (prediction - y);
        }
        q.set_params(theta.as_slice())
            .map_err(|_| Error::Numerical {
                context: "least-squares fit".into(),
                reason: "the solution is not finite".into(),
            })?;
        Ok(squared_error / count)
    }
}

/// The settings of [`AdamFit`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamFitSettings {
    /// Passes over 𝒟 per FQI iteration (≥ 1).
    pub epochs: usize,
    /// Minibatch size (≥ 1; a dataset smaller than this is one batch).
    pub batch_size: usize,
    /// Adam's hyperparameters (learning rate and moments).
    pub adam: AdamConfig,
    /// How many of the last epochs of each fit are averaged: θₙ₊₁ is the mean of the
    /// iterates after every step of those epochs (tail averaging, Polyak and Juditsky
    /// 1992), which damps the minibatch noise in where the last step leaves θ. 0 (the
    /// default, and the chapter's `fit`): θₙ₊₁ is the last iterate.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub average_last_epochs: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Default for AdamFitSettings {
    fn default() -> Self {
        AdamFitSettings {
            epochs: 10,
            batch_size: 128,
            adam: AdamConfig::with_lr(1e-3),
            average_last_epochs: 0,
        }
    }
}

/// Minibatch Adam on `(1/|batch|) Σ (q(s,a;θ) − y)²`, warm-started from θₙ.
///
/// The optimizer's moment estimates persist across FQI iterations (one optimizer for
/// the run, as when a deep-learning framework keeps its optimizer), and every buffer is
/// allocated on the first call and reused, so later fits allocate nothing.
#[derive(Clone, Debug)]
pub struct AdamFit {
    settings: AdamFitSettings,
    adam: Option<Adam<f32>>,
    workspace: Option<Workspace<f32>>,
    grads: Vec<f32>,
    /// 𝒟 as f32: `[s, a]` rows and targets.
    inputs: Vec<f32>,
    outputs: Vec<f32>,
    /// One minibatch: rows, targets, predictions' gradient.
    batch_inputs: Vec<f32>,
    batch_targets: Vec<f32>,
    batch_grad: Vec<f32>,
    order: Vec<usize>,
    /// Sum of the iterates of the averaged epochs, per parameter.
    iterate_sum: Vec<f64>,
}

impl AdamFit {
    /// A fitter with checked `settings` (errors name the bad field).
    pub fn new(settings: AdamFitSettings) -> Result<Self> {
        if settings.epochs == 0 {
            return Err(Error::invalid("fit.epochs", "must be at least 1"));
        }
        if settings.batch_size == 0 {
            return Err(Error::invalid("fit.batch_size", "must be at least 1"));
        }
        if settings.average_last_epochs > settings.epochs {
            return Err(Error::invalid(
                "fit.average_last_epochs",
                format!(
                    "{} is more than the {} epochs of a fit",
                    settings.average_last_epochs, settings.epochs
                ),
            ));
        }
        // Checks the Adam hyperparameters now rather than at the first fit.
        Adam::<f32>::new(settings.adam, 0)?;
        Ok(AdamFit {
            settings,
            adam: None,
            workspace: None,
            grads: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            batch_inputs: Vec::new(),
            batch_targets: Vec::new(),
            batch_grad: Vec::new(),
            order: Vec::new(),
            iterate_sum: Vec::new(),
        })
    }

    pub fn settings(&self) -> &AdamFitSettings {
        &self.settings
    }

    /// Copy 𝒟 into q's f32 input rows (`[s, a]`, scaled as q scales them) and targets.
    fn load<Q: NetworkQ>(&mut self, q: &Q, data: &Transitions, targets: &[f64]) {
        let width = data.state_dim() + data.action_dim();
        self.inputs.clear();
        self.inputs.resize(data.len() * width, 0.0);
        for (i, row) in self.inputs.chunks_exact_mut(width).enumerate() {
            q.encode_input(data.state(i), data.action(i), row);
        }
        self.outputs.clear();
        self.outputs.extend(targets.iter().map(|&y| y as f32));
    }
}

impl<Q: NetworkQ> Fit<Q> for AdamFit {
    fn fit(
        &mut self,
        q: &mut Q,
        data: &Transitions,
        targets: &[f64],
        rng: &mut Rng,
    ) -> Result<f64> {
        check_targets(data, targets)?;
        let width = data.state_dim() + data.action_dim();
        let network = q.network();
        if network.input_dim() != width
            || network.output_dim() != 1
            || q.state_dim() != data.state_dim()
        {
            return Err(Error::invalid(
                "network",
                format!(
                    "sizes {:?} with {} state inputs: a q-network on [s, a] needs {width} \
                     inputs, {} of them the state, and 1 output",
                    network.sizes(),
                    q.state_dim(),
                    data.state_dim()
                ),
            ));
        }
        self.load(q, data, targets);
        let network = q.network_mut();
        let n = data.len();
        let batch = self.settings.batch_size.min(n);
        if self.adam.is_none() {
            self.adam = Some(Adam::new(self.settings.adam, network.num_params())?);
            self.workspace = Some(network.workspace(batch));
            self.grads = network.zero_grads();
        }
        let (Some(adam), Some(ws)) = (self.adam.as_mut(), self.workspace.as_mut()) else {
            unreachable!("created above");
        };
        self.order.clear();
        self.order.extend(0..n);
        self.batch_inputs.resize(batch * width, 0.0);
        self.batch_targets.resize(batch, 0.0);
        self.batch_grad.resize(batch, 0.0);

        let averaged_from = self.settings.epochs - self.settings.average_last_epochs;
        let mut averaged_steps = 0_u32;
        self.iterate_sum.clear();
        self.iterate_sum.resize(network.num_params(), 0.0);
        for epoch in 0..self.settings.epochs {
            self.order.shuffle(rng);
            for chunk in self.order.chunks(batch) {
                let rows = chunk.len();
                for (r, &i) in chunk.iter().enumerate() {
                    self.batch_inputs[r * width..(r + 1) * width]
                        .copy_from_slice(&self.inputs[i * width..(i + 1) * width]);
                    self.batch_targets[r] = self.outputs[i];
                }
                let prediction = network.forward(&self.batch_inputs[..rows * width], ws)?;
                mse_with_gradient(
                    prediction,
                    &self.batch_targets[..rows],
                    &mut self.batch_grad[..rows],
                )?;
                self.grads.fill(0.0);
                network.backward(ws, &self.batch_grad[..rows], &mut self.grads, None)?;
                adam.step(network.params_mut(), &self.grads)?;
                if epoch >= averaged_from {
                    averaged_steps += 1;
                    for (sum, &p) in self.iterate_sum.iter_mut().zip(network.params()) {
                        *sum += f64::from(p);
                    }
                }
            }
        }
        if averaged_steps > 0 {
            let steps = f64::from(averaged_steps);
            for (p, &sum) in network.params_mut().iter_mut().zip(&self.iterate_sum) {
                *p = (sum / steps) as f32;
            }
        }

        // The loss reported is the fitted network's MSE on all of 𝒟.
        let mut squared_error = 0.0;
        for (inputs, outputs) in self
            .inputs
            .chunks(batch * width)
            .zip(self.outputs.chunks(batch))
        {
            let prediction = network.forward(inputs, ws)?;
            for (&p, &y) in prediction.iter().zip(outputs) {
                squared_error += f64::from(p - y) * f64::from(p - y);
            }
        }
        Ok(squared_error / n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maximize::QFunction;
    use crate::qfunction::linear::{ActionAffineFeatures, QuadraticFeatures};
    use crate::rng::RunSeed;

    /// Least squares recovers a θ that generates the targets exactly.
    #[test]
    fn least_squares_recovers_a_generating_theta() {
        let features = QuadraticFeatures::new(2, 1).unwrap();
        let truth: Vec<f64> = (0..features.len()).map(|i| (i as f64).cos()).collect();
        let generator = LinearQ::with_params(features, truth.clone()).unwrap();
        let mut data = Transitions::new(2, 1);
        let mut targets = Vec::new();
        let mut ws = generator.workspace();
        for i in 0..200 {
            let x = i as f64;
            let (s, a) = ([(0.3 * x).sin(), (0.7 * x).cos()], [(1.1 * x).sin() * 2.0]);
            data.push(&s, &a, 0.0, &s, false).unwrap();
            targets.push(generator.value(&mut ws, &s, &a).unwrap());
        }
        let mut q = LinearQ::zeros(features);
        let loss = LeastSquares::new(0.0)
            .unwrap()
            .fit(&mut q, &data, &targets, &mut RunSeed(0).stream("unused"))
            .unwrap();
        assert!(loss < 1e-20, "{loss}");
        for (fitted, true_value) in q.params().iter().zip(&truth) {
            assert!(
                (fitted - true_value).abs() < 1e-9,
                "{fitted} vs {true_value}"
            );
        }
    }

    #[test]
    fn collinear_features_need_a_ridge() {
        // Every state equal: the constant and the state features are collinear.
        let features = ActionAffineFeatures::new(1, 1).unwrap();
        let mut data = Transitions::new(1, 1);
        for i in 0..10 {
            data.push(&[1.0], &[i as f64], 1.0, &[1.0], false).unwrap();
        }
        let targets = vec![1.0; 10];
        let mut q = LinearQ::zeros(features);
        let mut rng = RunSeed(0).stream("unused");
        assert!(matches!(
            LeastSquares::new(0.0)
                .unwrap()
                .fit(&mut q, &data, &targets, &mut rng),
            Err(Error::Numerical { .. })
        ));
        let loss = LeastSquares::default()
            .fit(&mut q, &data, &targets, &mut rng)
            .unwrap();
        assert!(loss < 1e-12, "{loss}");
        assert!(matches!(
            LeastSquares::new(-1.0),
            Err(Error::InvalidParameter { .. })
        ));
    }

    #[test]
    fn adam_settings_are_checked() {
        let bad = |s: AdamFitSettings| match AdamFit::new(s) {
            Err(Error::InvalidParameter { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let ok = AdamFitSettings::default();
        assert_eq!(bad(AdamFitSettings { epochs: 0, ..ok }), "fit.epochs");
        assert_eq!(
            bad(AdamFitSettings {
                batch_size: 0,
                ..ok
            }),
            "fit.batch_size"
        );
        let adam = AdamConfig::with_lr(-1.0);
        assert_eq!(bad(AdamFitSettings { adam, ..ok }), "adam.lr");
        assert_eq!(
            bad(AdamFitSettings {
                average_last_epochs: 11,
                ..ok
            }),
            "fit.average_last_epochs"
        );
    }

    /// The fit trains on the rows q itself evaluates: with an input scaling, the loss it
    /// reports is q's own mean squared error on 𝒟, and it fits a target that raw inputs
    /// in [0, 100] would make hard.
    #[test]
    fn adam_fit_trains_on_the_scaled_rows_q_evaluates() {
        use crate::nn::{Mlp, MlpConfig};
        use crate::qfunction::{InputScaling, MlpQ};
        let mut data = Transitions::new(1, 1);
        let mut targets = Vec::new();
        for i in 0..400 {
            let (s, a) = (f64::from(i % 20) * 5.0, f64::from(i / 20) * 5.0);
            data.push(&[s], &[a], 0.0, &[s], false).unwrap();
            targets.push((s / 30.0).sin() + (a / 40.0).cos());
        }
        let mut rng = RunSeed(3).stream("fit");
        let network = Mlp::new(&MlpConfig::new(&[2, 32, 1]), &mut rng).unwrap();
        let scaling = InputScaling::from_bounds(&[0.0, 0.0], &[100.0, 100.0]).unwrap();
        let mut q = MlpQ::new(network, 1)
            .unwrap()
            .with_input_scaling(scaling)
            .unwrap();
        let mut fit = AdamFit::new(AdamFitSettings {
            epochs: 300,
            batch_size: 50,
            adam: AdamConfig::with_lr(3e-3),
            average_last_epochs: 0,
        })
        .unwrap();
        let loss = fit.fit(&mut q, &data, &targets, &mut rng).unwrap();
        let mut ws = q.workspace_for_batch(data.len());
        let mut values = vec![0.0; data.len()];
        let (states, actions): (Vec<f64>, Vec<f64>) = (0..data.len())
            .map(|i| (data.state(i)[0], data.action(i)[0]))
            .unzip();
        q.values_into(&mut ws, &states, &actions, &mut values)
            .unwrap();
        let mse = values
            .iter()
            .zip(&targets)
            .map(|(v, y)| (v - y) * (v - y))
            .sum::<f64>()
            / data.len() as f64;
        assert!((loss - mse).abs() <= 1e-5 * (1.0 + mse), "{loss} vs {mse}");
        assert!(mse < 1e-3, "{mse}");
    }

    /// Tail averaging: the fitted θ is the mean of the iterates of the last epochs. With
    /// all of 𝒟 in one minibatch an epoch is one Adam step, so the iterates are those of
    /// successive one-epoch fits sharing the optimizer (their rows summed in another
    /// order, hence a tolerance).
    #[test]
    fn adam_fit_averages_the_iterates_of_its_last_epochs() {
        use crate::nn::{Mlp, MlpConfig};
        use crate::qfunction::MlpQ;
        let mut data = Transitions::new(1, 1);
        let mut targets = Vec::new();
        for i in 0..64 {
            let (s, a) = (f64::from(i % 8) / 4.0 - 1.0, f64::from(i / 8) / 4.0 - 1.0);
            data.push(&[s], &[a], 0.0, &[s], false).unwrap();
            targets.push((2.0 * s).sin() * a);
        }
        let network =
            Mlp::new(&MlpConfig::new(&[2, 16, 1]), &mut RunSeed(4).stream("init")).unwrap();
        let settings = |epochs, average_last_epochs| AdamFitSettings {
            epochs,
            batch_size: 64,
            adam: AdamConfig::with_lr(1e-2),
            average_last_epochs,
        };
        let mut averaged = MlpQ::new(network.clone(), 1).unwrap();
        AdamFit::new(settings(5, 3))
            .unwrap()
            .fit(
                &mut averaged,
                &data,
                &targets,
                &mut RunSeed(5).stream("fit"),
            )
            .unwrap();

        let mut q = MlpQ::new(network, 1).unwrap();
        let mut fit = AdamFit::new(settings(1, 0)).unwrap();
        let mut rng = RunSeed(5).stream("fit");
        let mut sum = vec![0.0; q.network().num_params()];
        for step in 0..5 {
            fit.fit(&mut q, &data, &targets, &mut rng).unwrap();
            if step >= 2 {
                for (sum, &p) in sum.iter_mut().zip(q.network().params()) {
                    *sum += f64::from(p);
                }
            }
        }
        let last = q.network().params();
        let mut moved = 0.0_f64;
        for ((&p, &sum), &last) in averaged.network().params().iter().zip(&sum).zip(last) {
            let mean = sum / 3.0;
            assert!(
                (f64::from(p) - mean).abs() <= 1e-5 * (1.0 + mean.abs()),
                "{p} vs {mean}"
            );
            moved = moved.max((f64::from(last) - mean).abs());
        }
        // The mean is not the last iterate: the test tells the two apart.
        assert!(moved > 1e-3, "{moved}");
    }
}
