//! The Gaussian and tanh-squashed Gaussian policy heads: their log-densities against
//! numerical integration (normalization, moments, entropy, the squashed CDF), the
//! log-densities of reparameterized samples, stability where 1 − tanh² underflows, and
//! the reparameterized gradient of SAC's policy loss against finite differences.

use rand::{Rng as _, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use policy_param::algo::smooth_fqi::BoxQuadrature;
use policy_param::nn::{Activation, Mlp, MlpConfig};
use policy_param::policy::{GaussianHead, LOG_STD_BOUNDS};
use policy_param::rng::{Rng, RunSeed};

/// `∫ f` over a box by composite Gauss–Legendre, for any sign of f.
fn integrate(low: &[f64], high: &[f64], panels: usize, f: impl Fn(&[f64]) -> f64) -> f64 {
    let rule = BoxQuadrature::gauss_legendre(low, high, panels, 8).unwrap();
    let m = rule.dim();
    rule.nodes()
        .chunks(m)
        .zip(rule.log_weights())
        .map(|(a, w)| w.exp() * f(a))
        .sum()
}

/// Rows of (μ, log σ) per component: one and two dimensions, small and large σ.
fn rows() -> Vec<Vec<f64>> {
    vec![
        vec![0.3, -0.5],
        vec![-1.2, 0.7],
        vec![0.0, -2.5],
        vec![0.5, -1.0, 0.2, -0.3],
    ]
}

#[test]
fn the_gaussian_density_integrates_to_one_with_the_stated_mean_variance_and_entropy() {
    for output in rows() {
        let m = output.len() / 2;
        let head = GaussianHead::new(m, false, LOG_STD_BOUNDS).unwrap();
        let (mu, sigma): (Vec<f64>, Vec<f64>) =
            (0..m).map(|i| (output[i], output[m + i].exp())).unzip();
        let low: Vec<f64> = (0..m).map(|i| mu[i] - 12.0 * sigma[i]).collect();
        let high: Vec<f64> = (0..m).map(|i| mu[i] + 12.0 * sigma[i]).collect();
        let density = |a: &[f64]| head.log_prob(&output, a).unwrap().exp();
        let panels = if m == 1 { 64 } else { 24 };
        let mass = integrate(&low, &high, panels, density);
        assert!((mass - 1.0).abs() < 1e-10, "{output:?}: mass {mass}");
        for i in 0..m {
            let mean = integrate(&low, &high, panels, |a| a[i] * density(a));
            let variance = integrate(&low, &high, panels, |a| (a[i] - mu[i]).powi(2) * density(a));
            assert!((mean - mu[i]).abs() < 1e-9, "{output:?}: mean {mean}");
            assert!(
                (variance / sigma[i].powi(2) - 1.0).abs() < 1e-9,
                "{output:?}: variance {variance}"
            );
        }
        let entropy = integrate(&low, &high, panels, |a| {
            let log_p = head.log_prob(&output, a).unwrap();
            -log_p * log_p.exp()
        });
        let closed_form = head.entropy(&output).unwrap().unwrap();
        assert!(
            (entropy - closed_form).abs() < 1e-9,
            "{output:?}: {entropy} vs {closed_form}"
        );
    }
}

/// Φ(x) by integrating the standard normal density from −12 (independent of the head).
fn standard_normal_cdf(x: f64) -> f64 {
    if x <= -12.0 {
        return 0.0;
    }
    integrate(&[-12.0], &[x], 200, |z| {
        (-0.5 * z[0] * z[0]).exp() / (2.0 * std::f64::consts::PI).sqrt()
    })
}

#[test]
fn the_squashed_density_integrates_to_one_on_the_open_box_and_has_the_tanh_cdf() {
    // σ ≤ 0.6 and |μ| ≤ 0.5: the mass of u beyond ±3.8 (a within 10⁻³ of a face, where
    // a uniform rule in a cannot follow the density) is below 10⁻⁷; in two dimensions,
    // whose rule is coarser, the means stay further from the faces.
    let rows = [
        vec![0.3, -0.5],
        vec![-0.5, -0.6],
        vec![0.0, -2.5],
        vec![0.4, -0.1, -1.2, -1.5],
    ];
    for output in rows {
        let m = output.len() / 2;
        let head = GaussianHead::new(m, true, LOG_STD_BOUNDS).unwrap();
        assert_eq!(head.entropy(&output).unwrap(), None);
        let edge = 1.0 - 1e-9;
        let density = |a: &[f64]| head.log_prob(&output, a).unwrap().exp();
        let panels = if m == 1 { 2000 } else { 120 };
        let mass = integrate(&vec![-edge; m], &vec![edge; m], panels, density);
        assert!((mass - 1.0).abs() < 1e-7, "{output:?}: mass {mass}");
        if m == 1 {
            // P(a ≤ t) = Φ((atanh t − μ)/σ).
            for t in [-0.9, -0.3, 0.0, 0.6, 0.95] {
                let cdf = integrate(&[-edge], &[t], 1000, density);
                let expected = standard_normal_cdf((f64::atanh(t) - output[0]) / output[1].exp());
                assert!(
                    (cdf - expected).abs() < 1e-8,
                    "{output:?}, t = {t}: {cdf} vs {expected}"
                );
            }
        }
        // Outside the open box the density is zero.
        assert_eq!(
            head.log_prob(&output, &vec![1.0; m]).unwrap(),
            f64::NEG_INFINITY
        );
    }
}

#[test]
fn sampled_log_probabilities_are_the_densities_at_the_sampled_actions() {
    let mut rng = Rng::seed_from_u64(3);
    for squashed in [false, true] {
        for output in rows() {
            let m = output.len() / 2;
            let head = GaussianHead::new(m, squashed, LOG_STD_BOUNDS).unwrap();
            for _ in 0..20 {
                let noise: Vec<f64> = (0..m).map(|_| StandardNormal.sample(&mut rng)).collect();
                let (mut action, mut log_prob) = (vec![0.0; m], [0.0]);
                head.sample(&output, &noise, &mut action, &mut log_prob)
                    .unwrap();
                for i in 0..m {
                    let u = output[i] + output[m + i].exp() * noise[i];
                    let expected = if squashed { u.tanh() } else { u };
                    assert!((action[i] - expected).abs() < 1e-15);
                }
                let density = head.log_prob(&output, &action).unwrap();
                assert!(
                    (log_prob[0] - density).abs() < 1e-9,
                    "{log_prob:?} vs {density}"
                );
            }
            let mut mean = vec![0.0; m];
            head.mean_action(&output, &mut mean).unwrap();
            for i in 0..m {
                let expected = if squashed {
                    output[i].tanh()
                } else {
                    output[i]
                };
                assert_eq!(mean[i], expected);
            }
        }
    }
}

#[test]
fn squashed_log_probabilities_stay_finite_where_one_minus_tanh_squared_underflows() {
    // u = 30 ± 0.05: tanh(u) rounds to 1 in f32 and f64, yet
    // log d = log N(u; μ, σ) − log(1 − tanh²u) = log N + 2u − 2 log 2 + O(e^{−2u}).
    let head = GaussianHead::new(1, true, LOG_STD_BOUNDS).unwrap();
    let output = [30.0f32, -3.0];
    for epsilon in [-1.0f32, 0.0, 1.0] {
        let (mut action, mut log_prob) = ([0.0f32], [0.0f32]);
        head.sample(&output, &[epsilon], &mut action, &mut log_prob)
            .unwrap();
        assert_eq!(action[0], 1.0);
        let u = 30.0 + (-3.0f64).exp() * f64::from(epsilon);
        let gaussian =
            -0.5 * (2.0 * std::f64::consts::PI).ln() + 3.0 - 0.5 * f64::from(epsilon).powi(2);
        let expected = gaussian + 2.0 * u - 2.0 * std::f64::consts::LN_2;
        assert!(log_prob[0].is_finite());
        assert!(
            (f64::from(log_prob[0]) - expected).abs() < 1e-4,
            "{} vs {expected}",
            log_prob[0]
        );
    }
}

/// SAC's policy loss in f64 for fixed ε:
/// `L(φ) = (1/b) Σᵢ [c_d · log d(f_φ(sᵢ,εᵢ)|sᵢ) − c_q · q(sᵢ, f_φ(sᵢ,εᵢ))]`.
struct Loss<'a> {
    head: GaussianHead,
    critic: &'a Mlp<f64>,
    states: &'a [f64],
    noise: &'a [f64],
    c_d: f64,
    c_q: f64,
}

