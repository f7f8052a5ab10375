//! `dsbackup`: the command line of the dsbackup project.

mod endpoints;
mod inspect;

use clap::Parser;

/// NTDS backup over DCE/RPC, and the tools around it.
#[derive(Debug, Parser)]
#[command(name = "dsbackup", version, about)]
enum Command {
    /// Decode captured DCE/RPC PDUs to JSON, one object per line.
    Inspect(inspect::Args),
    /// List a server's endpoint-mapper entries, like rpcdump.
    Endpoints(endpoints::Args),
}

fn main() -> anyhow::Result<()> {
    match Command::parse() {
        Command::Inspect(args) => inspect::run(&args),
        Command::Endpoints(args) => endpoints::run(&args),
    }
}
