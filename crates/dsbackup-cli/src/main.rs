//! `dsbackup`: the command line of the dsbackup project.

use clap::Parser;

/// NTDS backup over DCE/RPC, and the tools around it.
#[derive(Debug, Parser)]
#[command(name = "dsbackup", version, about)]
enum Command {}

fn main() -> anyhow::Result<()> {
    match Command::parse() {}
}
