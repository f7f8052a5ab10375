//! The NTDS directory the mock serves: which files it holds, how they are named on disk and in
//! the UNC names of the backup set.
//!
//! ```text
//!  <root>/ntds.dit        the database                      BFT_NTDS_DATABASE
//!  <root>/ntds.pat        the patch file, when present      BFT_PATCH_FILE
//!  <root>/edb00001.log    transaction log, generation 1     BFT_LOG
//!  <root>/edb0000A.log    generation 10 (five hex digits, as ESE names them)
//!  <root>/edb.chk         the checkpoint: the first generation not yet committed
//! ```
//!
//! The checkpoint file is this project's model (the real one is an ESE page), 16 bytes:
//!
//! ```text
//!  0                  8                    12              16
//!  +------------------+--------------------+---------------+
//!  | magic "DSBMCHK1" | generation (u32 LE)| reserved (0)  |
//!  +------------------+--------------------+---------------+
//! ```
//!
//! Logs below the checkpoint generation are *committed*: their changes are in the database.
//! The highest generation present is the *current* log, the one the directory writes to.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// File name of the database.
pub const DATABASE_FILE: &str = "ntds.dit";
/// File name of the patch file.
pub const PATCH_FILE: &str = "ntds.pat";
/// File name of the checkpoint.
pub const CHECKPOINT_FILE: &str = "edb.chk";
/// Magic at the start of this project's checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"DSBMCHK1";
/// The highest log generation ESE names with five hex digits (and `HrRRestoreRegister` accepts).
pub const MAX_GENERATION: u32 = 0xF_FFFF;

/// The file name of log generation `generation`: `edb` + five upper-case hex digits + `.log`.
pub fn log_file_name(generation: u32) -> String {
    format!("edb{generation:05X}.log")
}

/// The generation of a log file name (`edbXXXXX.log`, hex digits in either case).
pub fn parse_log_file_name(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    let digits = lower.strip_prefix("edb")?.strip_suffix(".log")?;
    if digits.len() != 5 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// The 16 bytes of a checkpoint file naming `generation`.
pub fn encode_checkpoint(generation: u32) -> [u8; 16] {
    let mut out = [0; 16];
    let (magic, rest) = out.split_at_mut(8);
    magic.copy_from_slice(&CHECKPOINT_MAGIC);
    let (gen_bytes, _reserved) = rest.split_at_mut(4);
    gen_bytes.copy_from_slice(&generation.to_le_bytes());
    out
}

/// The generation a checkpoint file names, if it is one.
pub fn decode_checkpoint(bytes: &[u8]) -> Option<u32> {
    let rest = bytes.strip_prefix(&CHECKPOINT_MAGIC)?;
    let gen_bytes: [u8; 4] = rest.get(..4)?.try_into().ok()?;
    Some(u32::from_le_bytes(gen_bytes))
}

/// Writes the checkpoint file of `dir` naming `generation`.
///
/// # Errors
/// The I/O error of the write.
pub fn write_checkpoint(dir: &Path, generation: u32) -> io::Result<()> {
    fs::write(dir.join(CHECKPOINT_FILE), encode_checkpoint(generation))
}

/// What the NTDS directory holds right now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The database, when present.
    pub(crate) database: Option<PathBuf>,
    /// The patch file, when present.
    pub(crate) patch: Option<PathBuf>,
    /// The log files by generation.
    pub(crate) logs: BTreeMap<u32, PathBuf>,
    /// The checkpoint generation, clamped to the current generation; without a readable
    /// checkpoint file, the lowest generation present (nothing is committed).
    pub(crate) checkpoint: Option<u32>,
}

impl Layout {
    /// Scans `root` (not recursively; names the mock does not know are ignored).
    pub(crate) fn scan(root: &Path) -> io::Result<Self> {
        let mut layout = Self::default();
        let mut checkpoint = None;
        for entry in fs::read_dir(root)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.eq_ignore_ascii_case(DATABASE_FILE) {
                layout.database = Some(entry.path());
            } else if name.eq_ignore_ascii_case(PATCH_FILE) {
                layout.patch = Some(entry.path());
            } else if name.eq_ignore_ascii_case(CHECKPOINT_FILE) {
                checkpoint = fs::read(entry.path())
                    .ok()
                    .and_then(|bytes| decode_checkpoint(&bytes));
            } else if let Some(generation) = parse_log_file_name(name) {
                layout.logs.insert(generation, entry.path());
            }
        }
        let lowest = layout.logs.keys().next().copied();
        let current = layout.logs.keys().next_back().copied();
        layout.checkpoint = match (checkpoint, current) {
            (Some(chk), Some(cur)) => Some(chk.min(cur)),
            (None, _) => lowest,
            (Some(chk), None) => Some(chk),
        };
        Ok(layout)
    }

    /// The current (highest) log generation.
    pub(crate) fn current(&self) -> Option<u32> {
        self.logs.keys().next_back().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_are_five_hex_digits() {
        assert_eq!(log_file_name(1), "edb00001.log");
        assert_eq!(log_file_name(10), "edb0000A.log");
        assert_eq!(log_file_name(MAX_GENERATION), "edbFFFFF.log");
        assert_eq!(parse_log_file_name("edb0000a.log"), Some(10));
        assert_eq!(parse_log_file_name("EDB0000A.LOG"), Some(10));
        for bad in [
            "edb.log",
            "edb0001.log",
            "edb000001.log",
            "edb0000G.log",
            "edb+0001.log",
        ] {
            assert_eq!(parse_log_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn checkpoint_round_trips_and_rejects_other_bytes() {
        let bytes = encode_checkpoint(0x1234);
        assert_eq!(
            bytes,
            [
                b'D', b'S', b'B', b'M', b'C', b'H', b'K', b'1', // magic
                0x34, 0x12, 0x00, 0x00, // generation 0x1234
                0x00, 0x00, 0x00, 0x00, // reserved
            ]
        );
        assert_eq!(decode_checkpoint(&bytes), Some(0x1234));
        assert_eq!(decode_checkpoint(&bytes[..10]), None);
        assert_eq!(decode_checkpoint(b"XXXXXXXX\x01\0\0\0"), None);
    }

    #[test]
    fn scan_finds_files_and_clamps_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        for generation in [3, 4, 5] {
            fs::write(dir.path().join(log_file_name(generation)), b"log").unwrap();
        }
        fs::write(dir.path().join("NTDS.DIT"), b"db").unwrap();
        fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let layout = Layout::scan(dir.path()).unwrap();
        assert!(layout.database.is_some());
        assert!(layout.patch.is_none());
        assert_eq!(layout.logs.keys().copied().collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(
            layout.checkpoint,
            Some(3),
            "no checkpoint file: nothing committed"
        );
        write_checkpoint(dir.path(), 4).unwrap();
        assert_eq!(Layout::scan(dir.path()).unwrap().checkpoint, Some(4));
        write_checkpoint(dir.path(), 99).unwrap();
        assert_eq!(Layout::scan(dir.path()).unwrap().checkpoint, Some(5));
        assert_eq!(Layout::scan(dir.path()).unwrap().current(), Some(5));
    }
}
