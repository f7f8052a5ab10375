//! `cargo xtask fuzz [--target T] [--secs N] [--jobs J]`: regressions first, then fresh fuzzing.
//!
//! Runs on the stable toolchain: cargo-fuzz's default address sanitizer needs `-Z` flags, which
//! `RUSTC_BOOTSTRAP=1` unlocks for this build only. The targets are built once; then, for each,
//! every saved crash under `fixtures/fuzz/<target>/` is replayed and the target fuzzes for N
//! seconds from its corpus (`fuzz/corpus/<target>`, seeded with the committed fixtures). Each
//! target's libFuzzer output goes to `target/fuzz-logs/<target>.log`. Targets run side by side,
//! one per core (or `--jobs J`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{Context as _, Result, bail, ensure};

use crate::args::Args;
use crate::setup::{self, Needs};
use crate::sh;

const DEFAULT_SECS: u64 = 60;
/// Saved crashes, one directory per target: each file is replayed on every run.
const REGRESSIONS: &str = "fixtures/fuzz";
/// Targets that take whole PDUs, and so start from the PDU fixtures.
const PDU_TARGETS: &[&str] = &[
    "pdu_decode",
    "pdu_round_trip",
    "frame_split",
    "client_association",
    "server_association",
];

pub(crate) fn run(mut args: Args) -> Result<()> {
    let only = args.value("--target")?;
    let secs = args.number("--secs")?.unwrap_or(DEFAULT_SECS);
    let jobs = args
        .number("--jobs")?
        .map(|j| usize::try_from(j).unwrap_or(usize::MAX));
    let fuzz_dir = args
        .value("--fuzz-dir")?
        .map_or_else(|| PathBuf::from("fuzz"), PathBuf::from);
    let no_install = args.flag("--no-install");
    args.finish()?;

    let mut targets: Vec<String> = sh::files_with_suffix(&fuzz_dir.join("fuzz_targets"), ".rs")?
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    if let Some(only) = only {
        ensure!(
            targets.contains(&only),
            "no fuzz target `{only}`; targets: {}",
            targets.join(" ")
        );
        targets = vec![only];
    }
    if targets.is_empty() {
        println!(
            "no {}/fuzz_targets/*.rs: nothing to fuzz",
            fuzz_dir.display()
        );
        return Ok(());
    }
    setup::ensure(
        Needs {
            cargo_fuzz: true,
            ..Needs::default()
        },
        sh::installs_allowed(no_install),
    )?;

    // One build for every target; `cargo fuzz run` then finds them up to date.
    let mut build = cargo_fuzz("build", &fuzz_dir);
    if let [one] = targets.as_slice() {
        build.arg(one);
    }
    sh::run(&mut build)?;

    let logs = sh::target_dir()?.join("fuzz-logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    // libFuzzer runs one process per target: keep every core busy with a target of its own.
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let queue = Mutex::new(targets.iter());
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, targets.len()) {
            scope.spawn(|| {
                while let Some(target) = queue.lock().ok().and_then(|mut q| q.next()) {
                    match fuzz_one(&fuzz_dir, target, secs, &logs) {
                        Ok(summary) => println!("{target}: {summary}"),
                        Err(e) => {
                            println!("{target}: FAILED: {e:#}");
                            failed.lock().map(|mut f| f.push(target.as_str())).ok();
                        }
                    }
                }
            });
        }
    });
    let mut failed = failed.into_inner().unwrap_or_default();
    failed.sort_unstable();
    if !failed.is_empty() {
        bail!(
            "fuzz targets failed: {} (see docs/FUZZING.md to turn a crash into a regression)",
            failed.join(", ")
        );
    }
    Ok(())
}

