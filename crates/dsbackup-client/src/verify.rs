//! `verify`: every file of a backup set re-hashed against its manifest.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use dsbackup_proto::{BftKind, ExpiryToken};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::beneath::{Beneath, Refusal};
use crate::error::Error;
use crate::manifest::{BackupType, MANIFEST_FILE, Manifest, safe_relative};
use crate::progress::Progress;

/// The outcome of [`verify_dir`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The manifest that was checked against.
    #[serde(skip)]
    pub manifest: Manifest,
    /// One entry per file of the manifest, the expiry token first.
    pub files: Vec<FileCheck>,
    /// What is in the set's directory but not in its manifest (`/`-separated, sorted): files,
    /// links, FIFOs. A set written by dsbackup has none.
    pub extra: Vec<String>,
    /// Why the set is not whole although its listed files may match: a full set without its
    /// database, a set without a valid expiry token, a logs-only set without logs.
    pub problems: Vec<String>,
    /// Directories and files that others than the owner may read or write (a set is 0700
    /// directories and 0600 files): warnings, the set still verifies.
    pub warnings: Vec<String>,
}

impl VerifyReport {
    /// Whether every file matches, nothing unlisted is in the set and the set is whole.
    pub fn is_ok(&self) -> bool {
        self.failed() == 0
    }

