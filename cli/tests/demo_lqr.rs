//! `policy-param demo lqr`: the Riccati gain (κ = 1) has the best exact value, and the
//! Monte Carlo estimates agree with the exact values within their sampling error.

use std::process::Command;

#[test]
fn riccati_gain_is_best_and_monte_carlo_agrees_with_the_exact_value() {
    let out = std::env::temp_dir().join(format!("policy-param-demo-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_policy-param"))
        .args(["demo", "lqr", "--episodes", "64", "--seed", "3", "--out"])
        .arg(&out)
        .output()
        .expect("the binary runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let mut reader = csv::Reader::from_path(out.join("lqr_demo.csv")).unwrap();
    let rows: Vec<(String, f64, f64, f64, f64)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let f = |i: usize| r[i].parse::<f64>().unwrap();
            (r[0].to_string(), f(1), f(2), f(3), f(4))
        })
        .collect();
    assert!(out.join("lqr_demo.html").exists());
    std::fs::remove_dir_all(&out).ok();
    for system in ["scalar", "double_integrator"] {
        let rs: Vec<_> = rows.iter().filter(|r| r.0 == system).collect();
        assert!(rs.len() >= 5, "{system}: {} rows", rs.len());
        let best = rs.iter().max_by(|a, b| a.2.total_cmp(&b.2)).unwrap();
        assert_eq!(best.1, 1.0, "{system}: best gain scale is {}", best.1);
        for (_, kappa, exact, mc, se) in rs {
            assert!(
                (exact - mc).abs() <= 4.0 * se,
                "{system} κ={kappa}: exact {exact}, Monte Carlo {mc} ± {se}"
            );
        }
    }
}
