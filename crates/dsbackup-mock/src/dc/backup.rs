//! ad_backup: the backup session, its lists, snapshots, reads and log truncation.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use dsbackup_proto::iface::ad_backup::{
    AdBackupRequest, AdBackupResponse, BACKUP_TYPE_FULL, BACKUP_TYPE_LOGS_ONLY,
    HrRBackupCloseRequest, HrRBackupCloseResponse, HrRBackupEndRequest, HrRBackupEndResponse,
    HrRBackupGetAttachmentInformationRequest, HrRBackupGetAttachmentInformationResponse,
    HrRBackupGetBackupLogsRequest, HrRBackupGetBackupLogsResponse, HrRBackupOpenFileRequest,
    HrRBackupOpenFileResponse, HrRBackupPingRequest, HrRBackupPingResponse,
    HrRBackupPrepareRequest, HrRBackupPrepareResponse, HrRBackupReadRequest, HrRBackupReadResponse,
    HrRBackupTruncateLogsRequest, HrRBackupTruncateLogsResponse, MAX_READ_SIZE,
};
use dsbackup_proto::ndr::ContextHandle;
use dsbackup_proto::{BftKind, NameEntry};
use dsbackup_proto::{ExpiryToken, Status};

use super::{Caller, ConnectionId, MockDc, Need, SESSIONS_DIR, State, filetime, is_idle};
use crate::config::DsMode;
use crate::ntds::{Layout, MAX_GENERATION};

/// `hrIncrementalBackupDisabled`.
pub(crate) const HR_INCREMENTAL_BACKUP_DISABLED: Status = Status(0xC7FF_0009);
/// `hrDatabaseNotFound`.
pub(crate) const HR_DATABASE_NOT_FOUND: Status = Status(0xC800_04B3);
/// `hrFileNotFound`.
pub(crate) const HR_FILE_NOT_FOUND: Status = Status(0xC800_0713);
/// The `dwCurrentLog` that disables logs-only backups until the next full one
/// (`BACKUP_DISABLE_INCREMENTAL`).
pub(crate) const BACKUP_DISABLE_INCREMENTAL: u32 = 0xFFFF_FFFF;

/// A full or a logs-only backup. Microsoft documents only the full backup as supported
/// (`BACKUP_TYPE_LOGS_ONLY`: "not supported"; `BACKUP_TYPE_INCREMENTAL`:
/// `ERROR_INVALID_PARAMETER`, as this mock answers it); the logs-only backup (the logs and the
/// patch file, no database) is this mock's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BackupKind {
    Full,
    LogsOnly,
}

/// Which list a name came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListKind {
    Database,
    Logs,
}

/// A name the session handed out, and the file behind it.
#[derive(Clone, Debug)]
struct Listed {
    list: ListKind,
    unc: String,
    path: PathBuf,
}

#[derive(Debug)]
enum OpenState {
    Closed,
    /// A snapshot is being copied (outside the server lock).
    Opening,
    Open(OpenFile),
}

#[derive(Debug)]
struct OpenFile {
    file: Arc<File>,
    snapshot: PathBuf,
    size: u64,
    position: u64,
}

/// The one backup session of a server.
#[derive(Debug)]
pub(crate) struct BackupSession {
    pub(crate) handle: ContextHandle,
    pub(crate) connection: ConnectionId,
    pub(crate) last_activity: SystemTime,
    kind: BackupKind,
    /// Private directory of the session's snapshots.
    dir: PathBuf,
    listed: Vec<Listed>,
    /// Logs this session backed up, by generation: the ones its log list named, and for a full
    /// backup the committed logs present when it listed the database (their changes are in it).
    backed_up_logs: BTreeMap<u32, PathBuf>,
    open: OpenState,
    snapshots_taken: u64,
}

impl BackupSession {
    /// Ends the session: closes the open file and removes every snapshot.
    pub(crate) fn discard(self) {
        // Best effort: a snapshot directory left behind is removed when the next MockDc starts.
        let _ = fs::remove_dir_all(&self.dir);
    }

    /// Records a call at `now` (a call that arrives late keeps the later time).
    pub(super) fn touch(&mut self, now: SystemTime) {
        self.last_activity = self.last_activity.max(now);
    }

