//! Online agents (DDPG, SAC, ...) on any environment whose actions they can take, through
//! one code path: [`OnlineAdapter`] runs a grid cell, [`train_dir`] one run into a
//! directory (`policy-param train`), [`eval_dir`] evaluates what it saved. All three read
//! the algorithm's flat hyperparameters from the library ([`policy_param::hyperparams`])
//! and train with the library's one loop ([`policy_param::train::train`]).
//!
//! Metrics of a cell: `eval_return` every `eval_every` steps and at the end (mean
//! undiscounted return of the deterministic policy over `eval_episodes` episodes as long
//! as the environment's time limit); at the same steps the means of the agent's update
//! metrics since the previous point (`critic_loss`, and SAC's `value_loss`, `entropy`,
//! `beta`); once (step 0): `final_eval_return`, `update_steps_per_second` (timing:
//! environment steps with their update, per second, evaluation excluded) and
//! `run_seconds`. A non-finite critic loss or one above `max_loss` is divergence.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};

use policy_param::algo::ddpg_params::DdpgParams;
use policy_param::algo::online::{Agent, AgentConfig, EpisodeEnd, Online};
use policy_param::algo::sac_params::SacParams;
use policy_param::algo::td3::Td3Config;
use policy_param::env::lqr::{Lqr, LqrParams};
use policy_param::env::{self, Env};
use policy_param::eval::evaluate_with;
use policy_param::hyperparams::{as_object, Key, Preset};
use policy_param::rng::RunSeed;
use policy_param::train::{
    self, evaluation_settings, EvalPoint, OnlineAlgorithm, TrainConfig, TrainObserver, TrainTiming,
};

use crate::error::{CellError, Error, Invalid, Result};
use crate::experiment::{Adapter, CellContext};
use crate::files::write_text;

/// Every online algorithm, by the name grids and `policy-param train` use.
pub static ONLINE: &[&dyn OnlineEntry] = &[
    &OnlineAdapter::<DdpgParams>::NEW,
    &OnlineAdapter::<Td3Config>::NEW,
    &OnlineAdapter::<SacParams>::NEW,
];

/// The environments an online agent may be asked to run on: every environment of
/// [`env::ENVIRONMENTS`] with a continuous (box) action space. Whether an agent can act in
/// one at given values (a finite box for a tanh-scaled policy, ...) is checked when the
/// grid is loaded.
pub static ONLINE_ENVIRONMENTS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    env::ENVIRONMENTS
        .iter()
        .filter(|e| {
            (e.make)().is_ok_and(|env| matches!(env.action_space(), env::ActionSpace::Box { .. }))
        })
        .map(|e| e.id)
        .collect()
});

/// The online algorithm named `name`, or an error listing them.
pub fn online_algorithm(name: &str) -> Result<&'static dyn OnlineEntry> {
    ONLINE
        .iter()
        .find(|a| a.algorithm() == name)
        .copied()
        .ok_or_else(|| {
            let known: Vec<&str> = ONLINE.iter().map(|a| a.algorithm()).collect();
            Error::Usage(format!(
                "unknown online algorithm {name:?} (known: {})",
                known.join(", ")
            ))
        })
}

