//! Interface and transfer-syntax identifiers: `p_syntax_id_t` of [C706 §12.6.3.1] and the
//! bind-time feature negotiation of [MS-RPCE §3.3.1.5.3].
//!
//! ```text
//!  0                              16               18               20
//! +------------------------------+----------------+----------------+
//! |         if_uuid              | if_version: major (low 16 bits), minor (high 16 bits) |
//! +------------------------------+----------------+----------------+
//! ```
//!
//! `if_version` is one `u32` in the PDU's byte order: a little-endian peer writes the major
//! version first, a big-endian one the minor version first.
//!
//! [C706 §12.6.3.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
//! [MS-RPCE §3.3.1.5.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use core::fmt;

use bytes::BytesMut;

use crate::codec::{PutDrep, Reader};
use crate::drep::DataRep;
use crate::error::DecodeError;
use crate::uuid::Uuid;

/// An abstract (interface) or transfer syntax: UUID and version ([C706 §12.6.3.1] `p_syntax_id_t`).
///
/// [C706 §12.6.3.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SyntaxId {
    /// `if_uuid`.
    pub uuid: Uuid,
    /// Major version: the low 16 bits of `if_version`.
    pub version: u16,
    /// Minor version: the high 16 bits of `if_version`.
    pub version_minor: u16,
}

impl SyntaxId {
    /// Encoded length: 16 /* if_uuid */ + 4 /* if_version */.
    pub const LEN: usize = 16 + 4;

    /// NDR 2.0 transfer syntax, `8a885d04-1ceb-11c9-9fe8-08002b104860` v2.0 ([C706 §14]).
    ///
    /// [C706 §14]: https://pubs.opengroup.org/onlinepubs/9629399/chap14.htm
    pub const NDR: Self = Self::new(
        Uuid::from_str_const("8a885d04-1ceb-11c9-9fe8-08002b104860"),
        2,
        0,
    );
    /// NDR64 transfer syntax, `71710533-beba-4937-8319-b5dbef9ccc36` v1.0 ([MS-RPCE §2.2.5]).
    ///
    /// [MS-RPCE §2.2.5]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    pub const NDR64: Self = Self::new(
        Uuid::from_str_const("71710533-beba-4937-8319-b5dbef9ccc36"),
        1,
        0,
    );

    /// A syntax from its UUID and version.
    pub const fn new(uuid: Uuid, version: u16, version_minor: u16) -> Self {
        Self {
            uuid,
            version,
            version_minor,
        }
    }

    /// `if_version` as the `u32` on the wire.
    pub const fn if_version(self) -> u32 {
        // Widening casts: u16 -> u32 never truncates.
        (self.version as u32) | ((self.version_minor as u32) << 16)
    }

    /// The syntax with `if_version` given as the wire `u32`.
    pub const fn from_if_version(uuid: Uuid, if_version: u32) -> Self {
        Self {
            uuid,
            version: (if_version & 0xffff) as u16,
            version_minor: (if_version >> 16) as u16,
        }
    }

    /// The bind-time feature negotiation features this syntax proposes, if it is one
    /// ([MS-RPCE §3.3.1.5.3]): `6cb71c2c-9812-4540-` followed by the bitmask in little-endian
    /// order in the last eight bytes, version 1.0.
    ///
    /// [MS-RPCE §3.3.1.5.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    pub fn bind_time_features(self) -> Option<BindTimeFeatures> {
        let (prefix, mask) = self.uuid.0.split_first_chunk::<8>()?;
        if *prefix != BTFN_PREFIX || self.version != 1 || self.version_minor != 0 {
            return None;
        }
        let &[low, high, ref rest @ ..] = mask else {
            return None;
        };
        if rest.iter().any(|&b| b != 0) {
            return None;
        }
        Some(BindTimeFeatures::from_bits_retain(u16::from_le_bytes([
            low, high,
        ])))
    }

    /// The bind-time feature negotiation syntax proposing `features` ([MS-RPCE §3.3.1.5.3]).
    ///
    /// [MS-RPCE §3.3.1.5.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    pub const fn bind_time_feature_negotiation(features: BindTimeFeatures) -> Self {
        let [low, high] = features.bits().to_le_bytes();
        let [a, b, c, d, e, f, g, h] = BTFN_PREFIX;
        Self::new(
            Uuid([a, b, c, d, e, f, g, h, low, high, 0, 0, 0, 0, 0, 0]),
            1,
            0,
        )
    }

    pub(crate) fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        let uuid = reader.uuid()?;
        let if_version = reader.u32()?;
        Ok(Self::from_if_version(uuid, if_version))
    }

    pub(crate) fn encode(self, drep: DataRep, dst: &mut BytesMut) {
        dst.put_uuid_drep(drep, self.uuid);
        dst.put_u32_drep(drep, self.if_version());
    }
}

