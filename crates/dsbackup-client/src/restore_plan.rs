//! Where each file of a backup set goes on a restore, and the copy itself.
//!
//! `HrRRestoreGetDatabaseLocations` names, in server paths, the database file
//! (`BFT_NTDS_DATABASE`), the log directory (`BFT_LOG_DIR`, for every `BFT_LOG` file) and the
//! checkpoint directory (`BFT_CHECKPOINT_DIR`, for every `BFT_PATCH_FILE`). The server is not
//! trusted with local paths: only an operator's [`PathMap`] rule (a server path prefix and the
//! local directory it is mounted at) turns a server path into a local one, and the rest of the
//! path is then resolved beneath that directory, component by component, without following a
//! symbolic link and without `..` (see `beneath.rs`). A location no rule covers is refused.
//!
//! The copy writes each file under a temporary name created new (mode 0600) in its target
//! directory, checks size and SHA-256 against the manifest while copying, fsyncs, and renames
//! it to its name, never over an existing file unless [`RestorePlan::overwrite`] says so.

use std::ffi::{OsStr, OsString};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use dsbackup_proto::{BftKind, NameEntry};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::beneath::{Beneath, Kind, Refusal};
use crate::error::Error;
use crate::manifest::{FileEntry, Manifest, safe_relative};
use crate::progress::Progress;
use crate::writeback::WriteBehind;

/// Turns server paths into local paths: a list of `PREFIX=LOCAL_DIR` rules, the longest
/// matching prefix first (compared case-insensitively, `\` and `/` alike, at a component
/// boundary). Nothing else maps: a server path that looks like a local one (`/etc/...`) is
/// refused like any other that no rule covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathMap {
    rules: Vec<(String, PathBuf)>,
}

impl PathMap {
    /// A map with no rules: nothing maps.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule: server paths under `prefix` go beneath `local`.
    pub fn with_rule(mut self, prefix: &str, local: impl Into<PathBuf>) -> Self {
        self.rules.push((normalize(prefix), local.into()));
        self.rules
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        self
    }

    /// Parses `PREFIX=LOCAL_DIR` (as the command line gives it).
    ///
    /// # Errors
    /// [`Error::Misuse`] when there is no `=`, or either side is empty.
    pub fn parse_rule(self, rule: &str) -> Result<Self, Error> {
        let (prefix, local) = rule
            .split_once('=')
            .filter(|(prefix, local)| !prefix.is_empty() && !local.is_empty())
            .ok_or(Error::Misuse(
                "a --map rule is SERVER_PREFIX=LOCAL_DIR, e.g. '\\\\DC1\\C$=/mnt/dc1-c'",
            ))?;
        Ok(self.with_rule(prefix, local))
    }

    /// Whether the map has no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The local directory and the path beneath it of `server_path`.
    ///
    /// # Errors
    /// [`Error::Target`] when no rule covers the path (the message names `--map`), or when the
    /// rest of the path after the rule's prefix is not plain names (`..`, an empty name).
    pub fn resolve(&self, server_path: &str) -> Result<(PathBuf, PathBuf), Error> {
        let normalized = normalize(server_path);
        let refuse = |reason: String| Error::Target {
            server_path: server_path.to_owned(),
            reason,
        };
        for (prefix, local) in &self.rules {
            let Some(rest) = strip_prefix_ci(&normalized, prefix) else {
                continue;
            };
            // The prefix must end at a component boundary: `C$` does not cover `C$x`.
            if !(rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/')) {
                continue;
            }
            let rest = rest.trim_start_matches('/');
            return safe_relative(rest)
                .map(|relative| (local.clone(), relative))
                .ok_or_else(|| {
                    refuse(format!(
                        "leaves the mapped directory {} (the part after the --map prefix, \
                         {rest:?}, must be plain names: no `..`, no empty name)",
                        local.display()
                    ))
                });
        }
        Err(refuse(
            "no --map rule covers it: add --map 'SERVER_PREFIX=LOCAL_DIR' naming where that \
             server path is mounted on this host"
                .to_owned(),
        ))
    }
}

/// One file to copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedCopy {
    /// The file in the backup set, relative to it.
    pub source: PathBuf,
    /// Where the server wants it, in its own path syntax.
    pub server_target: String,
    /// The mapped local directory (the `--map` rule's) the target is resolved beneath.
    pub local_root: PathBuf,
    /// The target's path beneath `local_root`.
    pub local_relative: PathBuf,
    /// `local_root` joined with `local_relative` (for messages).
    pub local_target: PathBuf,
    /// Whether something exists at the target now (replaced only with
    /// [`RestorePlan::overwrite`]).
    pub exists: bool,
    /// Its manifest entry.
    pub entry: FileEntry,
}