/// An online algorithm with its types erased: what the command line needs.
pub trait OnlineEntry: Adapter {
    /// Every key (the run's, then the algorithm's) with its default under the first preset.
    fn keys(&self) -> Vec<(&'static Key, Value)>;
    /// The presets' names and meanings.
    fn presets(&self) -> Vec<(&'static str, &'static str)>;
    /// Resolves and checks `overrides` over `preset` for `environment`: every key's value.
    fn resolve(
        &self,
        environment: &str,
        preset: Option<&str>,
        overrides: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Invalid>;
    /// Trains (or resumes) the run that `run_dir` describes (see [`train_dir`]).
    fn train(&self, run: &RunDir, progress: bool) -> Result<TrainOutcome>;
    /// Evaluates the saved policy of `run` over `episodes` episodes seeded from `seed`.
    fn evaluate(&self, run: &RunDir, episodes: usize, seed: u64) -> Result<(f64, f64)>;
}

/// The type-erasing adapter of online algorithm `P`.
pub struct OnlineAdapter<P>(PhantomData<fn() -> P>);

impl<P> OnlineAdapter<P> {
    pub const NEW: Self = OnlineAdapter(PhantomData);
}

fn invalid(e: policy_param::Error) -> Invalid {
    match e {
        policy_param::Error::InvalidParameter { field, reason } => Invalid::new(field, reason),
        other => Invalid::new("", other.to_string()),
    }
}

fn make_env(environment: &str) -> policy_param::Result<Box<dyn Env>> {
    env::make(environment)
}

impl<P: OnlineAlgorithm> OnlineAdapter<P> {
    /// Whether `P`'s agent can act in `environment`, at these values.
    fn check_environment(&self, environment: &str, config: &TrainConfig<P>) -> Result<(), Invalid> {
        if !ONLINE_ENVIRONMENTS.contains(&environment) {
            return Err(Invalid::new(
                "environment",
                format!(
                    "{} does not run on {environment:?} (known: {})",
                    P::ALGORITHM,
                    ONLINE_ENVIRONMENTS.join(", ")
                ),
            ));
        }
        let env = make_env(environment).map_err(invalid)?;
        let agent_config = config.params.agent_config().check().map_err(invalid)?;
        Online::<P::Agent>::check_env(&agent_config, env.as_ref()).map_err(|e| {
            Invalid::new(
                "environment",
                format!("{environment}: {e} (choose other keys, or another environment)"),
            )
        })
    }
}

impl<P: OnlineAlgorithm> Adapter for OnlineAdapter<P> {
    fn name(&self) -> &'static str {
        P::ALGORITHM
    }
    fn algorithm(&self) -> &'static str {
        P::ALGORITHM
    }
    fn environments(&self) -> &'static [&'static str] {
        &ONLINE_ENVIRONMENTS
    }
    fn description(&self) -> &'static str {
        "online agent (policy_param::train): evaluation return every eval_every steps"
    }

    fn defaults(&self) -> Value {
        let mut all = as_object(&train::RunSettings::default()).unwrap_or_default();
        all.extend(as_object(&P::defaults()).unwrap_or_default());
        Value::Object(all)
    }

    fn parse(&self, environment: &str, table: toml::Table) -> Result<Value, Invalid> {
        let mut values = match serde_json::to_value(&table) {
            Ok(Value::Object(map)) => map,
            _ => return Err(Invalid::new("", "not a table")),
        };
        let preset = match values.remove("preset") {
            None => None,
            Some(Value::String(name)) => Some(name),
            Some(other) => {
                return Err(Invalid::new(
                    "preset",
                    format!("{other} is not a preset name"),
                ))
            }
        };
        let config = TrainConfig::<P>::resolve(preset.as_deref(), &values).map_err(invalid)?;
        self.check_environment(environment, &config)?;
        config.identity().map(Value::Object).map_err(invalid)
    }

    fn run(
        &self,
        environment: &str,
        config: &Value,
        seed: u64,
        ctx: &mut CellContext,
    ) -> Result<(), CellError> {
        let values = config.as_object().cloned().unwrap_or_default();
        let config = TrainConfig::<P>::from_json(&values)?;
        let seed = RunSeed(seed);
        let mut online = Online::<P::Agent>::new(
            &config.params.agent_config().check()?,
            make_env(environment)?,
            seed,
        )?;
        ctx.set_total(config.run.steps);
        let riccati_return = match environment {
            "Lqr" => Some(riccati_return(
                online.env(),
                config.run.eval_episodes,
                seed,
            )?),
            _ => None,
        };
        if let Some(optimal) = riccati_return {
            ctx.record(0, "riccati_return", optimal);
        }
        let mut observer = CellObserver {
            ctx,
            steps: config.run.steps,
            riccati_return,
        };
        let make = || make_env(environment);
        let timing = train::train(&mut online, &config.run, &make, seed, &mut observer)?;
        if let Some(rate) = timing.update_steps_per_second() {
            ctx.record(0, "update_steps_per_second", rate);
        }
        ctx.record(0, "run_seconds", timing.seconds);
        Ok(())
    }
}

/// The mean return of the Riccati policy a = −K*s on the evaluation episodes a run of
/// `seed` evaluates on (the same initial states): what `eval_return` is compared with on
/// `Lqr`.
fn riccati_return(env: &dyn Env, episodes: usize, seed: RunSeed) -> policy_param::Result<f64> {
    let solution = Lqr::new(LqrParams::double_integrator())?.solve()?;
    let settings = evaluation_settings(env, episodes, seed);
    let evaluation = evaluate_with(
        || make_env("Lqr"),
        || vec![0.0; solution.gain().ncols()],
        |state: &mut Vec<f64>, observation, _, action| {
            for (s, &o) in state.iter_mut().zip(observation) {
                *s = f64::from(o);
            }
            solution.optimal_action_into(state, action)
        },
        &settings,
    )?;
    Ok(evaluation.mean_return())
}