    fn close_file(&mut self) -> bool {
        match core::mem::replace(&mut self.open, OpenState::Closed) {
            OpenState::Open(open) => {
                drop(open.file);
                let _ = fs::remove_file(&open.snapshot);
                true
            }
            OpenState::Opening | OpenState::Closed => false,
        }
    }
}

impl MockDc {
    /// Opnum 0, `HrRBackupPrepare`: starts the backup session.
    ///
    /// | condition | status |
    /// | --- | --- |
    /// | no backup privilege (or auth level too low) | `ERROR_ACCESS_DENIED` |
    /// | `grbit` not 0 or 1, `btFlag` not full or logs-only | `ERROR_INVALID_PARAMETER` |
    /// | the directory service is in restore mode | `ERROR_ACCESS_DENIED` |
    /// | a backup session is active (and not idle past its timeout) | `hrBackupInProgress` |
    /// | logs-only while `SetCurrentLogNumber(0xFFFFFFFF)` is in force | `hrIncrementalBackupDisabled` |
    ///
    /// On success: a fresh handle and the expiry token (version 1, the configured tombstone
    /// lifetime, `now`). A full backup lifts `BACKUP_DISABLE_INCREMENTAL`.
    pub fn backup_prepare(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRBackupPrepareRequest,
    ) -> HrRBackupPrepareResponse {
        let refuse = |status| HrRBackupPrepareResponse {
            status,
            ..HrRBackupPrepareResponse::default()
        };
        if let Err(status) = self.authorize(caller, Need::Backup) {
            return refuse(status);
        }
        let kind = match (request.grbit, request.bt_flag) {
            (0 | 1, BACKUP_TYPE_FULL) => BackupKind::Full,
            (0 | 1, BACKUP_TYPE_LOGS_ONLY) => BackupKind::LogsOnly,
            _ => return refuse(Status::ERROR_INVALID_PARAMETER),
        };
        let mut state = self.lock();
        if state.mode == DsMode::Restore {
            return refuse(Status::ERROR_ACCESS_DENIED);
        }
        let timeout = self.shared.config.idle_timeout;
        if let Some(stale) = state
            .backup
            .take_if(|s| is_idle(s.last_activity, now, timeout))
        {
            stale.discard();
        }
        if state.backup.is_some() {
            return refuse(Status::HR_BACKUP_IN_PROGRESS);
        }
        match kind {
            BackupKind::LogsOnly
                if state.current_log_number == Some(BACKUP_DISABLE_INCREMENTAL) =>
            {
                return refuse(HR_INCREMENTAL_BACKUP_DISABLED);
            }
            BackupKind::Full if state.current_log_number == Some(BACKUP_DISABLE_INCREMENTAL) => {
                state.current_log_number = None;
            }
            BackupKind::Full | BackupKind::LogsOnly => {}
        }
        let handle = self.issue_handle(&mut state);
        let dir = self
            .shared
            .state_dir
            .join(SESSIONS_DIR)
            .join(handle.uuid.to_string());
        state.backup = Some(BackupSession {
            handle,
            connection: caller.connection,
            last_activity: now,
            kind,
            dir,
            listed: Vec::new(),
            backed_up_logs: BTreeMap::new(),
            open: OpenState::Closed,
            snapshots_taken: 0,
        });
        let token = ExpiryToken {
            tombstone_lifetime_days: self.shared.config.tombstone_lifetime_days,
            backup_time: filetime(now),
        };
        HrRBackupPrepareResponse::new(handle, &token)
    }

    /// Opnum 1, `HrRBackupEnd`: closes the open file, removes the snapshots, frees the server
    /// for the next backup; the handle comes back null. A handle that is not this connection's
    /// session gets `ERROR_INVALID_PARAMETER` and comes back unchanged.
    pub fn backup_end(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRBackupEndRequest,
    ) -> HrRBackupEndResponse {
        let _ = now; // Uniform signature: ending a session needs no time.
        let refuse = |status| HrRBackupEndResponse {
            ph_context: request.ph_context,
            status,
        };
        if let Err(status) = self.authorize(caller, Need::Nothing) {
            return refuse(status);
        }
        let mut state = self.lock();
        if let Err(status) = session(&mut state, caller, request.ph_context) {
            return refuse(status);
        }
        if let Some(session) = state.backup.take() {
            session.discard();
        }
        state.backups_ended = state.backups_ended.saturating_add(1);
        HrRBackupEndResponse {
            ph_context: ContextHandle::NULL,
            status: Status::SUCCESS,
        }
    }

