//! The 32-bit status every ad_backup and ad_restore operation returns as its last out value.
//!
//! A status is 0 (`hrNone`) on success, an `hr*` code of the public `ntdsbmsg.h` header (the
//! table in `spec/ntdsbmsg.tsv`), or a plain Win32 code where the public API documents one
//! (`ERROR_ACCESS_DENIED`, `ERROR_INVALID_PARAMETER`, ...). A Win32 code may also travel in its
//! `HRESULT_FROM_WIN32` form `0x8007xxxx`; [`Status`] compares both forms equal.
//!
//! A status is not an RPC fault: a fault PDU only reports failures of the RPC layer itself.

use core::fmt;
use core::hash::{Hash, Hasher};

use crate::error::EncodeError;
use crate::ndr::{Ndr, NdrError, NdrReader, NdrWriter};

mod table;

/// A status code: an `hr*` code, a Win32 code or its `HRESULT_FROM_WIN32` form.
///
/// Equality and hashing treat `0x8007xxxx` and the Win32 code `xxxx` as the same status, so
/// `Status::ERROR_ACCESS_DENIED == Status(0x8007_0005)`.
#[derive(Clone, Copy, Default)]
pub struct Status(pub u32);

impl Status {
    /// `hrNone`, `ERROR_SUCCESS`: success.
    pub const SUCCESS: Self = Self(0);

    /// `ERROR_FILE_NOT_FOUND`.
    pub const ERROR_FILE_NOT_FOUND: Self = Self(2);
    /// `ERROR_PATH_NOT_FOUND`.
    pub const ERROR_PATH_NOT_FOUND: Self = Self(3);
    /// `ERROR_ACCESS_DENIED`: the caller lacks the backup or restore privilege, or the server's
    /// state forbids the call.
    pub const ERROR_ACCESS_DENIED: Self = Self(5);
    /// `ERROR_INVALID_HANDLE`.
    pub const ERROR_INVALID_HANDLE: Self = Self(6);
    /// `ERROR_NOT_ENOUGH_MEMORY`.
    pub const ERROR_NOT_ENOUGH_MEMORY: Self = Self(8);
    /// `ERROR_HANDLE_EOF`: read past the end of a file.
    pub const ERROR_HANDLE_EOF: Self = Self(38);
    /// `ERROR_NOT_SUPPORTED`.
    pub const ERROR_NOT_SUPPORTED: Self = Self(50);
    /// `ERROR_INVALID_PARAMETER`: a flag, a size or a name the server refuses.
    pub const ERROR_INVALID_PARAMETER: Self = Self(87);
    /// `ERROR_CALL_NOT_IMPLEMENTED`.
    pub const ERROR_CALL_NOT_IMPLEMENTED: Self = Self(120);
    /// `ERROR_INSUFFICIENT_BUFFER`.
    pub const ERROR_INSUFFICIENT_BUFFER: Self = Self(122);
    /// `ERROR_MORE_DATA`.
    pub const ERROR_MORE_DATA: Self = Self(234);
    /// `ERROR_NO_MORE_ITEMS`.
    pub const ERROR_NO_MORE_ITEMS: Self = Self(259);
    /// `ERROR_PRIVILEGE_NOT_HELD`.
    pub const ERROR_PRIVILEGE_NOT_HELD: Self = Self(1314);
    /// `ERROR_LOGON_FAILURE`.
    pub const ERROR_LOGON_FAILURE: Self = Self(1326);
    /// `RPC_S_INVALID_BINDING`: the binding handle is not valid.
    pub const RPC_S_INVALID_BINDING: Self = Self(1702);
    /// `RPC_S_ALREADY_LISTENING` (the header's `hrAlreadyListening`).
    pub const RPC_S_ALREADY_LISTENING: Self = Self(1713);
    /// `RPC_S_NOT_LISTENING`.
    pub const RPC_S_NOT_LISTENING: Self = Self(1715);
    /// `RPC_S_UNKNOWN_IF`: the server does not offer the interface.
    pub const RPC_S_UNKNOWN_IF: Self = Self(1717);
    /// `RPC_S_SERVER_UNAVAILABLE`.
    pub const RPC_S_SERVER_UNAVAILABLE: Self = Self(1722);
    /// `RPC_S_SERVER_TOO_BUSY`.
    pub const RPC_S_SERVER_TOO_BUSY: Self = Self(1723);
    /// `RPC_S_CALL_FAILED`.
    pub const RPC_S_CALL_FAILED: Self = Self(1726);
    /// `RPC_S_PROCNUM_OUT_OF_RANGE`.
    pub const RPC_S_PROCNUM_OUT_OF_RANGE: Self = Self(1745);
    /// `EPT_S_NOT_REGISTERED` (Win32 form of the endpoint mapper's "no more entries").
    pub const EPT_S_NOT_REGISTERED: Self = Self(1753);

