//! `backup`, `verify`, `restore`, `online`, `set-log`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use dsbackup_client::{
    BackupOptions, BackupSummary, BackupType, FileOutcome, PathMap, RestoreOptions, verify_dir,
};

use crate::connect::{ConnectArgs, ProgressArgs, ReadArgs};
use crate::exit;
use crate::output::Output;
use crate::progress::Bar;

/// `dsbackup backup`.
#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    #[command(flatten)]
    pub(crate) read: ReadArgs,
    #[command(flatten)]
    pub(crate) progress: ProgressArgs,
    /// The directory to create (it must not exist, or be empty).
    #[arg(long, short = 'o')]
    pub(crate) out: PathBuf,
    /// Back up the logs only (BACKUP_TYPE_LOGS_ONLY; the mock DC's extension).
    ///
    /// Microsoft documents it as not supported, so a Windows DC may refuse it; the mock DC
    /// serves it as an extension of its own (the logs and the patch file, no database).
    #[arg(long)]
    pub(crate) logs_only: bool,
    /// Truncate the server's committed logs once the set is safely written.
    #[arg(long)]
    pub(crate) truncate_logs: bool,
    /// Remove a `<out>.partial` left by an earlier run that did not finish (a crash, kill -9)
    /// and start again. There is no resuming: a new server backup session is a new snapshot.
    #[arg(long)]
    pub(crate) force: bool,
}

/// `dsbackup verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The backup directory.
    pub(crate) dir: PathBuf,
    #[command(flatten)]
    pub(crate) progress: ProgressArgs,
}

/// `dsbackup restore`.
#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    #[command(flatten)]
    pub(crate) progress: ProgressArgs,
    /// The backup directory to restore.
    #[arg(long = "from", short = 'f')]
    pub(crate) from: PathBuf,
    /// Where a server path is on this host: `PREFIX=LOCAL_DIR` (repeatable), e.g.
    /// `'\\DC1\C$=/mnt/dc1-c'`. Every file the server asks for must fall under a rule and
    /// is written beneath its LOCAL_DIR, never through a symbolic link; nothing else maps.
    #[arg(long = "map", value_name = "PREFIX=LOCAL_DIR")]
    pub(crate) map: Vec<String>,
    /// Replace files that exist at the targets (without it the restore refuses before
    /// copying anything).
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// Print the plan (DC path, local target, size, SHA-256) and change nothing, locally or
    /// on the server.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Ask for a catch-up restore (RESTORE_TYPE_CATCHUP).
    #[arg(long)]
    pub(crate) catchup: bool,
}

/// `dsbackup online`.
#[derive(Debug, Args)]
pub(crate) struct OnlineArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

/// `dsbackup set-log`.
#[derive(Debug, Args)]
pub(crate) struct SetLogArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// The log number (4294967295 disables incremental backups until the next full one).
    pub(crate) log: u32,
}

pub(crate) async fn backup(args: &BackupArgs, output: Output) -> anyhow::Result<u8> {
    let client = args.connect.reading_client(Some(&args.read))?;
    let options = BackupOptions::default()
        .backup_type(if args.logs_only {
            BackupType::LogsOnly
        } else {
            BackupType::Full
        })
        .truncate_logs(args.truncate_logs)
        .force(args.force);
    let mut signals = crate::signals::Signals::new()?;
    let caught = std::cell::Cell::new(None);
    let mut bar = Bar::new(0, !output.bars());
    bar.grow_per_file(true);
    let started = std::time::Instant::now();
    let stop = async {
        caught.set(Some(signals.recv().await));
    };
    let summary =
        dsbackup_client::backup_to_dir_until(&client, &args.out, &options, &mut bar, stop).await;
    bar.finish();
    if let (Err(dsbackup_client::Error::Interrupted), Some(signal)) = (&summary, caught.get()) {
        let open = client.registry().metrics().snapshot().bindings;
        eprintln!(
            "dsbackup: interrupted by {}: the backup session was ended with the server \
             (DsBackupEnd), {open} bindings left open, {} removed, {} not created",
            signal.name(),
            dsbackup_client::partial_path(&args.out).display(),
            args.out.display()
        );
        return Ok(signal.exit_code());
    }
    let summary = summary.with_context(|| {
        format!(
            "backup of {} failed; {} was not created",
            args.connect.server,
            args.out.display()
        )
    })?;
    let elapsed = started.elapsed();
    output.result(
        &serde_json::json!({
            "out": summary.out,
            "files": summary.manifest.files.len(),
            "bytes": summary.bytes,
            "seconds": elapsed.as_secs_f64(),
            "manifest": summary.manifest,
            "truncate_error": summary.truncate_error,
            "end_error": summary.end_error,
        }),
        &backup_text(&summary, elapsed),
    )?;
    Ok(exit::OK)
}

