//! Progress bars: one per grid (cells done, with ETA) and one per running cell (its
//! iterations, with ETA), with indicatif. When stderr is not a terminal the bars are
//! hidden and each finished cell prints one plain line instead.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars of one grid run.
pub struct Progress {
    multi: Option<MultiProgress>,
    grid: ProgressBar,
}

impl Progress {
    /// Bars for a run of `cells` cells of grid `name`; `show = false`, or stderr not being
    /// a terminal, hides them.
    pub fn new(name: &str, cells: u64, show: bool) -> Self {
        if !(show && std::io::stderr().is_terminal()) {
            return Progress {
                multi: None,
                grid: ProgressBar::hidden(),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let grid = multi.add(ProgressBar::new(cells));
        grid.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} cells  {elapsed_precise} elapsed, ETA {eta_precise}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        grid.set_prefix(name.to_string());
        grid.enable_steady_tick(Duration::from_millis(500));
        Progress {
            multi: Some(multi),
            grid,
        }
    }

    /// A bar for a cell that starts now; `None` when hidden.
    pub fn start_cell(&self, label: &str) -> Option<ProgressBar> {
        let multi = self.multi.as_ref()?;
        let bar = multi.add(ProgressBar::new(1));
        bar.set_style(
            ProgressStyle::with_template("  {prefix} [{bar:20}] {pos}/{len}  ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        Some(bar)
    }

    /// The cell is done: remove its bar, advance the grid's, and say how it ended.
    pub fn finish_cell(&self, bar: Option<ProgressBar>, line: &str) {
        if let (Some(multi), Some(bar)) = (&self.multi, bar) {
            bar.finish_and_clear();
            multi.remove(&bar);
        }
        self.grid.inc(1);
        self.println(line);
    }

    /// A line above the bars (or plainly on stderr when they are hidden).
    pub fn println(&self, line: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        self.grid.finish_and_clear();
    }
}