    /// Files that do not match, unlisted files and problems of the set, counted together.
    pub fn failed(&self) -> usize {
        self.failures()
            .count()
            .saturating_add(self.extra.len())
            .saturating_add(self.problems.len())
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
        let failed = self.failed();
        if failed == 0 {
            Ok(self)
        } else {
            Err(Error::Mismatch {
                failed,
                total: self
                    .files
                    .len()
                    .saturating_add(self.extra.len())
                    .saturating_add(self.problems.len()),
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
    /// Not a regular file reached without a symbolic link inside the set (a link, a FIFO, a
    /// directory...): refused without being opened or followed.
    Refused {
        /// What it is.
        reason: String,
    },
    /// Same size, other contents.
    HashDiffers {
        /// The manifest's SHA-256.
        expected: String,
        /// The file's SHA-256.
        actual: String,
    },
}

/// Re-hashes every file of the backup set in `dir` against its manifest, and checks the set
/// as a whole.
///
/// Only regular files reached without a symbolic link inside `dir` are read; anything else
/// is refused with its path (a FIFO is never opened for a blocking read). Files in `dir` that
/// the manifest does not list are reported; a full set must list its database, every set a
/// valid expiry token, a logs-only set its logs. Modes wider than 0700/0600 are warnings.
///
/// # Errors
/// Only when there is nothing to check against: the manifest is missing ("not a dsbackup
/// set"), of an unsupported format, unreadable, or names a path outside the set
/// ([`Error::Io`], [`Error::Manifest`], [`Error::BadSet`]). Files that do not match are in
/// the report ([`VerifyReport::into_result`] turns them into an error).
pub fn verify_dir(dir: &Path, progress: &mut dyn Progress) -> Result<VerifyReport, Error> {
    let manifest = Manifest::read(dir)?;
    let set = Beneath::open(dir).map_err(|refusal| refusal.into_error(dir))?;
    let mut files = Vec::with_capacity(manifest.files.len().saturating_add(1));
    let mut problems = Vec::new();
    let token_bytes = manifest.expiry_token.bytes(dir)?;
    if ExpiryToken::decode(&token_bytes).is_err() {
        problems.push(format!(
            "the manifest's expiry token ({} bytes) is not a token of the one format this \
             project knows (16 bytes, version 1): a restore needs it",
            token_bytes.len()
        ));
    }
    let token_path = &manifest.expiry_token.path;
    let token_outcome = match read_small(&set, Path::new(token_path)) {
        Ok(bytes) if bytes == token_bytes => FileOutcome::Ok,
        Ok(bytes) => FileOutcome::HashDiffers {
            expected: manifest.expiry_token.hex.clone(),
            actual: hex::encode(bytes),
        },
        Err(refusal) => outcome_of(&refusal),
    };
    files.push(FileCheck {
        path: token_path.clone(),
        outcome: token_outcome,
    });
    for entry in &manifest.files {
        let relative = safe_relative(&entry.path)
            .ok_or_else(|| Error::bad_set(dir, "file path leaves the directory"))?;
        progress.start_file(&entry.path, entry.size);
        let hashed = set.open_file(&relative).and_then(|file| {
            hash_reader(file, progress).map_err(|e| Refusal::Io(dir.join(&relative), e))
        });
        let outcome = match hashed {
            Err(refusal) => outcome_of(&refusal),
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
    problems.extend(whole_set_problems(&manifest));
    let listing = list(dir)?;
    let mut listed: HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    listed.insert(token_path);
    listed.insert(MANIFEST_FILE);
    let extra = listing
        .entries
        .iter()
        .filter(|(path, kind)| *kind != EntryKind::Dir && !listed.contains(path.as_str()))
        .map(|(path, _)| path.clone())
        .collect();
    Ok(VerifyReport {
        manifest,
        files,
        extra,
        problems,
        warnings: listing.warnings,
    })
}

/// What makes the set of `manifest` not whole, whatever its files hold.
fn whole_set_problems(manifest: &Manifest) -> Vec<String> {
    let has = |kind: BftKind| manifest.files.iter().any(|f| f.bft_kind() == kind);
    let mut problems = Vec::new();
    match manifest.backup_type {
        BackupType::Full if !has(BftKind::NTDS_DATABASE) => problems.push(
            "a full backup set holds the database, but the manifest lists no BFT_NTDS_DATABASE \
             file"
                .to_owned(),
        ),
        BackupType::LogsOnly if !has(BftKind::LOG) => problems.push(
            "a logs-only backup set holds logs, but the manifest lists no BFT_LOG file".to_owned(),
        ),
        _ => {}
    }
    problems
}

/// The outcome for a file that could not be read.
fn outcome_of(refusal: &Refusal) -> FileOutcome {
    match refusal {
        Refusal::Io(_, error) => FileOutcome::Missing {
            error: error.to_string(),
        },
        refusal => FileOutcome::Refused {
            reason: refusal.to_string(),
        },
    }
}

/// A small file of the set (the expiry token), read whole up to 64 KiB.
fn read_small(set: &Beneath, relative: &Path) -> Result<Vec<u8>, Refusal> {
    const LIMIT: u64 = 64 * 1024;
    let file = set.open_file(relative)?;
    let mut bytes = Vec::new();
    file.take(LIMIT)
        .read_to_end(&mut bytes)
        .map_err(|error| Refusal::Io(set.path().join(relative), error))?;
    Ok(bytes)
}

/// Size and SHA-256 (lowercase hex) of a file, read in 1 MiB blocks.
///
/// # Errors
/// The operating system's error when the file cannot be read.
pub fn hash_file(path: &Path, progress: &mut dyn Progress) -> std::io::Result<(u64, String)> {
    hash_reader(File::open(path)?, progress)
}

/// Size and SHA-256 (lowercase hex) of what `file` holds, read in 1 MiB blocks.
fn hash_reader(mut file: File, progress: &mut dyn Progress) -> std::io::Result<(u64, String)> {
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

/// What a directory entry is, not following links.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum EntryKind {
    Dir,
    Other,
}

/// Everything under a set's directory, and the warnings about its modes.
struct Listing {
    /// `/`-separated relative paths, sorted.
    entries: Vec<(String, EntryKind)>,
    warnings: Vec<String>,
}

/// Lists `dir` recursively without following links (a link is an entry, never a way in);
/// notes every directory or file that others than the owner may use.
fn list(dir: &Path) -> Result<Listing, Error> {
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    if let Ok(meta) = std::fs::symlink_metadata(dir) {
        warnings.extend(mode_warning(dir, &meta));
    }
    let mut stack = vec![(dir.to_owned(), String::new())];
    while let Some((current, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&current).map_err(Error::io(&current))? {
            let entry = entry.map_err(Error::io(&current))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let file_type = entry.file_type().map_err(Error::io(entry.path()))?;
            if !file_type.is_symlink()
                && let Ok(meta) = entry.metadata()
            {
                warnings.extend(mode_warning(&entry.path(), &meta));
            }
            if file_type.is_dir() {
                stack.push((entry.path(), relative.clone()));
                entries.push((relative, EntryKind::Dir));
            } else {
                entries.push((relative, EntryKind::Other));
            }
        }
    }
    entries.sort();
    Ok(Listing { entries, warnings })
}

/// A warning when `path` is open to others than its owner.
#[cfg(unix)]
fn mode_warning(path: &Path, meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} has mode {mode:04o}: others than its owner can use it (a set is {:04o} \
             directories, {:04o} files; chmod -R go= fixes it)",
            path.display(),
            crate::dir::DIR_MODE,
            crate::dir::FILE_MODE,
        )
    })
}

#[cfg(not(unix))]
fn mode_warning(_path: &Path, _meta: &std::fs::Metadata) -> Option<String> {
    None
}

/// Every file under `dir`, recursively, links not followed (for the tests of the crate).
#[cfg(test)]
pub(crate) fn walk(dir: &Path) -> Result<Vec<std::path::PathBuf>, Error> {
    Ok(list(dir)?
        .entries
        .into_iter()
        .filter(|(_, kind)| *kind == EntryKind::Other)
        .map(|(path, _)| dir.join(path))
        .collect())
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
        writer
            .write_token(&[1, 0, 0, 0, 180, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap();
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
            Err(Error::BadSet { .. })
        ));
    }

    fn rewrite_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let path = dir.join("manifest.json");
        let mut value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut value);
        std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_file_replaced_by_a_link_is_refused_even_when_the_manifest_matches() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        set(&dir);
        let secret = tmp.path().join("passwd");
        std::fs::write(&secret, b"root:x:0:0").unwrap();
        let log = dir.join("logs/edb00001.log");
        std::fs::remove_file(&log).unwrap();
        std::os::unix::fs::symlink(&secret, &log).unwrap();
        let (size, sha256) = hash_file(&secret, &mut NoProgress).unwrap();
        rewrite_manifest(&dir, |m| {
            m["files"][1]["size"] = size.into();
            m["files"][1]["sha256"] = sha256.into();
        });
        let report = verify_dir(&dir, &mut NoProgress).unwrap();
        let outcome = &report.files[2].outcome;
        assert!(
            matches!(outcome, FileOutcome::Refused { reason } if reason.contains("symbolic link")),
            "{outcome:?}"
        );
        assert!(!report.is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_replaced_by_a_link_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        set(&dir);
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::rename(dir.join("logs"), &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join("logs")).unwrap();
        let report = verify_dir(&dir, &mut NoProgress).unwrap();
        assert!(
            matches!(&report.files[2].outcome, FileOutcome::Refused { reason } if reason.contains("symbolic link")),
            "{:?}",
            report.files[2]
        );
        // The link itself is not in the manifest either.
        assert_eq!(report.extra, ["logs"]);
        assert!(matches!(report.into_result(), Err(Error::Mismatch { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_in_place_of_the_database_is_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        set(&dir);
        let db = dir.join("ntds/ntds.dit");
        std::fs::remove_file(&db).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(&db)
            .status()
            .unwrap();
        assert!(made.success());
        // A watchdog, not a timing check: a verify that blocks on the FIFO never answers.
        let (sender, receiver) = std::sync::mpsc::channel();
        let checked = dir.clone();
        std::thread::spawn(move || {
            let _ = sender.send(verify_dir(&checked, &mut NoProgress).map(|r| r.files));
        });
        let files = receiver
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("verify blocked on a FIFO")
            .unwrap();
        assert!(
            matches!(&files[1].outcome, FileOutcome::Refused { reason } if reason.contains("FIFO")),
            "{:?}",
            files[1]
        );
    }

    #[test]
    fn a_full_set_without_its_database_does_not_verify() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        set(&dir);
        std::fs::remove_dir_all(dir.join("ntds")).unwrap();
        std::fs::remove_dir_all(dir.join("logs")).unwrap();
        std::fs::remove_dir_all(dir.join("patch")).unwrap();
        rewrite_manifest(&dir, |m| m["files"] = serde_json::json!([]));
        let report = verify_dir(&dir, &mut NoProgress).unwrap();
        assert_eq!(report.files.len(), 1);
        assert!(report.files[0].outcome == FileOutcome::Ok);
        assert!(
            report.problems[0].contains("BFT_NTDS_DATABASE"),
            "{:?}",
            report.problems
        );
        assert!(!report.is_ok());
        assert!(matches!(
            report.into_result(),
            Err(Error::Mismatch { failed: 1, .. })
        ));
    }

    #[test]
    fn a_file_the_manifest_does_not_list_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        set(&dir);
        std::fs::write(dir.join("logs/edb00002.log"), b"slipped in").unwrap();
        let report = verify_dir(&dir, &mut NoProgress).unwrap();
        assert!(report.failures().next().is_none());
        assert_eq!(report.extra, ["logs/edb00002.log"]);
        assert!(!report.is_ok());
    }

    #[test]
    fn unknown_formats_and_directories_without_a_manifest_say_so() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        set(&dir);
        rewrite_manifest(&dir, |m| {
            m["format"] = 7.into();
            m["something_new"] = true.into();
        });
        let error = verify_dir(&dir, &mut NoProgress).unwrap_err().to_string();
        assert!(error.contains("unsupported format 7"), "{error}");
        let error = verify_dir(tmp.path(), &mut NoProgress)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a dsbackup set"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn wider_modes_are_warned_about() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        set(&dir);
        let report = verify_dir(&dir, &mut NoProgress).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let db = dir.join("ntds/ntds.dit");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let report = verify_dir(&dir, &mut NoProgress).unwrap();
        assert!(report.is_ok());
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(report.warnings[0].contains("0644"), "{:?}", report.warnings);
    }
}
