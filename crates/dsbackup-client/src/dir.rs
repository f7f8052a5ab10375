//! The backup directory, written so that a failed backup never leaves a directory that looks
//! complete.
//!
//! Everything goes into `<out>.partial/` first. Each file is written under a temporary name
//! (`.<name>.tmp`), hashed while written, fsynced, then renamed to its name. The expiry token
//! follows the same path. Last, `manifest.json` is written the same way, the directory is fsynced,
//! and `<out>.partial` is renamed to `<out>` (and the parent fsynced). So:
//!
//! - `<out>` exists only once it is complete, manifest included;
//! - a crash leaves at most `<out>.partial/`, which holds no `manifest.json` before the very last
//!   rename inside it, and which [`BackupDirWriter`] removes when dropped uncommitted.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, IoSlice, Write as _};
use std::path::{Path, PathBuf};

use dsbackup_proto::{BftKind, Chain};
use sha2::{Digest as _, Sha256};

use crate::error::Error;
use crate::manifest::{
    BackupType, FileEntry, MANIFEST_FILE, MANIFEST_FORMAT, Manifest, TOKEN_FILE, TokenEntry,
    kind_dir, rfc3339, server_file_name,
};

/// Writes one backup directory (see the module documentation).
#[derive(Debug)]
pub struct BackupDirWriter {
    out: PathBuf,
    partial: PathBuf,
    names: HashSet<String>,
    files: Vec<FileEntry>,
    token: Option<TokenEntry>,
    committed: bool,
}

impl BackupDirWriter {
    /// Starts a backup directory that will become `out`.
    ///
    /// # Errors
    /// [`Error::BadSet`] when `out` exists and is not an empty directory, or when
    /// `<out>.partial` is left from an earlier run (remove it first); [`Error::Io`] when the
    /// directory cannot be created.
    pub fn create(out: &Path) -> Result<Self, Error> {
        if let Ok(mut entries) = fs::read_dir(out) {
            if entries.next().is_some() {
                return Err(Error::bad_set(out, "exists and is not empty"));
            }
        } else if out.exists() {
            return Err(Error::bad_set(out, "exists and is not a directory"));
        }
        let partial = partial_path(out);
        if partial.exists() {
            return Err(Error::bad_set(
                &partial,
                "left by an earlier backup that did not finish; remove it",
            ));
        }
        if let Some(parent) = partial.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        fs::create_dir(&partial).map_err(Error::io(&partial))?;
        tracing::debug!(partial = %partial.display(), "Backup directory started");
        Ok(Self {
            out: out.to_owned(),
            partial,
            names: HashSet::new(),
            files: Vec::new(),
            token: None,
            committed: false,
        })
    }

    /// Where the set becomes complete.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Where the set is written until it is complete.
    pub fn partial(&self) -> &Path {
        &self.partial
    }

    /// Starts the file of kind `kind` whose server path is `unc`: it gets a name of its own
    /// under the kind's directory, whatever the server's name looks like.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be created.
    pub fn create_file(&mut self, kind: BftKind, unc: &str) -> Result<FileSink, Error> {
        let dir = kind_dir(kind);
        let base = sanitize(server_file_name(unc));
        let mut name = format!("{dir}/{base}");
        let mut n = 1_u32;
        while self.names.contains(&name.to_ascii_lowercase()) {
            n = n.saturating_add(1);
            name = format!("{dir}/{base}-{n}");
        }
        self.names.insert(name.to_ascii_lowercase());
        let dir_path = self.partial.join(dir);
        fs::create_dir_all(&dir_path).map_err(Error::io(&dir_path))?;
        FileSink::create(
            &self.partial,
            name,
            FileMeta {
                kind,
                unc: unc.to_owned(),
            },
        )
    }

    /// Records a finished file in the manifest.
    pub fn add(&mut self, entry: FileEntry) {
        self.files.push(entry);
    }

    /// Writes the expiry token file.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be written.
    pub fn write_token(&mut self, token: &[u8]) -> Result<(), Error> {
        write_durably(&self.partial, TOKEN_FILE, token)?;
        self.token = Some(TokenEntry::new(token));
        Ok(())
    }

