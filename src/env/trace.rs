//! Replaying Gymnasium traces: the evidence that our environments are Gymnasium's.
//!
//! A trace is a CSV file written by `scripts/gym_traces.py`, one row per Gymnasium
//! step, with the columns
//!
//! `env,seed,t,obs0..obsN,action,reward,next_obs0..next_obsN,terminated,truncated,state0,state1`
//!
//! where `env` is the Gymnasium id, `seed` the episode's reset seed, `t` the number of
//! steps taken before this one, and `state*` Gymnasium's internal state *before* the
//! step. Several action components may be given as `action0..actionK` instead of
//! `action`; flags are `0`/`1` or `true`/`false`.
//!
//! Each row is replayed on its own: the environment is put in the row's state with `t`
//! elapsed steps (so time-limit truncation is reproduced), its observation is compared
//! with `obs*`, it is stepped with the action, and the next observation, reward and
//! both flags are compared with Gymnasium's. Rows never depend on one another, so one
//! discrepancy cannot snowball down an episode.

use std::collections::BTreeMap;
use std::path::Path;

use super::{make, Env};
use crate::error::{quote, Error, Result};

/// One Gymnasium step, as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    /// Line of the row in its file (the header is line 1).
    pub line: u64,
    pub env: String,
    pub seed: u64,
    /// Steps taken in the episode before this one.
    pub t: usize,
    pub observation: Vec<f64>,
    pub action: Vec<f64>,
    pub reward: f64,
    pub next_observation: Vec<f64>,
    pub terminated: bool,
    pub truncated: bool,
    /// Gymnasium's internal state before the step.
    pub state: Vec<f64>,
}

/// The largest numeric disagreement of a replay, and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Discrepancy {
    /// The trace file (or other source) and line of the row.
    pub source: String,
    pub line: u64,
    pub env: String,
    pub seed: u64,
    pub t: usize,
    /// Which value: `obs1`, `next_obs0`, `reward`, ….
    pub quantity: String,
    /// Gymnasium's value.
    pub expected: f64,
    /// Ours.
    pub got: f64,
}

impl Discrepancy {
    pub fn abs_err(&self) -> f64 {
        (self.expected - self.got).abs()
    }
}

/// A flag (`terminated` or `truncated`) on which a replay disagrees with Gymnasium.
#[derive(Clone, Debug, PartialEq)]
pub struct FlagMismatch {
    /// The trace file (or other source) and line of the row.
    pub source: String,
    pub line: u64,
    pub env: String,
    pub seed: u64,
    pub t: usize,
    pub flag: &'static str,
    /// Gymnasium's value; ours is the opposite.
    pub expected: bool,
}

/// Agreement figures for one environment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvSummary {
    pub rows: usize,
    pub max_abs_err: f64,
    pub flag_mismatches: usize,
}

/// The outcome of replaying one or more traces.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceReport {
    pub rows: usize,
    /// Largest absolute difference over every observation, next observation and reward.
    pub max_abs_err: f64,
    /// Number of flags (two per row) that differ from Gymnasium's.
    pub flag_mismatches: usize,
    /// Where `max_abs_err` was reached (`None` before any row).
    pub worst: Option<Discrepancy>,
    pub first_flag_mismatch: Option<FlagMismatch>,
    /// The same figures per environment id.
    pub per_env: BTreeMap<String, EnvSummary>,
}

impl TraceReport {
    /// Whether the replay agrees: every value within `tolerance`, every flag equal.
    pub fn agrees(&self, tolerance: f64) -> bool {
        self.max_abs_err <= tolerance && self.flag_mismatches == 0
    }

    /// Fold `other` (another file's report) into this one.
    pub fn merge(&mut self, other: TraceReport) {
        self.rows += other.rows;
        self.flag_mismatches += other.flag_mismatches;
        if other.worst.is_some() && (self.worst.is_none() || other.max_abs_err > self.max_abs_err) {
            self.worst = other.worst;
            self.max_abs_err = other.max_abs_err;
        }
        if self.first_flag_mismatch.is_none() {
            self.first_flag_mismatch = other.first_flag_mismatch;
        }
        for (env, s) in other.per_env {
            let mine = self.per_env.entry(env).or_default();
            mine.rows += s.rows;
            mine.max_abs_err = mine.max_abs_err.max(s.max_abs_err);
            mine.flag_mismatches += s.flag_mismatches;
        }
    }