/// What a restore does: the copies, and the paths `HrRRestoreRegister` names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RestorePlan {
    /// The backup set.
    pub set: PathBuf,
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
    /// Existing files at the targets are replaced (`--overwrite`); otherwise the restore
    /// refuses before copying anything.
    pub overwrite: bool,
}

/// Plans the restore of `manifest` (a set in `dir`) to the server's `locations`, every target
/// mapped by `map` and looked at (not followed) beneath its mapped directory.
///
/// # Errors
/// [`Error::Protocol`] when a location the set needs is missing from the list;
/// [`Error::BadSet`] when a path leaves the set; [`Error::Target`] when a location has no
/// `--map` rule, leaves its mapped directory, passes through a symbolic link, or (without
/// `overwrite`) names an existing file; [`Error::Io`] when a mapped directory cannot be
/// opened.
pub fn plan_restore(
    dir: &Path,
    manifest: &Manifest,
    locations: &[NameEntry],
    map: &PathMap,
    overwrite: bool,
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
        let source = safe_relative(&entry.path)
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
        let (local_root, local_relative) = map.resolve(&server_target)?;
        let exists = target_exists(&server_target, &local_root, &local_relative)?;
        if exists && !overwrite {
            return Err(Error::Target {
                server_path: server_target,
                reason: format!(
                    "{} exists; --overwrite replaces it",
                    local_root.join(&local_relative).display()
                ),
            });
        }
        copies.push(PlannedCopy {
            source,
            server_target,
            local_target: local_root.join(&local_relative),
            local_root,
            local_relative,
            exists,
            entry: entry.clone(),
        });
    }
    Ok(RestorePlan {
        set: dir.to_owned(),
        copies,
        database: database.unwrap_or_default(),
        log_dir,
        checkpoint_dir,
        rstmap,
        gen_low: generations.iter().copied().min().unwrap_or(0),
        gen_high: generations.iter().copied().max().unwrap_or(0),
        overwrite,
    })
}

/// Whether something is at `relative` beneath `root`; a symbolic link on the way is refused.
fn target_exists(server_path: &str, root: &Path, relative: &Path) -> Result<bool, Error> {
    let refuse = |refusal: Refusal| match refusal {
        Refusal::Io(path, source) => Error::Io { path, source },
        refusal => Error::Target {
            server_path: server_path.to_owned(),
            reason: refusal.to_string(),
        },
    };
    let mapped = Beneath::open(root).map_err(refuse)?;
    let (Some(parent), Some(name)) = (relative.parent(), relative.file_name()) else {
        return Err(Error::Target {
            server_path: server_path.to_owned(),
            reason: "names the mapped directory itself, not a file in it".to_owned(),
        });
    };
    match mapped.dir(parent, false) {
        Ok(dir) => match dir.kind(name).map_err(refuse)? {
            Kind::Absent => Ok(false),
            Kind::Symlink => Err(Error::Target {
                server_path: server_path.to_owned(),
                reason: format!("{} is a symbolic link", dir.path().join(name).display()),
            }),
            Kind::Dir | Kind::Other(_) => Err(Error::Target {
                server_path: server_path.to_owned(),
                reason: format!(
                    "{} exists and is not a regular file",
                    dir.path().join(name).display()
                ),
            }),
            Kind::File => Ok(true),
        },
        // Directories that do not exist yet are made by the copy.
        Err(refusal) if refusal.is_not_found() => Ok(false),
        Err(refusal) => Err(refuse(refusal)),
    }
}

/// Copies every file of `plan` to its local target, checking size and SHA-256 against the
/// manifest while copying; each file is written under a temporary name, fsynced and renamed.
///
/// # Errors
/// [`Error::Io`] for a failed read, write or rename; [`Error::Mismatch`] when a source does not
/// match the manifest (its target is then not created); [`Error::Target`] when a target
/// appeared, or a link did, since the plan was made.
pub fn copy_plan(plan: &RestorePlan, progress: &mut dyn Progress) -> Result<u64, Error> {
    let set = Beneath::open(&plan.set).map_err(|refusal| refusal.into_error(&plan.set))?;
    let mut total = 0_u64;
    for copy in &plan.copies {
        progress.start_file(&copy.entry.path, copy.entry.size);
        total = total.saturating_add(copy_one(&set, copy, plan.overwrite, progress)?);
        progress.finish_file();
    }
    Ok(total)
}