    /// The files recorded so far.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// Writes the manifest last, then renames `<out>.partial` to `<out>`.
    ///
    /// # Errors
    /// [`Error::Misuse`] when no expiry token was written; [`Error::Io`] or
    /// [`Error::Manifest`] when the last writes or renames fail (the partial directory is then
    /// removed).
    pub fn commit(
        mut self,
        server: &str,
        backup_type: BackupType,
        created_unix: u64,
    ) -> Result<Manifest, Error> {
        let token = self
            .token
            .take()
            .ok_or(Error::Misuse("a backup set needs its expiry token"))?;
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            server: server.to_owned(),
            created: rfc3339(created_unix),
            created_unix,
            backup_type,
            expiry_token: token,
            files: std::mem::take(&mut self.files),
        };
        let json = manifest.to_json(&self.partial.join(MANIFEST_FILE))?;
        write_durably(&self.partial, MANIFEST_FILE, &json)?;
        sync_dir(&self.partial)?;
        if self.out.is_dir() {
            // An empty directory given as `out` (checked in `create`): rename replaces it.
            fs::remove_dir(&self.out).map_err(Error::io(&self.out))?;
        }
        fs::rename(&self.partial, &self.out).map_err(Error::io(&self.out))?;
        self.committed = true;
        if let Some(parent) = self.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        tracing::debug!(out = %self.out.display(), files = manifest.files.len(), "Backup directory complete");
        Ok(manifest)
    }
}

impl Drop for BackupDirWriter {
    fn drop(&mut self) {
        if !self.committed
            && let Err(error) = fs::remove_dir_all(&self.partial)
        {
            tracing::warn!(partial = %self.partial.display(), %error, "Cannot remove the partial backup directory");
        }
    }
}

/// What a file of the set is on the server.
#[derive(Clone, Debug)]
struct FileMeta {
    kind: BftKind,
    unc: String,
}

/// One file being written: hashed while written, fsynced and renamed by [`FileSink::finish`];
/// removed when dropped unfinished.
#[derive(Debug)]
pub struct FileSink {
    file: Option<File>,
    tmp: PathBuf,
    path: PathBuf,
    name: String,
    meta: FileMeta,
    hasher: Sha256,
    size: u64,
}

