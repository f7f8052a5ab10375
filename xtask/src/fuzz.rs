//! `cargo xtask fuzz [--target T] [--secs N] [--runs R] [--jobs J]`: regressions first, then
//! fresh fuzzing.
//!
//! Runs on the stable toolchain: cargo-fuzz's default address sanitizer needs `-Z` flags, which
//! `RUSTC_BOOTSTRAP=1` unlocks for this build only. The targets are built once; then, for each,
//! every saved input under `fixtures/fuzz/<target>/` is replayed and the target fuzzes for N
//! seconds or R executions, whichever comes first, from its corpus (`fuzz/corpus/<target>`,
//! seeded with the saved inputs, the PDU fixtures for the targets that take PDUs, and, for the
//! stub targets, a seed corpus built here from the call stubs of `fixtures/ndr`). Each target's
//! libFuzzer output goes to `target/fuzz-logs/<target>.log`. Targets run side by side, one per
//! core (or `--jobs J`); a table of executions, coverage and crashes per target ends the run.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{Context as _, Result, bail, ensure};

use crate::args::Args;
use crate::setup::{self, Needs};
use crate::sh;

const DEFAULT_SECS: u64 = 60;
/// The call stubs the stub targets are seeded from.
const NDR_FIXTURES: &str = "fixtures/ndr";
/// Saved crashes, one directory per target: each file is replayed on every run.
const REGRESSIONS: &str = "fixtures/fuzz";
/// Targets that take whole PDUs, and so start from the PDU fixtures.
const PDU_TARGETS: &[&str] = &[
    "pdu_decode",
    "pdu_round_trip",
    "frame_split",
    "client_association",
    "server_association",
    "observe",
];

