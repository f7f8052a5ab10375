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
use crate::writeback::WriteBehind;

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
    /// `<out>.partial` is left from an earlier run that did not finish (the message names
    /// `--force`: see [`create_with`](Self::create_with)); [`Error::Io`] when the directory
    /// cannot be created.
    pub fn create(out: &Path) -> Result<Self, Error> {
        Self::create_with(out, false)
    }

    /// As [`create`](Self::create); with `force`, a `<out>.partial` left by an earlier run
    /// (a crash, `kill -9`, a power loss) is removed first instead of refused.
    ///
    /// There is no resuming into it: a new `HrRBackupPrepare` starts a new server backup
    /// session with its own snapshot and expiry token, so files kept from the old session
    /// (a database copied at one point in time, logs of another) would not form one
    /// consistent set, and the server's answers cannot prove they would.
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn create_with(out: &Path, force: bool) -> Result<Self, Error> {
        if let Ok(mut entries) = fs::read_dir(out) {
            if entries.next().is_some() {
                return Err(Error::bad_set(out, "exists and is not empty"));
            }
        } else if out.exists() {
            return Err(Error::bad_set(out, "exists and is not a directory"));
        }
        let partial = partial_path(out);
        if let Ok(meta) = fs::symlink_metadata(&partial) {
            if !force {
                return Err(Error::bad_set(
                    &partial,
                    "is left by an earlier backup that did not finish (interrupted or \
                     crashed); --force removes it and starts again",
                ));
            }
            tracing::info!(partial = %partial.display(), "Removing the partial set of an earlier run");
            let removed = if meta.is_dir() {
                fs::remove_dir_all(&partial)
            } else {
                // A link or a file under that name: removed itself, never followed.
                fs::remove_file(&partial)
            };
            removed.map_err(Error::io(&partial))?;
        }
        if let Some(parent) = partial.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        create_private_dir(&partial)?;
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
        let dir_path = self.partial.join(dir);
        if !dir_path.is_dir() {
            create_private_dir(&dir_path)?;
        }
        let meta = FileMeta {
            kind,
            unc: unc.to_owned(),
        };
        let server_name = server_file_name(unc);
        let base = local_name(server_name);
        let name = self.unique(dir, &base);
        match FileSink::create(&self.partial, name, meta.clone()) {
            // A name this file system cannot hold (too long in its encoding, or characters
            // it refuses): the short form with the hash of the server's name.
            Err(Error::Io { source, .. }) if name_not_representable(&source) => {
                let short = short_name(server_name, "");
                let name = self.unique(dir, &short);
                FileSink::create(&self.partial, name, meta)
            }
            other => other,
        }
    }

    /// `dir/base`, or `dir/base-N` when a file of the set already has that name (compared
    /// case-insensitively, for case-insensitive file systems); the name is reserved.
    fn unique(&mut self, dir: &str, base: &str) -> String {
        let mut name = format!("{dir}/{base}");
        let mut n = 1_u32;
        while self.names.contains(&name.to_ascii_lowercase()) {
            n = n.saturating_add(1);
            name = format!("{dir}/{base}-{n}");
        }
        self.names.insert(name.to_ascii_lowercase());
        name
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
    /// The page cache behind the writes (see [`WriteBehind`]).
    behind: WriteBehind,
}

impl FileSink {
    fn create(dir: &Path, name: String, meta: FileMeta) -> Result<Self, Error> {
        let path = dir.join(&name);
        let tmp = tmp_path(&path);
        let file = create_private_file(&tmp)?;
        Ok(Self {
            file: Some(file),
            tmp,
            path,
            name,
            meta,
            hasher: Sha256::new(),
            size: 0,
            behind: WriteBehind::new(),
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
        self.behind.wrote(file, self.size);
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
pub(crate) fn kind_name(kind: BftKind) -> String {
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
    let mut file = create_private_file(&tmp)?;
    file.write_all(data).map_err(Error::io(&tmp))?;
    file.sync_all().map_err(Error::io(&tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(Error::io(&path))
}

/// fsync of a directory, so that the renames inside it are durable.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

/// Nothing: the standard library cannot open a directory on Windows, whose file systems
/// journal a rename themselves.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> Result<(), Error> {
    Ok(())
}

/// Mode of the set's directories: the set holds every account's password hashes.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of the set's files.
#[cfg(unix)]
pub(crate) const FILE_MODE: u32 = 0o600;

/// Longest local file name made from a server's name, in bytes: under the 255 bytes of
/// common file systems, with room for the `.` and `.tmp` of the temporary name and a `-N`
/// for duplicates.
pub(crate) const MAX_LOCAL_NAME: usize = 200;

/// Creates the directory `path` with mode 0700 from its first moment, whatever the umask.
pub(crate) fn create_private_dir(path: &Path) -> Result<(), Error> {
    let builder = &mut fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(builder, DIR_MODE);
    builder.create(path).map_err(Error::io(path))?;
    // The umask can only take bits away; a umask of 0200 or more would leave the owner
    // without access, so the mode is set again.
    set_mode(path, DIR_MODE)
}

/// Creates the new file `path` with mode 0600 from its first byte, whatever the umask.
pub(crate) fn create_private_file(path: &Path) -> Result<File, Error> {
    let mut options = File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(FILE_MODE);
    }
    options.open(path).map_err(Error::io(path))
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(Error::io(path))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<(), Error> {
    Ok(())
}

/// Whether `error` says the file system cannot hold a name (too long, or an encoding it
/// refuses).
fn name_not_representable(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::InvalidFilename | io::ErrorKind::InvalidInput
    ) || error.raw_os_error().is_some_and(|code| {
        // ENAMETOOLONG, EILSEQ on Linux; the same names on the BSDs and macOS.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let codes = [36, 84];
        #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
        let codes = [63, 92];
        #[cfg(not(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios",
            target_os = "freebsd"
        )))]
        let codes: [i32; 0] = [];
        codes.contains(&code)
    })
}