impl FileSink {
    fn create(dir: &Path, name: String, meta: FileMeta) -> Result<Self, Error> {
        let path = dir.join(&name);
        let tmp = tmp_path(&path);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(Error::io(&tmp))?;
        Ok(Self {
            file: Some(file),
            tmp,
            path,
            name,
            meta,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// The file's path in the backup set (`ntds/ntds.dit`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends `data`.
    ///
    /// # Errors
    /// [`Error::Io`] when the write fails.
    pub fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        self.write_parts(&[data])
    }

    /// Appends the bytes of `data`, its segments gathered into few `write_vectored` calls
    /// (no copy into one buffer first).
    ///
    /// # Errors
    /// [`Error::Io`] when the write fails.
    pub fn write_chain(&mut self, data: &Chain) -> Result<(), Error> {
        let parts: Vec<&[u8]> = data.segments().map(AsRef::as_ref).collect();
        self.write_parts(&parts)
    }

    fn write_parts(&mut self, parts: &[&[u8]]) -> Result<(), Error> {
        /// Slices per `write_vectored`: under every system's `IOV_MAX` (1024 on Linux).
        const SLICES_PER_WRITE: usize = 512;
        let file = self
            .file
            .as_mut()
            .ok_or(Error::Misuse("file already finished"))?;
        for group in parts.chunks(SLICES_PER_WRITE) {
            let mut slices: Vec<IoSlice<'_>> = group
                .iter()
                .filter(|part| !part.is_empty())
                .map(|part| IoSlice::new(part))
                .collect();
            let mut rest = &mut slices[..];
            while !rest.is_empty() {
                match file.write_vectored(rest) {
                    Ok(0) => return Err(Error::io(&self.tmp)(io::ErrorKind::WriteZero.into())),
                    Ok(written) => IoSlice::advance_slices(&mut rest, written),
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(Error::io(&self.tmp)(error)),
                }
            }
        }
        for part in parts {
            self.hasher.update(part);
            self.size = self
                .size
                .saturating_add(u64::try_from(part.len()).unwrap_or(u64::MAX));
        }
        Ok(())
    }

    /// Flushes the file to disk, gives it its name, and returns its manifest entry.
    ///
    /// # Errors
    /// [`Error::Io`] when the sync or the rename fails.
    pub fn finish(mut self) -> Result<FileEntry, Error> {
        let file = self
            .file
            .take()
            .ok_or(Error::Misuse("file already finished"))?;
        file.sync_all().map_err(Error::io(&self.tmp))?;
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(Error::io(&self.path))?;
        let hasher = std::mem::take(&mut self.hasher);
        Ok(FileEntry {
            path: self.name.clone(),
            kind: kind_name(self.meta.kind),
            bft: self.meta.kind.0,
            unc: self.meta.unc.clone(),
            size: self.size,
            sha256: hex::encode(hasher.finalize()),
        })
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// The name of a BFT kind for the manifest: the `BFT_*` name, or `BFT_UNKNOWN(0x....)`.
pub fn kind_name(kind: BftKind) -> String {
    kind.to_string()
}

/// `<out>.partial`.
pub fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(ToOwned::to_owned).unwrap_or_default();
    name.push(".partial");
    out.with_file_name(name)
}

/// `dir/.name.tmp` for `dir/name`.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `dir/name` through a temporary name, fsynced, then renamed.
pub(crate) fn write_durably(dir: &Path, name: &str, data: &[u8]) -> Result<(), Error> {
    let path = dir.join(name);
    let tmp = tmp_path(&path);
    let mut file = File::create(&tmp).map_err(Error::io(&tmp))?;
    file.write_all(data).map_err(Error::io(&tmp))?;
    file.sync_all().map_err(Error::io(&tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(Error::io(&path))
}

/// fsync of a directory, so that the renames inside it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

/// A server file name made safe as one local file name: separators, control characters and
/// `:` become `_`; empty, `.` and `..` become `file`; a leading dot is kept off.
fn sanitize(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() {
        "file".to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::verify_dir;

    fn write_set(out: &Path) -> Manifest {
        let mut writer = BackupDirWriter::create(out).unwrap();
        let mut db = writer
            .create_file(BftKind::NTDS_DATABASE, r"\\dc1\C$\Windows\NTDS\ntds.dit")
            .unwrap();
        db.write(b"abc").unwrap();
        writer.add(db.finish().unwrap());
        let mut log = writer
            .create_file(BftKind::LOG, r"\\dc1\C$\Windows\NTDS\edb00001.log")
            .unwrap();
        log.write(b"").unwrap();
        writer.add(log.finish().unwrap());
        writer
            .write_token(&[1, 0, 0, 0, 180, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap();
        writer.commit("dc1", BackupType::Full, 0).unwrap()
    }

    /// A block of more segments than one `write_vectored` takes, empty ones among them,
    /// lands in the file whole and in order, and the manifest hashes exactly those bytes.
    #[test]
    fn a_chain_of_many_segments_is_written_and_hashed_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("set");
        let mut writer = BackupDirWriter::create(&out).unwrap();
        let mut db = writer
            .create_file(BftKind::NTDS_DATABASE, r"\\dc1\C$\Windows\NTDS\ntds.dit")
            .unwrap();
        let mut expected = Vec::new();
        let mut block = Chain::new();
        for i in 0..1500_u32 {
            let segment: Vec<u8> = (0..i % 7).map(|j| (i + j).to_le_bytes()[0]).collect();
            expected.extend_from_slice(&segment);
            block.push(segment.into());
        }
        db.write_chain(&block).unwrap();
        db.write(b"tail").unwrap();
        expected.extend_from_slice(b"tail");
        let entry = db.finish().unwrap();
        assert_eq!(entry.size, u64::try_from(expected.len()).unwrap());
        assert_eq!(entry.sha256, hex::encode(Sha256::digest(&expected)));
        writer.add(entry);
        writer
            .write_token(&[1, 0, 0, 0, 180, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap();
        writer.commit("dc1", BackupType::Full, 0).unwrap();
        assert_eq!(fs::read(out.join("ntds/ntds.dit")).unwrap(), expected);
    }

    #[test]
    fn a_committed_set_has_its_layout_hashes_and_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("set");
        let manifest = write_set(&out);
        assert!(!partial_path(&out).exists());
        assert_eq!(fs::read(out.join("ntds/ntds.dit")).unwrap(), b"abc");
        assert_eq!(manifest.files[0].path, "ntds/ntds.dit");
        assert_eq!(manifest.files[0].kind, "BFT_NTDS_DATABASE");
        assert_eq!(
            manifest.files[0].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(manifest.files[1].path, "logs/edb00001.log");
        assert_eq!(manifest.files[1].size, 0);
        assert_eq!(manifest.expiry_token.tombstone_lifetime_days, Some(180));
        assert_eq!(Manifest::read(&out).unwrap(), manifest);
        assert!(verify_dir(&out, &mut crate::NoProgress).unwrap().is_ok());
        // No temporary file is left behind.
        let leftovers: Vec<_> = crate::verify::walk(&out)
            .unwrap()
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn an_unfinished_set_leaves_no_directory_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("set");
        let mut writer = BackupDirWriter::create(&out).unwrap();
        let mut db = writer
            .create_file(BftKind::NTDS_DATABASE, "ntds.dit")
            .unwrap();
        db.write(b"half").unwrap();
        assert!(partial_path(&out).join("ntds/.ntds.dit.tmp").exists());
        assert!(!partial_path(&out).join(MANIFEST_FILE).exists());
        drop(db);
        drop(writer);
        assert!(!out.exists());
        assert!(!partial_path(&out).exists());
    }

    #[test]
    fn a_set_without_a_token_does_not_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("set");
        let writer = BackupDirWriter::create(&out).unwrap();
        assert!(matches!(
            writer.commit("dc1", BackupType::Full, 0),
            Err(Error::Misuse(_))
        ));
        assert!(!out.exists());
        assert!(!partial_path(&out).exists());
    }

    #[test]
    fn existing_outputs_are_refused_but_an_empty_directory_is_used() {
        let tmp = tempfile::tempdir().unwrap();
        let full = tmp.path().join("full");
        fs::create_dir(&full).unwrap();
        fs::write(full.join("x"), b"x").unwrap();
        assert!(matches!(
            BackupDirWriter::create(&full),
            Err(Error::BadSet { .. })
        ));
        let stale = tmp.path().join("stale");
        fs::create_dir(partial_path(&stale)).unwrap();
        assert!(matches!(
            BackupDirWriter::create(&stale),
            Err(Error::BadSet { .. })
        ));
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        write_set(&empty);
        assert!(empty.join(MANIFEST_FILE).exists());
    }

    #[test]
    fn server_names_cannot_escape_and_duplicates_get_their_own_name() {
        let tmp = tempfile::tempdir().unwrap();
        let mut writer = BackupDirWriter::create(&tmp.path().join("set")).unwrap();
        let names: Vec<String> = [
            r"\\dc\x\..",
            r"\\dc\a\edb.log",
            r"\\dc\b\EDB.log",
            "..\\..",
            ".hidden",
            "a:b\u{1}",
        ]
        .iter()
        .map(|unc| {
            writer
                .create_file(BftKind::LOG, unc)
                .unwrap()
                .name()
                .to_owned()
        })
        .collect();
        assert_eq!(
            names,
            [
                "logs/file",
                "logs/edb.log",
                "logs/EDB.log-2",
                "logs/file-2",
                "logs/hidden",
                "logs/a_b_"
            ]
        );
    }
}
