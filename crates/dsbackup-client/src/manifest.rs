//! `manifest.json`: what a backup directory holds, written last so that a directory with a
//! manifest is a complete backup set.
//!
//! ```text
//!  <out>/
//!    ntds/ntds.dit          BFT_NTDS_DATABASE files
//!    logs/edb00001.log      BFT_LOG files
//!    patch/ntds.pat         BFT_PATCH_FILE files
//!    other/...              files of any other BFT kind
//!    expiry-token.bin       the 16-byte expiry token, as the server sent it
//!    manifest.json          this file: server, time, backup type, and per file its BFT kind,
//!                           UNC path, size and SHA-256
//! ```

use std::path::{Component, Path, PathBuf};

use dsbackup_proto::{BftKind, ExpiryToken};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The manifest's file name inside a backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The expiry token's file name inside a backup directory.
pub const TOKEN_FILE: &str = "expiry-token.bin";
/// The manifest format this crate writes and reads.
pub const MANIFEST_FORMAT: u64 = 1;
/// Largest `manifest.json` read (a set of a million files stays well under it).
pub(crate) const MAX_MANIFEST_SIZE: u64 = 256 << 20;

/// What a backup asks the server for (`btFlag` of `HrRBackupPrepare`).
///
/// Microsoft documents `BACKUP_TYPE_FULL` (the database, the logs and the patch files; the
/// committed logs may then be truncated) as the only supported type: `BACKUP_TYPE_LOGS_ONLY`
/// is "not supported" and `BACKUP_TYPE_INCREMENTAL` makes `DsBackupPrepare` fail with
/// `ERROR_INVALID_PARAMETER` (so it has no variant here). [`BackupType::LogsOnly`] is sent as
/// asked; this project's mock DC serves it as an extension of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupType {
    /// `BACKUP_TYPE_FULL`: the database, the logs and the patch files.
    Full,
    /// `BACKUP_TYPE_LOGS_ONLY`: only the logs (not supported by Windows' server as
    /// documented; the mock DC's extension).
    LogsOnly,
}

impl BackupType {
    /// The `btFlag` value on the wire.
    pub const fn bt_flag(self) -> u32 {
        match self {
            Self::Full => dsbackup_proto::iface::ad_backup::BACKUP_TYPE_FULL,
            Self::LogsOnly => dsbackup_proto::iface::ad_backup::BACKUP_TYPE_LOGS_ONLY,
        }
    }
}

/// The description of a complete backup set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u64,
    /// The server the backup was taken from, as the user named it.
    pub server: String,
    /// When the backup finished, RFC 3339 in UTC (`2026-11-25T15:30:00Z`).
    pub created: String,
    /// The same instant in seconds since the Unix epoch.
    pub created_unix: u64,
    /// The backup type asked for.
    pub backup_type: BackupType,
    /// The expiry token.
    pub expiry_token: TokenEntry,
    /// Every file of the set, in the order it was backed up.
    pub files: Vec<FileEntry>,
}

/// The expiry token as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// Its file, relative to the backup directory ([`TOKEN_FILE`]).
    pub path: String,
    /// The bytes, lowercase hex.
    pub hex: String,
    /// The server's tombstone lifetime in days, when the token decodes.
    pub tombstone_lifetime_days: Option<u32>,
    /// When the server took the backup (FILETIME), when the token decodes.
    pub backup_time: Option<u64>,
}

impl TokenEntry {
    /// The entry of `bytes`, decoded where the format is known.
    pub fn new(bytes: &[u8]) -> Self {
        let decoded = ExpiryToken::decode(bytes).ok();
        Self {
            path: TOKEN_FILE.to_owned(),
            hex: hex::encode(bytes),
            tombstone_lifetime_days: decoded.map(|t| t.tombstone_lifetime_days),
            backup_time: decoded.map(|t| t.backup_time),
        }
    }

    /// The token's bytes.
    ///
    /// # Errors
    /// [`Error::BadSet`] when `hex` is not hex (`dir` names the set).
    pub fn bytes(&self, dir: &Path) -> Result<Vec<u8>, Error> {
        hex::decode(&self.hex).map_err(|_| Error::bad_set(dir, "expiry token is not hex"))
    }
}

/// One file of the backup set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Where it is, relative to the backup directory, `/`-separated.
    pub path: String,
    /// The BFT kind's name (`BFT_NTDS_DATABASE`, `BFT_LOG`, ...).
    pub kind: String,
    /// The BFT character as the server sent it.
    pub bft: u16,
    /// The UNC path on the server, without the BFT character.
    pub unc: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the contents, lowercase hex.
    pub sha256: String,
}

impl FileEntry {
    /// The BFT kind.
    pub fn bft_kind(&self) -> BftKind {
        BftKind(self.bft)
    }

    /// The file's name on the server: the last component of its UNC path.
    pub fn server_name(&self) -> &str {
        server_file_name(&self.unc)
    }
}

