//! Property tests of the trace reader and replay (`env check-trace`): whatever a trace
//! file holds — random bytes, random headers, a valid header over rows of huge integers,
//! negative numbers, NaN, empty or megabyte fields, unknown environment ids — `parse_trace`
//! and `check_rows` return rows, a report or one error, and never panic. An error is one
//! line of bounded length, whatever the size of the field it is about.
//!
//! Each property runs 4096 cases by default (about a second for the file). Set
//! `PROPTEST_CASES` to run another number: proptest's default configuration reads the
//! variable itself, and [`config`] keeps its value when it is set, e.g.
//! `PROPTEST_CASES=50000 cargo test -p policy-param --test trace_props`.
//! Failing cases proptest finds are shrunk and their seeds appended to
//! `proptest-regressions/trace_props.txt` (committed; replayed first on every run); each
//! bug found that way also stays below as a plain `#[test]`.

use policy_param::env::trace::{check_rows, parse_trace, TraceRow};
use policy_param::env::KNOWN_ENVS;
use policy_param::Error;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

const SOURCE: &str = "prop.csv";
/// The longest error message accepted, in characters: generous for the longest message a
/// reader or environment writes (a capped quote, the list of known environments, two
/// numbers), far below any echoed field of the sizes generated here.
const MESSAGE_LIMIT: usize = 300;

/// Cases per property when `PROPTEST_CASES` is not set: more than proptest's 256, which
/// can miss a rare case (the first bug found here showed after about 1200), and still
/// about a second for the file.
const DEFAULT_CASES: u32 = 4096;

/// Proptest's defaults, `PROPTEST_CASES` included (proptest parses it), else
/// [`DEFAULT_CASES`]; the regression file in the workspace's `proptest-regressions/`
/// (proptest would look for a `lib.rs` beside `tests/` and find none).
fn config() -> Config {
    let defaults = Config::default();
    let cases = match std::env::var_os("PROPTEST_CASES") {
        Some(_) => defaults.cases,
        None => DEFAULT_CASES,
    };
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/trace_props.txt",
        ))),
        ..defaults
    }
}

/// An error is one line, bounded, and not a panic.
fn one_line(e: &Error) -> Result<(), TestCaseError> {
    let message = e.to_string();
    prop_assert!(!message.contains('\n'), "multi-line error: {message:?}");
    let chars = message.chars().count();
    let shown: String = message.chars().take(400).collect();
    prop_assert!(chars <= MESSAGE_LIMIT, "{chars}-char error: {shown}…");
    Ok(())
}

/// Replay what parses; every outcome is a report over every row or one clean error.
fn read_and_replay(text: &[u8]) -> Result<(), TestCaseError> {
    match parse_trace(text, SOURCE) {
        Err(e) => one_line(&e),
        Ok(rows) => replay(&rows),
    }
}

fn replay(rows: &[TraceRow]) -> Result<(), TestCaseError> {
    match check_rows(rows, SOURCE) {
        Err(e) => one_line(&e),
        Ok(report) => {
            prop_assert_eq!(report.rows, rows.len());
            prop_assert!(report.rows > 0, "an empty trace passed");
            prop_assert!(!report.max_abs_err.is_nan());
            Ok(())
        }
    }
}

/// Every environment id `make` knows, one it does not, and a long one.
fn env_id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KNOWN_ENVS).prop_map(String::from),
        1 => Just("CartPole-v1".to_string()),
        1 => long_length().prop_map(|n| "E".repeat(n)),
        1 => "[ -~]{0,20}",
    ]
}

/// Text that breaks a field: integers beyond u64, signs, non-finite and extreme floats,
/// empty, megabyte-sized, and arbitrary characters (quotes and newlines included).
fn nasty_field() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "18446744073709551615",
            "18446744073709551616",
            "340282366920938463463374607431768211456",
            "-1",
            "-0",
            "+5",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "",
            "1e300",
            "-1e300",
            "1.7976931348623157e308",
            "5e-324",
            "1e400",
            "0x10",
            "true",
            "FALSE",
            "2",
        ])
        .prop_map(String::from),
        (long_length(), prop::sample::select(vec!['9', 'x', '-']))
            .prop_map(|(n, c)| c.to_string().repeat(n)),
        any::<i64>().prop_map(|x| x.to_string()),
        any::<u64>().prop_map(|x| x.to_string()),
        any::<f64>().prop_map(|x| format!("{x:?}")),
        "(?s).{0,12}",
    ]
}

