//! The backup-to-directory workflow and its restore counterpart.
//!
//! ```text
//!  backup_to_dir:  DsBackupPrepare -> token -> DsBackupGetDatabaseNames -> each file:
//!                  open, pipelined reads -> hashed, written (writer thread) -> close ->
//!                  DsBackupGetBackupLogs -> each file likewise -> manifest.json -> rename
//!                  <out>.partial to <out> -> [DsBackupTruncateLogs] -> DsBackupEnd
//!  restore_from_dir: verify the set -> DsRestorePrepare(token) -> locations -> copy files ->
//!                  DsRestoreRegister -> DsRestoreRegisterComplete(outcome) -> DsRestoreEnd
//! ```

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dsbackup_proto::{Chain, NameEntry, Status};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::backup::BackupSession;
use crate::client::Client;
use crate::dir::{BackupDirWriter, FileSink};
use crate::error::Error;
use crate::manifest::{BackupType, FileEntry, Manifest};
use crate::progress::Progress;
use crate::restore::Registration;
use crate::restore_plan::{PathMap, RestorePlan, copy_plan, plan_restore};
use crate::verify::verify_dir;

/// What [`backup_to_dir`] does besides copying the set: `BackupOptions::default()` (a full
/// backup, no truncation, no `--force`), changed by a builder method per field.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupOptions {
    /// Full or logs only.
    pub backup_type: BackupType,
    /// `DsBackupTruncateLogs` once the set is complete on disk (manifest included).
    pub truncate_logs: bool,
    /// Remove a `<out>.partial` left by an earlier run that did not finish, instead of
    /// refusing (see [`BackupDirWriter::create_with`] for why there is no resuming).
    pub force: bool,
}

impl Default for BackupOptions {
    fn default() -> Self {
        Self {
            backup_type: BackupType::Full,
            truncate_logs: false,
            force: false,
        }
    }
}

impl BackupOptions {
    /// Full or logs only.
    #[must_use]
    pub fn backup_type(mut self, backup_type: BackupType) -> Self {
        self.backup_type = backup_type;
        self
    }

    /// `DsBackupTruncateLogs` once the set is complete on disk.
    #[must_use]
    pub fn truncate_logs(mut self, truncate: bool) -> Self {
        self.truncate_logs = truncate;
        self
    }

    /// Remove a `<out>.partial` left by an earlier run instead of refusing.
    #[must_use]
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }
}

/// How long [`backup_to_dir_until`] gives `DsBackupEnd` (and closing the bindings) after an
/// interruption before it drops the session (the server then runs it down).
pub const END_DEADLINE: Duration = Duration::from_secs(5);

/// The outcome of a backup.
#[derive(Clone, Debug, Serialize)]
pub struct BackupSummary {
    /// Where the set is.
    pub out: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Bytes of file data received.
    pub bytes: u64,
    /// `HrRBackupTruncateLogs`'s failure, if truncation was asked for and failed (the set is
    /// complete; the server keeps its logs).
    pub truncate_error: Option<String>,
    /// `HrRBackupEnd`'s failure, if it failed after a complete backup (the set is complete).
    pub end_error: Option<String>,
}

/// Backs the server up into the directory `out` (which must not exist, or be empty).
///
/// The set appears at `out` only once complete: every file written, fsynced and hashed, the
/// expiry token and `manifest.json` in. A failure leaves no `out` and removes `<out>.partial`.
/// The session is ended (`DsBackupEnd`) on every path.
///
/// # Errors
/// The first error of the backup: [`Error::Status`], transport errors, [`Error::Io`] (disk),
/// [`Error::Protocol`] (a file shorter or longer than announced), [`Error::BadSet`] (`out` not
/// empty, or a `<out>.partial` left by an earlier run without [`BackupOptions::force`]).
///
/// # Cancel safety
/// Dropping the future drops the session (its bindings close, the server runs it down) and the
/// directory writer (which removes `<out>.partial`). To end the session with the server
/// first, use [`backup_to_dir_until`].
pub async fn backup_to_dir(
    client: &Client,
    out: &Path,
    options: &BackupOptions,
    progress: &mut dyn Progress,
) -> Result<BackupSummary, Error> {
    backup_to_dir_until(client, out, options, progress, std::future::pending()).await
}