/// Bytes a second, whole.
fn per_second(bytes: u64, elapsed: std::time::Duration) -> u64 {
    let micros = elapsed.as_micros().max(1);
    u64::try_from(u128::from(bytes) * 1_000_000 / micros).unwrap_or(u64::MAX)
}

pub(crate) fn backup_text(summary: &BackupSummary, elapsed: std::time::Duration) -> String {
    let mut text = String::new();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(
        text,
        "backed up {} files, {} from {} into {} in {:.2} s ({}/s)",
        summary.manifest.files.len(),
        indicatif::HumanBytes(summary.bytes),
        summary.manifest.server,
        summary.out.display(),
        secs,
        indicatif::HumanBytes(per_second(summary.bytes, elapsed))
    );
    for file in &summary.manifest.files {
        let _ = writeln!(
            text,
            "  {:<18} {:>12}  {}  {}",
            file.kind, file.size, file.sha256, file.path
        );
    }
    if let Some(error) = &summary.truncate_error {
        let _ = writeln!(
            text,
            "warning: the set is complete, but DsBackupTruncateLogs failed: {error}"
        );
    }
    if let Some(error) = &summary.end_error {
        let _ = writeln!(
            text,
            "warning: DsBackupEnd failed after the backup: {error}"
        );
    }
    text
}

pub(crate) fn verify(args: &VerifyArgs, output: Output) -> anyhow::Result<u8> {
    let manifest = dsbackup_client::Manifest::read(&args.dir)?;
    let mut bar = Bar::new(manifest.total_size(), !output.bars());
    let report = verify_dir(&args.dir, &mut bar);
    bar.finish();
    let report = report?;
    let mut text = String::new();
    for check in &report.files {
        let line = match &check.outcome {
            FileOutcome::Ok => format!("ok        {}", check.path),
            FileOutcome::Missing { error } => format!("MISSING   {} ({error})", check.path),
            FileOutcome::SizeDiffers { expected, actual } => {
                format!(
                    "SIZE      {} ({actual} bytes, manifest says {expected})",
                    check.path
                )
            }
            FileOutcome::HashDiffers { .. } => {
                format!("CHANGED   {} (SHA-256 differs)", check.path)
            }
            FileOutcome::Refused { reason } => format!("REFUSED   {} ({reason})", check.path),
        };
        let _ = writeln!(text, "{line}");
    }
    for extra in &report.extra {
        let _ = writeln!(text, "EXTRA     {extra} (in the set, not in its manifest)");
    }
    for problem in &report.problems {
        let _ = writeln!(text, "NOT WHOLE {problem}");
    }
    for warning in &report.warnings {
        eprintln!("dsbackup: warning: {warning}");
    }
    let failed = report.failed();
    let matching = report.files.len() - report.failures().count();
    let _ = writeln!(
        text,
        "{}: {} of {} files match",
        if failed == 0 { "verified" } else { "FAILED" },
        matching,
        report.files.len()
    );
    output.result(
        &serde_json::json!({
            "ok": failed == 0,
            "files": report.files,
            "extra": report.extra,
            "problems": report.problems,
            "warnings": report.warnings,
        }),
        &text,
    )?;
    Ok(if failed == 0 {
        exit::OK
    } else {
        exit::MISMATCH
    })
}

