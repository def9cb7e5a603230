//! Bit-level fingerprints of DDPG, TD3 and SAC runs, to check that a refactoring of the
//! online agents changes no floating-point operation and no random draw.
//!
//! Each run takes 1500 steps on Pendulum-v1 and on `Lqr` (the double integrator of
//! `env::make`), with several configurations of each algorithm (the presets and a few
//! variants that exercise every setting: hard copies, Ornstein–Uhlenbeck noise, twin
//! critics, the value network, fixed and learned temperatures, several updates per
//! step, TD3's policy delay and target smoothing). A fingerprint is an FNV-1a hash of the bits of every step report, of every
//! network's parameters, of the replay buffer's contents and of 20 further steps.
//! Every run is made twice: straight, and through a checkpoint written to JSON at step
//! 700 and restored on a fresh environment; the two must agree (checked here).
//!
//! The hashes depend on the machine (the GEMM picks its kernel at run time), so compare
//! the output of two builds on the same machine:
//!
//! ```text
//! cargo run --release --example online_fingerprint > before.txt
//! # change the code
//! cargo run --release --example online_fingerprint > after.txt && diff before.txt after.txt
//! ```

use policy_param::algo::ddpg::{self, Ddpg, DdpgConfig, TargetUpdate};
use policy_param::algo::sac::{self, Sac, SacConfig, SoftTarget, Temperature};
use policy_param::algo::td3::{self, Td3, Td3Config};
use policy_param::env::{self, Env};
use policy_param::nn::{AdamConfig, Mlp};
use policy_param::noise::{NoiseConfig, OrnsteinUhlenbeckParams};
use policy_param::replay::ReplayBuffer;
use policy_param::rng::RunSeed;
use policy_param::Result;

const STEPS: u64 = 1500;
const CHECKPOINT_AT: u64 = 700;
const AFTER: u64 = 20;
const ENVS: [&str; 2] = ["Pendulum-v1", "Lqr"];

/// FNV-1a over 64-bit words.
struct Hash(u64);

impl Hash {
    fn new() -> Self {
        Hash(0xcbf2_9ce4_8422_2325)
    }