impl fmt::Debug for SyntaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}.{}", self.uuid, self.version, self.version_minor)?;
        if *self == Self::NDR {
            f.write_str(" (NDR)")?;
        } else if *self == Self::NDR64 {
            f.write_str(" (NDR64)")?;
        } else if let Some(features) = self.bind_time_features() {
            write!(f, " (bind time features {features:?})")?;
        }
        Ok(())
    }
}

impl fmt::Display for SyntaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

bitflags::bitflags! {
    /// The bind-time feature negotiation bitmask ([MS-RPCE §2.2.2.14]): carried in the UUID of
    /// the proposed transfer syntax, and answered in the `reason` field of a `negotiate_ack`
    /// result.
    ///
    /// [MS-RPCE §2.2.2.14]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct BindTimeFeatures: u16 {
        /// SecurityContextMultiplexingSupported.
        const SECURITY_CONTEXT_MULTIPLEXING = 0x0001;
        /// KeepConnectionOnOrphanSupported.
        const KEEP_CONNECTION_ON_ORPHAN = 0x0002;
    }
}

/// First eight bytes of every bind-time feature negotiation UUID, `6cb71c2c-9812-4540`.
const BTFN_PREFIX: [u8; 8] = [0x6c, 0xb7, 0x1c, 0x2c, 0x98, 0x12, 0x45, 0x40];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndr_syntax_encodes_as_on_the_wire() {
        let mut out = BytesMut::new();
        SyntaxId::NDR.encode(DataRep::LITTLE_ENDIAN, &mut out);
        assert_eq!(
            out[..],
            [
                0x04, 0x5d, 0x88, 0x8a, // time_low 8a885d04
                0xeb, 0x1c, // time_mid 1ceb
                0xc9, 0x11, // time_hi_and_version 11c9
                0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60, // clock_seq, node
                0x02, 0x00, 0x00, 0x00, // if_version: major 2, minor 0
            ]
        );
        let mut reader = Reader::new(out.freeze(), DataRep::LITTLE_ENDIAN, "test", 0);
        assert_eq!(SyntaxId::decode(&mut reader), Ok(SyntaxId::NDR));
    }

    #[test]
    fn big_endian_version_puts_minor_first() {
        let syntax = SyntaxId::new(Uuid::NIL, 3, 1);
        let mut out = BytesMut::new();
        syntax.encode(DataRep::BIG_ENDIAN, &mut out);
        assert_eq!(out[16..], [0x00, 0x01, 0x00, 0x03]); // minor 1, major 3
        let mut reader = Reader::new(out.freeze(), DataRep::BIG_ENDIAN, "test", 0);
        assert_eq!(SyntaxId::decode(&mut reader), Ok(syntax));
    }

    #[test]
    fn bind_time_feature_negotiation_uuid_carries_the_bitmask() {
        let both = BindTimeFeatures::SECURITY_CONTEXT_MULTIPLEXING
            | BindTimeFeatures::KEEP_CONNECTION_ON_ORPHAN;
        let syntax = SyntaxId::bind_time_feature_negotiation(both);
        assert_eq!(
            syntax.uuid.to_string(),
            "6cb71c2c-9812-4540-0300-000000000000"
        );
        assert_eq!(syntax.bind_time_features(), Some(both));
        assert_eq!(SyntaxId::NDR.bind_time_features(), None);
    }
}