impl Manifest {
    /// Reads `dir/manifest.json`: a regular file reached without a symbolic link.
    ///
    /// # Errors
    /// [`Error::BadSet`] "not a dsbackup set" when there is no manifest (or it has no
    /// format), "unsupported format N" for a format this crate does not read, or a file path
    /// that leaves the directory, or a manifest that is a link or not a regular file;
    /// [`Error::Io`] when it cannot be read; [`Error::Manifest`] when it is not a manifest.
    pub fn read(dir: &Path) -> Result<Self, Error> {
        use std::io::Read as _;
        let path = dir.join(MANIFEST_FILE);
        let file = crate::beneath::open_file(dir, Path::new(MANIFEST_FILE)).map_err(|refusal| {
            if refusal.is_not_found() {
                Error::bad_set(dir, "not a dsbackup set (it has no manifest.json)")
            } else {
                refusal.into_error(dir)
            }
        })?;
        let mut text = Vec::new();
        file.take(MAX_MANIFEST_SIZE.saturating_add(1))
            .read_to_end(&mut text)
            .map_err(Error::io(&path))?;
        if u64::try_from(text.len()).unwrap_or(u64::MAX) > MAX_MANIFEST_SIZE {
            return Err(Error::bad_set(
                dir,
                format!("manifest.json is larger than {MAX_MANIFEST_SIZE} bytes"),
            ));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&text).map_err(|source| Error::Manifest {
                path: path.clone(),
                source,
            })?;
        match value.get("format").map(serde_json::Value::as_u64) {
            Some(Some(MANIFEST_FORMAT)) => {}
            Some(Some(format)) => {
                return Err(Error::bad_set(
                    dir,
                    format!(
                        "unsupported format {format} (this dsbackup reads format {MANIFEST_FORMAT})"
                    ),
                ));
            }
            _ => {
                return Err(Error::bad_set(
                    dir,
                    "not a dsbackup set (manifest.json has no format number)",
                ));
            }
        }
        let manifest: Self =
            serde_json::from_value(value).map_err(|source| Error::Manifest { path, source })?;
        for file in &manifest.files {
            if safe_relative(&file.path).is_none() {
                return Err(Error::bad_set(
                    dir,
                    format!("file path {:?} leaves the backup directory", file.path),
                ));
            }
        }
        if safe_relative(&manifest.expiry_token.path).is_none() {
            return Err(Error::bad_set(
                dir,
                "expiry token path leaves the directory",
            ));
        }
        Ok(manifest)
    }

    /// The manifest as pretty JSON with a final newline.
    ///
    /// # Errors
    /// [`Error::Manifest`] (`path` names the file being written) if serialization fails.
    pub fn to_json(&self, path: &Path) -> Result<Vec<u8>, Error> {
        let mut out = serde_json::to_vec_pretty(self).map_err(|source| Error::Manifest {
            path: path.to_owned(),
            source,
        })?;
        out.push(b'\n');
        Ok(out)
    }

    /// The total size of the files.
    pub fn total_size(&self) -> u64 {
        self.files
            .iter()
            .fold(0, |sum, file| sum.saturating_add(file.size))
    }
}

/// `path` as a relative path that stays inside a directory: `/`-separated normal components
/// only (no `..`, no root, no backslash, no empty name).
pub(crate) fn safe_relative(path: &str) -> Option<PathBuf> {
    if path.is_empty() || path.contains('\\') || path.contains('\0') {
        return None;
    }
    let candidate = Path::new(path);
    candidate
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| candidate.to_owned())
}

/// The last component of a server path (`\\dc1\C$\Windows\NTDS\ntds.dit` gives `ntds.dit`).
pub fn server_file_name(unc: &str) -> &str {
    unc.rsplit(['\\', '/'])
        .find(|part| !part.is_empty())
        .unwrap_or(unc)
}

/// The directory of the backup set a file of kind `kind` goes to.
pub(crate) fn kind_dir(kind: BftKind) -> &'static str {
    match kind {
        BftKind::NTDS_DATABASE => "ntds",
        BftKind::LOG => "logs",
        BftKind::PATCH_FILE => "patch",
        _ => "other",
    }
}

/// RFC 3339 (UTC, seconds) of `unix` seconds since the epoch.
pub(crate) fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The Gregorian date of `days` since 1970-01-01 (H. Hinnant's `civil_from_days`, for
/// non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days.saturating_add(719_468);
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_620_618), "2026-11-25T15:30:18Z");
    }

    #[test]
    fn safe_relative_refuses_paths_that_leave_the_directory() {
        assert!(safe_relative("ntds/ntds.dit").is_some());
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "logs/../../x",
            "a\\b",
            "./x",
            "a\0b",
        ] {
            assert!(safe_relative(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn server_file_name_is_the_last_unc_component() {
        assert_eq!(
            server_file_name(r"\\dc1\C$\Windows\NTDS\ntds.dit"),
            "ntds.dit"
        );
        assert_eq!(server_file_name("/srv/ntds/edb00001.log"), "edb00001.log");
        assert_eq!(server_file_name(r"C:\logs\"), "logs");
    }

    #[test]
    fn manifest_json_round_trips_and_names_the_backup_type() {
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            server: "dc1".into(),
            created: rfc3339(0),
            created_unix: 0,
            backup_type: BackupType::Full,
            expiry_token: TokenEntry::new(
                &ExpiryToken {
                    tombstone_lifetime_days: 180,
                    backup_time: 7,
                }
                .encode(),
            ),
            files: vec![FileEntry {
                path: "ntds/ntds.dit".into(),
                kind: "BFT_NTDS_DATABASE".into(),
                bft: 0x44,
                unc: r"\\dc1\C$\Windows\NTDS\ntds.dit".into(),
                size: 3,
                sha256: "00".into(),
            }],
        };
        let json = manifest.to_json(Path::new("m")).unwrap();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.contains(r#""backup_type": "full""#), "{text}");
        assert!(text.contains(r#""tombstone_lifetime_days": 180"#), "{text}");
        let back: Manifest = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, manifest);
        assert_eq!(back.files[0].server_name(), "ntds.dit");
    }
}
