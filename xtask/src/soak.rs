//! `cargo xtask soak [--cycles N] [--release]`: backups against an in-process mock DC with one
//! fault each (drop, stall, corrupt a fragment, kill the client, kill and restart the server, a
//! half-open socket, a signal to the CLI), each followed by a check that no binding,
//! association, task, session or file descriptor is left and that no set reported good differs
//! from the source.
//!
//! The driver is the `soak` example of dsbackup-cli (its documentation lists each fault and what
//! must follow it); this task builds it with the `dsbackup` binary it runs as the CLI, then runs
//! it. CI runs 100 cycles of the dev build; long soaks use `--release`.

use anyhow::{Result, ensure};

use crate::args::Args;
use crate::sh;

/// Cycles when `--cycles` is not given: CI's number.
pub(crate) const DEFAULT_CYCLES: u64 = 100;

pub(crate) fn run(mut args: Args) -> Result<()> {
    let cycles = args.number("--cycles")?.unwrap_or(DEFAULT_CYCLES);
    let release = args.flag("--release");
    args.finish()?;
    soak(cycles, release)
}

/// Builds the driver and the CLI, then runs `cycles` cycles.
pub(crate) fn soak(cycles: u64, release: bool) -> Result<()> {
    ensure!(cycles > 0, "--cycles must be at least 1");
    let mut build = sh::cargo();
    build.args([
        "build",
        "--locked",
        "-p",
        "dsbackup-cli",
        "--bin",
        "dsbackup",
        "--example",
        "soak",
    ]);
    let profile = if release {
        build.arg("--release");
        "release"
    } else {
        "debug"
    };
    sh::run(&mut build)?;
    let bin = sh::target_dir()?.join(profile);
    sh::run(
        std::process::Command::new(bin.join("examples/soak"))
            .args(["--cycles", &cycles.to_string(), "--cli"])
            .arg(bin.join("dsbackup")),
    )
}