impl Loss<'_> {
    fn rows(&self) -> usize {
        self.noise.len() / self.head.action_dim()
    }

    fn pairs(&self, actions: &[f64]) -> Vec<f64> {
        let m = self.head.action_dim();
        let o = self.states.len() / self.rows();
        self.states
            .chunks(o)
            .zip(actions.chunks(m))
            .flat_map(|(s, a)| s.iter().chain(a).copied())
            .collect()
    }

    fn value(&self, policy: &Mlp<f64>) -> f64 {
        let (b, m) = (self.rows(), self.head.action_dim());
        let output = policy
            .forward(self.states, &mut policy.workspace(b))
            .unwrap()
            .to_vec();
        let (mut actions, mut log_probs) = (vec![0.0; b * m], vec![0.0; b]);
        self.head
            .sample(&output, self.noise, &mut actions, &mut log_probs)
            .unwrap();
        let q = self
            .critic
            .forward(&self.pairs(&actions), &mut self.critic.workspace(b))
            .unwrap()
            .to_vec();
        (0..b)
            .map(|i| self.c_d * log_probs[i] - self.c_q * q[i])
            .sum::<f64>()
            / b as f64
    }

    /// The gradient the way SAC computes it: the critic's input gradient at the action
    /// columns, the head's backward pass, the policy network's backward pass.
    fn gradient(&self, policy: &Mlp<f64>) -> Vec<f64> {
        let (b, m) = (self.rows(), self.head.action_dim());
        let o = self.states.len() / b;
        let mut policy_ws = policy.workspace(b);
        let output = policy
            .forward(self.states, &mut policy_ws)
            .unwrap()
            .to_vec();
        let (mut actions, mut log_probs) = (vec![0.0; b * m], vec![0.0; b]);
        self.head
            .sample(&output, self.noise, &mut actions, &mut log_probs)
            .unwrap();
        let mut critic_ws = self.critic.workspace(b);
        self.critic
            .forward(&self.pairs(&actions), &mut critic_ws)
            .unwrap();
        let mut input_grad = vec![0.0; b * (o + m)];
        self.critic
            .input_gradient(
                &mut critic_ws,
                &vec![-self.c_q / b as f64; b],
                &mut input_grad,
            )
            .unwrap();
        let grad_actions: Vec<f64> = input_grad
            .chunks(o + m)
            .flat_map(|row| row[o..].to_vec())
            .collect();
        let mut grad_output = vec![0.0; b * 2 * m];
        self.head
            .backward(
                &output,
                self.noise,
                &grad_actions,
                &vec![self.c_d / b as f64; b],
                &mut grad_output,
            )
            .unwrap();
        let mut grads = policy.zero_grads();
        policy
            .backward(&mut policy_ws, &grad_output, &mut grads, None)
            .unwrap();
        grads
    }
}