/// Records a cell's metrics and advances its progress bar.
struct CellObserver<'a> {
    ctx: &'a mut CellContext,
    steps: u64,
    /// On `Lqr`: [`riccati_return`], to record `return_gap` beside every evaluation.
    riccati_return: Option<f64>,
}

impl<A: Agent> TrainObserver<A> for CellObserver<'_> {
    fn step(&mut self, _: u64, _: Option<&EpisodeEnd>) -> policy_param::Result<()> {
        self.ctx.advance();
        Ok(())
    }

    fn evaluation(&mut self, _: &Online<A>, point: &EvalPoint) -> policy_param::Result<()> {
        let mean = point.evaluation.mean_return();
        self.ctx.record(point.step, "eval_return", mean);
        if let Some(optimal) = self.riccati_return {
            // (J* − J)/|J*| ≥ 0 up to the evaluation's noise: 0 is Riccati's policy.
            let gap = (optimal - mean) / optimal.abs();
            self.ctx.record(point.step, "return_gap", gap);
            if point.step == self.steps {
                self.ctx.record(0, "final_return_gap", gap);
            }
        }
        for &(name, value) in &point.update_means {
            self.ctx.record(point.step, name, value);
        }
        if point.step == self.steps {
            self.ctx.record(0, "final_eval_return", mean);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// One run in a directory: `policy-param train` and `policy-param eval`.

/// A run directory: `config.json` (algorithm, environment, seed and every resolved key),
/// `monitor.csv` (one row per training episode), `evaluations.csv` (one row per
/// evaluation point) and `checkpoint.json` (the whole run at the last evaluation point,
/// from which `train` resumes and `eval` loads the policy).
pub struct RunDir {
    pub dir: PathBuf,
    pub algorithm: String,
    pub environment: String,
    pub seed: u64,
    /// Every key with its value.
    pub values: Map<String, Value>,
}

/// What [`train_dir`] did.
pub struct TrainOutcome {
    /// The step the run resumed from (0 for a fresh run).
    pub resumed_from: u64,
    pub steps: u64,
    pub final_mean_return: Option<f64>,
    /// Steps with updates and their wall time, in this process.
    pub timing: TrainTiming,
}

const CONFIG: &str = "config.json";
const MONITOR: &str = "monitor.csv";
const EVALUATIONS: &str = "evaluations.csv";
const CHECKPOINT: &str = "checkpoint.json";
const MONITOR_HEADER: &str = "episode,step,return,length,wall_seconds";
const EVALUATIONS_HEADER: &str = "step,mean_return,std_return,episodes";

impl RunDir {
    fn config_json(&self) -> Value {
        serde_json::json!({
            "algorithm": self.algorithm,
            "environment": self.environment,
            "seed": self.seed,
            "config": self.values,
        })
    }

    /// Reads `DIR/config.json`.
    pub fn load(dir: &Path) -> Result<RunDir> {
        let path = dir.join(CONFIG);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| Error::malformed(&path, e.to_string()))?;
        let field = |name: &str| {
            json.get(name)
                .cloned()
                .ok_or_else(|| Error::malformed(&path, format!("no {name:?}")))
        };
        let text_field = |name: &str| -> Result<String> {
            field(name)?
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| Error::malformed(&path, format!("{name:?} is not a string")))
        };
        Ok(RunDir {
            dir: dir.to_path_buf(),
            algorithm: text_field("algorithm")?,
            environment: text_field("environment")?,
            seed: field("seed")?
                .as_u64()
                .ok_or_else(|| Error::malformed(&path, "\"seed\" is not an integer"))?,
            values: field("config")?
                .as_object()
                .cloned()
                .ok_or_else(|| Error::malformed(&path, "\"config\" is not an object"))?,
        })
    }
}