    /// Opnum 2, `HrRBackupGetAttachmentInformation`: the database files. A full backup lists
    /// `BFT_NTDS_DATABASE` `\\<dc>\<dir>\ntds.dit` and, when present, `BFT_PATCH_FILE`
    /// `...\ntds.pat`; a logs-only backup lists nothing (two NULs). `hrDatabaseNotFound` when a
    /// full backup finds no database.
    pub fn backup_get_attachment_information(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRBackupGetAttachmentInformationRequest,
    ) -> HrRBackupGetAttachmentInformationResponse {
        let refuse = |status| HrRBackupGetAttachmentInformationResponse::new(&[], status);
        if let Err(status) = self.authorize(caller, Need::Backup) {
            return refuse(status);
        }
        let mut state = self.lock();
        let session = match session(&mut state, caller, request.h_context) {
            Ok(session) => session,
            Err(status) => return refuse(status),
        };
        session.touch(now);
        if session.kind == BackupKind::LogsOnly {
            session.listed.retain(|l| l.list != ListKind::Database);
            return HrRBackupGetAttachmentInformationResponse::new(&[], Status::SUCCESS);
        }
        let Ok(layout) = Layout::scan(&self.shared.config.root) else {
            return refuse(Status::HR_ERROR);
        };
        let Some(database) = layout.database.clone() else {
            return refuse(HR_DATABASE_NOT_FOUND);
        };
        let mut files = vec![(BftKind::NTDS_DATABASE, database)];
        if let Some(patch) = layout.patch.clone() {
            files.push((BftKind::PATCH_FILE, patch));
        }
        let entries = self.list(session, ListKind::Database, files);
        // The committed logs are in the database this session is backing up.
        if let Some(checkpoint) = layout.checkpoint {
            for (generation, path) in layout.logs.range(..checkpoint) {
                session.backed_up_logs.insert(*generation, path.clone());
            }
        }
        HrRBackupGetAttachmentInformationResponse::new(&entries, Status::SUCCESS)
    }

    /// Opnum 6, `HrRBackupGetBackupLogs`: `BFT_LOG` entries for the logs from the checkpoint
    /// generation to the current one (full backup) or every log present (logs-only backup).
    pub fn backup_get_backup_logs(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRBackupGetBackupLogsRequest,
    ) -> HrRBackupGetBackupLogsResponse {
        let refuse = |status| HrRBackupGetBackupLogsResponse::new(&[], status);
        if let Err(status) = self.authorize(caller, Need::Backup) {
            return refuse(status);
        }
        let mut state = self.lock();
        let session = match session(&mut state, caller, request.h_context) {
            Ok(session) => session,
            Err(status) => return refuse(status),
        };
        session.touch(now);
        let Ok(layout) = Layout::scan(&self.shared.config.root) else {
            return refuse(Status::HR_ERROR);
        };
        let first = match session.kind {
            BackupKind::Full => layout.checkpoint.unwrap_or(0),
            BackupKind::LogsOnly => 0,
        };
        let logs: Vec<(u32, PathBuf)> = layout
            .logs
            .range(first..=MAX_GENERATION)
            .map(|(generation, path)| (*generation, path.clone()))
            .collect();
        for (generation, path) in &logs {
            session.backed_up_logs.insert(*generation, path.clone());
        }
        let files = logs
            .into_iter()
            .map(|(_, path)| (BftKind::LOG, path))
            .collect();
        let entries = self.list(session, ListKind::Logs, files);
        HrRBackupGetBackupLogsResponse::new(&entries, Status::SUCCESS)
    }