    fn record_value(
        &mut self,
        source: &str,
        row: &TraceRow,
        quantity: &str,
        expected: f64,
        got: f64,
    ) {
        // A NaN of ours against Gymnasium's finite value (the reader accepts no other) is the
        // largest disagreement, not one that every comparison ignores.
        let err = match (expected - got).abs() {
            e if e.is_nan() => f64::INFINITY,
            e => e,
        };
        let env = self.per_env.entry(row.env.clone()).or_default();
        env.max_abs_err = env.max_abs_err.max(err);
        if self.worst.is_none() || err > self.max_abs_err {
            self.max_abs_err = err;
            self.worst = Some(Discrepancy {
                source: source.to_string(),
                line: row.line,
                env: row.env.clone(),
                seed: row.seed,
                t: row.t,
                quantity: quantity.to_string(),
                expected,
                got,
            });
        }
    }

    fn record_flag(
        &mut self,
        source: &str,
        row: &TraceRow,
        flag: &'static str,
        expected: bool,
        got: bool,
    ) {
        if expected == got {
            return;
        }
        self.flag_mismatches += 1;
        self.per_env
            .entry(row.env.clone())
            .or_default()
            .flag_mismatches += 1;
        self.first_flag_mismatch
            .get_or_insert_with(|| FlagMismatch {
                source: source.to_string(),
                line: row.line,
                env: row.env.clone(),
                seed: row.seed,
                t: row.t,
                flag,
                expected,
            });
    }
}

/// Read and replay the trace at `path`.
pub fn check_trace(path: &Path) -> Result<TraceReport> {
    let rows = read_trace(path)?;
    check_rows(&rows, &path.display().to_string())
}

/// Read the trace at `path` (without replaying it).
pub fn read_trace(path: &Path) -> Result<Vec<TraceRow>> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        context: format!("opening trace {}", path.display()),
        source,
    })?;
    parse_trace(file, &path.display().to_string())
}

/// Parse trace CSV from `reader`; `source` names it in errors.
pub fn parse_trace<R: std::io::Read>(reader: R, source: &str) -> Result<Vec<TraceRow>> {
    let malformed = |line: u64, reason: String| Error::MalformedCsv {
        path: source.to_string(),
        line,
        reason,
    };
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let header = csv
        .headers()
        .map_err(|e| malformed(csv_line(&e), e.to_string()))?
        .clone();
    let columns = Columns::find(&header).map_err(|reason| malformed(1, reason))?;

    let mut rows = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|e| malformed(csv_line(&e), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let row = columns
            .parse(&record, line)
            .map_err(|reason| malformed(line, reason))?;
        rows.push(row);
    }
    Ok(rows)
}

/// Replay `rows` (from `source`, named in errors) and compare with Gymnasium.
///
/// No rows is [`Error::NoRows`]: an empty trace would otherwise pass having checked nothing.
pub fn check_rows(rows: &[TraceRow], source: &str) -> Result<TraceReport> {
    let malformed = |row: &TraceRow, reason: String| Error::MalformedCsv {
        path: source.to_string(),
        line: row.line,
        reason,
    };
    if rows.is_empty() {
        return Err(Error::NoRows {
            path: source.to_string(),
        });
    }
    let mut envs: BTreeMap<&str, Box<dyn Env>> = BTreeMap::new();
    let mut report = TraceReport::default();
    let (mut obs, mut next_obs) = (Vec::new(), Vec::new());

    for row in rows {
        if !envs.contains_key(row.env.as_str()) {
            envs.insert(&row.env, make(&row.env)?);
        }
        let env = envs.get_mut(row.env.as_str()).expect("inserted just above");
        let dim = env.observation_dim();
        for (name, values) in [
            ("obs", &row.observation),
            ("next_obs", &row.next_observation),
        ] {
            if values.len() != dim {
                return Err(malformed(
                    row,
                    format!(
                        "{} observations have {dim} components, the trace has {} {name} columns",
                        row.env,
                        values.len()
                    ),
                ));
            }
        }
        obs.resize(dim, 0.0f32);
        next_obs.resize(dim, 0.0f32);

        env.set_state(&row.state, row.t)
            .map_err(|e| malformed(row, e.to_string()))?;
        env.observe(&mut obs);
        let outcome = env
            .step_into(&row.action, &mut next_obs)
            .map_err(|e| malformed(row, e.to_string()))?;

        report.rows += 1;
        report.per_env.entry(row.env.clone()).or_default().rows += 1;
        for (i, (&expected, &got)) in row.observation.iter().zip(&obs).enumerate() {
            report.record_value(source, row, &format!("obs{i}"), expected, f64::from(got));
        }
        for (i, (&expected, &got)) in row.next_observation.iter().zip(&next_obs).enumerate() {
            report.record_value(
                source,
                row,
                &format!("next_obs{i}"),
                expected,
                f64::from(got),
            );
        }
        report.record_value(source, row, "reward", row.reward, outcome.reward);
        report.record_flag(
            source,
            row,
            "terminated",
            row.terminated,
            outcome.terminated,
        );
        report.record_flag(source, row, "truncated", row.truncated, outcome.truncated);
    }
    Ok(report)
}