/// Trains the run `run` describes in `run.dir`: a fresh directory gets `config.json` and
/// starts; a directory holding the same run resumes from its checkpoint (the tables cut
/// back to it, so the resumed run writes what an uninterrupted one would have); a
/// directory holding another run is refused.
pub fn train_dir(run: &RunDir, progress: bool) -> Result<TrainOutcome> {
    let config_path = run.dir.join(CONFIG);
    if config_path.exists() {
        let saved = RunDir::load(&run.dir)?;
        if saved.config_json() != run.config_json() {
            return Err(Error::Refused(format!(
                "{} holds a run with other settings ({}); choose another --out",
                crate::error::shown(&run.dir),
                first_difference(&saved.config_json(), &run.config_json())
            )));
        }
    } else {
        std::fs::create_dir_all(&run.dir).map_err(|e| Error::io(&run.dir, e))?;
        let text = serde_json::to_string_pretty(&run.config_json())
            .map_err(|e| Error::malformed(&config_path, e.to_string()))?;
        write_text(&config_path, &(text + "\n"))?;
    }
    online_algorithm(&run.algorithm)?.train(run, progress)
}

/// Evaluates the policy saved in `dir`: mean and standard deviation of the undiscounted
/// return of the deterministic policy over `episodes` episodes seeded from `seed`.
pub fn eval_dir(dir: &Path, episodes: usize, seed: u64) -> Result<(f64, f64)> {
    let run = RunDir::load(dir)?;
    if episodes == 0 {
        return Err(Error::Usage("--episodes must be at least 1".into()));
    }
    online_algorithm(&run.algorithm)?.evaluate(&run, episodes, seed)
}

/// `key: saved → asked` for the first key that differs.
fn first_difference(saved: &Value, asked: &Value) -> String {
    let flat = |v: &Value| {
        let mut out: Vec<(String, Value)> = Vec::new();
        if let Some(o) = v.as_object() {
            for (k, x) in o {
                match x.as_object() {
                    Some(inner) => out.extend(inner.iter().map(|(k2, y)| (k2.clone(), y.clone()))),
                    None => out.push((k.clone(), x.clone())),
                }
            }
        }
        out
    };
    let (a, b) = (flat(saved), flat(asked));
    for (k, x) in &b {
        let old = a.iter().find(|(k2, _)| k2 == k).map(|(_, y)| y.clone());
        if old.as_ref() != Some(x) {
            return format!("{k}: {} there, {x} asked", old.unwrap_or(Value::Null));
        }
    }
    "keys differ".into()
}

impl<P: OnlineAlgorithm> OnlineEntry for OnlineAdapter<P> {
    fn keys(&self) -> Vec<(&'static Key, Value)> {
        let defaults = self.defaults();
        train::keys::<P>()
            .map(|k| (k, defaults.get(k.name).cloned().unwrap_or(Value::Null)))
            .collect()
    }

    fn presets(&self) -> Vec<(&'static str, &'static str)> {
        P::presets()
            .iter()
            .map(|p: &Preset<P>| (p.name, p.meaning))
            .collect()
    }

    fn resolve(
        &self,
        environment: &str,
        preset: Option<&str>,
        overrides: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Invalid> {
        let config = TrainConfig::<P>::resolve(preset, overrides).map_err(invalid)?;
        self.check_environment(environment, &config)?;
        config.to_json().map_err(invalid)
    }

    fn train(&self, run: &RunDir, progress: bool) -> Result<TrainOutcome> {
        let config = TrainConfig::<P>::from_json(&run.values)?;
        let agent_config = config.params.agent_config().check()?;
        let seed = RunSeed(run.seed);
        let checkpoint = run.dir.join(CHECKPOINT);
        let mut online = if checkpoint.exists() {
            Online::<P::Agent>::load_json(&checkpoint, make_env(&run.environment)?)?
        } else {
            Online::<P::Agent>::new(&agent_config, make_env(&run.environment)?, seed)?
        };
        let resumed_from = online.steps();
        let mut observer = DirObserver::open(&run.dir, resumed_from, online.episodes())?;
        if progress {
            let bar = ProgressBar::new(config.run.steps).with_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:40}] {pos}/{len} steps {per_sec} eta {eta} {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{} {}", run.algorithm, run.environment));
            bar.set_position(resumed_from);
            observer.bar = Some(bar);
        }
        let make = || make_env(&run.environment);
        let timing = train::train(&mut online, &config.run, &make, seed, &mut observer)?;
        if let Some(bar) = &observer.bar {
            bar.finish();
        }
        Ok(TrainOutcome {
            resumed_from,
            steps: online.steps(),
            final_mean_return: observer.last_mean,
            timing,
        })
    }

