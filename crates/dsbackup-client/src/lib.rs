//! The NTDS backup client (`ntdsbcli`) in Rust, and the backup-to-directory workflow.
//!
//! | `ntdsbcli` | here |
//! | --- | --- |
//! | `DsSetAuthIdentity` | [`ClientConfig::credentials`] (password or NT hash, zeroized) |
//! | `DsIsNTDSOnline`, `DsSetCurrentBackupLog` | [`Client::is_ntds_online`], [`Client::set_current_backup_log`] |
//! | `DsBackupPrepare` .. `DsBackupEnd` | [`Client::backup_prepare`] gives a [`BackupSession`]; [`BackupSession::end`] |
//! | `DsBackupOpenFile`, `DsBackupRead`, `DsBackupClose` | [`BackupSession::open_file`] gives a [`FileReader`] (pipelined reads, also `AsyncRead`) |
//! | `DsRestorePrepare` .. `DsRestoreEnd` | [`Client::restore_prepare`] gives a [`RestoreSession`] |
//!
//! Statuses come back as [`Error::Status`], which names the `hr*` code.
//!
//! On top: [`backup_to_dir`] writes a backup set atomically (`<out>.partial/`, then a rename
//! once `manifest.json` is in), [`verify_dir`] re-hashes it, [`restore_from_dir`] puts it back.
//!
//! ```no_run
//! use dsbackup_client::{BackupType, Client, ClientConfig, Credentials};
//!
//! # async fn example() -> Result<(), dsbackup_client::Error> {
//! let client = Client::new(
//!     ClientConfig::new("dc1.corp.example")
//!         .credentials(Credentials::from_password("svc-backup", "CORP", "s3cret!")),
//! )?;
//! let mut session = client.backup_prepare(BackupType::Full).await?;
//! let token = session.expiry_token().to_vec();
//! for entry in session.database_names().await? {
//!     let mut file = session.open_file(&entry.name).await?;
//!     while let Some(block) = file.next_chunk().await? {
//!         // Several HrRBackupRead calls are in flight; blocks come in order.
//!         let _ = (block, &token);
//!     }
//!     file.close().await?;
//! }
//! session.end().await?; // DsBackupEnd: every binding closed, whatever happened before
//! # Ok(())
//! # }
//! ```

// Every public item has one path: the crate's root (`blocking` keeps its own namespace, as
// its types share their names with the async ones).
mod backup;
mod beneath;
pub mod blocking;
mod client;
mod dir;
mod error;
mod manifest;
mod progress;
mod restore;
mod restore_plan;
mod rpc;
mod verify;
mod workflow;
mod writeback;

pub use crate::backup::{BackupSession, FileReader, MAX_READS_IN_FLIGHT};
pub use crate::client::{
    BACKUP_ANNOTATION, Client, ClientConfig, Endpoint, default_read_size, default_reads_in_flight,
    is_valid_read_size,
};
pub use crate::dir::{BackupDirWriter, FileSink, partial_path};
pub use crate::error::Error;
pub use crate::manifest::{
    BackupType, FileEntry, MANIFEST_FILE, MANIFEST_FORMAT, Manifest, TOKEN_FILE, TokenEntry,
    server_file_name,
};
pub use crate::progress::{NoProgress, Progress};
pub use crate::restore::{Registration, RestoreSession};
pub use crate::restore_plan::{PathMap, PlannedCopy, RestorePlan, copy_plan, plan_restore};
pub use crate::verify::{FileCheck, FileOutcome, VerifyReport, hash_file, verify_dir};
pub use crate::workflow::{
    BackupOptions, BackupSummary, END_DEADLINE, RestoreOptions, RestoreSummary, backup_to_dir,
    backup_to_dir_until, plan_restore_from_dir, restore_from_dir,
};
pub use dsbackup_ntlm::{Credentials, NtHash};
pub use dsbackup_proto::{AuthLevel, BftKind, DataRep, ExpiryToken, NameEntry, Status};
pub use dsbackup_transport::{KdcError, Registry, TicketSource, Tickets, TransportError};
