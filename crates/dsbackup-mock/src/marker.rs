//! The restore marker: what `HrRRestoreRegister` leaves behind (Windows writes a "Restore In
//! Progress" registry key), kept in memory and in `<state_dir>/restore-marker.toml` so a new
//! [`MockDc`](crate::MockDc) on the same state directory sees it.
//!
//! While a marker is registered and not completed, or completed with a failure, the directory
//! service cannot start: a `MockDc` created over it starts in restore mode whatever its
//! configuration says, and `HrRIsNTDSOnline` reports FALSE.

use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// File name of the marker in the state directory.
pub(crate) const MARKER_FILE: &str = "restore-marker.toml";

/// Where a registered restore stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreState {
    /// Registered; `HrRRestoreRegisterComplete` not called yet.
    Registered,
    /// Completed with this `hrRestoreState` (0 = the restored files are in place).
    Completed {
        /// The caller's outcome.
        hr_restore_state: u32,
    },
}

/// One database mapping of a registered restore (`EDB_RSTMAPW`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreMapping {
    /// The database name in the backup.
    pub database_name: Option<String>,
    /// Where it goes now.
    pub new_database_name: Option<String>,
}

/// A registered restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreMarker {
    /// Where it stands.
    pub state: RestoreState,
    /// `wszCheckpointFilePath`.
    pub checkpoint_file_path: String,
    /// `wszLogPath`.
    pub log_path: String,
    /// `wszBackupLogPath`.
    pub backup_log_path: String,
    /// `rgrstmap`.
    pub mappings: Vec<RestoreMapping>,
    /// `genLow`.
    pub gen_low: u32,
    /// `genHigh`.
    pub gen_high: u32,
    /// When it was registered (FILETIME).
    pub registered_at: u64,
}

impl RestoreMarker {
    /// Whether the marker keeps the directory service from starting: registered and not
    /// completed, or completed with a failure.
    pub fn blocks_startup(&self) -> bool {
        match self.state {
            RestoreState::Registered => true,
            RestoreState::Completed { hr_restore_state } => hr_restore_state != 0,
        }
    }

    /// Reads the marker of a state directory (`None` when there is none).
    pub(crate) fn load(state_dir: &Path) -> io::Result<Option<Self>> {
        match fs::read_to_string(state_dir.join(MARKER_FILE)) {
            Ok(text) => toml::from_str(&text)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the marker (to a temporary name, then renamed into place).
    pub(crate) fn store(&self, state_dir: &Path) -> io::Result<()> {
        let text = toml::to_string(self)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let tmp = state_dir.join(format!("{MARKER_FILE}.tmp"));
        fs::write(&tmp, text)?;
        fs::rename(tmp, state_dir.join(MARKER_FILE))
    }
}