    /// Opnum 3, `HrRBackupOpenFile`: opens a file of the backup set and snapshots it, so reads
    /// return its bytes as they were now whatever happens to the directory meanwhile.
    ///
    /// | condition | status |
    /// | --- | --- |
    /// | a file is already open (or opening) | `hrAlreadyOpen` |
    /// | the name is not exactly (ASCII case aside) one this session's lists returned: `..`, `/`, another drive, a prefix or suffix, a BFT character left on | `ERROR_INVALID_PARAMETER` |
    /// | the file is gone | `hrFileNotFound` |
    /// | the snapshot cannot be made | `hrError` |
    pub fn backup_open_file(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRBackupOpenFileRequest,
    ) -> HrRBackupOpenFileResponse {
        let refuse = |status| HrRBackupOpenFileResponse {
            pli_file_size: 0,
            status,
        };
        if let Err(status) = self.authorize(caller, Need::Backup) {
            return refuse(status);
        }
        let (source, snapshot) = {
            let mut state = self.lock();
            let session = match session(&mut state, caller, request.h_context) {
                Ok(session) => session,
                Err(status) => return refuse(status),
            };
            session.touch(now);
            if !matches!(session.open, OpenState::Closed) {
                return refuse(Status::HR_ALREADY_OPEN);
            }
            let Some(listed) = session
                .listed
                .iter()
                .find(|l| l.unc.eq_ignore_ascii_case(&request.wsz_attachment_name))
            else {
                return refuse(Status::ERROR_INVALID_PARAMETER);
            };
            let source = listed.path.clone();
            session.snapshots_taken = session.snapshots_taken.saturating_add(1);
            let file_name = source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let snapshot = session
                .dir
                .join(format!("{}-{file_name}", session.snapshots_taken));
            session.open = OpenState::Opening;
            (source, snapshot)
        };
        // The copy runs outside the server lock: a multi-GiB database must not stall the other
        // connections' calls.
        let opened = take_snapshot(&source, &snapshot);
        let mut state = self.lock();
        let session = match state.backup.as_mut() {
            Some(session)
                if session.handle == request.h_context
                    && matches!(session.open, OpenState::Opening) =>
            {
                session
            }
            _ => {
                // The session ended (rundown, end, idle) while the copy ran: its directory may
                // have been recreated by the copy, so remove both.
                let _ = fs::remove_file(&snapshot);
                if let Some(dir) = snapshot.parent() {
                    let _ = fs::remove_dir(dir);
                }
                return refuse(Status::ERROR_INVALID_PARAMETER);
            }
        };
        match opened {
            Ok((file, size)) => {
                session.open = OpenState::Open(OpenFile {
                    file: Arc::new(file),
                    snapshot,
                    size,
                    position: 0,
                });
                HrRBackupOpenFileResponse {
                    pli_file_size: i64::try_from(size).unwrap_or(i64::MAX),
                    status: Status::SUCCESS,
                }
            }
            Err(error) => {
                session.open = OpenState::Closed;
                let _ = fs::remove_file(&snapshot);
                refuse(if error.kind() == io::ErrorKind::NotFound {
                    HR_FILE_NOT_FOUND
                } else {
                    Status::HR_ERROR
                })
            }
        }
    }

    /// Opnum 4, `HrRBackupRead`: the next `min(cbBuffer, max_read_chunk, remaining)` bytes of
    /// the open file's snapshot; 0 bytes with status 0 at the end of the file (and after it).
    ///
    /// | condition | status |
    /// | --- | --- |
    /// | `cbBuffer` 0 or above 16 MiB | `ERROR_INVALID_PARAMETER` |
    /// | no file open | `hrInvalidHandle` |
    /// | the snapshot cannot be read | `hrError` |
    pub fn backup_read(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRBackupReadRequest,
    ) -> HrRBackupReadResponse {
        let refuse = |status| HrRBackupReadResponse::new(request.cb_buffer, Bytes::new(), status);
        if let Err(status) = self.authorize(caller, Need::Backup) {
            return refuse(status);
        }
        let (file, offset, len) = {
            let mut state = self.lock();
            let session = match session(&mut state, caller, request.h_context) {
                Ok(session) => session,
                Err(status) => return refuse(status),
            };
            session.touch(now);
            if request.cb_buffer == 0 || request.cb_buffer > MAX_READ_SIZE {
                return refuse(Status::ERROR_INVALID_PARAMETER);
            }
            let OpenState::Open(open) = &mut session.open else {
                return refuse(Status::HR_INVALID_HANDLE);
            };
            let want = request
                .cb_buffer
                .min(self.shared.config.max_read_chunk.max(1));
            let len = u64::from(want).min(open.size.saturating_sub(open.position));
            let offset = open.position;
            // INVARIANT: positions are handed out under the lock, in call order, so reads in
            // flight on one association get consecutive ranges.
            open.position = open.position.saturating_add(len);
            (Arc::clone(&open.file), offset, len)
        };
        // `len` is at most `cbBuffer` (<= 16 MiB), so it fits in usize.
        let buffers = &self.shared.read_buffers;
        let mut buf = buffers.take(usize::try_from(len).unwrap_or(0));
        let read = read_at(&file, &mut buf, offset);
        buf.truncate(*read.as_ref().unwrap_or(&0));
        let data = buf.freeze();
        buffers.give_back(&data);
        match read {
            Ok(_) => HrRBackupReadResponse::new(request.cb_buffer, data, Status::SUCCESS),
            Err(_) => refuse(Status::HR_ERROR),
        }
    }