/// The line a csv error points at (the header's, 1, when it has none).
fn csv_line(e: &csv::Error) -> u64 {
    e.position().map_or(1, |p| p.line())
}

/// Where each field of a row sits in the record.
struct Columns {
    /// The header, to name columns in errors.
    header: csv::StringRecord,
    env: usize,
    seed: usize,
    t: usize,
    observation: Vec<usize>,
    action: Vec<usize>,
    reward: usize,
    next_observation: Vec<usize>,
    terminated: usize,
    truncated: usize,
    state: Vec<usize>,
}

impl Columns {
    fn find(header: &csv::StringRecord) -> std::result::Result<Columns, String> {
        let index = |name: &str| header.iter().position(|h| h == name);
        let required = |name: &str| index(name).ok_or_else(|| format!("missing column {name:?}"));
        // `prefix0, prefix1, …`, as many as there are, at least one.
        let numbered = |prefix: &str| {
            let found: Vec<usize> = (0..)
                .map_while(|i| index(&format!("{prefix}{i}")))
                .collect();
            if found.is_empty() {
                Err(format!("missing column {:?}", format!("{prefix}0")))
            } else {
                Ok(found)
            }
        };
        Ok(Columns {
            header: header.clone(),
            env: required("env")?,
            seed: required("seed")?,
            t: required("t")?,
            observation: numbered("obs")?,
            action: match index("action") {
                Some(i) => vec![i],
                None => numbered("action")?,
            },
            reward: required("reward")?,
            next_observation: numbered("next_obs")?,
            terminated: required("terminated")?,
            truncated: required("truncated")?,
            state: numbered("state")?,
        })
    }

    fn parse(
        &self,
        record: &csv::StringRecord,
        line: u64,
    ) -> std::result::Result<TraceRow, String> {
        // Records have the header's length (the csv reader checks), so `get` succeeds.
        let field = |i: usize| record.get(i).unwrap_or("");
        // The header name, which is one of ours (found by `find`), so short and safe to print.
        let bad = |i: usize, what: &str| {
            let name = self.header.get(i).unwrap_or("?");
            format!("column {name}: {} {what}", quote(field(i)))
        };
        let number = |i: usize| -> std::result::Result<f64, String> {
            match field(i).parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(bad(i, "is not a finite number")),
            }
        };
        let numbers = |columns: &[usize]| -> std::result::Result<Vec<f64>, String> {
            columns.iter().map(|&i| number(i)).collect()
        };
        let integer = |i: usize| -> std::result::Result<u64, String> {
            use std::num::IntErrorKind::PosOverflow;
            field(i).parse::<u64>().map_err(|e| match e.kind() {
                PosOverflow => bad(i, &format!("is out of range (at most {})", u64::MAX)),
                _ => bad(i, "is not a non-negative integer"),
            })
        };
        let flag = |i: usize| match field(i) {
            "1" => Ok(true),
            "0" => Ok(false),
            s if s.eq_ignore_ascii_case("true") => Ok(true),
            s if s.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(bad(i, "is not a flag (0/1/true/false)")),
        };
        // On 64-bit targets every u64 fits; the environments saturate their step counters.
        let t = usize::try_from(integer(self.t)?)
            .map_err(|_| bad(self.t, &format!("is out of range (at most {})", usize::MAX)))?;
        Ok(TraceRow {
            line,
            env: field(self.env).to_string(),
            seed: integer(self.seed)?,
            t,
            observation: numbers(&self.observation)?,
            action: numbers(&self.action)?,
            reward: number(self.reward)?,
            next_observation: numbers(&self.next_observation)?,
            terminated: flag(self.terminated)?,
            truncated: flag(self.truncated)?,
            state: numbers(&self.state)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "env,seed,t,obs0,obs1,action,reward,next_obs0,next_obs1,terminated,truncated,state0,state1";

    /// A MountainCar row computed by our own environment, so it agrees by construction;
    /// the tests below then break it in one place at a time.
    fn agreeing_row() -> String {
        let mut env = make("MountainCarContinuous-v0").unwrap();
        let state = [f64::from(-0.5f32), f64::from(0.01f32)];
        env.set_state(&state, 998).unwrap();
        let s = env.step(&[0.25]).unwrap();
        let exact = |x: f32| format!("{:?}", f64::from(x));
        format!(
            "MountainCarContinuous-v0,7,998,{:?},{:?},0.25,{:?},{},{},{},{},{:?},{:?}",
            state[0],
            state[1],
            s.reward,
            exact(s.observation[0]),
            exact(s.observation[1]),
            u8::from(s.terminated),
            u8::from(s.truncated),
            state[0],
            state[1]
        )
    }

    fn check(text: &str) -> Result<TraceReport> {
        let rows = parse_trace(text.as_bytes(), "test.csv")?;
        check_rows(&rows, "test.csv")
    }

    #[test]
    fn an_agreeing_row_reports_zero_error_and_the_truncation_flag() {
        let text = format!("{HEADER}\n{}\n", agreeing_row());
        let rows = parse_trace(text.as_bytes(), "test.csv").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].line, 2);
        assert!(rows[0].truncated, "t = 998 is the last of 999 steps");
        let report = check_rows(&rows, "test.csv").unwrap();
        assert_eq!((report.rows, report.flag_mismatches), (1, 0));
        assert_eq!(report.max_abs_err, 0.0);
        assert!(report.agrees(0.0));
    }

