//! Where each file of a backup set goes on a restore, and the copy itself.
//!
//! `HrRRestoreGetDatabaseLocations` names, in server paths, the database file
//! (`BFT_NTDS_DATABASE`), the log directory (`BFT_LOG_DIR`, for every `BFT_LOG` file) and the
//! checkpoint directory (`BFT_CHECKPOINT_DIR`, for every `BFT_PATCH_FILE`). A [`PathMap`] turns
//! those server paths into local ones (a mounted share, or the same path when the server is on
//! this host); the copy writes each file under a temporary name, checks its SHA-256 against the
//! manifest while copying, fsyncs and renames it.

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use dsbackup_proto::{BftKind, NameEntry};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::error::Error;
use crate::manifest::{FileEntry, Manifest, safe_relative};
use crate::progress::Progress;

/// Turns server paths into local paths: a list of `PREFIX=LOCAL` rules, the longest matching
/// prefix first (compared case-insensitively, `\` and `/` alike). An absolute local path
/// (`/...`) with no matching rule maps to itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathMap {
    rules: Vec<(String, PathBuf)>,
}

impl PathMap {
    /// A map with no rules: only absolute local paths map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule: server paths under `prefix` go under `local`.
    pub fn with_rule(mut self, prefix: &str, local: impl Into<PathBuf>) -> Self {
        self.rules.push((normalize(prefix), local.into()));
        self.rules
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        self
    }

    /// Parses `PREFIX=LOCAL` (as the command line gives it).
    ///
    /// # Errors
    /// [`Error::Misuse`] when there is no `=`.
    pub fn parse_rule(self, rule: &str) -> Result<Self, Error> {
        let (prefix, local) = rule
            .split_once('=')
            .ok_or(Error::Misuse("a path map rule is PREFIX=LOCAL_DIR"))?;
        Ok(self.with_rule(prefix, local))
    }

    /// The local path of `server_path`, if a rule (or the identity for `/...`) covers it.
    pub fn local(&self, server_path: &str) -> Option<PathBuf> {
        let normalized = normalize(server_path);
        for (prefix, local) in &self.rules {
            let Some(rest) = strip_prefix_ci(&normalized, prefix) else {
                continue;
            };
            // The prefix must end at a component boundary: `C$` does not cover `C$x`.
            if !(rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/')) {
                continue;
            }
            let rest = rest.trim_start_matches('/');
            if rest.is_empty() {
                return Some(local.clone());
            }
            return safe_relative(rest).map(|rest| local.join(rest));
        }
        if server_path.starts_with('/') && !server_path.split('/').any(|part| part == "..") {
            return Some(PathBuf::from(server_path));
        }
        None
    }
}

/// One file to copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedCopy {
    /// The file in the backup set.
    pub source: PathBuf,
    /// Where the server wants it, in its own path syntax.
    pub server_target: String,
    /// Where it is written locally.
    pub local_target: PathBuf,
    /// Its manifest entry.
    pub entry: FileEntry,
}

/// What a restore does: the copies, and the paths `HrRRestoreRegister` names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RestorePlan {
    /// Every file, in manifest order.
    pub copies: Vec<PlannedCopy>,
    /// The database location (server path).
    pub database: String,
    /// The log directory (server path).
    pub log_dir: String,
    /// The checkpoint directory (server path).
    pub checkpoint_dir: String,
    /// `(old, new)` database names for `rgrstmap`: the UNC path in the backup and the location.
    pub rstmap: Vec<(String, String)>,
    /// Lowest log generation restored (from `edbXXXXX.log` names; 0 when none).
    pub gen_low: u32,
    /// Highest log generation restored.
    pub gen_high: u32,
}

/// Plans the restore of `manifest` (a set in `dir`) to the server's `locations`.
///
/// # Errors
/// [`Error::Protocol`] when a location the set needs is missing from the list;
/// [`Error::BadSet`] when a path leaves the set or a location has no local mapping.
pub fn plan_restore(
    dir: &Path,
    manifest: &Manifest,
    locations: &[NameEntry],
    map: &PathMap,
) -> Result<RestorePlan, Error> {
    let location = |kind: BftKind| {
        locations
            .iter()
            .find(|l| l.kind == kind)
            .map(|l| l.name.clone())
    };
    let missing = |what: &str| Error::Protocol {
        call: "HrRRestoreGetDatabaseLocations",
        reason: format!("the list has no {what} entry"),
    };
    let database = location(BftKind::NTDS_DATABASE);
    let log_dir = location(BftKind::LOG_DIR).ok_or_else(|| missing("BFT_LOG_DIR"))?;
    let checkpoint_dir =
        location(BftKind::CHECKPOINT_DIR).ok_or_else(|| missing("BFT_CHECKPOINT_DIR"))?;
    let mut copies = Vec::with_capacity(manifest.files.len());
    let mut rstmap = Vec::new();
    let mut generations = Vec::new();
    for entry in &manifest.files {
        let relative = safe_relative(&entry.path)
            .ok_or_else(|| Error::bad_set(dir, "file path leaves the directory"))?;
        let name = entry.server_name();
        let server_target = match entry.bft_kind() {
            BftKind::NTDS_DATABASE => {
                let target = database
                    .clone()
                    .ok_or_else(|| missing("BFT_NTDS_DATABASE"))?;
                rstmap.push((entry.unc.clone(), target.clone()));
                target
            }
            BftKind::LOG => {
                generations.extend(log_generation(name));
                join_server(&log_dir, name)
            }
            // Patch files, and any file of a kind this model does not place, go beside the
            // checkpoint.
            _ => join_server(&checkpoint_dir, name),
        };
        let local_target = map.local(&server_target).ok_or_else(|| {
            Error::bad_set(
                dir,
                format!("no local path for server path {server_target:?}: add a path map rule"),
            )
        })?;
        copies.push(PlannedCopy {
            source: dir.join(relative),
            server_target,
            local_target,
            entry: entry.clone(),
        });
    }
    Ok(RestorePlan {
        copies,
        database: database.unwrap_or_default(),
        log_dir,
        checkpoint_dir,
        rstmap,
        gen_low: generations.iter().copied().min().unwrap_or(0),
        gen_high: generations.iter().copied().max().unwrap_or(0),
    })
}

