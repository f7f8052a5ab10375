//! The A and W forms: strings in from C, name lists out to C.
//!
//! A strings are UTF-8 (what `char` holds on Linux), W strings UTF-16 (`WCHAR` is `char16_t`).
//! A name list is what Windows' library returns: for each entry its BFT character then its path
//! and a NUL, one more NUL at the end, its size in bytes (two per character in the W form). In
//! the A form the BFT character is one byte (the BFT values are below 256).

use std::ffi::{CStr, c_char};

use dsbackup_client::{BftKind, NameEntry};

use crate::handles::Buffer;
use crate::hresult::{Hresult, codes};

/// Longest string taken from C, in characters (longer: `ERROR_INVALID_PARAMETER`).
const MAX_STRING: usize = 32 * 1024;

/// One of the two character widths.
pub(crate) trait Chars {
    /// `CHAR` or `WCHAR`.
    type Unit: Copy;

    /// The string at `text`.
    ///
    /// # Safety
    /// `text` is NULL or points to a NUL-terminated string (or to at least [`MAX_STRING`]
    /// characters) that stays valid and unchanged during the call.
    unsafe fn string(text: *const Self::Unit) -> Result<String, Hresult>;

    /// The name list of `entries` in this width.
    fn list(entries: &[NameEntry]) -> Result<Buffer, Hresult>;
}

/// The A form (`char`, UTF-8).
#[derive(Debug)]
pub(crate) enum Narrow {}

/// The W form (`WCHAR`, UTF-16).
#[derive(Debug)]
pub(crate) enum Wide {}

impl Chars for Narrow {
    type Unit = c_char;

    unsafe fn string(text: *const c_char) -> Result<String, Hresult> {
        if text.is_null() {
            return Err(codes::ERROR_INVALID_PARAMETER);
        }
        // SAFETY: not NULL, and NUL-terminated as the caller guarantees.
        let text = unsafe { CStr::from_ptr(text) };
        if text.count_bytes() > MAX_STRING {
            return Err(codes::ERROR_INVALID_PARAMETER);
        }
        text.to_str()
            .map(str::to_owned)
            .map_err(|_| codes::ERROR_INVALID_PARAMETER)
    }

    fn list(entries: &[NameEntry]) -> Result<Buffer, Hresult> {
        let len = entries
            .iter()
            .map(|entry| entry.name.len() + 2)
            .sum::<usize>()
            + 2;
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(len)
            .map_err(|_| codes::ERROR_NOT_ENOUGH_MEMORY)?;
        for entry in entries {
            bytes.push(u8::try_from(entry.kind.0).unwrap_or_else(|_| narrow_unknown()));
            bytes.extend(entry.name.bytes().take_while(|&byte| byte != 0));
            bytes.push(0);
        }
        bytes.push(0);
        if entries.is_empty() {
            bytes.push(0);
        }
        Ok(Buffer::Bytes(bytes))
    }
}

impl Chars for Wide {
    type Unit = u16;

    unsafe fn string(text: *const u16) -> Result<String, Hresult> {
        if text.is_null() {
            return Err(codes::ERROR_INVALID_PARAMETER);
        }
        let mut units = Vec::new();
        loop {
            if units.len() > MAX_STRING {
                return Err(codes::ERROR_INVALID_PARAMETER);
            }
            // SAFETY: the string is NUL-terminated (caller's guarantee) and no NUL came yet,
            // so this unit is part of it.
            let unit = unsafe { text.add(units.len()).read_unaligned() };
            if unit == 0 {
                break;
            }
            units.push(unit);
        }
        String::from_utf16(&units).map_err(|_| codes::ERROR_INVALID_PARAMETER)
    }

    fn list(entries: &[NameEntry]) -> Result<Buffer, Hresult> {
        let len = entries
            .iter()
            .map(|entry| entry.name.len() + 2)
            .sum::<usize>()
            + 2;
        let mut units = Vec::new();
        units
            .try_reserve_exact(len)
            .map_err(|_| codes::ERROR_NOT_ENOUGH_MEMORY)?;
        units.extend(dsbackup_proto::build_name_list(entries));
        Ok(Buffer::Units(units))
    }
}

/// The A form's byte for a BFT character above 255 (none is defined): `BFT_UNKNOWN`.
fn narrow_unknown() -> u8 {
    u8::try_from(BftKind::UNKNOWN.0).unwrap_or(0x0f)
}

/// The size in bytes of a list, as `*pcbSize` reports it.
pub(crate) fn byte_size(buffer: &Buffer) -> Result<u32, Hresult> {
    let bytes = match buffer {
        Buffer::Bytes(bytes) => bytes.len(),
        Buffer::Units(units) => units.len().saturating_mul(2),
    };
    u32::try_from(bytes).map_err(|_| codes::ERROR_NOT_ENOUGH_MEMORY)
}

/// A server name as the functions take it: a leading `\\` is optional.
pub(crate) fn server_name(name: &str) -> Result<&str, Hresult> {
    let name = name.strip_prefix("\\\\").unwrap_or(name);
    if name.is_empty() || name.contains('\\') {
        return Err(codes::ERROR_INVALID_PARAMETER);
    }
    Ok(name)
}

/// A file name for `DsBackupOpenFile`: the UNC path from a list, with or without the BFT
/// character the list put in front of it.
pub(crate) fn attachment_name(name: &str) -> &str {
    let mut chars = name.chars();
    match (chars.next(), chars.as_str()) {
        (Some(first), rest) if first != '\\' && rest.starts_with("\\\\") => rest,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_carry_the_bft_character_and_end_in_two_nuls() {
        let entries = [
            NameEntry::new(BftKind::NTDS_DATABASE, r"\\DC1\C$\ntds.dit"),
            NameEntry::new(BftKind::LOG, r"\\DC1\C$\edb.log"),
        ];
        let Ok(Buffer::Bytes(bytes)) = Narrow::list(&entries) else {
            panic!("not bytes");
        };
        let mut expected = b"D\\\\DC1\\C$\\ntds.dit\0!\\\\DC1\\C$\\edb.log\0\0".to_vec();
        assert_eq!(bytes, expected);
        let buffer = Wide::list(&entries).unwrap();
        assert_eq!(byte_size(&buffer).unwrap() as usize, expected.len() * 2);
        let Buffer::Units(units) = buffer else {
            panic!("not units");
        };
        assert_eq!(units, expected.drain(..).map(u16::from).collect::<Vec<_>>());
        let Ok(Buffer::Bytes(empty)) = Narrow::list(&[]) else {
            panic!("not bytes");
        };
        assert_eq!(empty, [0, 0]);
    }

    #[test]
    fn server_names_take_an_optional_leading_double_backslash() {
        assert_eq!(server_name(r"\\dc1"), Ok("dc1"));
        assert_eq!(server_name("dc1"), Ok("dc1"));
        assert_eq!(server_name(r"\\"), Err(codes::ERROR_INVALID_PARAMETER));
        assert_eq!(
            server_name(r"\\dc1\share"),
            Err(codes::ERROR_INVALID_PARAMETER)
        );
    }

    #[test]
    fn attachment_names_lose_a_bft_character_in_front() {
        assert_eq!(attachment_name(r"D\\DC1\C$\ntds.dit"), r"\\DC1\C$\ntds.dit");
        assert_eq!(attachment_name(r"\\DC1\C$\ntds.dit"), r"\\DC1\C$\ntds.dit");
        assert_eq!(attachment_name("\u{82}\\\\DC1\\logs"), "\\\\DC1\\logs");
    }
}