    /// Opnum 5, `HrRBackupClose`: closes the open file and deletes its snapshot;
    /// `hrInvalidHandle` when no file is open.
    pub fn backup_close(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRBackupCloseRequest,
    ) -> HrRBackupCloseResponse {
        let status = self.authorize(caller, Need::Backup).and_then(|()| {
            let mut state = self.lock();
            let session = session(&mut state, caller, request.h_context)?;
            session.touch(now);
            if session.close_file() {
                Ok(())
            } else {
                Err(Status::HR_INVALID_HANDLE)
            }
        });
        HrRBackupCloseResponse {
            status: status.err().unwrap_or(Status::SUCCESS),
        }
    }

    /// Opnum 7, `HrRBackupTruncateLogs`: deletes the committed logs (generation below the
    /// checkpoint now) that this session backed up: the ones its log list named and, for a full
    /// backup whose database it listed, the committed logs present then. The current log is
    /// never deleted. A log already gone is skipped; `hrError` when one cannot be deleted.
    pub fn backup_truncate_logs(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRBackupTruncateLogsRequest,
    ) -> HrRBackupTruncateLogsResponse {
        let status = self.authorize(caller, Need::Backup).and_then(|()| {
            let mut state = self.lock();
            let session = session(&mut state, caller, request.h_context)?;
            session.touch(now);
            let layout = Layout::scan(&self.shared.config.root).map_err(|_| Status::HR_ERROR)?;
            let (Some(checkpoint), Some(current)) = (layout.checkpoint, layout.current()) else {
                return Ok(());
            };
            // INVARIANT: `Layout::scan` clamps the checkpoint to the current generation, so
            // `..checkpoint` never reaches the current log.
            debug_assert!(checkpoint <= current);
            let committed: Vec<u32> = session
                .backed_up_logs
                .range(..checkpoint)
                .map(|(generation, _)| *generation)
                .collect();
            let mut result = Ok(());
            for generation in committed {
                let Some(path) = session.backed_up_logs.remove(&generation) else {
                    continue;
                };
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(_) => result = Err(Status::HR_ERROR),
                }
            }
            result
        });
        HrRBackupTruncateLogsResponse {
            status: status.err().unwrap_or(Status::SUCCESS),
        }
    }

    /// Opnum 8, `HrRBackupPing`: keeps every session of the caller's connection alive.
    pub fn backup_ping(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRBackupPingRequest,
    ) -> HrRBackupPingResponse {
        let _ = request; // An empty stub.
        if let Err(status) = self.authorize(caller, Need::Nothing) {
            return HrRBackupPingResponse { status };
        }
        let mut state = self.lock();
        if let Some(session) = state
            .backup
            .as_mut()
            .filter(|s| s.connection == caller.connection)
        {
            session.touch(now);
        }
        for session in state.restores.values_mut() {
            if session.connection == caller.connection {
                session.touch(now);
            }
        }
        HrRBackupPingResponse {
            status: Status::SUCCESS,
        }
    }

    /// Records `files` as the session's `list` and returns their entries.
    fn list(
        &self,
        session: &mut BackupSession,
        list: ListKind,
        files: Vec<(BftKind, PathBuf)>,
    ) -> Vec<NameEntry> {
        session.listed.retain(|l| l.list != list);
        let mut entries = Vec::with_capacity(files.len());
        for (kind, path) in files {
            let unc = self.unc_name(&path);
            entries.push(NameEntry::new(kind, unc.clone()));
            session.listed.push(Listed { list, unc, path });
        }
        entries
    }

    /// `\\<dc_name>\<unc_directory>\<file name>`.
    pub(crate) fn unc_name(&self, path: &Path) -> String {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{}\\{file}", self.unc_directory())
    }

    /// `\\<dc_name>\<unc_directory>`.
    pub(crate) fn unc_directory(&self) -> String {
        let config = &self.shared.config;
        format!(
            r"\\{}\{}",
            config.dc_name,
            config.unc_directory.trim_matches('\\')
        )
    }
}