    fn u64(&mut self, x: u64) {
        for b in x.to_le_bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn f64(&mut self, x: f64) {
        self.u64(x.to_bits());
    }

    fn f32s(&mut self, xs: &[f32]) {
        self.u64(xs.len() as u64);
        for x in xs {
            self.u64(u64::from(x.to_bits()));
        }
    }

    fn opt_f64(&mut self, x: Option<f64>) {
        match x {
            None => self.u64(u64::MAX),
            Some(x) => self.f64(x),
        }
    }

    fn mlp(&mut self, net: Option<&Mlp>) {
        match net {
            None => self.u64(u64::MAX - 1),
            Some(net) => self.f32s(net.params()),
        }
    }

    fn str(&mut self, s: &str) {
        for b in s.bytes() {
            self.u64(u64::from(b));
        }
    }

    fn replay(&mut self, replay: &ReplayBuffer) {
        self.u64(replay.len() as u64);
        for i in 0..replay.len() {
            let t = replay.get(i).unwrap();
            self.f32s(t.observation);
            self.f32s(t.action);
            self.u64(u64::from(t.reward.to_bits()));
            self.f32s(t.next_observation);
            self.u64(u64::from(t.terminal));
        }
    }

    /// An episode's end as (return, length, terminated).
    fn episode_end(&mut self, end: Option<(f64, usize, bool)>) {
        match end {
            None => self.u64(u64::MAX),
            Some((episode_return, length, terminated)) => {
                self.f64(episode_return);
                self.u64(length as u64);
                self.u64(u64::from(terminated));
            }
        }
    }
}

/// What a run hashes: the reports of its steps, then (at the end) its state.
trait Fingerprinted: Sized {
    fn start(env: Box<dyn Env>) -> Result<Self>;
    fn step(&mut self, hash: &mut Hash) -> Result<()>;
    fn state(&self, hash: &mut Hash);
    fn to_json(&self) -> Result<String>;
    fn from_json(json: &str, env: Box<dyn Env>) -> Result<Self>;
}

fn hash_ddpg_report(hash: &mut Hash, r: &ddpg::StepReport) {
    hash.u64(r.step);
    hash.f64(r.reward);
    hash.episode_end(
        r.episode_end
            .map(|e| (e.episode_return, e.length, e.terminated)),
    );
    match r.update {
        None => hash.u64(u64::MAX),
        Some(u) => {
            hash.f64(u.critic_loss);
            hash.f64(u.actor_objective);
        }
    }
}

fn hash_td3_report(hash: &mut Hash, r: &td3::StepReport) {
    hash.u64(r.step);
    hash.f64(r.reward);
    hash.episode_end(
        r.episode_end
            .map(|e| (e.episode_return, e.length, e.terminated)),
    );
    match r.update {
        None => hash.u64(u64::MAX),
        Some(u) => {
            hash.f64(u.critic_loss);
            hash.opt_f64(u.actor_objective);
        }
    }
}

fn hash_sac_report(hash: &mut Hash, r: &sac::StepReport) {
    hash.u64(r.step);
    hash.f64(r.reward);
    hash.episode_end(
        r.episode_end
            .map(|e| (e.episode_return, e.length, e.terminated)),
    );
    match r.update {
        None => hash.u64(u64::MAX),
        Some(u) => {
            hash.f64(u.critic_loss);
            hash.opt_f64(u.value_loss);
            hash.f64(u.policy_loss);
            hash.f64(u.entropy);
            hash.f64(u.beta);
        }
    }
}

/// Runs `steps` steps of `T` from a fresh start (or through a JSON checkpoint at
/// [`CHECKPOINT_AT`]), then [`AFTER`] more, and returns the hash (or the error met, as
/// text, which is fingerprinted too).
fn fingerprint<T: Fingerprinted>(env_id: &str, through_checkpoint: bool) -> String {
    let mut hash = Hash::new();
    let result = (|| -> Result<()> {
        let mut run = T::start(env::make(env_id)?)?;
        for step in 1..=STEPS {
            run.step(&mut hash)?;
            if through_checkpoint && step == CHECKPOINT_AT {
                let json = run.to_json()?;
                drop(run);
                run = T::from_json(&json, env::make(env_id)?)?;
            }
        }
        run.state(&mut hash);
        for _ in 0..AFTER {
            run.step(&mut hash)?;
        }
        run.state(&mut hash);
        Ok(())
    })();
    if let Err(error) = result {
        hash.str(&error.to_string());
        return format!("{:016x} (error: {error})", hash.0);
    }
    format!("{:016x}", hash.0)
}

macro_rules! ddpg_run {
    ($name:ident, $config:expr) => {
        struct $name(Ddpg);
        impl Fingerprinted for $name {
            fn start(env: Box<dyn Env>) -> Result<Self> {
                let config: DdpgConfig = $config;
                Ok($name(Ddpg::new(&config.check()?, env, RunSeed(7))?))
            }
            fn step(&mut self, hash: &mut Hash) -> Result<()> {
                let report = self.0.step()?;
                hash_ddpg_report(hash, &report);
                Ok(())
            }
            fn state(&self, hash: &mut Hash) {
                let d = &self.0;
                hash.mlp(Some(d.actor()));
                hash.mlp(Some(d.critic()));
                hash.mlp(Some(d.actor_target()));
                hash.mlp(Some(d.critic_target()));
                for &x in d.noise().state() {
                    hash.f64(x);
                }
                hash.replay(d.replay());
                hash.u64(d.steps());
                hash.u64(d.updates());
                hash.u64(d.episodes());
            }
            fn to_json(&self) -> Result<String> {
                self.0.to_json()
            }
            fn from_json(json: &str, env: Box<dyn Env>) -> Result<Self> {
                Ok($name(Ddpg::from_json(json, env)?))
            }
        }
    };
}

macro_rules! td3_run {
    ($name:ident, $config:expr) => {
        struct $name(Td3);
        impl Fingerprinted for $name {
            fn start(env: Box<dyn Env>) -> Result<Self> {
                let config: Td3Config = $config;
                Ok($name(Td3::new(&config.check()?, env, RunSeed(7))?))
            }
            fn step(&mut self, hash: &mut Hash) -> Result<()> {
                let report = self.0.step()?;
                hash_td3_report(hash, &report);
                Ok(())
            }
            fn state(&self, hash: &mut Hash) {
                let t = &self.0;
                let n = t.networks();
                hash.mlp(Some(&n.actor));
                hash.mlp(Some(&n.actor_target));
                for j in 0..2 {
                    hash.mlp(Some(&n.critics[j]));
                    hash.mlp(Some(&n.critic_targets[j]));
                }
                hash.replay(t.replay());
                hash.u64(t.steps());
                hash.u64(t.updates());
                hash.u64(t.episodes());
            }
            fn to_json(&self) -> Result<String> {
                self.0.to_json()
            }
            fn from_json(json: &str, env: Box<dyn Env>) -> Result<Self> {
                Ok($name(Td3::from_json(json, env)?))
            }
        }
    };
}

macro_rules! sac_run {
    ($name:ident, $config:expr) => {
        struct $name(Sac);
        impl Fingerprinted for $name {
            fn start(env: Box<dyn Env>) -> Result<Self> {
                let config: SacConfig = $config;
                Ok($name(Sac::new(&config.check()?, env, RunSeed(7))?))
            }
            fn step(&mut self, hash: &mut Hash) -> Result<()> {
                let report = self.0.step()?;
                hash_sac_report(hash, &report);
                Ok(())
            }
            fn state(&self, hash: &mut Hash) {
                let s = &self.0;
                hash.mlp(Some(s.policy().network()));
                for j in 0..2 {
                    hash.mlp(s.critic(j));
                    hash.mlp(s.critic_target(j));
                }
                hash.mlp(s.value());
                hash.mlp(s.value_target());
                hash.f64(s.beta());
                hash.replay(s.replay());
                hash.u64(s.steps());
                hash.u64(s.updates());
                hash.u64(s.episodes());
            }
            fn to_json(&self) -> Result<String> {
                self.0.to_json()
            }
            fn from_json(json: &str, env: Box<dyn Env>) -> Result<Self> {
                Ok($name(Sac::from_json(json, env)?))
            }
        }
    };
}

ddpg_run!(DdpgChapter, DdpgConfig::chapter());
ddpg_run!(
    DdpgZoo,
    DdpgConfig {
        learning_starts: 200,
        ..DdpgConfig::zoo_pendulum()
    }
);
ddpg_run!(
    DdpgDefault,
    DdpgConfig {
        learning_starts: 200,
        ..DdpgConfig::default()
    }
);
ddpg_run!(
    DdpgVariant,
    DdpgConfig {
        actor_hidden: vec![64, 64],
        critic_hidden: vec![64, 64],
        batch_size: 32,
        buffer_size: 500,
        noise: NoiseConfig::OrnsteinUhlenbeck(OrnsteinUhlenbeckParams::default()),
        clip_actions: false,
        target_update: TargetUpdate::HardCopy { every: 50 },
        learning_starts: 200,
        random_actions_before_learning: false,
        updates_per_step: 2,
        ..DdpgConfig::default()
    }
);
td3_run!(
    Td3Zoo,
    Td3Config {
        learning_starts: 200,
        ..Td3Config::zoo_pendulum()
    }
);
td3_run!(Td3Default, Td3Config::default());
td3_run!(
    Td3Variant,
    Td3Config {
        hidden: vec![64, 64],
        batch_size: 32,
        buffer_size: 500,
        learning_starts: 200,
        sigma: 0.2,
        policy_delay: 3,
        target_noise: 0.3,
        target_noise_clip: 0.4,
        tau: 0.01,
        updates_per_step: 2,
        ..Td3Config::default()
    }
);
sac_run!(SacChapter, SacConfig::chapter());
sac_run!(
    SacZoo,
    SacConfig {
        learning_starts: 200,
        ..SacConfig::zoo_pendulum()
    }
);
sac_run!(
    SacDefault,
    SacConfig {
        learning_starts: 200,
        ..SacConfig::default()
    }
);
sac_run!(
    SacTwinValueFixed,
    SacConfig {
        learning_starts: 200,
        target: SoftTarget::ValueNetwork,
        twin_critics: true,
        target_tau: Some(0.005),
        temperature: Temperature::Fixed { beta: 0.2 },
        ..SacConfig::default()
    }
);
sac_run!(
    SacVariant,
    SacConfig {
        policy_hidden: vec![64],
        critic_hidden: vec![64, 64],
        value_hidden: vec![32],
        batch_size: 32,
        buffer_size: 500,
        learning_starts: 200,
        random_actions_before_learning: false,
        updates_per_step: 2,
        twin_critics: false,
        target_tau: None,
        last_layer_init: Some(3e-3),
        temperature: Temperature::Auto {
            initial: 0.5,
            target_entropy: Some(-0.5),
        },
        temperature_optimizer: AdamConfig::with_lr(1e-3),
        ..SacConfig::default()
    }
);

fn report<T: Fingerprinted>(name: &str, failures: &mut usize) {
    for env_id in ENVS {
        let straight = fingerprint::<T>(env_id, false);
        let resumed = fingerprint::<T>(env_id, true);
        let agree = if straight == resumed {
            "resumed identical"
        } else {
            *failures += 1;
            eprintln!("{name} on {env_id}: the resumed run differs: {resumed}");
            "RESUMED DIFFERS"
        };
        println!("{name:<22} {env_id:<12} {straight}  {agree}");
    }
}

/// Prints the fingerprints of one configuration, counting runs that did not resume.
type Report = fn(&str, &mut usize);

fn main() {
    let only = std::env::args().nth(1);
    let mut failures = 0;
    let runs: [(&str, Report); 12] = [
        ("ddpg-chapter", report::<DdpgChapter>),
        ("ddpg-zoo-pendulum", report::<DdpgZoo>),
        ("ddpg-default", report::<DdpgDefault>),
        ("ddpg-variant", report::<DdpgVariant>),
        ("td3-zoo-pendulum", report::<Td3Zoo>),
        ("td3-default", report::<Td3Default>),
        ("td3-variant", report::<Td3Variant>),
        ("sac-chapter", report::<SacChapter>),
        ("sac-zoo-pendulum", report::<SacZoo>),
        ("sac-default", report::<SacDefault>),
        ("sac-twin-value-fixed", report::<SacTwinValueFixed>),
        ("sac-variant", report::<SacVariant>),
    ];
    for (name, run) in runs {
        if only.as_deref().is_none_or(|o| name.starts_with(o)) {
            run(name, &mut failures);
        }
    }
    if failures > 0 {
        eprintln!("{failures} run(s) did not resume bit for bit");
        std::process::exit(1);
    }
}
