//! `verify`: every file of a backup set re-hashed against its manifest.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::error::Error;
use crate::manifest::{Manifest, safe_relative};
use crate::progress::Progress;

/// The outcome of [`verify_dir`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The manifest that was checked against.
    #[serde(skip)]
    pub manifest: Manifest,
    /// One entry per file of the manifest, the expiry token first.
    pub files: Vec<FileCheck>,
}

impl VerifyReport {
    /// Whether every file matches.
    pub fn is_ok(&self) -> bool {
        self.files.iter().all(|f| f.outcome == FileOutcome::Ok)
    }

    /// The files that do not match.
    pub fn failures(&self) -> impl Iterator<Item = &FileCheck> {
        self.files.iter().filter(|f| f.outcome != FileOutcome::Ok)
    }

    /// [`Error::Mismatch`] unless every file matches.
    ///
    /// # Errors
    /// [`Error::Mismatch`] with the counts.
    pub fn into_result(self) -> Result<Self, Error> {
        let failed = self.failures().count();
        if failed == 0 {
            Ok(self)
        } else {
            Err(Error::Mismatch {
                failed,
                total: self.files.len(),
            })
        }
    }
}

/// One checked file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileCheck {
    /// Its path in the backup set.
    pub path: String,
    /// What was found.
    pub outcome: FileOutcome,
}

/// What was found for one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum FileOutcome {
    /// Size and SHA-256 match.
    Ok,
    /// The file is not there (or cannot be read: `error` says why).
    Missing {
        /// The operating system's error.
        error: String,
    },
    /// The size differs.
    SizeDiffers {
        /// The manifest's size.
        expected: u64,
        /// The file's size.
        actual: u64,
    },
    /// Same size, other contents.
    HashDiffers {
        /// The manifest's SHA-256.
        expected: String,
        /// The file's SHA-256.
        actual: String,
    },
}

/// Re-hashes every file of the backup set in `dir` against its manifest.
///
/// # Errors
/// Only when there is nothing to check against: the manifest is missing, unreadable, or names a
/// path outside the set ([`Error::Io`], [`Error::Manifest`], [`Error::BadSet`]). Files that do
/// not match are in the report ([`VerifyReport::into_result`] turns them into an error).
pub fn verify_dir(dir: &Path, progress: &mut dyn Progress) -> Result<VerifyReport, Error> {
    let manifest = Manifest::read(dir)?;
    let mut files = Vec::with_capacity(manifest.files.len().saturating_add(1));
    let token_bytes = manifest.expiry_token.bytes(dir)?;
    let token_path = &manifest.expiry_token.path;
    let token_outcome = match std::fs::read(dir.join(token_path)) {
        Ok(bytes) if bytes == token_bytes => FileOutcome::Ok,
        Ok(bytes) => FileOutcome::HashDiffers {
            expected: manifest.expiry_token.hex.clone(),
            actual: hex::encode(bytes),
        },
        Err(error) => FileOutcome::Missing {
            error: error.to_string(),
        },
    };
    files.push(FileCheck {
        path: token_path.clone(),
        outcome: token_outcome,
    });
    for entry in &manifest.files {
        let relative = safe_relative(&entry.path)
            .ok_or_else(|| Error::bad_set(dir, "file path leaves the directory"))?;
        progress.start_file(&entry.path, entry.size);
        let outcome = match hash_file(&dir.join(relative), progress) {
            Err(error) => FileOutcome::Missing {
                error: error.to_string(),
            },
            Ok((size, _)) if size != entry.size => FileOutcome::SizeDiffers {
                expected: entry.size,
                actual: size,
            },
            Ok((_, sha256)) if !sha256.eq_ignore_ascii_case(&entry.sha256) => {
                FileOutcome::HashDiffers {
                    expected: entry.sha256.clone(),
                    actual: sha256,
                }
            }
            Ok(_) => FileOutcome::Ok,
        };
        progress.finish_file();
        files.push(FileCheck {
            path: entry.path.clone(),
            outcome,
        });
    }
    Ok(VerifyReport { manifest, files })
}

/// Size and SHA-256 (lowercase hex) of a file, read in 1 MiB blocks.
///
/// # Errors
/// The operating system's error when the file cannot be read.
pub fn hash_file(path: &Path, progress: &mut dyn Progress) -> std::io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 1 << 20];
    let mut size = 0_u64;
    loop {
        let n = file.read(&mut buf)?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        hasher.update(chunk);
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        size = size.saturating_add(n);
        progress.advance(n);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Every file under `dir`, recursively (used by tests and by the restore checks).
///
/// # Errors
/// [`Error::Io`] for a directory that cannot be listed.
pub fn walk(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).map_err(Error::io(&current))? {
            let path = entry.map_err(Error::io(&current))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoProgress;
    use crate::dir::BackupDirWriter;
    use crate::manifest::BackupType;
    use dsbackup_proto::BftKind;

    fn set(dir: &Path) {
        let mut writer = BackupDirWriter::create(dir).unwrap();
        for (kind, unc, data) in [
            (BftKind::NTDS_DATABASE, r"\\dc\ntds.dit", &b"database"[..]),
            (BftKind::LOG, r"\\dc\edb00001.log", b"log one"),
            (BftKind::PATCH_FILE, r"\\dc\ntds.pat", b"patch"),
        ] {
            let mut sink = writer.create_file(kind, unc).unwrap();
            sink.write(data).unwrap();
            writer.add(sink.finish().unwrap());
        }
        writer.write_token(&[1; 16]).unwrap();
        writer.commit("dc", BackupType::Full, 0).unwrap();
    }

    #[test]
    fn an_intact_set_verifies() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        set(&dir);
        let report = verify_dir(&dir, &mut NoProgress).unwrap();
        assert_eq!(report.files.len(), 4);
        assert!(report.is_ok());
        assert!(report.into_result().is_ok());
    }

    #[test]
    fn changed_truncated_and_missing_files_are_each_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        set(&dir);
        std::fs::write(dir.join("ntds/ntds.dit"), b"DATABASE").unwrap();
        std::fs::write(dir.join("logs/edb00001.log"), b"log").unwrap();
        std::fs::remove_file(dir.join("patch/ntds.pat")).unwrap();
        std::fs::write(dir.join("expiry-token.bin"), [2; 16]).unwrap();
        let report = verify_dir(&dir, &mut NoProgress).unwrap();
        let outcomes: Vec<_> = report.files.iter().map(|f| &f.outcome).collect();
        assert!(matches!(outcomes[0], FileOutcome::HashDiffers { .. }));
        assert!(matches!(outcomes[1], FileOutcome::HashDiffers { .. }));
        assert_eq!(
            outcomes[2],
            &FileOutcome::SizeDiffers {
                expected: 7,
                actual: 3
            }
        );
        assert!(matches!(outcomes[3], FileOutcome::Missing { .. }));
        assert!(matches!(
            report.into_result(),
            Err(Error::Mismatch {
                failed: 4,
                total: 4
            })
        ));
    }

    #[test]
    fn a_manifest_pointing_outside_the_set_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        set(&dir);
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("ntds/ntds.dit", "../../etc/passwd")).unwrap();
        assert!(matches!(
            verify_dir(&dir, &mut NoProgress),
            Err(Error::BadSet { .. })
        ));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            verify_dir(&dir, &mut NoProgress),
            Err(Error::Io { .. })
        ));
    }
}