    fn evaluate(&self, run: &RunDir, episodes: usize, seed: u64) -> Result<(f64, f64)> {
        let checkpoint = run.dir.join(CHECKPOINT);
        if !checkpoint.exists() {
            return Err(Error::Usage(format!(
                "{} has no checkpoint yet (one is written at each evaluation point)",
                crate::error::shown(&run.dir)
            )));
        }
        let online = Online::<P::Agent>::load_json(&checkpoint, make_env(&run.environment)?)?;
        let make = || make_env(&run.environment);
        let settings = evaluation_settings(online.env(), episodes, RunSeed(seed));
        let evaluation = online.agent().evaluate(&make, &settings)?;
        Ok((evaluation.mean_return(), evaluation.std_return()))
    }
}

/// Writes `monitor.csv` and `evaluations.csv` as the run goes, and the checkpoint at each
/// evaluation point (after the tables, so they never lag behind it).
struct DirObserver {
    dir: PathBuf,
    monitor: File,
    evaluations: File,
    episodes: u64,
    start: Instant,
    /// Wall seconds of the run before this process resumed it.
    earlier_seconds: f64,
    last_mean: Option<f64>,
    bar: Option<ProgressBar>,
}

impl DirObserver {
    /// Opens the tables, cut back to rows at or before `step` (where the checkpoint is).
    fn open(dir: &Path, step: u64, episodes: u64) -> Result<Self> {
        let monitor = dir.join(MONITOR);
        let kept = keep_rows_up_to(&monitor, MONITOR_HEADER, 1, step)?;
        let earlier_seconds = kept
            .last()
            .and_then(|row| row.rsplit(',').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0);
        let evaluations = dir.join(EVALUATIONS);
        keep_rows_up_to(&evaluations, EVALUATIONS_HEADER, 0, step)?;
        let append = |path: &Path| {
            OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(|e| Error::io(path, e))
        };
        Ok(DirObserver {
            dir: dir.to_path_buf(),
            monitor: append(&monitor)?,
            evaluations: append(&evaluations)?,
            episodes,
            start: Instant::now(),
            earlier_seconds,
            last_mean: None,
            bar: None,
        })
    }
}

/// Rewrites `path` with `header` and its rows whose column `column` is at most `step`
/// (a new file: the header alone); returns the rows kept.
fn keep_rows_up_to(path: &Path, header: &str, column: usize, step: u64) -> Result<Vec<String>> {
    let mut kept = Vec::new();
    if path.exists() {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        for line in BufReader::new(file).lines().skip(1) {
            let line = line.map_err(|e| Error::io(path, e))?;
            let at = line
                .split(',')
                .nth(column)
                .and_then(|s| s.parse::<u64>().ok());
            match at {
                Some(s) if s <= step => kept.push(line),
                Some(_) => {}
                None => return Err(Error::malformed(path, format!("row {line:?} has no step"))),
            }
        }
    }
    let mut text = format!("{header}\n");
    for row in &kept {
        text.push_str(row);
        text.push('\n');
    }
    write_text(path, &text)?;
    Ok(kept)
}

fn library_io(path: &Path, e: std::io::Error) -> policy_param::Error {
    policy_param::Error::invalid(crate::error::shown(path), e.to_string())
}

impl<A: Agent> TrainObserver<A> for DirObserver {
    fn step(&mut self, step: u64, end: Option<&EpisodeEnd>) -> policy_param::Result<()> {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        if let Some(end) = end {
            self.episodes += 1;
            let path = self.dir.join(MONITOR);
            let seconds = self.earlier_seconds + self.start.elapsed().as_secs_f64();
            writeln!(
                self.monitor,
                "{},{step},{},{},{seconds:.3}",
                self.episodes, end.episode_return, end.length
            )
            .map_err(|e| library_io(&path, e))?;
        }
        Ok(())
    }

    fn evaluation(&mut self, online: &Online<A>, point: &EvalPoint) -> policy_param::Result<()> {
        let path = self.dir.join(EVALUATIONS);
        let (mean, std) = (
            point.evaluation.mean_return(),
            point.evaluation.std_return(),
        );
        writeln!(
            self.evaluations,
            "{},{mean},{std},{}",
            point.step,
            point.evaluation.episodes.len()
        )
        .and_then(|_| self.evaluations.sync_data())
        .and_then(|_| self.monitor.sync_data())
        .map_err(|e| library_io(&path, e))?;
        let checkpoint = self.dir.join(CHECKPOINT);
        write_text(&checkpoint, &online.to_json()?).map_err(|e| {
            policy_param::Error::invalid(crate::error::shown(&checkpoint), e.to_string())
        })?;
        self.last_mean = Some(mean);
        if let Some(bar) = &self.bar {
            bar.set_message(format!("return {mean:.1}"));
        }
        Ok(())
    }
}