/// [`backup_to_dir`], stopped cleanly when `stop` completes (a signal, a user's cancel)
/// before the set is complete: the transfer stops, `DsBackupEnd` runs (`HrRBackupEnd`, then
/// every binding closed) within [`END_DEADLINE`], `<out>.partial` is removed, and the result
/// is [`Error::Interrupted`]. Once the set is complete on disk, `stop` is no longer watched:
/// truncation (if asked) and the end run to completion.
///
/// # Errors
/// As [`backup_to_dir`]; [`Error::Interrupted`] when `stop` completed first.
///
/// # Cancel safety
/// As [`backup_to_dir`].
pub async fn backup_to_dir_until(
    client: &Client,
    out: &Path,
    options: &BackupOptions,
    progress: &mut dyn Progress,
    stop: impl Future<Output = ()>,
) -> Result<BackupSummary, Error> {
    let mut stop = std::pin::pin!(stop);
    let mut writer = BackupDirWriter::create_with(out, options.force)?;
    let prepared = tokio::select! {
        biased;
        () = &mut stop => return Err(Error::Interrupted),
        prepared = client.backup_prepare(options.backup_type) => prepared,
    };
    let mut session = prepared?;
    let copied = tokio::select! {
        biased;
        () = &mut stop => Err(Error::Interrupted),
        copied = copy_session(&mut session, &mut writer, progress) => copied,
    };
    let committed = match copied {
        Ok(bytes) => {
            let created = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            blocking(|| writer.commit(client.server(), options.backup_type, created))
                .map(|manifest| (bytes, manifest))
        }
        Err(error) => Err(error),
    };
    let (bytes, manifest) = match committed {
        Ok(done) => done,
        Err(error) => {
            match tokio::time::timeout(END_DEADLINE, session.end()).await {
                Ok(Ok(())) => tracing::debug!("Backup session ended after a failed backup"),
                Ok(Err(end_error)) => {
                    tracing::debug!(error = %end_error, "DsBackupEnd after a failed backup failed too");
                }
                Err(_) => tracing::warn!(
                    "DsBackupEnd did not finish in time; the bindings are closed and the \
                     server runs the session down"
                ),
            }
            // The writer, dropped on return unless committed, removes `<out>.partial`.
            return Err(error);
        }
    };
    // Logs are truncated only once the set is complete on disk, manifest included.
    let truncate_error = if options.truncate_logs {
        session.truncate_logs().await.err().map(|error| {
            tracing::warn!(%error, "DsBackupTruncateLogs failed after a complete backup");
            error.to_string()
        })
    } else {
        None
    };
    let end_error = session.end().await.err().map(|error| {
        tracing::warn!(%error, "DsBackupEnd failed after a complete backup");
        error.to_string()
    });
    Ok(BackupSummary {
        out: out.to_owned(),
        manifest,
        bytes,
        truncate_error,
        end_error,
    })
}

/// Reads every file of the session into the writer; returns the bytes received.
async fn copy_session(
    session: &mut BackupSession,
    writer: &mut BackupDirWriter,
    progress: &mut dyn Progress,
) -> Result<u64, Error> {
    let token = session.expiry_token().to_vec();
    blocking(|| writer.write_token(&token))?;
    let mut bytes = 0_u64;
    let databases = match session.backup_type() {
        BackupType::Full => session.database_names().await?,
        BackupType::LogsOnly => Vec::new(),
    };
    for entry in &databases {
        bytes = bytes.saturating_add(copy_file(session, writer, entry, progress).await?);
    }
    let logs = session.backup_logs().await?;
    for entry in &logs {
        bytes = bytes.saturating_add(copy_file(session, writer, entry, progress).await?);
    }
    Ok(bytes)
}

/// What the network side sends the writer thread.
enum Block {
    /// One read's bytes, in the fragments that brought them.
    Data(Chain),
    /// Every byte came: fsync, rename, hash.
    Finish,
}

/// One file: open, pipelined reads handed to a writer thread (hashing and writing while the
/// next blocks arrive), close.
async fn copy_file(
    session: &mut BackupSession,
    writer: &mut BackupDirWriter,
    entry: &NameEntry,
    progress: &mut dyn Progress,
) -> Result<u64, Error> {
    let sink = writer.create_file(entry.kind, &entry.name)?;
    let mut reader = session.open_file(&entry.name).await?;
    progress.start_file(sink.name(), reader.size());
    let (blocks, receiver) = mpsc::channel::<Block>(16);
    let thread = tokio::task::spawn_blocking(move || write_blocks(sink, receiver));
    let read = async {
        while let Some(block) = reader.next_block().await? {
            let len = u64::try_from(block.len()).unwrap_or(u64::MAX);
            if blocks.send(Block::Data(block)).await.is_err() {
                // The writer stopped: its error is reported below.
                return Ok(false);
            }
            progress.advance(len);
        }
        Ok::<_, Error>(blocks.send(Block::Finish).await.is_ok())
    }
    .await;
    drop(blocks);
    let written = thread
        .await
        .map_err(|_| Error::Internal("the writer thread panicked"));
    let read_ok = read?;
    let file_entry = written??;
    if !read_ok {
        return Err(Error::Internal("the writer thread stopped early"));
    }
    reader.close().await?;
    progress.finish_file();
    let size = file_entry.size;
    writer.add(file_entry);
    Ok(size)
}