fn copy_one(
    set: &Beneath,
    copy: &PlannedCopy,
    overwrite: bool,
    progress: &mut dyn Progress,
) -> Result<u64, Error> {
    let refuse = |refusal: Refusal| match refusal {
        Refusal::Io(path, source) => Error::Io { path, source },
        refusal => Error::Target {
            server_path: copy.server_target.clone(),
            reason: refusal.to_string(),
        },
    };
    let (Some(parent), Some(name)) = (
        copy.local_relative.parent(),
        copy.local_relative.file_name(),
    ) else {
        return Err(Error::Target {
            server_path: copy.server_target.clone(),
            reason: "names the mapped directory itself, not a file in it".to_owned(),
        });
    };
    let dir = Beneath::open(&copy.local_root)
        .and_then(|root| root.dir(parent, true))
        .map_err(refuse)?;
    let mut source = set
        .open_file(&copy.source)
        .map_err(|refusal| refusal.into_error(set.path()))?;
    let tmp = tmp_name(name);
    let mut out = dir.create_new(&tmp).map_err(refuse)?;
    let result = (|| {
        let mut hasher = Sha256::new();
        let mut buf = vec![0_u8; 1 << 20];
        let mut size = 0_u64;
        let mut behind = WriteBehind::new();
        loop {
            let n = source
                .read(&mut buf)
                .map_err(Error::io(set.path().join(&copy.source)))?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            hasher.update(chunk);
            out.write_all(chunk)
                .map_err(Error::io(dir.path().join(&tmp)))?;
            let n = u64::try_from(n).unwrap_or(u64::MAX);
            size = size.saturating_add(n);
            behind.wrote(&out, size);
            progress.advance(n);
        }
        if size != copy.entry.size || hex::encode(hasher.finalize()) != copy.entry.sha256 {
            return Err(Error::Mismatch {
                failed: 1,
                total: 1,
            });
        }
        out.sync_all().map_err(Error::io(dir.path().join(&tmp)))?;
        drop(out);
        dir.rename(&tmp, name, overwrite)
            .map_err(|refusal| match refusal {
                Refusal::Io(path, source) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                    Error::Target {
                        server_path: copy.server_target.clone(),
                        reason: format!("{} exists; --overwrite replaces it", path.display()),
                    }
                }
                refusal => refuse(refusal),
            })?;
        dir.sync().map_err(refuse)?;
        Ok(size)
    })();
    if result.is_err() {
        let _ = dir.remove(&tmp);
    }
    result
}

/// `.NAME.dsbackup-tmp`: the temporary name a restored file is written under.
fn tmp_name(name: &OsStr) -> OsString {
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(".dsbackup-tmp");
    tmp
}

