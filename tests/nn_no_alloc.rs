//! A training step allocates nothing once its buffers exist.
//!
//! A counting global allocator records every allocation made on this test's thread.
//! After one warm-up step (which sizes the workspaces and the per-thread GEMM scratch),
//! further steps of a DDPG-like update — critic forward, MSE, backward with the input
//! gradient, actor forward and backward through ∇ₐq, Adam on both, Polyak averaging —
//! must allocate exactly zero bytes, at full and at smaller batch sizes.

use policy_param::nn::{mse_with_gradient, Activation, Adam, AdamConfig, Mlp, MlpConfig};
use policy_param::rng::RunSeed;

mod counting_allocator;
use counting_allocator::allocated_by;

/// Everything one DDPG-style update needs, allocated up front.
struct Learner {
    critic: Mlp,
    critic_target: Mlp,
    actor: Mlp,
    critic_adam: Adam,
    actor_adam: Adam,
    critic_ws: Workspaces,
    actor_ws: policy_param::nn::Workspace,
    critic_grads: Vec<f32>,
    actor_grads: Vec<f32>,
    td_grad: Vec<f32>,
    grad_critic_input: Vec<f32>,
    grad_action: Vec<f32>,
    observations: Vec<f32>,
    objective_input: Vec<f32>,
    targets: Vec<f32>,
}

struct Workspaces {
    fit: policy_param::nn::Workspace,
    actor_objective: policy_param::nn::Workspace,
}

const OBS: usize = 3;
const ACT: usize = 1;
const MAX_BATCH: usize = 64;

impl Learner {
    fn new() -> Self {
        let seed = RunSeed(5);
        let critic_config = MlpConfig::new(&[OBS + ACT, 64, 64, 1]);
        let actor_config = MlpConfig::new(&[OBS, 64, 64, ACT]).output(Activation::Tanh);
        let critic = Mlp::new(&critic_config, &mut seed.stream("critic")).expect("valid");
        let actor = Mlp::new(&actor_config, &mut seed.stream("actor")).expect("valid");
        let adam = AdamConfig::with_lr(1e-3);
        Learner {
            critic_target: critic.clone(),
            critic_adam: Adam::new(adam, critic.num_params()).expect("valid"),
            actor_adam: Adam::new(adam, actor.num_params()).expect("valid"),
            critic_ws: Workspaces {
                fit: critic.workspace(MAX_BATCH),
                actor_objective: critic.workspace(MAX_BATCH),
            },
            actor_ws: actor.workspace(MAX_BATCH),
            critic_grads: critic.zero_grads(),
            actor_grads: actor.zero_grads(),
            td_grad: vec![0.0; MAX_BATCH],
            grad_critic_input: vec![0.0; MAX_BATCH * (OBS + ACT)],
            grad_action: vec![0.0; MAX_BATCH * ACT],
            observations: vec![0.0; MAX_BATCH * OBS],
            objective_input: vec![0.0; MAX_BATCH * (OBS + ACT)],
            targets: vec![0.0; MAX_BATCH],
            critic,
            actor,
        }
    }

    /// One update on `batch` rows of `transitions` (`[s, a]` rows) and `targets`.
    fn step(&mut self, transitions: &[f32], batch: usize) {
        let width = OBS + ACT;
        let input = &transitions[..batch * width];
        // Critic: fit q(s, a) to the targets.
        self.targets[..batch]
            .iter_mut()
            .zip(input.chunks(width))
            .for_each(|(y, row)| *y = row[0] - 0.5 * row[OBS]);
        let q = self
            .critic
            .forward(input, &mut self.critic_ws.fit)
            .expect("shapes");
        mse_with_gradient(q, &self.targets[..batch], &mut self.td_grad[..batch]).expect("shapes");
        self.critic_grads.fill(0.0);
        let grad_input = &mut self.grad_critic_input[..batch * width];
        self.critic
            .backward(
                &mut self.critic_ws.fit,
                &self.td_grad[..batch],
                &mut self.critic_grads,
                Some(grad_input),
            )
            .expect("shapes");
        self.critic_adam
            .step(self.critic.params_mut(), &self.critic_grads)
            .expect("shapes");

        // Actor: ascend q(s, d(s)) through ∇ₐq, i.e. descend −(1/b)Σ q(s, d(s)).
        let observations = &mut self.observations[..batch * OBS];
        for (obs, row) in observations.chunks_mut(OBS).zip(input.chunks(width)) {
            obs.copy_from_slice(&row[..OBS]);
        }
        let actions = self
            .actor
            .forward(observations, &mut self.actor_ws)
            .expect("shapes");
        let objective_input = &mut self.objective_input[..batch * width];
        for ((row, obs), a) in objective_input
            .chunks_mut(width)
            .zip(observations.chunks(OBS))
            .zip(actions.chunks(ACT))
        {
            row[..OBS].copy_from_slice(obs);
            row[OBS..].copy_from_slice(a);
        }
        self.critic
            .forward(objective_input, &mut self.critic_ws.actor_objective)
            .expect("shapes");
        let minus_mean = &mut self.td_grad[..batch];
        minus_mean.fill(-1.0 / batch as f32);
        self.critic
            .input_gradient(
                &mut self.critic_ws.actor_objective,
                minus_mean,
                &mut self.grad_critic_input[..batch * width],
            )
            .expect("shapes");
        for (g, row) in self.grad_action[..batch * ACT]
            .chunks_mut(ACT)
            .zip(self.grad_critic_input.chunks(width))
        {
            g.copy_from_slice(&row[OBS..]);
        }
        self.actor_grads.fill(0.0);
        self.actor
            .backward(
                &mut self.actor_ws,
                &self.grad_action[..batch * ACT],
                &mut self.actor_grads,
                None,
            )
            .expect("shapes");
        self.actor_adam
            .step(self.actor.params_mut(), &self.actor_grads)
            .expect("shapes");

        self.critic_target
            .polyak_update(&self.critic, 0.005)
            .expect("valid tau");
    }
}

#[test]
fn training_steps_after_the_first_allocate_nothing() {
    let mut rng = RunSeed(1).stream("data");
    let transitions: Vec<f32> = (0..MAX_BATCH * (OBS + ACT))
        .map(|_| rand::Rng::gen_range(&mut rng, -1.0..1.0))
        .collect();
    let mut learner = Learner::new();
    learner.step(&transitions, MAX_BATCH);

    let ((), allocated) = allocated_by(|| {
        for step in 0..20 {
            // Full batches and smaller ones (including a single row) reuse the same buffers.
            let batch = [MAX_BATCH, 17, 1, MAX_BATCH - 1][step % 4];
            learner.step(&transitions, batch);
        }
    });

    assert_eq!(
        (allocated.calls, allocated.bytes),
        (0, 0),
        "allocations and bytes during 20 steps"
    );
    // The steps did change the networks (the loop was not optimized into nothing).
    assert_ne!(learner.critic.params(), learner.critic_target.params());
}
