//! The `policy-param` command line.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "policy-param",
    version,
    about = "Policy Parametrization Methods: environments, experiments, comparisons"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

fn main() {
    let _cli = Cli::parse();
}