#[test]
fn the_reparameterized_gradient_matches_finite_differences() {
    let (o, b) = (3, 6);
    let mut rng = RunSeed(5).stream("gradient-check");
    let states: Vec<f64> = (0..b * o).map(|_| rng.gen_range(-1.5..1.5)).collect();
    // (m, squashed, log-std bounds, c_d, c_q): the chapter's (1, 1/β) and SAC's (β, 1)
    // weights; tight bounds so that some rows' log σ are clamped (zero gradient there).
    let cases = [
        (1, false, LOG_STD_BOUNDS, 1.0, 1.0 / 0.7),
        (2, true, LOG_STD_BOUNDS, 0.3, 1.0),
        (2, false, (-0.4, 0.1), 1.0, 2.0),
        (1, true, (-0.4, 0.1), 0.5, 1.0),
    ];
    for (m, squashed, bounds, c_d, c_q) in cases {
        let head = GaussianHead::new(m, squashed, bounds).unwrap();
        let policy_config = MlpConfig::new(&[o, 8, 2 * m]).hidden(Activation::Tanh);
        let mut policy: Mlp<f64> = Mlp::new(&policy_config, &mut rng).unwrap();
        // Scale the log-std outputs up so that they cross the tight bounds.
        for p in policy.params_mut() {
            *p *= 2.0;
        }
        let critic_config = MlpConfig::new(&[o + m, 10, 1]).hidden(Activation::Tanh);
        let critic: Mlp<f64> = Mlp::new(&critic_config, &mut rng).unwrap();
        let noise: Vec<f64> = (0..b * m)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let loss = Loss {
            head,
            critic: &critic,
            states: &states,
            noise: &noise,
            c_d,
            c_q,
        };
        let analytic = loss.gradient(&policy);
        let h = 1e-6;
        let mut largest = 0.0f64;
        for (k, &analytic) in analytic.iter().enumerate() {
            let original = policy.params()[k];
            policy.params_mut()[k] = original + h;
            let up = loss.value(&policy);
            policy.params_mut()[k] = original - h;
            let down = loss.value(&policy);
            policy.params_mut()[k] = original;
            let numeric = (up - down) / (2.0 * h);
            largest = largest.max(numeric.abs());
            assert!(
                (analytic - numeric).abs() <= 1e-6 * (1.0 + numeric.abs()),
                "m {m}, squashed {squashed}, parameter {k}: analytic {analytic} vs numeric {numeric}"
            );
        }
        assert!(largest > 1e-3, "the check compared nonzero gradients");
    }
}