/// The session `handle` names, if it is the caller connection's backup session.
fn session<'s>(
    state: &'s mut State,
    caller: &Caller,
    handle: ContextHandle,
) -> Result<&'s mut BackupSession, Status> {
    match state.backup.as_mut() {
        Some(session)
            if !handle.is_null()
                && session.handle == handle
                && session.connection == caller.connection =>
        {
            Ok(session)
        }
        _ => Err(Status::ERROR_INVALID_PARAMETER),
    }
}

/// Copies `source` to `snapshot` (creating its directory) and opens the copy.
fn take_snapshot(source: &Path, snapshot: &Path) -> io::Result<(File, u64)> {
    if let Some(dir) = snapshot.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::copy(source, snapshot)?;
    let file = File::open(snapshot)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

/// Reads up to `buf.len()` bytes at `offset`, stopping early only at the end of the file.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..).filter(|rest| !rest.is_empty()) {
        let at = offset.saturating_add(done as u64);
        let n = match positional_read(file, rest, at) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        done = done.saturating_add(n);
    }
    Ok(done)
}

#[cfg(unix)]
fn positional_read(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn positional_read(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(not(any(unix, windows)))]
fn positional_read(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    // Reads of one session are sequential, so sharing the cursor is safe here.
    let mut file = file;
    file.seek(SeekFrom::Start(offset))?;
    file.read(buf)
}

/// The response to `request` carrying only `status` (a scripted fault): null handle, no
/// token, empty lists, no data.
pub(crate) fn failure(request: &AdBackupRequest, status: Status) -> AdBackupResponse {
    match request {
        AdBackupRequest::HrRBackupPrepare(_) => {
            AdBackupResponse::HrRBackupPrepare(HrRBackupPrepareResponse {
                status,
                ..HrRBackupPrepareResponse::default()
            })
        }
        AdBackupRequest::HrRBackupEnd(r) => AdBackupResponse::HrRBackupEnd(HrRBackupEndResponse {
            ph_context: r.ph_context,
            status,
        }),
        AdBackupRequest::HrRBackupGetAttachmentInformation(_) => {
            AdBackupResponse::HrRBackupGetAttachmentInformation(
                HrRBackupGetAttachmentInformationResponse::new(&[], status),
            )
        }
        AdBackupRequest::HrRBackupOpenFile(_) => {
            AdBackupResponse::HrRBackupOpenFile(HrRBackupOpenFileResponse {
                pli_file_size: 0,
                status,
            })
        }
        AdBackupRequest::HrRBackupRead(r) => AdBackupResponse::HrRBackupRead(
            HrRBackupReadResponse::new(r.cb_buffer, Bytes::new(), status),
        ),
        AdBackupRequest::HrRBackupClose(_) => {
            AdBackupResponse::HrRBackupClose(HrRBackupCloseResponse { status })
        }
        AdBackupRequest::HrRBackupGetBackupLogs(_) => AdBackupResponse::HrRBackupGetBackupLogs(
            HrRBackupGetBackupLogsResponse::new(&[], status),
        ),
        AdBackupRequest::HrRBackupTruncateLogs(_) => {
            AdBackupResponse::HrRBackupTruncateLogs(HrRBackupTruncateLogsResponse { status })
        }
        AdBackupRequest::HrRBackupPing(_) => {
            AdBackupResponse::HrRBackupPing(HrRBackupPingResponse { status })
        }
    }
}
