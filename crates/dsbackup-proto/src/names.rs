//! The file-name lists of `HrRBackupGetAttachmentInformation`, `HrRBackupGetBackupLogs` and
//! `HrRRestoreGetDatabaseLocations`.
//!
//! A list is a run of UTF-16 strings, each a BFT character (what the file is) followed by a UNC
//! path and a NUL, ended by one more NUL:
//!
//! ```text
//!  0x0044 \\dc1\C$\Windows\NTDS\ntds.dit 0x0000  0x0021 \\dc1\...\edb.log 0x0000  0x0000
//!  (BFT_NTDS_DATABASE + path + NUL)               (BFT_LOG + path + NUL)          (end)
//! ```
//!
//! An empty list is two NULs; a parser also accepts a single NUL or no units at all.

use crate::ndr::{NdrError, string_from_units};
use crate::wire_enum::{known_values, named_debug};

/// The BFT character at the start of a list entry (`ntdsbcli.h`).
///
/// Unknown characters are kept with their raw value (and classify as `BFT_UNKNOWN`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BftKind(pub u16);

known_values! {
    BftKind, name: "The `BFT_*` name of a known character.";
    /// `BFT_UNKNOWN`.
    UNKNOWN = 0x0F => "BFT_UNKNOWN",
    /// `BFT_LOG`: a transaction log file.
    LOG = 0x21 => "BFT_LOG",
    /// `BFT_PATCH_FILE`: a database patch file.
    PATCH_FILE = 0x25 => "BFT_PATCH_FILE",
    /// `BFT_NTDS_DATABASE`: the directory database (`ntds.dit`).
    NTDS_DATABASE = 0x44 => "BFT_NTDS_DATABASE",
    /// `BFT_LOG_DIR`: the log directory (restore locations).
    LOG_DIR = 0x82 => "BFT_LOG_DIR",
    /// `BFT_CHECKPOINT_DIR`: the checkpoint directory (restore locations).
    CHECKPOINT_DIR = 0x83 => "BFT_CHECKPOINT_DIR",
}

impl BftKind {
    /// The classification: the kind itself when known, [`BftKind::UNKNOWN`] otherwise.
    pub const fn classify(self) -> Self {
        match self.name() {
            Some(_) => self,
            None => Self::UNKNOWN,
        }
    }
}

named_debug!(BftKind, "BFT_UNKNOWN({:#06x})");

/// One entry of a name list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct NameEntry {
    /// What the file is.
    pub kind: BftKind,
    /// The UNC path (or directory), without the BFT character.
    pub name: String,
}

impl NameEntry {
    /// An entry.
    pub fn new(kind: BftKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

/// Parses a list of UTF-16 code units (the NULs included, as `*pcwcNames` counts them).
///
/// # Errors
/// [`NdrError::MissingNul`] when the list or an entry is not terminated;
/// [`NdrError::InvalidUtf16`] for a path that is not valid UTF-16;
/// [`NdrError::TrailingBytes`] for units after the terminating NUL.
pub fn parse_name_list(units: &[u16]) -> Result<Vec<NameEntry>, NdrError> {
    const WHAT: &str = "name list";
    let mut entries = Vec::new();
    let mut rest = units;
    loop {
        match rest {
            [] if entries.is_empty() => return Ok(entries),
            [] => return Err(NdrError::MissingNul { what: WHAT }),
            [0] | [0, 0] if entries.is_empty() => return Ok(entries),
            [0] => return Ok(entries),
            [0, tail @ ..] => {
                return Err(NdrError::TrailingBytes {
                    what: WHAT,
                    count: tail.len().saturating_mul(2),
                });
            }
            [kind, tail @ ..] => {
                let end = tail
                    .iter()
                    .position(|&unit| unit == 0)
                    .ok_or(NdrError::MissingNul { what: WHAT })?;
                let (name, after) = tail.split_at(end.saturating_add(1));
                entries.push(NameEntry {
                    kind: BftKind(*kind),
                    name: string_from_units(name, WHAT)?,
                });
                rest = after;
            }
        }
    }
}

/// Builds the UTF-16 list of `entries`; an empty list is two NULs.
///
/// A name holding a NUL would end its entry early: such names are the caller's mistake and are
/// cut at the NUL.
pub fn build_name_list(entries: &[NameEntry]) -> Vec<u16> {
    if entries.is_empty() {
        return vec![0, 0];
    }
    let mut units = Vec::new();
    for entry in entries {
        units.push(entry.kind.0);
        units.extend(entry.name.encode_utf16().take_while(|&unit| unit != 0));
        units.push(0);
    }
    units.push(0);
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str) -> Vec<u16> {
        text.encode_utf16().collect()
    }

    #[test]
    fn builds_and_parses_a_list() {
        let entries = vec![
            NameEntry::new(BftKind::NTDS_DATABASE, r"\\dc1\C$\Windows\NTDS\ntds.dit"),
            NameEntry::new(BftKind::LOG, r"\\dc1\C$\Windows\NTDS\edb.log"),
        ];
        let units = build_name_list(&entries);
        let mut expected = vec![0x44];
        expected.extend(utf16(r"\\dc1\C$\Windows\NTDS\ntds.dit"));
        expected.extend([0, 0x21]);
        expected.extend(utf16(r"\\dc1\C$\Windows\NTDS\edb.log"));
        expected.extend([0, 0]);
        assert_eq!(units, expected);
        assert_eq!(parse_name_list(&units).unwrap(), entries);
    }

    #[test]
    fn empty_list_is_two_nuls_and_one_nul_or_nothing_is_accepted() {
        assert_eq!(build_name_list(&[]), vec![0, 0]);
        for units in [&[][..], &[0], &[0, 0]] {
            assert_eq!(parse_name_list(units).unwrap(), vec![]);
        }
    }

    #[test]
    fn unknown_bft_characters_are_kept() {
        let units = [0x99, u16::from(b'x'), 0, 0];
        let entries = parse_name_list(&units).unwrap();
        assert_eq!(entries[0].kind, BftKind(0x99));
        assert_eq!(entries[0].kind.classify(), BftKind::UNKNOWN);
        assert_eq!(format!("{:?}", entries[0].kind), "BFT_UNKNOWN(0x0099)");
        assert_eq!(build_name_list(&entries), units);
    }

    #[test]
    fn unterminated_lists_and_bad_utf16_are_refused() {
        assert!(matches!(
            parse_name_list(&[0x21, u16::from(b'a')]),
            Err(NdrError::MissingNul { .. })
        ));
        assert!(matches!(
            parse_name_list(&[0x21, u16::from(b'a'), 0]),
            Err(NdrError::MissingNul { .. })
        ));
        assert!(matches!(
            parse_name_list(&[0x21, 0xD800, 0, 0]),
            Err(NdrError::InvalidUtf16 { .. })
        ));
        assert!(matches!(
            parse_name_list(&[0x21, u16::from(b'a'), 0, 0, 0x21]),
            Err(NdrError::TrailingBytes { count: 2, .. })
        ));
    }
}