/// The generation of an ESE log name: `edb0000A.log` is 10; `edb.log` (the current log) and
/// other names have none.
pub(crate) fn log_generation(name: &str) -> Option<u32> {
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

    const TOKEN: [u8; 16] = [1, 0, 0, 0, 180, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];

    fn local(map: &PathMap, server: &str) -> Option<PathBuf> {
        map.resolve(server)
            .ok()
            .map(|(root, relative)| root.join(relative))
    }

    #[test]
    fn path_maps_take_the_longest_prefix_and_refuse_escapes() {
        let map = PathMap::new()
            .parse_rule(r"\\DC1\C$=/mnt/dc1")
            .unwrap()
            .parse_rule(r"\\dc1\c$\Windows\NTDS=/mnt/ntds")
            .unwrap();
        assert_eq!(
            local(&map, r"\\dc1\C$\Windows\NTDS\ntds.dit"),
            Some(PathBuf::from("/mnt/ntds/ntds.dit"))
        );
        assert_eq!(
            local(&map, r"\\dc1\C$\Temp\x"),
            Some(PathBuf::from("/mnt/dc1/Temp/x"))
        );
        assert_eq!(local(&map, r"\\dc1\C$x\y"), None);
        assert_eq!(local(&map, r"\\dc1\C$\..\etc"), None);
        assert_eq!(local(&map, r"\\dc2\D$\x"), None);
        // A server path that looks local maps only through a rule, like any other.
        assert_eq!(local(&map, "/srv/x"), None);
        assert_eq!(local(&map, "/etc/passwd"), None);
        let unmapped = map.resolve("/tmp/victim/ntds.dit").unwrap_err().to_string();
        assert!(unmapped.contains("--map"), "{unmapped}");
        let escape = map.resolve(r"\\dc1\C$\a\..\..\x").unwrap_err().to_string();
        assert!(escape.contains("leaves the mapped directory"), "{escape}");
        assert!(PathMap::new().parse_rule("no-equals").is_err());
        assert!(PathMap::new().parse_rule("=/x").is_err());
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
        writer.write_token(&TOKEN).unwrap();
        writer.commit("dc", BackupType::Full, 0).unwrap()
    }

    fn locations() -> Vec<NameEntry> {
        vec![
            NameEntry::new(BftKind::NTDS_DATABASE, r"\\DC\C$\NTDS\db\ntds.dit"),
            NameEntry::new(BftKind::LOG_DIR, r"\\DC\C$\NTDS\logs"),
            NameEntry::new(BftKind::CHECKPOINT_DIR, r"\\DC\C$\NTDS\chk\"),
        ]
    }

    fn map(target: &Path) -> PathMap {
        std::fs::create_dir_all(target).unwrap();
        PathMap::new().with_rule(r"\\dc\C$\NTDS", target)
    }

    #[test]
    fn files_go_where_the_mapped_locations_say() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        let manifest = set(&dir);
        let target = tmp.path().join("dc");
        let plan = plan_restore(&dir, &manifest, &locations(), &map(&target), false).unwrap();
        assert_eq!((plan.gen_low, plan.gen_high), (2, 3));
        assert_eq!(
            plan.rstmap,
            [(
                r"\\dc\C$\NTDS\ntds.dit".to_owned(),
                r"\\DC\C$\NTDS\db\ntds.dit".to_owned()
            )]
        );
        assert_eq!(copy_plan(&plan, &mut NoProgress).unwrap(), 29);
        assert_eq!(
            std::fs::read(target.join("db/ntds.dit")).unwrap(),
            b"database"
        );
        assert_eq!(
            std::fs::read(target.join("logs/edb00002.log")).unwrap(),
            b"log two"
        );
        assert_eq!(
            std::fs::read(target.join("chk/ntds.pat")).unwrap(),
            b"patch"
        );
        let leftovers: Vec<_> = crate::verify::walk(&target)
            .unwrap()
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with("tmp"))
            .collect();
        assert!(leftovers.is_empty());
        // A second restore finds the files there: refused without --overwrite, and the
        // files stay as they are; with it, they are replaced.
        std::fs::write(target.join("db/ntds.dit"), b"newer").unwrap();
        let error = plan_restore(&dir, &manifest, &locations(), &map(&target), false).unwrap_err();
        assert!(error.to_string().contains("--overwrite"), "{error}");
        assert_eq!(std::fs::read(target.join("db/ntds.dit")).unwrap(), b"newer");
        let plan = plan_restore(&dir, &manifest, &locations(), &map(&target), true).unwrap();
        assert!(plan.copies.iter().all(|c| c.exists));
        copy_plan(&plan, &mut NoProgress).unwrap();
        assert_eq!(
            std::fs::read(target.join("db/ntds.dit")).unwrap(),
            b"database"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_link_in_the_mapped_tree_is_refused_and_nothing_is_written_through_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        let manifest = set(&dir);
        let target = tmp.path().join("dc");
        let victim = tmp.path().join("victim");
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::create_dir_all(&target).unwrap();
        std::os::unix::fs::symlink(&victim, target.join("logs")).unwrap();
        let error = plan_restore(&dir, &manifest, &locations(), &map(&target), true).unwrap_err();
        assert!(matches!(error, Error::Target { .. }), "{error:?}");
        assert!(error.to_string().contains("symbolic link"), "{error}");
        // Planned before the link appeared: the copy refuses it too.
        std::fs::remove_file(target.join("logs")).unwrap();
        let plan = plan_restore(&dir, &manifest, &locations(), &map(&target), true).unwrap();
        std::os::unix::fs::symlink(&victim, target.join("logs")).unwrap();
        let error = copy_plan(&plan, &mut NoProgress).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert!(std::fs::read_dir(&victim).unwrap().next().is_none());
    }

    #[test]
    fn a_damaged_source_is_not_copied() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        let manifest = set(&dir);
        std::fs::write(dir.join("ntds/ntds.dit"), b"DATABASE").unwrap();
        let target = tmp.path().join("dc");
        let plan = plan_restore(&dir, &manifest, &locations(), &map(&target), false).unwrap();
        assert!(matches!(
            copy_plan(&plan, &mut NoProgress),
            Err(Error::Mismatch { .. })
        ));
        assert!(!target.join("db/ntds.dit").exists());
        assert!(!target.join("db/.ntds.dit.dsbackup-tmp").exists());
    }

    #[test]
    fn missing_locations_and_unmapped_paths_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("set");
        let manifest = set(&dir);
        let mut partial = locations();
        partial.retain(|l| l.kind != BftKind::LOG_DIR);
        assert!(matches!(
            plan_restore(&dir, &manifest, &partial, &PathMap::new(), false),
            Err(Error::Protocol { .. })
        ));
        assert!(matches!(
            plan_restore(&dir, &manifest, &locations(), &PathMap::new(), false),
            Err(Error::Target { .. })
        ));
        let target = tmp.path().join("c");
        std::fs::create_dir_all(&target).unwrap();
        let map = PathMap::new().with_rule(r"\\dc\C$", &target);
        let plan = plan_restore(&dir, &manifest, &locations(), &map, false).unwrap();
        assert_eq!(
            plan.copies[1].server_target,
            r"\\DC\C$\NTDS\logs\edb00003.log"
        );
        assert_eq!(
            plan.copies[1].local_target,
            target.join("NTDS/logs/edb00003.log")
        );
    }
}