    /// `hrInvalidParam`.
    pub const HR_INVALID_PARAM: Self = Self(0xC7FF_0001);
    /// `hrError`.
    pub const HR_ERROR: Self = Self(0xC7FF_0002);
    /// `hrInvalidHandle`: no such session, or no file open.
    pub const HR_INVALID_HANDLE: Self = Self(0xC7FF_0003);
    /// `hrRestoreInProgress`.
    pub const HR_RESTORE_IN_PROGRESS: Self = Self(0xC7FF_0004);
    /// `hrAlreadyOpen`: a file of the backup set is already open.
    pub const HR_ALREADY_OPEN: Self = Self(0xC7FF_0005);
    /// `hrLogFileNotFound`.
    pub const HR_LOG_FILE_NOT_FOUND: Self = Self(0xC7FF_000A);
    /// `hrMissingExpiryToken`.
    pub const HR_MISSING_EXPIRY_TOKEN: Self = Self(0xC7FF_000F);
    /// `hrUnknownExpiryTokenFormat`.
    pub const HR_UNKNOWN_EXPIRY_TOKEN_FORMAT: Self = Self(0xC7FF_0010);
    /// `hrContentsExpired`.
    pub const HR_CONTENTS_EXPIRED: Self = Self(0xC7FF_0011);
    /// `hrBackupInProgress`: another backup session is active.
    pub const HR_BACKUP_IN_PROGRESS: Self = Self(0xC800_01F9);

    /// The `HRESULT_FROM_WIN32` form of a Win32 code (`0x8007xxxx`); 0 stays 0, and a value
    /// that is not a Win32 code (above `0xFFFF`) is returned unchanged.
    pub const fn to_hresult(self) -> Self {
        if self.0 == 0 || self.0 > 0xFFFF {
            self
        } else {
            Self(0x8007_0000 | self.0)
        }
    }

    /// The Win32 code behind an `HRESULT_FROM_WIN32` value; other values unchanged.
    pub const fn normalized(self) -> u32 {
        if self.0 >> 16 == 0x8007 {
            self.0 & 0xFFFF
        } else {
            self.0
        }
    }

    /// Whether the status is success (`hrNone`, `ERROR_SUCCESS`).
    pub const fn is_success(self) -> bool {
        self.normalized() == 0
    }

    /// The name: the `hr*` name of `ntdsbmsg.h`, else the Win32 / RPC name of a known code
    /// (in either form).
    pub fn name(self) -> Option<&'static str> {
        table::STATUS_TABLE
            .iter()
            .find(|&&(_, value)| value == self.0)
            .map(|&(name, _)| name)
            .or_else(|| win32_name(self.normalized()))
            .or_else(|| dce_name(self.0))
    }

    /// A short explanation, in this project's words, for the codes a backup client meets most.
    pub fn message(self) -> Option<&'static str> {
        MESSAGES
            .iter()
            .find(|(status, _)| *status == self)
            .map(|&(_, message)| message)
    }
}