/// The length of a long field: past the quoting cap, now and then a megabyte.
fn long_length() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 50usize..200, 1 => Just(1 << 20)]
}

/// A CSV field: quoted when it holds a delimiter, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The header of `obs` observation, `action` action (one as `action`) and `state` state
/// components.
fn header(obs: usize, action: usize, state: usize) -> Vec<String> {
    let numbered = |prefix: &'static str, n: usize| (0..n).map(move |i| format!("{prefix}{i}"));
    let mut columns: Vec<String> = ["env", "seed", "t"].map(String::from).to_vec();
    columns.extend(numbered("obs", obs));
    if action == 1 {
        columns.push("action".into());
    } else {
        columns.extend(numbered("action", action));
    }
    columns.push("reward".into());
    columns.extend(numbered("next_obs", obs));
    columns.extend(["terminated", "truncated"].map(String::from));
    columns.extend(numbered("state", state));
    columns
}

/// The environments `make` builds: id, observation, action and state sizes.
const SHAPES: &[(&str, usize, usize, usize)] = &[
    ("Pendulum-v1", 3, 1, 2),
    ("MountainCarContinuous-v0", 2, 1, 2),
    ("Lqr", 2, 1, 2),
    ("Allocation", 3, 6, 3),
];

/// A plausible value for the column `name` of a row of `env` (so that rows often reach
/// the replay): the environment's id, any seed, small and huge step counts, flags, and
/// numbers in the range of each quantity, now and then extreme.
fn good_field(name: &str, env: &'static str) -> BoxedStrategy<String> {
    let allocation = env == "Allocation";
    match name {
        "env" => prop_oneof![8 => Just(env.to_string()), 1 => env_id()].boxed(),
        "seed" => any::<u64>().prop_map(|x| x.to_string()).boxed(),
        "t" => prop_oneof![
            0usize..1200,
            Just(usize::MAX),
            Just(usize::MAX - 1),
            any::<usize>()
        ]
        .prop_map(|x| x.to_string())
        .boxed(),
        "terminated" | "truncated" => prop::sample::select(vec!["0", "1", "true", "False"])
            .prop_map(String::from)
            .boxed(),
        // Allocation actions are small integer shipments, its states demands ≥ 0.
        n if allocation && n.starts_with("action") => (0i64..3).prop_map(|x| x.to_string()).boxed(),
        n if allocation && n.starts_with("state") => {
            (0.0f64..20.0).prop_map(|x| format!("{x:?}")).boxed()
        }
        _ => prop_oneof![
            6 => (-3.0f64..3.0).prop_map(|x| format!("{x:?}")),
            1 => (0i64..10).prop_map(|x| x.to_string()),
            1 => prop::sample::select(vec!["1e300", "-1e300", "1e-300", "-1e-300", "1e30"])
                .prop_map(String::from),
        ]
        .boxed(),
    }
}

/// A field of column `name`: plausible, or one that breaks it.
fn field(name: &str, env: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![40 => good_field(name, env), 1 => nasty_field()]
}

/// The CSV text of `header` over 0..5 rows of fields for its columns, meant for `env`.
fn trace_text(header: Vec<String>, env: &'static str) -> impl Strategy<Value = String> {
    let row: Vec<_> = header.iter().map(|name| field(name, env)).collect();
    prop::collection::vec(row, 0..5).prop_map(move |rows| {
        let mut text = header.join(",") + "\n";
        for row in rows {
            let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
            text += &fields.join(",");
            text.push('\n');
        }
        text
    })
}

/// An environment with the header of its shape, or (one time in five) of another shape.
fn shaped_header() -> impl Strategy<Value = (Vec<String>, &'static str)> {
    let shape = prop::sample::select(SHAPES);
    prop_oneof![
        4 => shape.clone().prop_map(|(env, o, a, s)| (header(o, a, s), env)),
        1 => (shape, 0usize..5, 1usize..8, 0usize..5)
            .prop_map(|((env, ..), o, a, s)| (header(o, a, s), env)),
    ]
}

/// A header of known names, random names, missing, repeated and shuffled columns.
fn random_header() -> impl Strategy<Value = (Vec<String>, &'static str)> {
    let name = prop_oneof![
        3 => prop::sample::select(header(3, 2, 2)),
        1 => "[a-z_0-9]{0,8}",
        1 => "(?s).{0,8}",
    ];
    (
        prop::collection::vec(name, 0..20),
        prop::sample::select(SHAPES),
    )
        .prop_map(|(header, (env, ..))| (header, env))
}

