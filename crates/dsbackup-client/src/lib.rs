//! The NTDS backup client (`ntdsbcli`) in Rust, and the backup-to-directory workflow.
//!
//! A backup set on disk is written by [`BackupDirWriter`] (atomically: `<out>.partial/`, then a
//! rename once `manifest.json` is in), checked by [`verify_dir`], and put back by the restore
//! plan ([`plan_restore`], [`copy_plan`]).

pub mod dir;
pub mod error;
pub mod manifest;
pub mod progress;
pub mod restore_plan;
pub mod verify;

pub use crate::dir::{BackupDirWriter, FileSink};
pub use crate::error::Error;
pub use crate::manifest::{BackupType, FileEntry, Manifest, TokenEntry};
pub use crate::progress::{NoProgress, Progress};
pub use crate::restore_plan::{PathMap, PlannedCopy, RestorePlan, copy_plan, plan_restore};
pub use crate::verify::{FileCheck, FileOutcome, VerifyReport, verify_dir};
pub use dsbackup_proto::{BftKind, ExpiryToken, NameEntry, Status};