/// Explanations of the common codes (compared with `==`, so both Win32 forms match).
const MESSAGES: &[(Status, &str)] = &[
    (Status::SUCCESS, "success"),
    (
        Status::ERROR_ACCESS_DENIED,
        "access denied (backup or restore privilege missing?)",
    ),
    (
        Status::ERROR_INVALID_PARAMETER,
        "the server refused a parameter",
    ),
    (
        Status::ERROR_NOT_ENOUGH_MEMORY,
        "the server ran out of memory",
    ),
    (Status::ERROR_HANDLE_EOF, "end of file"),
    (
        Status::RPC_S_INVALID_BINDING,
        "the binding handle is not valid",
    ),
    (
        Status::HR_INVALID_HANDLE,
        "no such session, or no file open",
    ),
    (
        Status::HR_ALREADY_OPEN,
        "a file of the backup set is already open",
    ),
    (
        Status::HR_BACKUP_IN_PROGRESS,
        "another backup is in progress on the server",
    ),
    (
        Status::HR_RESTORE_IN_PROGRESS,
        "a restore is in progress on the server",
    ),
    (
        Status::HR_LOG_FILE_NOT_FOUND,
        "a log file the backup needs is gone",
    ),
    (
        Status::HR_MISSING_EXPIRY_TOKEN,
        "the restore session has no expiry token",
    ),
    (
        Status::HR_UNKNOWN_EXPIRY_TOKEN_FORMAT,
        "the expiry token is not in a known format",
    ),
    (
        Status::HR_CONTENTS_EXPIRED,
        "the backup is older than the tombstone lifetime",
    ),
];

impl PartialEq for Status {
    fn eq(&self, other: &Self) -> bool {
        self.normalized() == other.normalized()
    }
}

impl Eq for Status {}

impl Hash for Status {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Consistent with `eq`: both forms of a Win32 code hash alike.
        self.normalized().hash(state);
    }
}

impl From<u32> for Status {
    fn from(value: u32) -> Self {
        Self(value)
    }
}

impl From<i32> for Status {
    fn from(value: i32) -> Self {
        Self(u32::from_ne_bytes(value.to_ne_bytes()))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({:#010x})", self.0)?,
            None => write!(f, "status {:#010x}", self.0)?,
        }
        match self.message() {
            Some(message) => write!(f, ": {message}"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Status({name}, {:#010x})", self.0),
            None => write!(f, "Status({:#010x})", self.0),
        }
    }
}

/// The `long` status on the wire.
impl Ndr for Status {
    const MIN_LEN: usize = 4;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        w.u32(self.0);
        Ok(())
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        r.u32("status").map(Self)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Status", 2)?;
        s.serialize_field("value", &self.0)?;
        s.serialize_field("name", &self.name())?;
        s.end()
    }
}

fn win32_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0 => "ERROR_SUCCESS",
        2 => "ERROR_FILE_NOT_FOUND",
        3 => "ERROR_PATH_NOT_FOUND",
        5 => "ERROR_ACCESS_DENIED",
        6 => "ERROR_INVALID_HANDLE",
        8 => "ERROR_NOT_ENOUGH_MEMORY",
        38 => "ERROR_HANDLE_EOF",
        50 => "ERROR_NOT_SUPPORTED",
        87 => "ERROR_INVALID_PARAMETER",
        120 => "ERROR_CALL_NOT_IMPLEMENTED",
        122 => "ERROR_INSUFFICIENT_BUFFER",
        234 => "ERROR_MORE_DATA",
        259 => "ERROR_NO_MORE_ITEMS",
        1314 => "ERROR_PRIVILEGE_NOT_HELD",
        1326 => "ERROR_LOGON_FAILURE",
        1702 => "RPC_S_INVALID_BINDING",
        1713 => "RPC_S_ALREADY_LISTENING",
        1715 => "RPC_S_NOT_LISTENING",
        1717 => "RPC_S_UNKNOWN_IF",
        1722 => "RPC_S_SERVER_UNAVAILABLE",
        1723 => "RPC_S_SERVER_TOO_BUSY",
        1726 => "RPC_S_CALL_FAILED",
        1745 => "RPC_S_PROCNUM_OUT_OF_RANGE",
        1753 => "EPT_S_NOT_REGISTERED",
        _ => return None,
    })
}