/// A server file name made safe as one local file name: separators, control characters and
/// the characters Windows refuses (`<>:"|?*`) become `_`; empty, `.` and `..` become `file`; a
/// leading dot is kept off; a name longer than [`MAX_LOCAL_NAME`] bytes is shortened with a
/// hash of the server's name (see [`short_name`]).
fn local_name(name: &str) -> String {
    let cleaned = sanitize(name);
    if cleaned.len() > MAX_LOCAL_NAME {
        short_name(name, &cleaned)
    } else {
        cleaned
    }
}

fn sanitize(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '<' | '>' | '"' | '|' | '?' | '*') {
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

/// A short local name for the server name `name`: the start of `cleaned` (the sanitized name,
/// or only ASCII letters, digits, `.`, `-` and `_` of it when empty) cut at a character
/// boundary, `~`, the first 16 hex digits of the SHA-256 of the server's name, and the
/// extension when it is short. Distinct server names get distinct local names; the manifest
/// keeps the server's full UNC name.
pub(crate) fn short_name(name: &str, cleaned: &str) -> String {
    let portable: String;
    let cleaned = if cleaned.is_empty() {
        portable = sanitize(name)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        portable.as_str()
    } else {
        cleaned
    };
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    let hash = digest.get(..16).unwrap_or(&digest);
    let extension = cleaned
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| !ext.is_empty() && ext.len() <= 8 && ext.is_ascii());
    let suffix_len = 1 + hash.len() + extension.map_or(0, |ext| ext.len() + 1);
    // Portable names stay well under every file system's limit.
    let budget = 64_usize.saturating_sub(suffix_len);
    let mut stem_end = 0;
    for (index, c) in cleaned.char_indices() {
        let end = index + c.len_utf8();
        if end > budget {
            break;
        }
        stem_end = end;
    }
    let stem = cleaned.get(..stem_end).unwrap_or_default();
    match extension {
        Some(ext) => format!("{stem}~{hash}.{ext}"),
        None => format!("{stem}~{hash}"),
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

    #[cfg(unix)]
    #[test]
    fn the_set_is_private_from_its_first_byte() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("set");
        let mut writer = BackupDirWriter::create(&out).unwrap();
        assert_eq!(mode(writer.partial()), DIR_MODE);
        let mut db = writer
            .create_file(BftKind::NTDS_DATABASE, r"\\dc1\C$\ntds.dit")
            .unwrap();
        assert_eq!(mode(&partial_path(&out).join("ntds")), DIR_MODE);
        assert_eq!(
            mode(&partial_path(&out).join("ntds/.ntds.dit.tmp")),
            FILE_MODE
        );
        db.write(b"x").unwrap();
        writer.add(db.finish().unwrap());
        writer
            .write_token(&[1, 0, 0, 0, 180, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap();
        writer.commit("dc1", BackupType::Full, 0).unwrap();
        assert_eq!(mode(&out), DIR_MODE);
        for file in ["ntds/ntds.dit", "expiry-token.bin", "manifest.json"] {
            assert_eq!(mode(&out.join(file)), FILE_MODE, "{file}");
        }
    }

    #[test]
    fn a_left_partial_set_is_refused_naming_force_and_removed_with_it() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("set");
        fs::create_dir_all(partial_path(&out).join("ntds")).unwrap();
        fs::write(partial_path(&out).join("ntds/.ntds.dit.tmp"), b"half").unwrap();
        let error = BackupDirWriter::create(&out).unwrap_err().to_string();
        assert!(error.contains("--force"), "{error}");
        let writer = BackupDirWriter::create_with(&out, true).unwrap();
        assert!(!partial_path(&out).join("ntds").exists());
        drop(writer);
        assert!(!partial_path(&out).exists());
    }

    #[test]
    fn long_server_names_get_a_short_local_name_and_keep_their_unc() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("set");
        let mut writer = BackupDirWriter::create(&out).unwrap();
        let long_a = format!(r"\\dc1\C$\{}a.log", "é".repeat(200));
        let long_b = format!(r"\\dc1\C$\{}b.log", "é".repeat(200));
        let mut names = Vec::new();
        for unc in [&long_a, &long_b] {
            let mut sink = writer.create_file(BftKind::LOG, unc).unwrap();
            sink.write(b"log").unwrap();
            names.push(sink.name().to_owned());
            writer.add(sink.finish().unwrap());
        }
        assert_ne!(names[0], names[1]);
        for name in &names {
            assert!(name.len() <= 5 + MAX_LOCAL_NAME, "{name}");
            assert!(name.ends_with(".log"), "{name}");
            assert!(name.contains('~'), "{name}");
        }
        writer
            .write_token(&[1, 0, 0, 0, 180, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap();
        let manifest = writer.commit("dc1", BackupType::Full, 0).unwrap();
        assert_eq!(manifest.files[0].unc, long_a);
        assert_eq!(manifest.files[1].unc, long_b);
        assert_eq!(fs::read(out.join(&names[0])).unwrap(), b"log");
    }
}