    #[test]
    fn changed_values_and_flags_are_counted_and_located() {
        let good = agreeing_row();
        let mut fields: Vec<String> = good.split(',').map(String::from).collect();
        let reward: f64 = fields[6].parse().unwrap();
        fields[6] = format!("{}", reward + 0.5);
        fields[10] = "false".into(); // truncated, written the other way
        let text = format!("{HEADER}\n{good}\n{}\n", fields.join(","));
        let report = check(&text).unwrap();
        assert_eq!(report.rows, 2);
        assert_eq!(report.flag_mismatches, 1);
        assert!((report.max_abs_err - 0.5).abs() < 1e-12);
        let worst = report.worst.unwrap();
        assert_eq!((worst.line, worst.quantity.as_str()), (3, "reward"));
        let flag = report.first_flag_mismatch.unwrap();
        assert_eq!(
            (flag.line, flag.flag, flag.expected),
            (3, "truncated", false)
        );
        assert!(!TraceReport {
            ..Default::default()
        }
        .agrees(-1.0));
    }

    /// The message of `text`'s error, which must be a [`Error::MalformedCsv`] on `line`.
    fn malformed_reason(text: &str, line: u64) -> String {
        match check(text) {
            Err(Error::MalformedCsv {
                line: l, reason, ..
            }) if l == line => reason,
            other => panic!("expected MalformedCsv on line {line}, got {other:?}"),
        }
    }

    #[test]
    fn the_largest_step_count_replays_truncated_without_overflow() {
        // Reported: t = u64::MAX panicked on `elapsed_steps += 1` (exit 101).
        let good = agreeing_row();
        let text = format!(
            "{HEADER}\n{}\n",
            good.replace(",998,", ",18446744073709551615,")
        );
        let rows = parse_trace(text.as_bytes(), "test.csv").unwrap();
        assert_eq!(rows[0].t, usize::MAX);
        let report = check_rows(&rows, "test.csv").unwrap();
        assert!(report.agrees(0.0), "still truncated: {report:?}");
    }

    #[test]
    fn integers_beyond_u64_name_their_line_and_column() {
        let good = agreeing_row();
        let too_big = "18446744073709551616";
        let t = malformed_reason(
            &format!(
                "{HEADER}\n{}\n",
                good.replace(",998,", &format!(",{too_big},"))
            ),
            2,
        );
        assert!(
            t.contains("column t") && t.contains(too_big) && t.contains("out of range"),
            "{t}"
        );
        let seed = malformed_reason(
            &format!(
                "{HEADER}\n{good}\n{}\n",
                good.replacen(",7,", &format!(",{too_big},"), 1)
            ),
            3,
        );
        assert!(
            seed.contains("column seed") && seed.contains("out of range"),
            "{seed}"
        );
        let negative = malformed_reason(
            &format!("{HEADER}\n{}\n", good.replacen(",7,", ",-7,", 1)),
            2,
        );
        assert!(
            negative.contains("column seed") && negative.contains("non-negative"),
            "{negative}"
        );
    }