/// DCE status codes of the endpoint mapper ([C706 Appendix O] `ept_s_*`, `rpc_s_*`).
///
/// [C706 Appendix O]: https://pubs.opengroup.org/onlinepubs/9629399/apdxo.htm
fn dce_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0x16C9_A012 => "rpc_s_no_memory",
        0x16C9_A0D6 => "ept_s_not_registered",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn table_equals_the_tsv() {
        let tsv = include_str!("../../../spec/ntdsbmsg.tsv");
        let rows: Vec<(&str, u32)> = tsv
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let mut fields = line.split('\t');
                let name = fields.next().unwrap();
                let hex = fields.next().unwrap().trim_start_matches("0x");
                (name, u32::from_str_radix(hex, 16).unwrap())
            })
            .collect();
        assert_eq!(rows.len(), 187);
        assert_eq!(table::STATUS_TABLE, rows.as_slice());
    }

    #[test]
    fn names_come_from_the_table_first_then_win32() {
        assert_eq!(Status(0).name(), Some("hrNone"));
        assert_eq!(Status(0xC7FF_0005).name(), Some("hrAlreadyOpen"));
        assert_eq!(Status(1713).name(), Some("hrAlreadyListening"));
        assert_eq!(Status(87).name(), Some("ERROR_INVALID_PARAMETER"));
        assert_eq!(Status(0x8007_0057).name(), Some("ERROR_INVALID_PARAMETER"));
        assert_eq!(Status(1702).name(), Some("RPC_S_INVALID_BINDING"));
        assert_eq!(Status(0x1234_5678).name(), None);
        assert_eq!(Status(0x16C9_A0D6).name(), Some("ept_s_not_registered"));
    }

    #[test]
    fn win32_and_hresult_forms_are_equal_and_hash_alike() {
        assert_eq!(Status::ERROR_ACCESS_DENIED, Status(0x8007_0005));
        assert_eq!(Status::ERROR_ACCESS_DENIED.to_hresult().0, 0x8007_0005);
        assert_ne!(Status::ERROR_ACCESS_DENIED, Status(0xC007_0005));
        assert_ne!(Status(5), Status(6));
        let set: HashSet<Status> = [Status(87), Status(0x8007_0057)].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert!(Status(0).is_success());
        assert!(!Status(5).is_success());
        assert!(
            !Status(0x8800_00C8).is_success(),
            "warnings are not success"
        );
    }

    #[test]
    fn display_and_debug_show_the_name() {
        assert_eq!(
            Status::HR_ALREADY_OPEN.to_string(),
            "hrAlreadyOpen (0xc7ff0005): a file of the backup set is already open"
        );
        assert_eq!(
            format!("{:?}", Status(5)),
            "Status(ERROR_ACCESS_DENIED, 0x00000005)"
        );
        assert_eq!(Status(0xDEAD_BEEF).to_string(), "status 0xdeadbeef");
    }

    #[test]
    fn named_consts_match_the_table() {
        for (status, name) in [
            (Status::HR_INVALID_HANDLE, "hrInvalidHandle"),
            (Status::HR_BACKUP_IN_PROGRESS, "hrBackupInProgress"),
            (Status::HR_CONTENTS_EXPIRED, "hrContentsExpired"),
            (
                Status::HR_UNKNOWN_EXPIRY_TOKEN_FORMAT,
                "hrUnknownExpiryTokenFormat",
            ),
        ] {
            assert_eq!(status.name(), Some(name));
        }
    }
}