fn finite_or_not() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -3.0f64..3.0,
        1 => prop::sample::select(vec![0.0, 1e300, -1e300, f64::MAX, f64::MIN_POSITIVE, -1e-300]),
        1 => any::<f64>(),
    ]
}

/// `n` values, or (one time in five) some other number of them.
fn values(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        4 => prop::collection::vec(finite_or_not(), n),
        1 => prop::collection::vec(finite_or_not(), 0..8),
    ]
}

/// A row as a caller of `check_rows` may build it, without the reader's checks: any
/// environment id, any step count and line, values that need not be finite.
fn any_row() -> impl Strategy<Value = TraceRow> {
    prop::sample::select(SHAPES).prop_flat_map(|(id, o, a, s)| {
        (
            (
                prop_oneof![8 => Just(id.to_string()), 1 => env_id()],
                any::<u64>(),
                prop_oneof![0usize..1200, Just(usize::MAX), any::<usize>()],
            ),
            (values(o), values(a), finite_or_not(), values(o)),
            (any::<bool>(), any::<bool>(), values(s), any::<u64>()),
        )
            .prop_map(
                |((env, seed, t), (observation, action, reward, next_observation), flags)| {
                    let (terminated, truncated, state, line) = flags;
                    TraceRow {
                        line,
                        env,
                        seed,
                        t,
                        observation,
                        action,
                        reward,
                        next_observation,
                        terminated,
                        truncated,
                        state,
                    }
                },
            )
    })
}

/// The generators' shapes are those of the environments (else few rows would replay).
#[test]
fn shapes_are_those_of_the_environments() {
    for &(id, obs, action, state) in SHAPES {
        let mut env = policy_param::env::make(id).unwrap();
        env.reset(Some(0));
        assert_eq!(
            (
                env.observation_dim(),
                env.action_space().dim(),
                env.state().len()
            ),
            (obs, action, state),
            "{id}"
        );
    }
    assert_eq!(SHAPES.len(), KNOWN_ENVS.len());
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_parse_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        read_and_replay(&bytes)?;
    }

    #[test]
    fn random_headers_and_rows_parse_or_fail_cleanly(
        text in random_header().prop_flat_map(|(header, env)| trace_text(header, env))
    ) {
        read_and_replay(text.as_bytes())?;
    }

    #[test]
    fn valid_headers_over_hostile_rows_replay_or_fail_cleanly(
        text in shaped_header().prop_flat_map(|(header, env)| trace_text(header, env))
    ) {
        read_and_replay(text.as_bytes())?;
    }

    #[test]
    fn any_in_memory_rows_replay_or_fail_cleanly(
        rows in prop::collection::vec(any_row(), 0..4)
    ) {
        replay(&rows)?;
    }
}

// Cases proptest found and shrank (seeds in proptest-regressions/trace_props.txt): an
// extreme demand of the Allocation environment was written with `{}`, 220-odd digits in
// the error; it is now written with `{:?}`.

#[test]
fn a_tiny_negative_demand_read_from_a_trace_gives_a_short_error() {
    let text = "env,seed,t,obs0,obs1,obs2,action0,action1,action2,action3,action4,action5,reward,\
                next_obs0,next_obs1,next_obs2,terminated,truncated,state0,state1,state2\n\
                Allocation,0,0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0,0,\
                -8.176915588754762e-220,0.0,0.0\n";
    let rows = parse_trace(text.as_bytes(), SOURCE).unwrap();
    let message = check_rows(&rows, SOURCE).unwrap_err().to_string();
    assert_eq!(
        message,
        "prop.csv: line 2: invalid value for demand[0]: -8.176915588754762e-220 is not finite \
         and ≥ 0"
    );
}

#[test]
fn a_huge_negative_demand_in_memory_gives_a_short_error() {
    let row = TraceRow {
        line: 1_000_000_000_000_000,
        env: "Allocation".into(),
        seed: 0,
        t: 0,
        observation: vec![0.0; 3],
        action: vec![],
        reward: 0.0,
        next_observation: vec![0.0; 3],
        terminated: false,
        truncated: false,
        state: vec![0.0, 0.0, -1.372943939200784e215],
    };
    let message = check_rows(&[row], SOURCE).unwrap_err().to_string();
    assert!(
        message.ends_with("demand[2]: -1.372943939200784e215 is not finite and ≥ 0"),
        "{message}"
    );
}