    #[test]
    fn a_header_without_rows_is_an_error_not_a_pass() {
        let rows = parse_trace(format!("{HEADER}\n").as_bytes(), "empty.csv").unwrap();
        assert!(rows.is_empty());
        let err = check_rows(&rows, "empty.csv").unwrap_err();
        assert!(matches!(err, Error::NoRows { .. }), "{err:?}");
        assert_eq!(err.to_string(), "empty.csv: no rows: nothing to check");
    }

    #[test]
    fn errors_quote_only_a_prefix_of_a_huge_field() {
        let good = agreeing_row();
        let huge = "7".repeat(1 << 20);
        for (from, to) in [
            (",0.25,".to_string(), format!(",{huge}x,")),
            (",998,".to_string(), format!(",{huge},")),
        ] {
            let text = format!("{HEADER}\n{}\n", good.replacen(&from, &to, 1));
            let message = check(&text).unwrap_err().to_string();
            assert!(
                message.len() < 200,
                "{} bytes: {}…",
                message.len(),
                &message[..200]
            );
            assert!(
                message.contains(&format!("({} bytes)", to.len() - 2)),
                "{message}"
            );
        }
        let id = "E".repeat(1 << 20);
        let text = format!(
            "{HEADER}\n{}\n",
            good.replace("MountainCarContinuous-v0", &id)
        );
        let message = check(&text).unwrap_err().to_string();
        assert!(message.len() < 300, "{} bytes", message.len());
    }

    #[test]
    fn a_nan_of_ours_is_the_largest_disagreement() {
        let rows = parse_trace(
            format!("{HEADER}\n{}\n", agreeing_row()).as_bytes(),
            "t.csv",
        )
        .unwrap();
        let mut report = TraceReport::default();
        report.record_value("t.csv", &rows[0], "obs0", 0.5, f64::NAN);
        report.record_value("t.csv", &rows[0], "obs1", 0.5, 0.75);
        assert_eq!(report.max_abs_err, f64::INFINITY);
        assert_eq!(report.worst.unwrap().quantity, "obs0");
        assert!(!TraceReport {
            max_abs_err: f64::NAN,
            ..Default::default()
        }
        .agrees(1.0));
    }

    #[test]
    fn malformed_input_is_a_typed_error_with_its_line() {
        let good = agreeing_row();
        let expect_line = |text: String, line: u64, needle: &str| match check(&text) {
            Err(Error::MalformedCsv {
                line: l, reason, ..
            }) => {
                assert_eq!(l, line, "{reason}");
                assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
            }
            other => panic!("expected MalformedCsv, got {other:?}"),
        };
        expect_line(
            format!("{}\n{good}\n", HEADER.replace(",reward", "")),
            1,
            "reward",
        );
        expect_line(
            format!("{HEADER}\n{good}\n{}\n", good.replace(",0.25,", ",fast,")),
            3,
            "fast",
        );
        expect_line(format!("{HEADER}\n{good}\n1,2,3\n"), 3, "fields");
        expect_line(
            format!("{HEADER}\n{}\n", good.replace(",998,", ",-1,")),
            2,
            "-1",
        );
        expect_line(
            format!("{HEADER}\n{}\n", good.replace(",0.25,", ",nan,")),
            2,
            "nan",
        );
        // Pendulum observations have three components, the header gives two.
        expect_line(
            format!(
                "{HEADER}\n{}\n",
                good.replace("MountainCarContinuous-v0", "Pendulum-v1")
            ),
            2,
            "3 components",
        );
        let unknown = format!(
            "{HEADER}\n{}\n",
            good.replace("MountainCarContinuous-v0", "CartPole-v1")
        );
        assert!(
            matches!(check(&unknown), Err(Error::UnknownEnv { id, .. }) if id == "CartPole-v1")
        );
        assert!(matches!(
            read_trace(Path::new("/nonexistent/trace.csv")),
            Err(Error::Io { .. })
        ));
    }
}