pub(crate) async fn restore(args: &RestoreArgs, output: Output) -> anyhow::Result<u8> {
    let mut map = PathMap::new();
    for rule in &args.map {
        map = map.parse_rule(rule)?;
    }
    let client = args.connect.client()?;
    let options = RestoreOptions::new(map)
        .rt_flag(if args.catchup {
            dsbackup_proto::iface::ad_restore::RESTORE_TYPE_CATCHUP
        } else {
            0
        })
        .overwrite(args.overwrite);
    if options.map.is_empty() {
        anyhow::bail!(
            "restore needs --map 'SERVER_PREFIX=LOCAL_DIR' for where the DC's paths are on this \
             host (e.g. --map '\\\\DC1\\C$=/mnt/dc1-c'); nothing is written anywhere else"
        );
    }
    if args.dry_run {
        let plan = match dsbackup_client::plan_restore_from_dir(&client, &args.from, &options).await
        {
            Ok(plan) => plan,
            Err(error) => return Err(crate::diagnose::restore(&client, error.into()).await),
        };
        let mut text = String::new();
        for copy in &plan.copies {
            let _ = writeln!(
                text,
                "  {}  ->  {}  {} bytes  sha256 {}{}",
                copy.server_target,
                copy.local_target.display(),
                copy.entry.size,
                copy.entry.sha256,
                if copy.exists {
                    "  (exists: replaced)"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(
            text,
            "dry run: would restore {} files to {}; registered logs {}..={}; nothing was changed",
            plan.copies.len(),
            args.connect.server,
            plan.gen_low,
            plan.gen_high
        );
        output.result(&plan, &text)?;
        return Ok(exit::OK);
    }
    let total = dsbackup_client::Manifest::read(&args.from)?.total_size();
    let mut bar = Bar::new(total, !output.bars());
    let summary = dsbackup_client::restore_from_dir(&client, &args.from, &options, &mut bar).await;
    bar.finish();
    let summary = match summary {
        Ok(summary) => summary,
        Err(error) => return Err(crate::diagnose::restore(&client, error.into()).await),
    };
    let mut text = String::new();
    for copy in &summary.plan.copies {
        let _ = writeln!(
            text,
            "  {} -> {} ({})",
            copy.entry.path,
            copy.server_target,
            copy.local_target.display()
        );
    }
    let _ = writeln!(
        text,
        "restored {} files ({} bytes) to {}; registered logs {}..={}",
        summary.plan.copies.len(),
        summary.bytes,
        args.connect.server,
        summary.plan.gen_low,
        summary.plan.gen_high
    );
    output.result(&summary, &text)?;
    Ok(exit::OK)
}

pub(crate) async fn online(args: &OnlineArgs, output: Output) -> anyhow::Result<u8> {
    let online = args.connect.client()?.is_ntds_online().await?;
    output.result(
        &serde_json::json!({"server": args.connect.server, "online": online}),
        if online {
            "online: the directory service is running"
        } else {
            "offline: the DC is in directory services restore mode"
        },
    )?;
    // Scripts branch on the code, as on `test`: 0 online, its own code offline.
    Ok(if online { exit::OK } else { exit::OFFLINE })
}

pub(crate) async fn set_log(args: &SetLogArgs, output: Output) -> anyhow::Result<u8> {
    args.connect
        .client()?
        .set_current_backup_log(args.log)
        .await?;
    output.result(
        &serde_json::json!({"server": args.connect.server, "current_log": args.log}),
        &format!("current backup log set to {}", args.log),
    )?;
    Ok(exit::OK)
}