pub(crate) fn run(mut args: Args) -> Result<()> {
    let only = args.value("--target")?;
    let runs = args.number("--runs")?;
    let secs = args
        .number("--secs")?
        .or_else(|| runs.is_none().then_some(DEFAULT_SECS));
    let budget = Budget { secs, runs };
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

    let target_dir = sh::target_dir()?;
    let logs = target_dir.join("fuzz-logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let seeds = target_dir.join("fuzz-seeds");
    build_stub_seeds(Path::new(NDR_FIXTURES), &seeds)?;
    // libFuzzer runs one process per target: keep every core busy with a target of its own.
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let queue = Mutex::new(targets.iter());
    let failed = Mutex::new(Vec::new());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, targets.len()) {
            scope.spawn(|| {
                while let Some(target) = queue.lock().ok().and_then(|mut q| q.next()) {
                    let outcome = fuzz_one(&fuzz_dir, target, budget, &logs, &seeds);
                    match &outcome {
                        Ok(stats) => println!("{target}: {}", stats.line()),
                        Err(e) => {
                            println!("{target}: FAILED: {e:#}");
                            failed.lock().map(|mut f| f.push(target.as_str())).ok();
                        }
                    }
                    let stats = outcome.unwrap_or_else(|_| {
                        Stats::from_log(&read_log(&logs.join(format!("{target}.log"))))
                    });
                    results
                        .lock()
                        .map(|mut r| r.push((target.as_str(), stats)))
                        .ok();
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_unstable_by_key(|(target, _)| *target);
    print!("{}", table(&results));
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

/// How long each target fuzzes: until either limit is reached.
#[derive(Clone, Copy, Debug)]
struct Budget {
    secs: Option<u64>,
    runs: Option<u64>,
}

/// Replays the regressions of `target`, then fuzzes it within `budget`.
fn fuzz_one(
    fuzz_dir: &Path,
    target: &str,
    budget: Budget,
    logs: &Path,
    seeds: &Path,
) -> Result<Stats> {
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
    let stub_seeds = seeds.join(target);
    if stub_seeds.is_dir() {
        fuzz.arg(&stub_seeds);
    }
    fuzz.args(["--", "-print_final_stats=1"]);
    if let Some(secs) = budget.secs {
        fuzz.arg(format!("-max_total_time={secs}"));
    }
    if let Some(runs) = budget.runs {
        fuzz.arg(format!("-runs={runs}"));
    }
    let log = logs.join(format!("{target}.log"));
    run_logged(&mut fuzz, &log)?;
    let mut stats = Stats::from_log(&read_log(&log));
    stats.replayed = saved.len();
    Ok(stats)
}

/// The call stubs of `fixtures/ndr`, each behind the selector byte the stub oracles read
/// (`dsbackup_proto::iface::fuzzing`: opnum, bit 5 for a response), one directory per stub
/// target under `out`. Built on every run from the fixtures, so the seeds follow them.
fn build_stub_seeds(ndr: &Path, out: &Path) -> Result<()> {
    for (target, _) in STUB_TARGETS {
        let dir = out.join(target);
        if dir.is_dir() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for path in sh::files_with_suffix(ndr, ".bin")? {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let Some((target, selector)) = stub_seed(&name) else {
            continue;
        };
        let stub =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let seed: Vec<u8> = std::iter::once(selector).chain(stub).collect();
        let dest = out.join(target).join(&name);
        std::fs::write(&dest, seed).with_context(|| format!("cannot write {}", dest.display()))?;
    }
    Ok(())
}

/// The stub targets and the interface name their fixtures start with.
const STUB_TARGETS: [(&str, &str); 4] = [
    ("stub_ad_backup", "ad_backup"),
    ("stub_ad_restore", "ad_restore"),
    ("stub_epm", "epm"),
    ("stub_mgmt", "mgmt"),
];

/// The target and the selector byte of an NDR fixture named
/// `[samba-]<interface>-<opnum>-<operation>-<request|response>[-<variant>].bin`.
fn stub_seed(name: &str) -> Option<(&'static str, u8)> {
    let name = name.strip_prefix("samba-").unwrap_or(name);
    let (target, rest) = STUB_TARGETS.iter().find_map(|(target, iface)| {
        name.strip_prefix(iface)
            .and_then(|rest| rest.strip_prefix('-'))
            .map(|rest| (*target, rest))
    })?;
    let mut parts = rest.split('-');
    let opnum: u8 = parts.next()?.parse().ok().filter(|&op| op < 0x20)?;
    let direction = parts.nth(1)?.trim_end_matches(".bin");
    match direction {
        "request" => Some((target, opnum)),
        "response" => Some((target, opnum | 0x20)),
        _ => None,
    }
}

fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
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
    let artifact = Stats::from_log(&text)
        .crashes
        .first()
        .map_or_else(String::new, |a| format!("\ncrash saved as {a}"));
    bail!(
        "{status}; last lines of {}:\n{tail}{artifact}",
        log.display()
    )
}

/// What one target's run gave, out of libFuzzer's log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Stats {
    runs: Option<String>,
    per_sec: Option<String>,
    coverage: Option<String>,
    new_inputs: Option<String>,
    peak_mb: Option<String>,
    /// Where the crashing inputs were written (libFuzzer stops at the first).
    crashes: Vec<String>,
    replayed: usize,
}

impl Stats {
    fn from_log(log: &str) -> Self {
        let stat = |name: &str| {
            log.lines().find_map(|l| {
                l.strip_prefix(&format!("stat::{name}:"))
                    .map(|v| v.trim().to_owned())
            })
        };
        let coverage = log.lines().rev().find_map(|l| {
            l.split_once("cov: ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .map(str::to_owned)
        });
        Self {
            runs: stat("number_of_executed_units"),
            per_sec: stat("average_exec_per_sec"),
            coverage,
            new_inputs: stat("new_units_added"),
            peak_mb: stat("peak_rss_mb"),
            crashes: log
                .lines()
                .filter_map(|l| {
                    l.split_once("Test unit written to ")
                        .map(|(_, path)| path.trim().to_owned())
                })
                .collect(),
            replayed: 0,
        }
    }

    /// `N runs (R/s), cov C, +U new inputs, peak M MB, K crashes, S saved inputs replayed`.
    fn line(&self) -> String {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".to_owned());
        format!(
            "{} runs ({}/s), cov {}, +{} new inputs, peak {} MB, {} crashes, {} saved inputs replayed",
            show(&self.runs),
            show(&self.per_sec),
            show(&self.coverage),
            show(&self.new_inputs),
            show(&self.peak_mb),
            self.crashes.len(),
            self.replayed
        )
    }
}

/// One row per target: executions, coverage (libFuzzer's edge count), crashes.
fn table(results: &[(&str, Stats)]) -> String {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".to_owned());
    let mut out = format!(
        "\n{:<20} {:>12} {:>8} {:>8}\n",
        "target", "executions", "coverage", "crashes"
    );
    for (target, stats) in results {
        out.push_str(&format!(
            "{target:<20} {:>12} {:>8} {:>8}\n",
            show(&stats.runs),
            show(&stats.coverage),
            stats.crashes.len()
        ));
        for crash in &stats.crashes {
            out.push_str(&format!("  crash: {crash}\n"));
        }
    }
    out
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
        let stats = Stats::from_log(LOG);
        assert_eq!(
            stats.line(),
            "8000 runs (4000/s), cov 14, +3 new inputs, peak 31 MB, 0 crashes, 0 saved inputs replayed"
        );
        assert_eq!(
            Stats::from_log("").line(),
            "? runs (?/s), cov ?, +? new inputs, peak ? MB, 0 crashes, 0 saved inputs replayed"
        );
        assert!(
            table(&[("pdu_decode", stats)])
                .contains("pdu_decode                   8000       14        0")
        );
    }

    #[test]
    fn the_crash_artifact_is_found() {
        let log = "==1== ERROR: libFuzzer: deadly signal\n\
                   artifact_prefix='fuzz/artifacts/pdu_decode/'; Test unit written to fuzz/artifacts/pdu_decode/crash-da39\n";
        assert_eq!(
            Stats::from_log(log).crashes,
            ["fuzz/artifacts/pdu_decode/crash-da39"]
        );
        assert!(Stats::from_log(LOG).crashes.is_empty());
    }

    #[test]
    fn ndr_fixture_names_give_the_target_and_selector() {
        assert_eq!(
            stub_seed("ad_backup-4-HrRBackupRead-response-short.bin"),
            Some(("stub_ad_backup", 0x24))
        );
        assert_eq!(
            stub_seed("ad_restore-1-HrRRestorePrepare-request.bin"),
            Some(("stub_ad_restore", 1))
        );
        assert_eq!(
            stub_seed("samba-epm-3-ept_map-response.bin"),
            Some(("stub_epm", 0x23))
        );
        assert_eq!(
            stub_seed("mgmt-0-inq_if_ids-response-null.bin"),
            Some(("stub_mgmt", 0x20))
        );
        assert_eq!(stub_seed("vectors.json"), None);
        assert_eq!(stub_seed("ntlm-negotiate.bin"), None);
    }

    #[test]
    fn every_ndr_fixture_seeds_a_stub_target() {
        let root = sh::project_root();
        let temp = sh::TempDir::new("fuzz-seeds").unwrap();
        let temp = temp.path();
        build_stub_seeds(&root.join(NDR_FIXTURES), temp).unwrap();
        let fixtures = sh::files_with_suffix(&root.join(NDR_FIXTURES), ".bin").unwrap();
        let seeded: usize = STUB_TARGETS
            .iter()
            .map(|(target, _)| std::fs::read_dir(temp.join(target)).unwrap().count())
            .sum();
        assert_eq!(seeded, fixtures.len());
        let read =
            std::fs::read(temp.join("stub_ad_backup/ad_backup-4-HrRBackupRead-response.bin"))
                .unwrap();
        let stub = std::fs::read(
            root.join(NDR_FIXTURES)
                .join("ad_backup-4-HrRBackupRead-response.bin"),
        )
        .unwrap();
        assert_eq!(read.split_first(), Some((&0x24, stub.as_slice())));
    }
}