/// The writer thread of one file: `Finish` commits it; a closed channel without `Finish`
/// drops the sink, which removes the temporary file.
fn write_blocks(mut sink: FileSink, mut blocks: mpsc::Receiver<Block>) -> Result<FileEntry, Error> {
    while let Some(block) = blocks.blocking_recv() {
        match block {
            Block::Data(data) => sink.write_chain(&data)?,
            Block::Finish => return sink.finish(),
        }
    }
    Err(Error::Internal("the file's reads stopped before its end"))
}

/// What [`restore_from_dir`] does besides copying: [`RestoreOptions::new`] with the path map,
/// changed by a builder method per field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// `rtFlag` of `DsRestorePrepare` (0 or `RESTORE_TYPE_CATCHUP`).
    pub rt_flag: u32,
    /// Server paths to local paths: only these rules place files.
    pub map: PathMap,
    /// Replace files that exist at the targets (otherwise the restore refuses before
    /// copying anything).
    pub overwrite: bool,
}

impl RestoreOptions {
    /// A restore placing files by `map`, `rtFlag` 0, replacing no existing file.
    pub fn new(map: PathMap) -> Self {
        Self {
            map,
            ..Self::default()
        }
    }

    /// `rtFlag` of `DsRestorePrepare` (0 or `RESTORE_TYPE_CATCHUP`).
    #[must_use]
    pub fn rt_flag(mut self, rt_flag: u32) -> Self {
        self.rt_flag = rt_flag;
        self
    }

    /// Server paths to local paths.
    #[must_use]
    pub fn map(mut self, map: PathMap) -> Self {
        self.map = map;
        self
    }

    /// Replace files that exist at the targets.
    #[must_use]
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }
}

/// The outcome of a restore.
#[derive(Clone, Debug, Serialize)]
pub struct RestoreSummary {
    /// What was copied where, and what was registered.
    pub plan: RestorePlan,
    /// Bytes copied.
    pub bytes: u64,
}

/// Restores the backup set in `dir` to the server: the set is verified first, then
/// `DsRestorePrepare` with its token, the locations, the copies (each checked against the
/// manifest), `DsRestoreRegister`, `DsRestoreRegisterComplete` with the outcome, `DsRestoreEnd`.
///
/// # Errors
/// [`Error::Mismatch`] when the set does not verify (nothing is sent); server statuses;
/// transport errors; [`Error::Io`] for a failed copy (then registered as failed).
///
/// # Cancel safety
/// Dropping the future drops the restore session (its binding closes, the server runs it
/// down); a file being copied is left under its temporary name.
pub async fn restore_from_dir(
    client: &Client,
    dir: &Path,
    options: &RestoreOptions,
    progress: &mut dyn Progress,
) -> Result<RestoreSummary, Error> {
    let report = blocking(|| verify_dir(dir, &mut crate::NoProgress))?;
    let manifest = report.into_result()?.manifest;
    let token = manifest.expiry_token.bytes(dir)?;
    let session = client
        .restore_prepare(options.rt_flag, Some(&token))
        .await?;
    let result = async {
        let locations = session.database_locations().await?;
        let plan = plan_restore(dir, &manifest, &locations, &options.map, options.overwrite)?;
        let registration = Registration {
            checkpoint_file_path: plan.checkpoint_dir.clone(),
            log_path: plan.log_dir.clone(),
            rstmap: plan.rstmap.clone(),
            backup_log_path: plan.log_dir.clone(),
            gen_low: plan.gen_low,
            gen_high: plan.gen_high,
        };
        // A failed copy is not registered: the server keeps its state, the error is returned.
        let bytes = blocking(|| copy_plan(&plan, progress))?;
        session.register(&registration).await?;
        session.register_complete(Status::SUCCESS).await?;
        Ok(RestoreSummary { plan, bytes })
    }
    .await;
    let ended = session.end().await;
    let summary = result?;
    ended?;
    Ok(summary)
}

/// What [`restore_from_dir`] would do, without doing it: the set is verified, the server
/// asked where its files go (a `DsRestorePrepare` without the token, which allows only
/// `DsRestoreGetDatabaseLocations`, then `DsRestoreEnd`), and every target mapped and looked
/// at. Nothing is written, locally or on the server.
///
/// # Errors
/// As [`restore_from_dir`], before its copies.
///
/// # Cancel safety
/// Dropping the future drops the restore session (its binding closes, the server runs it
/// down).
pub async fn plan_restore_from_dir(
    client: &Client,
    dir: &Path,
    options: &RestoreOptions,
) -> Result<RestorePlan, Error> {
    let report = blocking(|| verify_dir(dir, &mut crate::NoProgress))?;
    let manifest = report.into_result()?.manifest;
    let session = client.restore_prepare(options.rt_flag, None).await?;
    let locations = session.database_locations().await;
    let ended = session.end().await;
    let locations = locations?;
    ended?;
    blocking(|| plan_restore(dir, &manifest, &locations, &options.map, options.overwrite))
}

/// Runs blocking file work: in place on a multi-threaded runtime (the runtime moves its other
/// tasks away), directly otherwise.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
