//! `cargo xtask ci`: every check CI runs, in order, each a timed step; the first failure stops it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::args::Args;
use crate::setup::{self, Needs};
use crate::{conformance, deps, fuzz, install, sh, soak, vectors};

/// The steps, in the order they run.
const STEPS: &[&str] = &[
    "setup",
    "fmt",
    "clippy",
    "test",
    "large",
    "doc",
    "deps",
    "ffi",
    "cross",
    "conformance",
    "vectors",
    "fuzz",
    "soak",
];

/// The targets `cargo check` must pass for besides the host (`setup` adds them with rustup).
pub(crate) const CROSS_TARGETS: &[&str] = &["x86_64-pc-windows-gnu", "x86_64-apple-darwin"];

/// Seconds each fuzz target runs in CI: a smoke test that every target builds and runs.
const FUZZ_SMOKE_SECS: u64 = 10;

pub(crate) fn run(mut args: Args) -> Result<()> {
    let skip: Vec<String> = args
        .value("--skip")?
        .map(|list| list.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let no_install = args.flag("--no-install");
    args.finish()?;
    if let Some(unknown) = skip.iter().find(|s| !STEPS.contains(&s.as_str())) {
        bail!(
            "unknown step `{unknown}` in --skip; steps: {}",
            STEPS.join(" ")
        );
    }
    let installs = sh::installs_allowed(no_install);
    let start = Instant::now();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    for &name in STEPS {
        if skip.iter().any(|s| s == name) {
            println!("\n==> {name} skipped");
            continue;
        }
        let (_, took) = sh::step(name, || step(name, installs)).inspect_err(|_| {
            print_timings(&timings, start.elapsed());
            println!("ci FAILED at step `{name}`");
        })?;
        timings.push((name, took));
    }
    print_timings(&timings, start.elapsed());
    println!("ci passed");
    Ok(())
}

fn step(name: &str, installs: bool) -> Result<()> {
    match name {
        "setup" => setup::ensure(Needs::ALL, installs),
        "fmt" => {
            sh::run(sh::cargo().args(["fmt", "--all", "--check"]))?;
            // The fuzz targets are their own workspace, out of `cargo fmt --all`'s reach.
            let targets = sh::files_with_suffix(Path::new("fuzz/fuzz_targets"), ".rs")?;
            if targets.is_empty() {
                return Ok(());
            }
            sh::run(
                Command::new("rustfmt")
                    .args(["--edition", "2024", "--check"])
                    .args(targets),
            )
        }
        "clippy" => sh::run(sh::cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ])),
        // The README's test command (`cargo test --workspace`), locked to Cargo.lock.
        "test" => sh::run(sh::cargo().args(["test", "--workspace", "--locked"])),
        // The ignored tests: the 1 GiB backup from `dsbackup mock-dc`, end to end.
        "large" => sh::run(sh::cargo().args([
            "test",
            "--locked",
            "-p",
            "dsbackup-cli",
            "--test",
            "cli",
            "--",
            "--ignored",
        ])),
        "doc" => sh::run(
            sh::cargo()
                .args([
                    "doc",
                    "--workspace",
                    "--no-deps",
                    "--document-private-items",
                    "--all-features",
                    "--locked",
                ])
                .env("RUSTDOCFLAGS", "-Dwarnings"),
        ),
        "deps" => deps::check(),
        // libntdsbcli as a C programmer installs and uses it, then the C programs of its tests
        // under Valgrind (the `test` step ran them under AddressSanitizer and UBSan:
        // crates/dsbackup-ffi/tests/c.rs).
        "ffi" => {
            let prefix = sh::target_dir()?.join("ci-ffi");
            let pkgconfig = install::install(&prefix.join("prefix"), "dev")?;
            install::check_from_c(&pkgconfig, &prefix)?;
            sh::run(sh::cargo().args([
                "test",
                "--locked",
                "-p",
                "dsbackup-ffi",
                "--test",
                "c",
                "--",
                "--ignored",
            ]))
        }
        // The design promises Windows and macOS builds of the client and the mock.
        "cross" => check_cross_targets(),
        "conformance" => conformance::run(Args::new(no_install_arg(installs))),
        "vectors" => vectors::vectors(true, installs),
        "fuzz" => fuzz::run(Args::new(
            ["--secs".to_owned(), FUZZ_SMOKE_SECS.to_string()]
                .into_iter()
                .chain(no_install_arg(installs)),
        )),
        // The dev build the test step made: 100 cycles take about a minute.
        "soak" => soak::soak(soak::DEFAULT_CYCLES, false),
        _ => bail!("no step called `{name}`"),
    }
}

/// `cargo check --workspace` for each of [`CROSS_TARGETS`] (`cargo xtask cross`): the
/// libraries and the binaries, not the tests (which may use Unix-only helpers).
pub(crate) fn cross() -> Result<()> {
    setup::ensure(
        Needs {
            cross_targets: true,
            ..Needs::default()
        },
        sh::installs_allowed(false),
    )?;
    check_cross_targets()
}

/// A warning fails it: code only Unix uses (a file mode, a signal, a `mut` only Unix needs)
/// must stay behind `cfg(unix)`, or the other targets warn of it as dead.
/// A target whose standard library could not be installed (no route to the Rust distribution
/// server) is named as not checked, loudly, and skipped.
fn check_cross_targets() -> Result<()> {
    let missing = setup::missing_cross_targets();
    for target in CROSS_TARGETS {
        if missing.contains(target) {
            println!("cross: {target} NOT CHECKED: its standard library is not installed");
            continue;
        }
        sh::run(
            sh::cargo()
                .args(["check", "--workspace", "--locked", "--target", target])
                // With `--target`, RUSTFLAGS reach the target's crates only, not the host's
                // build scripts and proc macros: the host's build is left as it is.
                .env("RUSTFLAGS", "-D warnings"),
        )?;
    }
    Ok(())
}

fn no_install_arg(installs: bool) -> Option<String> {
    (!installs).then(|| "--no-install".to_owned())
}

fn print_timings(timings: &[(&str, Duration)], total: Duration) {
    println!("\nstep          time");
    for (name, took) in timings {
        println!("{name:<12} {:>6}", sh::secs(*took));
    }
    println!("{:<12} {:>6}", "total", sh::secs(total));
}