/// `RUSTC_BOOTSTRAP=1 cargo fuzz SUBCOMMAND --fuzz-dir DIR`.
fn cargo_fuzz(subcommand: &str, fuzz_dir: &Path) -> Command {
    let mut cmd = sh::cargo();
    cmd.args(["fuzz", subcommand, "--fuzz-dir"])
        .arg(fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1");
    cmd
}

/// Replays the regressions of `target`, then fuzzes it for `secs`; returns the summary line.
fn fuzz_one(fuzz_dir: &Path, target: &str, secs: u64, logs: &Path) -> Result<String> {
    let regressions = Path::new(REGRESSIONS).join(target);
    let saved = if regressions.is_dir() {
        sh::walk(&regressions)?
    } else {
        Vec::new()
    };
    if !saved.is_empty() {
        // Given files rather than directories, libFuzzer runs each once and stops.
        let log = logs.join(format!("{target}.regressions.log"));
        let mut replay = cargo_fuzz("run", fuzz_dir);
        replay.arg(target).args(&saved);
        run_logged(&mut replay, &log)
            .with_context(|| format!("replaying {} saved inputs", saved.len()))?;
    }

    let corpus = fuzz_dir.join("corpus").join(target);
    std::fs::create_dir_all(&corpus)
        .with_context(|| format!("cannot create {}", corpus.display()))?;
    let mut fuzz = cargo_fuzz("run", fuzz_dir);
    // The first directory collects new inputs; the others only seed.
    fuzz.arg(target).arg(&corpus);
    if regressions.is_dir() {
        fuzz.arg(&regressions);
    }
    if PDU_TARGETS.contains(&target) && Path::new("fixtures/pdu").is_dir() {
        fuzz.arg("fixtures/pdu");
    }
    fuzz.args([
        "--",
        &format!("-max_total_time={secs}"),
        "-print_final_stats=1",
    ]);
    let log = logs.join(format!("{target}.log"));
    run_logged(&mut fuzz, &log)?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    Ok(format!(
        "{}, {} saved inputs replayed",
        summarize(&text),
        saved.len()
    ))
}

/// Runs `cmd` with its output in `log`; on failure, the error carries the log's tail.
fn run_logged(cmd: &mut Command, log: &Path) -> Result<()> {
    println!("$ {} > {}", sh::display(cmd), log.display());
    let file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("cannot start `{}`", sh::display(cmd)))?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines
        .get(lines.len().saturating_sub(25)..)
        .unwrap_or_default()
        .join("\n");
    let artifact =
        crash_artifact(&text).map_or_else(String::new, |a| format!("\ncrash saved as {a}"));
    bail!(
        "{status}; last lines of {}:\n{tail}{artifact}",
        log.display()
    )
}

/// The file libFuzzer wrote the crashing input to.
fn crash_artifact(log: &str) -> Option<&str> {
    log.lines().find_map(|l| {
        l.split_once("Test unit written to ")
            .map(|(_, path)| path.trim())
    })
}

/// `N runs (R/s), cov C, +U new inputs` out of libFuzzer's final statistics.
fn summarize(log: &str) -> String {
    let stat = |name: &str| {
        log.lines()
            .find_map(|l| {
                l.strip_prefix(&format!("stat::{name}:"))
                    .map(|v| v.trim().to_owned())
            })
            .unwrap_or_else(|| "?".to_owned())
    };
    let coverage = log
        .lines()
        .rev()
        .find_map(|l| {
            l.split_once("cov: ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
        })
        .unwrap_or("?");
    format!(
        "{} runs ({}/s), cov {coverage}, +{} new inputs, peak {} MB",
        stat("number_of_executed_units"),
        stat("average_exec_per_sec"),
        stat("new_units_added"),
        stat("peak_rss_mb")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "#2\tINITED cov: 12 ft: 13 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                       #4096\tpulse  cov: 14 ft: 15 corp: 2/3b lim: 4 exec/s: 2048 rss: 31Mb\n\
                       Done 8000 runs in 2 second(s)\n\
                       stat::number_of_executed_units: 8000\n\
                       stat::average_exec_per_sec:     4000\n\
                       stat::new_units_added:          3\n\
                       stat::slowest_unit_time_sec:    0\n\
                       stat::peak_rss_mb:              31\n";

    #[test]
    fn final_statistics_are_summarized() {
        assert_eq!(
            summarize(LOG),
            "8000 runs (4000/s), cov 14, +3 new inputs, peak 31 MB"
        );
        assert_eq!(
            summarize(""),
            "? runs (?/s), cov ?, +? new inputs, peak ? MB"
        );
    }

    #[test]
    fn the_crash_artifact_is_found() {
        let log = "==1== ERROR: libFuzzer: deadly signal\n\
                   artifact_prefix='fuzz/artifacts/pdu_decode/'; Test unit written to fuzz/artifacts/pdu_decode/crash-da39\n";
        assert_eq!(
            crash_artifact(log),
            Some("fuzz/artifacts/pdu_decode/crash-da39")
        );
        assert_eq!(crash_artifact(LOG), None);
    }
}
