//! Throughput of the `maximize` step of `fitted-q-iteration-explicit`, as FQI runs it:
//! one maximization per base point, over rayon workers with one workspace each.
//!
//! Cases:
//! * `lbfgs_mlp/{1d,6d}/threads={1,2}`: [`ProjectedLbfgs`] with default settings on an
//!   [`MlpQ`] critic [3 + action, 256, 256, 1] (ReLU), action box [−1, 1]ᵈ, 256 states
//!   per iteration, in rayon pools of 1 and 2 threads;
//! * `milp_large_allocation`: [`MilpMaximizer`] on `Allocation::large()`'s action space
//!   (30 integer variables, 4 constraints) with a random state-dependent affine q, 64
//!   states per iteration, one thread.
//!
//! Criterion's elements/s are maximizations (or MILP solves) per second. Before the
//! timings, the mean number of q evaluations per maximization is printed.
//!
//! Run: `cargo bench --bench maximize -- --warm-up-time 1 --measurement-time 5`.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use policy_param::env::allocation::Allocation;
use policy_param::env::ActionSpace;
use policy_param::maximize::{LbfgsSettings, Maximizer, MilpMaximizer, ProjectedLbfgs, QFunction};
use policy_param::nn::MlpConfig;
use policy_param::qfunction::MlpQ;
use policy_param::rng::{Rng, RunSeed};
use policy_param::Result;
use rand::Rng as _;
use rayon::prelude::*;

const STATE_DIM: usize = 3;
const STATES: usize = 256;
const MILP_STATES: usize = 64;

/// Maximize q at every state in parallel; the sum of the maxima and of the evaluations.
fn maximize_all<M: Maximizer, Q: QFunction>(
    maximizer: &M,
    q: &Q,
    states: &[f64],
    seed: RunSeed,
) -> (f64, usize) {
    let state_dim = q.state_dim();
    let action_dim = maximizer.action_space().dim();
    states
        .par_chunks_exact(state_dim)
        .enumerate()
        .map_init(
            || (q.workspace(), maximizer.workspace(), vec![0.0; action_dim]),
            |(q_ws, ws, action), (i, state)| {
                let mut rng = seed.indexed("maximize", i as u64);
                let m = maximizer
                    .maximize(q, q_ws, ws, state, action, &mut rng)
                    .expect("maximization");
                (m.value, m.evaluations)
            },
        )
        .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

fn random_states(count: usize, dim: usize, range: f64, seed: u64) -> Vec<f64> {
    let mut rng = RunSeed(seed).stream("states");
    (0..count * dim)
        .map(|_| rng.gen_range(-range..range))
        .collect()
}

fn bench_lbfgs(c: &mut Criterion) {
    let mut group = c.benchmark_group("lbfgs_mlp");
    group.sample_size(10);
    group.throughput(Throughput::Elements(STATES as u64));
    let states = random_states(STATES, STATE_DIM, 1.0, 1);
    for action_dim in [1, 6] {
        let config = MlpConfig::new(&[STATE_DIM + action_dim, 256, 256, 1]);
        let q = MlpQ::from_config(&config, STATE_DIM, &mut RunSeed(2).stream("critic")).unwrap();
        let space = ActionSpace::Box {
            low: vec![-1.0; action_dim],
            high: vec![1.0; action_dim],
        };
        let lbfgs = ProjectedLbfgs::new(space, LbfgsSettings::default()).unwrap();
        let (_, evaluations) = maximize_all(&lbfgs, &q, &states, RunSeed(3));
        println!(
            "lbfgs_mlp/{action_dim}d: {:.1} q evaluations per maximization \
             ({} of them the screened candidates, in one batched forward pass)",
            evaluations as f64 / STATES as f64,
            lbfgs.settings().candidates
        );
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            group.bench_function(format!("{action_dim}d/threads={threads}"), |b| {
                b.iter(|| pool.install(|| black_box(maximize_all(&lbfgs, &q, &states, RunSeed(3)))))
            });
        }
    }
    group.finish();
}

/// q(s, a) = c(s)ᵀa with c(s) = W s + b: affine in the action, as a MILP needs.
struct AffineQ {
    state_dim: usize,
    w: Vec<f64>,
    b: Vec<f64>,
}

impl AffineQ {
    fn random(state_dim: usize, action_dim: usize, rng: &mut Rng) -> Self {
        let mut draw = |n: usize| (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        AffineQ {
            state_dim,
            w: draw(action_dim * state_dim),
            b: draw(action_dim),
        }
    }
}

impl AffineQ {
    fn coefficients(&self, state: &[f64], c: &mut [f64]) {
        for (i, ci) in c.iter_mut().enumerate() {
            let row = &self.w[i * self.state_dim..(i + 1) * self.state_dim];
            *ci = self.b[i] + row.iter().zip(state).map(|(w, s)| w * s).sum::<f64>();
        }
    }
}

impl QFunction for AffineQ {
    type Workspace = Vec<f64>;

    fn state_dim(&self) -> usize {
        self.state_dim
    }
    fn action_dim(&self) -> usize {
        self.b.len()
    }
    fn workspace(&self) -> Vec<f64> {
        vec![0.0; self.b.len()]
    }
    fn value(&self, ws: &mut Vec<f64>, state: &[f64], action: &[f64]) -> Result<f64> {
        self.coefficients(state, ws);
        Ok(ws.iter().zip(action).map(|(c, a)| c * a).sum())
    }
    fn value_and_action_gradient(
        &self,
        ws: &mut Vec<f64>,
        state: &[f64],
        action: &[f64],
        gradient: &mut [f64],
    ) -> Result<f64> {
        let value = self.value(ws, state, action)?;
        gradient.copy_from_slice(ws);
        Ok(value)
    }
    fn affine_in_action(
        &self,
        _ws: &mut Vec<f64>,
        state: &[f64],
        coefficients: &mut [f64],
    ) -> Result<Option<f64>> {
        self.coefficients(state, coefficients);
        Ok(Some(0.0))
    }
}

fn bench_milp(c: &mut Criterion) {
    let env = Allocation::large().unwrap();
    let space = env.model().integer_space().clone();
    let dim = space.lower.len();
    let sites = env.model().sites();
    let milp = MilpMaximizer::new(space).unwrap();
    let q = AffineQ::random(sites, dim, &mut RunSeed(4).stream("q"));
    let states: Vec<f64> = random_states(MILP_STATES, sites, 5.0, 5)
        .iter()
        .map(|d| d.abs())
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("milp_large_allocation");
    group.sample_size(10);
    group.throughput(Throughput::Elements(MILP_STATES as u64));
    group.bench_function("threads=1", |b| {
        b.iter(|| pool.install(|| black_box(maximize_all(&milp, &q, &states, RunSeed(6)))))
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_lbfgs(&mut criterion);
    bench_milp(&mut criterion);
    criterion.final_summary();
}