/// Copies every file of `plan` to its local target, checking size and SHA-256 against the
/// manifest while copying; each file is written under a temporary name, fsynced and renamed.
///
/// # Errors
/// [`Error::Io`] for a failed read, write or rename; [`Error::Mismatch`] when a source does not
/// match the manifest (its target is then not created).
pub fn copy_plan(plan: &RestorePlan, progress: &mut dyn Progress) -> Result<u64, Error> {
    let mut total = 0_u64;
    for copy in &plan.copies {
        progress.start_file(&copy.entry.path, copy.entry.size);
        total = total.saturating_add(copy_one(copy, progress)?);
        progress.finish_file();
    }
    Ok(total)
}

fn copy_one(copy: &PlannedCopy, progress: &mut dyn Progress) -> Result<u64, Error> {
    let target = &copy.local_target;
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(Error::io(parent))?;
    }
    let mut tmp_name = target.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".dsbackup-tmp");
    let tmp = target.with_file_name(tmp_name);
    let result = (|| {
        let mut source = File::open(&copy.source).map_err(Error::io(&copy.source))?;
        let mut out = File::create(&tmp).map_err(Error::io(&tmp))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0_u8; 1 << 20];
        let mut size = 0_u64;
        loop {
            let n = source.read(&mut buf).map_err(Error::io(&copy.source))?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            hasher.update(chunk);
            out.write_all(chunk).map_err(Error::io(&tmp))?;
            let n = u64::try_from(n).unwrap_or(u64::MAX);
            size = size.saturating_add(n);
            progress.advance(n);
        }
        if size != copy.entry.size || hex::encode(hasher.finalize()) != copy.entry.sha256 {
            return Err(Error::Mismatch {
                failed: 1,
                total: 1,
            });
        }
        out.sync_all().map_err(Error::io(&tmp))?;
        Ok(size)
    })();
    match result {
        Ok(size) => {
            fs::rename(&tmp, target).map_err(Error::io(target))?;
            Ok(size)
        }
        Err(error) => {
            let _ = fs::remove_file(&tmp);
            Err(error)
        }
    }
}

/// The generation of an ESE log name: `edb0000A.log` is 10; `edb.log` (the current log) and
/// other names have none.
pub fn log_generation(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    let stem = lower.strip_suffix(".log")?;
    let digits = stem.get(3..).filter(|d| !d.is_empty() && d.len() <= 8)?;
    u32::from_str_radix(digits, 16).ok()
}

/// `dir` + separator + `name`, in the server's path syntax.
fn join_server(dir: &str, name: &str) -> String {
    let sep = if dir.contains('\\') { '\\' } else { '/' };
    if dir.ends_with(['\\', '/']) {
        format!("{dir}{name}")
    } else {
        format!("{dir}{sep}{name}")
    }
}

