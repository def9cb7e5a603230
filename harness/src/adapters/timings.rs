//! What the amortized-FQI adapters share: the sums of their timings (wall and CPU), and
//! the ε they hand the library when they apply the stopping rule themselves.

use super::thread_cpu_seconds;
use crate::experiment::CellContext;

/// Sums of the iterations' timings, in seconds.
#[derive(Default)]
pub(crate) struct Timings {
    pub run: f64,
    pub target: f64,
    pub solve: f64,
    pub q_fit: f64,
    pub rule_fit: f64,
    /// CPU time of the cell's thread inside the iterations (`None`: no such clock).
    pub cpu: Option<f64>,
}

impl Timings {
    pub(crate) fn new() -> Self {
        Timings {
            cpu: thread_cpu_seconds().map(|_| 0.0),
            ..Timings::default()
        }
    }

    /// Run one iteration `step`, adding the CPU time it takes to `cpu`.
    pub(crate) fn cpu_of<T>(&mut self, step: impl FnOnce() -> T) -> T {
        let start = thread_cpu_seconds();
        let out = step();
        self.cpu = match (self.cpu, start, thread_cpu_seconds()) {
            (Some(sum), Some(start), Some(end)) => Some(sum + (end - start)),
            _ => None,
        };
        out
    }

    pub(crate) fn record(&self, ctx: &mut CellContext, with_rule: bool) {
        ctx.record(0, "run_seconds", self.run);
        if let Some(cpu) = self.cpu {
            ctx.record(0, "run_cpu_seconds", cpu);
        }
        ctx.record(0, "target_seconds", self.target);
        ctx.record(0, "solve_seconds", self.solve);
        ctx.record(0, "q_fit_seconds", self.q_fit);
        if with_rule {
            ctx.record(0, "rule_fit_seconds", self.rule_fit);
        }
    }
}

/// The library's ε: the adapter applies the stopping rule itself (ε = 0: never), the
/// library only checks that ε > 0.
pub(crate) fn library_tolerance(tolerance: f64) -> f64 {
    if tolerance > 0.0 {
        tolerance
    } else {
        1.0
    }
}
