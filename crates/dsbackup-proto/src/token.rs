//! The expiry token of a backup set: 16 opaque bytes to the client, handed back to
//! `HrRRestorePrepare` so the server can refuse a backup older than its tombstone lifetime.
//!
//! This project's model (the real layout is not public; see `spec/dsbackup.idl`), little-endian:
//!
//! ```text
//!  0        4                        8                                 16
//!  +--------+------------------------+---------------------------------+
//!  | version| tombstone_lifetime_days| backup_time (FILETIME, u64)     |
//!  +--------+------------------------+---------------------------------+
//! ```
//!
//! No clock is read here: the current time comes in as a FILETIME.

use crate::error::DecodeError;

/// 100 ns intervals in a day.
const FILETIME_PER_DAY: u64 = 24 * 60 * 60 * 10_000_000;

/// A decoded expiry token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ExpiryToken {
    /// The server's tombstone lifetime when the backup was taken, in days.
    pub tombstone_lifetime_days: u32,
    /// When the backup was taken: FILETIME, 100 ns intervals since 1601-01-01 UTC.
    pub backup_time: u64,
}

impl ExpiryToken {
    /// Encoded length.
    pub const LEN: usize = 4 /* version */ + 4 /* tombstone_lifetime_days */ + 8 /* backup_time */;
    /// The only version this model knows.
    pub const VERSION: u32 = 1;

    /// The 16 bytes of the token.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0; Self::LEN];
        let (version, rest) = out.split_at_mut(4);
        let (days, time) = rest.split_at_mut(4);
        version.copy_from_slice(&Self::VERSION.to_le_bytes());
        days.copy_from_slice(&self.tombstone_lifetime_days.to_le_bytes());
        time.copy_from_slice(&self.backup_time.to_le_bytes());
        out
    }

    /// Decodes a token.
    ///
    /// # Errors
    /// [`DecodeError::InvalidField`] when `bytes` is not 16 bytes long or the version is not 1
    /// (a server answers `hrUnknownExpiryTokenFormat` to both).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let Ok(bytes) = <[u8; Self::LEN]>::try_from(bytes) else {
            return Err(invalid("length", "an expiry token is 16 bytes"));
        };
        let [
            v0,
            v1,
            v2,
            v3,
            d0,
            d1,
            d2,
            d3,
            t0,
            t1,
            t2,
            t3,
            t4,
            t5,
            t6,
            t7,
        ] = bytes;
        if u32::from_le_bytes([v0, v1, v2, v3]) != Self::VERSION {
            return Err(invalid("version", "unknown expiry token version"));
        }
        Ok(Self {
            tombstone_lifetime_days: u32::from_le_bytes([d0, d1, d2, d3]),
            backup_time: u64::from_le_bytes([t0, t1, t2, t3, t4, t5, t6, t7]),
        })
    }

    /// When the backup expires: `backup_time` plus the tombstone lifetime (FILETIME).
    pub fn expires_at(&self) -> u64 {
        self.backup_time.saturating_add(
            u64::from(self.tombstone_lifetime_days).saturating_mul(FILETIME_PER_DAY),
        )
    }

    /// Whether the backup has expired at `now` (a FILETIME).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at() < now
    }
}

fn invalid(field: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::InvalidField {
        what: "expiry token",
        field,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: [u8; 16] = [
        0x01, 0x00, 0x00, 0x00, // version 1
        0xB4, 0x00, 0x00, 0x00, // tombstone_lifetime_days 180
        0x00, 0x80, 0x3E, 0xD5, 0xDE, 0xB1, 0x9D, 0x01, // backup_time 0x019DB1DED53E8000
    ];

    #[test]
    fn decodes_and_encodes_the_layout() {
        let token = ExpiryToken::decode(&TOKEN).unwrap();
        assert_eq!(token.tombstone_lifetime_days, 180);
        assert_eq!(token.backup_time, 0x019D_B1DE_D53E_8000);
        assert_eq!(token.encode(), TOKEN);
    }

    #[test]
    fn expiry_is_backup_time_plus_the_lifetime() {
        let token = ExpiryToken {
            tombstone_lifetime_days: 2,
            backup_time: 1_000,
        };
        assert_eq!(token.expires_at(), 1_000 + 2 * 864_000_000_000);
        assert!(!token.is_expired(token.expires_at()));
        assert!(token.is_expired(token.expires_at() + 1));
        let far = ExpiryToken {
            tombstone_lifetime_days: u32::MAX,
            backup_time: u64::MAX - 5,
        };
        assert_eq!(far.expires_at(), u64::MAX);
    }

    #[test]
    fn wrong_length_and_version_are_refused() {
        assert!(matches!(
            ExpiryToken::decode(&TOKEN[..15]),
            Err(DecodeError::InvalidField {
                field: "length",
                ..
            })
        ));
        let mut v2 = TOKEN;
        v2[0] = 2;
        assert!(matches!(
            ExpiryToken::decode(&v2),
            Err(DecodeError::InvalidField {
                field: "version",
                ..
            })
        ));
    }
}