/// `\` as `/`, repeated separators kept.
fn normalize(path: &str) -> String {
    path.replace('\\', "/")
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoProgress;
    use crate::dir::BackupDirWriter;
    use crate::manifest::BackupType;

    #[test]
    fn path_maps_take_the_longest_prefix_and_refuse_escapes() {
        let map = PathMap::new()
            .parse_rule(r"\\DC1\C$=/mnt/dc1")
            .unwrap()
            .parse_rule(r"\\dc1\c$\Windows\NTDS=/mnt/ntds")
            .unwrap();
        assert_eq!(
            map.local(r"\\dc1\C$\Windows\NTDS\ntds.dit"),
            Some(PathBuf::from("/mnt/ntds/ntds.dit"))
        );
        assert_eq!(
            map.local(r"\\dc1\C$\Temp\x"),
            Some(PathBuf::from("/mnt/dc1/Temp/x"))
        );
        assert_eq!(map.local(r"\\dc1\C$"), Some(PathBuf::from("/mnt/dc1")));
        assert_eq!(map.local(r"\\dc1\C$x\y"), None);
        assert_eq!(map.local(r"\\dc1\C$\..\etc"), None);
        assert_eq!(map.local(r"\\dc2\D$\x"), None);
        assert_eq!(map.local("/srv/x"), Some(PathBuf::from("/srv/x")));
        assert_eq!(map.local("/srv/../etc"), None);
        assert!(PathMap::new().parse_rule("no-equals").is_err());
    }

    #[test]
    fn log_generations_come_from_ese_names() {
        assert_eq!(log_generation("edb0000A.log"), Some(10));
        assert_eq!(log_generation("EDB00001.LOG"), Some(1));
        assert_eq!(log_generation("edb.log"), None);
        assert_eq!(log_generation("ntds.pat"), None);
    }

    fn set(dir: &Path) -> Manifest {
        let mut writer = BackupDirWriter::create(dir).unwrap();
        for (kind, unc, data) in [
            (
                BftKind::NTDS_DATABASE,
                r"\\dc\C$\NTDS\ntds.dit",
                &b"database"[..],
            ),
            (BftKind::LOG, r"\\dc\C$\NTDS\edb00003.log", b"log three"),
            (BftKind::LOG, r"\\dc\C$\NTDS\edb00002.log", b"log two"),
            (BftKind::PATCH_FILE, r"\\dc\C$\NTDS\ntds.pat", b"patch"),
        ] {
            let mut sink = writer.create_file(kind, unc).unwrap();
            sink.write(data).unwrap();
            writer.add(sink.finish().unwrap());
        }
        writer.write_token(&[1; 16]).unwrap();
        writer.commit("dc", BackupType::Full, 0).unwrap()
    }

    fn locations(root: &Path) -> Vec<NameEntry> {
        let root = root.display();
        vec![
            NameEntry::new(BftKind::NTDS_DATABASE, format!("{root}/db/ntds.dit")),
            NameEntry::new(BftKind::LOG_DIR, format!("{root}/logs")),
            NameEntry::new(BftKind::CHECKPOINT_DIR, format!("{root}/chk/")),
        ]
    }

    #[test]
    fn files_go_where_the_locations_say() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        let manifest = set(&dir);
        let target = tmp.path().join("dc");
        let plan = plan_restore(&dir, &manifest, &locations(&target), &PathMap::new()).unwrap();
        assert_eq!((plan.gen_low, plan.gen_high), (2, 3));
        assert_eq!(
            plan.rstmap,
            [(
                r"\\dc\C$\NTDS\ntds.dit".to_owned(),
                format!("{}/db/ntds.dit", target.display())
            )]
        );
        assert_eq!(copy_plan(&plan, &mut NoProgress).unwrap(), 29);
        assert_eq!(fs::read(target.join("db/ntds.dit")).unwrap(), b"database");
        assert_eq!(
            fs::read(target.join("logs/edb00002.log")).unwrap(),
            b"log two"
        );
        assert_eq!(fs::read(target.join("chk/ntds.pat")).unwrap(), b"patch");
        let leftovers: Vec<_> = crate::verify::walk(&target)
            .unwrap()
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with("tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_damaged_source_is_not_copied() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        let manifest = set(&dir);
        fs::write(dir.join("ntds/ntds.dit"), b"DATABASE").unwrap();
        let target = tmp.path().join("dc");
        let plan = plan_restore(&dir, &manifest, &locations(&target), &PathMap::new()).unwrap();
        assert!(matches!(
            copy_plan(&plan, &mut NoProgress),
            Err(Error::Mismatch { .. })
        ));
        assert!(!target.join("db/ntds.dit").exists());
        assert!(!target.join("db/ntds.dit.dsbackup-tmp").exists());
    }

    #[test]
    fn missing_locations_and_unmapped_paths_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        let manifest = set(&dir);
        let mut partial = locations(tmp.path());
        partial.retain(|l| l.kind != BftKind::LOG_DIR);
        assert!(matches!(
            plan_restore(&dir, &manifest, &partial, &PathMap::new()),
            Err(Error::Protocol { .. })
        ));
        let unc = vec![
            NameEntry::new(BftKind::NTDS_DATABASE, r"\\dc\C$\NTDS\ntds.dit"),
            NameEntry::new(BftKind::LOG_DIR, r"\\dc\C$\NTDS"),
            NameEntry::new(BftKind::CHECKPOINT_DIR, r"\\dc\C$\NTDS"),
        ];
        assert!(matches!(
            plan_restore(&dir, &manifest, &unc, &PathMap::new()),
            Err(Error::BadSet { .. })
        ));
        let map = PathMap::new().with_rule(r"\\dc\C$", tmp.path().join("c"));
        let plan = plan_restore(&dir, &manifest, &unc, &map).unwrap();
        assert_eq!(plan.copies[1].server_target, r"\\dc\C$\NTDS\edb00003.log");
        assert_eq!(
            plan.copies[1].local_target,
            tmp.path().join("c/NTDS/edb00003.log")
        );
    }
}
