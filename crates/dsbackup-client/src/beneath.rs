//! Paths resolved beneath a directory handle, never through a symbolic link.
//!
//! A backup set holds every account's password hashes and `restore` usually runs as root, so
//! neither reading a set nor writing restored files may be steered elsewhere by a link that a
//! less privileged user (or a hostile server's name) planted. On Unix every component is opened
//! relative to the handle of the one before with `O_NOFOLLOW` (what `openat2`'s
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` does in one call), so a link swapped in between a
//! check and a use is refused too; the relative paths given here are checked to hold only
//! normal components (no `..`, no root). Files are opened with `O_NONBLOCK` and their type
//! checked on the open handle: a FIFO or a device is refused, never waited on. Elsewhere the
//! same rules are checked on the path before each use.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a path beneath a root was refused or could not be used.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// A component is a symbolic link.
    Symlink(PathBuf),
    /// The path names something else than what was asked for (`what` says what it is).
    WrongType {
        /// The path.
        path: PathBuf,
        /// What it is: "a directory", "a FIFO", ...
        what: &'static str,
    },
    /// The relative path has a component other than a plain name (`..`, a root).
    Escapes(PathBuf),
    /// The operating system's error.
    Io(PathBuf, io::Error),
}

impl Refusal {
    /// Whether the path does not exist.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, Self::Io(_, error) if error.kind() == io::ErrorKind::NotFound)
    }
}

impl Refusal {
    /// The crate's error for this refusal in the backup set `set`: the operating system's
    /// error as [`Error::Io`](crate::Error::Io), the rest as
    /// [`Error::BadSet`](crate::Error::BadSet) naming the path.
    pub(crate) fn into_error(self, set: &Path) -> crate::Error {
        match self {
            Self::Io(path, source) => crate::Error::Io { path, source },
            refusal => crate::Error::BadSet {
                path: set.to_owned(),
                reason: refusal.to_string(),
            },
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Symlink(path) => write!(f, "{} is a symbolic link", path.display()),
            Self::WrongType { path, what } => {
                write!(f, "{} is {what}, not a regular file", path.display())
            }
            Self::Escapes(path) => write!(f, "{} leaves its directory", path.display()),
            Self::Io(path, error) => write!(f, "{}: {error}", path.display()),
        }
    }
}

/// The components of `relative` if they are all plain names.
fn names(relative: &Path) -> Result<Vec<&OsStr>, Refusal> {
    relative
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(Refusal::Escapes(relative.to_owned())),
        })
        .collect()
}

/// A directory below which paths are resolved without following links.
#[derive(Debug)]
pub(crate) struct Beneath {
    path: PathBuf,
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
}

/// What a path beneath a root is, without following it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Nothing there.
    Absent,
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A FIFO, socket or device.
    Other(&'static str),
}

#[cfg(unix)]
mod imp {
    use std::ffi::OsStr;
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsFd, OwnedFd};
    use std::path::{Path, PathBuf};

    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    use rustix::io::Errno;

    use super::{Beneath, Kind, Refusal, names};

    fn kind_of(file_type: FileType) -> Kind {
        match file_type {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Other("a FIFO"),
            FileType::Socket => Kind::Other("a socket"),
            FileType::CharacterDevice => Kind::Other("a character device"),
            FileType::BlockDevice => Kind::Other("a block device"),
            FileType::Unknown => Kind::Other("of an unknown type"),
        }
    }

    fn what(kind: Kind) -> &'static str {
        match kind {
            Kind::Absent => "absent",
            Kind::File => "a regular file",
            Kind::Dir => "a directory",
            Kind::Symlink => "a symbolic link",
            Kind::Other(what) => what,
        }
    }

    /// The kind of `name` in `dir`, not following a link.
    fn kind_at(dir: impl AsFd, name: &OsStr) -> io::Result<Kind> {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(kind_of(FileType::from_raw_mode(stat.st_mode))),
            Err(Errno::NOENT) => Ok(Kind::Absent),
            Err(error) => Err(error.into()),
        }
    }

    /// The refusal for a failed open of `name` (at `path`) in `dir`: a link or another type
    /// when that is why, the operating system's error otherwise.
    fn explain(dir: impl AsFd, name: &OsStr, path: PathBuf, error: Errno) -> Refusal {
        match kind_at(dir, name) {
            Ok(Kind::Symlink) => Refusal::Symlink(path),
            Ok(kind @ (Kind::File | Kind::Other(_))) if error == Errno::NOTDIR => {
                Refusal::WrongType {
                    path,
                    what: what(kind),
                }
            }
            _ => Refusal::Io(path, error.into()),
        }
    }

    impl Beneath {
        /// The directory `path` (the caller's: it may itself be reached through links).
        pub(crate) fn open(path: &Path) -> Result<Self, Refusal> {
            let fd = rustix::fs::open(
                path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|error| Refusal::Io(path.to_owned(), error.into()))?;
            Ok(Self {
                path: path.to_owned(),
                fd,
            })
        }

        /// The directory `relative` below this one; with `create`, missing directories are
        /// made (mode 0700).
        pub(crate) fn dir(&self, relative: &Path, create: bool) -> Result<Self, Refusal> {
            let mut fd: OwnedFd = self
                .fd
                .try_clone()
                .map_err(|error| Refusal::Io(self.path.clone(), error))?;
            let mut path = self.path.clone();
            for name in names(relative)? {
                path.push(name);
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let next = match rustix::fs::openat(&fd, name, flags, Mode::empty()) {
                    Err(Errno::NOENT) if create => {
                        match rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o700)) {
                            Ok(()) | Err(Errno::EXIST) => {}
                            Err(error) => return Err(Refusal::Io(path, error.into())),
                        }
                        rustix::fs::openat(&fd, name, flags, Mode::empty())
                    }
                    other => other,
                };
                fd = next.map_err(|error| explain(&fd, name, path.clone(), error))?;
            }
            Ok(Self { path, fd })
        }

        /// The regular file `relative`, opened for reading; anything else is refused
        /// without blocking (a FIFO is not waited on).
        pub(crate) fn open_file(&self, relative: &Path) -> Result<File, Refusal> {
            let (parent, name) = super::split(relative)?;
            let dir = self.dir(parent, false)?;
            let path = dir.path.join(name);
            let fd = rustix::fs::openat(
                &dir.fd,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|error| explain(&dir.fd, name, path.clone(), error))?;
            let stat =
                rustix::fs::fstat(&fd).map_err(|error| Refusal::Io(path.clone(), error.into()))?;
            match kind_of(FileType::from_raw_mode(stat.st_mode)) {
                Kind::File => Ok(File::from(fd)),
                kind => Err(Refusal::WrongType {
                    path,
                    what: what(kind),
                }),
            }
        }

        /// What `name` in this directory is, not following a link.
        pub(crate) fn kind(&self, name: &OsStr) -> Result<Kind, Refusal> {
            kind_at(&self.fd, name).map_err(|error| Refusal::Io(self.path.join(name), error))
        }

        /// A new file `name` in this directory, mode 0600 whatever the umask, created only if
        /// nothing (not even a dangling link) has that name.
        pub(crate) fn create_new(&self, name: &OsStr) -> Result<File, Refusal> {
            let fd = rustix::fs::openat(
                &self.fd,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|error| Refusal::Io(self.path.join(name), error.into()))?;
            Ok(File::from(fd))
        }

        /// Renames `from` to `to` in this directory; without `replace`, an existing `to` is
        /// kept and the rename fails with `AlreadyExists`.
        pub(crate) fn rename(
            &self,
            from: &OsStr,
            to: &OsStr,
            replace: bool,
        ) -> Result<(), Refusal> {
            let target = self.path.join(to);
            if replace {
                return rustix::fs::renameat(&self.fd, from, &self.fd, to)
                    .map_err(|error| Refusal::Io(target, error.into()));
            }
            rename_noreplace(&self.fd, from, to).map_err(|error| Refusal::Io(target, error))
        }

        /// Removes the file `name` (not following a link).
        pub(crate) fn remove(&self, name: &OsStr) -> Result<(), Refusal> {
            rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())
                .map_err(|error| Refusal::Io(self.path.join(name), error.into()))
        }

        /// fsync of the directory, so that renames in it are durable.
        pub(crate) fn sync(&self) -> Result<(), Refusal> {
            rustix::fs::fsync(&self.fd)
                .map_err(|error| Refusal::Io(self.path.clone(), error.into()))
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn rename_noreplace(dir: &OwnedFd, from: &OsStr, to: &OsStr) -> io::Result<()> {
        match rustix::fs::renameat_with(dir, from, dir, to, rustix::fs::RenameFlags::NOREPLACE) {
            // File systems without RENAME_NOREPLACE: a hard link never replaces either.
            Err(Errno::INVAL | Errno::NOSYS) => link_then_unlink(dir, from, to),
            other => other.map_err(Into::into),
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn rename_noreplace(dir: &OwnedFd, from: &OsStr, to: &OsStr) -> io::Result<()> {
        link_then_unlink(dir, from, to)
    }

    fn link_then_unlink(dir: &OwnedFd, from: &OsStr, to: &OsStr) -> io::Result<()> {
        rustix::fs::linkat(dir, from, dir, to, AtFlags::empty())?;
        rustix::fs::unlinkat(dir, from, AtFlags::empty())?;
        Ok(())
    }
}

#[cfg(not(unix))]
mod imp {
    //! The same rules, checked on paths (no handle-relative opening here).

    use std::ffi::OsStr;
    use std::fs::{self, File};
    use std::path::Path;

    use super::{Beneath, Kind, Refusal, names};

    fn kind_of(path: &Path) -> Result<Kind, Refusal> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => Ok(Kind::Symlink),
            Ok(meta) if meta.is_dir() => Ok(Kind::Dir),
            Ok(meta) if meta.is_file() => Ok(Kind::File),
            Ok(_) => Ok(Kind::Other("not a regular file")),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Kind::Absent),
            Err(error) => Err(Refusal::Io(path.to_owned(), error)),
        }
    }

    impl Beneath {
        pub(crate) fn open(path: &Path) -> Result<Self, Refusal> {
            let meta = fs::metadata(path).map_err(|error| Refusal::Io(path.to_owned(), error))?;
            if !meta.is_dir() {
                return Err(Refusal::WrongType {
                    path: path.to_owned(),
                    what: "not a directory",
                });
            }
            Ok(Self {
                path: path.to_owned(),
            })
        }

        pub(crate) fn dir(&self, relative: &Path, create: bool) -> Result<Self, Refusal> {
            let mut path = self.path.clone();
            for name in names(relative)? {
                path.push(name);
                match kind_of(&path)? {
                    Kind::Dir => {}
                    Kind::Absent if create => {
                        fs::create_dir(&path).map_err(|error| Refusal::Io(path.clone(), error))?;
                    }
                    Kind::Symlink => return Err(Refusal::Symlink(path)),
                    Kind::Absent => {
                        return Err(Refusal::Io(path, std::io::ErrorKind::NotFound.into()));
                    }
                    Kind::File | Kind::Other(_) => {
                        return Err(Refusal::WrongType {
                            path,
                            what: "not a directory",
                        });
                    }
                }
            }
            Ok(Self { path })
        }

        pub(crate) fn open_file(&self, relative: &Path) -> Result<File, Refusal> {
            let (parent, name) = super::split(relative)?;
            let dir = self.dir(parent, false)?;
            let path = dir.path.join(name);
            match kind_of(&path)? {
                Kind::File => File::open(&path).map_err(|error| Refusal::Io(path, error)),
                Kind::Symlink => Err(Refusal::Symlink(path)),
                Kind::Absent => Err(Refusal::Io(path, std::io::ErrorKind::NotFound.into())),
                Kind::Dir => Err(Refusal::WrongType {
                    path,
                    what: "a directory",
                }),
                Kind::Other(what) => Err(Refusal::WrongType { path, what }),
            }
        }

        pub(crate) fn kind(&self, name: &OsStr) -> Result<Kind, Refusal> {
            kind_of(&self.path.join(name))
        }

        pub(crate) fn create_new(&self, name: &OsStr) -> Result<File, Refusal> {
            let path = self.path.join(name);
            File::options()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|error| Refusal::Io(path, error))
        }

        pub(crate) fn rename(
            &self,
            from: &OsStr,
            to: &OsStr,
            replace: bool,
        ) -> Result<(), Refusal> {
            let target = self.path.join(to);
            if !replace && kind_of(&target)? != Kind::Absent {
                return Err(Refusal::Io(
                    target,
                    std::io::ErrorKind::AlreadyExists.into(),
                ));
            }
            fs::rename(self.path.join(from), &target).map_err(|error| Refusal::Io(target, error))
        }

        pub(crate) fn remove(&self, name: &OsStr) -> Result<(), Refusal> {
            let path = self.path.join(name);
            fs::remove_file(&path).map_err(|error| Refusal::Io(path, error))
        }

        pub(crate) fn sync(&self) -> Result<(), Refusal> {
            Ok(())
        }
    }
}

impl Beneath {
    /// The directory's path (for messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// `relative` split into its parent and its last name (which must be a plain name).
fn split(relative: &Path) -> Result<(&Path, &OsStr), Refusal> {
    names(relative)?;
    match (relative.parent(), relative.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(Refusal::Escapes(relative.to_owned())),
    }
}

/// Opens the regular file `relative` beneath `root` for reading, refusing links and other
/// types (see the module documentation).
pub(crate) fn open_file(root: &Path, relative: &Path) -> Result<File, Refusal> {
    Beneath::open(root)?.open_file(relative)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_anywhere_on_the_path_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/file"), b"x").unwrap();
        std::fs::write(tmp.path().join("outside"), b"secret").unwrap();
        symlink(tmp.path().join("outside"), root.join("a/link")).unwrap();
        symlink(tmp.path(), root.join("dirlink")).unwrap();
        let beneath = Beneath::open(&root).unwrap();
        assert!(beneath.open_file(Path::new("a/file")).is_ok());
        assert!(matches!(
            beneath.open_file(Path::new("a/link")),
            Err(Refusal::Symlink(_))
        ));
        assert!(matches!(
            beneath.open_file(Path::new("dirlink/outside")),
            Err(Refusal::Symlink(_))
        ));
        assert!(matches!(
            beneath.dir(Path::new("dirlink/new"), true),
            Err(Refusal::Symlink(_))
        ));
        assert!(!tmp.path().join("new").exists());
        assert!(matches!(
            beneath.open_file(Path::new("../outside")),
            Err(Refusal::Escapes(_))
        ));
        assert!(matches!(
            beneath.open_file(Path::new("a")),
            Err(Refusal::WrongType { .. })
        ));
    }

    #[test]
    fn a_rename_without_replace_keeps_the_existing_file() {
        let tmp = tempfile::tempdir().unwrap();
        let beneath = Beneath::open(tmp.path()).unwrap();
        std::fs::write(tmp.path().join("old"), b"old").unwrap();
        std::fs::write(tmp.path().join("new"), b"new").unwrap();
        let error = beneath
            .rename(OsStr::new("new"), OsStr::new("old"), false)
            .unwrap_err();
        assert!(matches!(&error, Refusal::Io(_, e) if e.kind() == io::ErrorKind::AlreadyExists));
        assert_eq!(std::fs::read(tmp.path().join("old")).unwrap(), b"old");
        beneath
            .rename(OsStr::new("new"), OsStr::new("old"), true)
            .unwrap();
        assert_eq!(std::fs::read(tmp.path().join("old")).unwrap(), b"new");
    }
}
