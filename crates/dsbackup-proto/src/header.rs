//! The common header of every connection-oriented PDU ([C706 §12.6.3.1]).
//!
//! ```text
//!  0        1        2        3        4                 8        10       12               16
//! +--------+--------+--------+--------+-----------------+--------+--------+----------------+
//! |rpc_vers| minor  | PTYPE  |pfc_flgs|  packed_drep    |frag_len|auth_len|    call_id     |
//! +--------+--------+--------+--------+-----------------+--------+--------+----------------+
//! ```
//!
//! `frag_length`, `auth_length` and `call_id` are in the byte order that `packed_drep` names.
//!
//! [C706 §12.6.3.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm

use bytes::{BufMut, BytesMut};

use crate::codec::PutDrep;
use crate::drep::DataRep;
use crate::error::DecodeError;
use crate::wire_enum::{known_values, named_debug};

/// `PTYPE` of the common header ([C706 §12.6.4], [MS-RPCE §2.2.2.1]).
///
/// Connectionless types have names too, so a stray datagram is reported by name; only the
/// connection-oriented ones decode as a [`Pdu`](crate::pdu::Pdu).
///
/// [C706 §12.6.4]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
/// [MS-RPCE §2.2.2.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketType(pub u8);

known_values! {
    PacketType, name: "The spec name of a known value (`\"bind_ack\"`, `\"auth3\"`...).";
    /// request (CO and CL).
    REQUEST = 0 => "request",
    /// ping (CL only).
    PING = 1 => "ping",
    /// response (CO and CL).
    RESPONSE = 2 => "response",
    /// fault (CO and CL).
    FAULT = 3 => "fault",
    /// working (CL only).
    WORKING = 4 => "working",
    /// nocall (CL only).
    NOCALL = 5 => "nocall",
    /// reject (CL only).
    REJECT = 6 => "reject",
    /// ack (CL only).
    ACK = 7 => "ack",
    /// cl_cancel (CL only).
    CL_CANCEL = 8 => "cl_cancel",
    /// fack (CL only).
    FACK = 9 => "fack",
    /// cancel_ack (CL only).
    CANCEL_ACK = 10 => "cancel_ack",
    /// bind.
    BIND = 11 => "bind",
    /// bind_ack.
    BIND_ACK = 12 => "bind_ack",
    /// bind_nak.
    BIND_NAK = 13 => "bind_nak",
    /// alter_context.
    ALTER_CONTEXT = 14 => "alter_context",
    /// alter_context_resp.
    ALTER_CONTEXT_RESP = 15 => "alter_context_resp",
    /// rpc_auth_3 ([MS-RPCE §2.2.2.10]).
    ///
    /// [MS-RPCE §2.2.2.10]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    AUTH3 = 16 => "auth3",
    /// shutdown.
    SHUTDOWN = 17 => "shutdown",
    /// co_cancel.
    CO_CANCEL = 18 => "co_cancel",
    /// orphaned.
    ORPHANED = 19 => "orphaned",
}

impl PacketType {
    /// Whether this is one of the twelve connection-oriented PDU types.
    pub fn is_connection_oriented(self) -> bool {
        matches!(self.0, 0 | 2 | 3 | 11..=19)
    }
}

named_debug!(PacketType, "PacketType({})");

bitflags::bitflags! {
    /// `pfc_flags` of the common header ([C706 §12.6.3.1], [MS-RPCE §2.2.2.3]).
    ///
    /// [C706 §12.6.3.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
    /// [MS-RPCE §2.2.2.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PfcFlags: u8 {
        /// PFC_FIRST_FRAG: first fragment of a request or response.
        const FIRST_FRAG = 0x01;
        /// PFC_LAST_FRAG: last fragment of a request or response.
        const LAST_FRAG = 0x02;
        /// PFC_PENDING_CANCEL: a cancel was pending at the sender.
        const PENDING_CANCEL = 0x04;
        /// PFC_SUPPORT_HEADER_SIGN: the same bit in bind, alter_context and their answers
        /// ([MS-RPCE §2.2.2.3]).
        const SUPPORT_HEADER_SIGN = 0x04;
        /// PFC_RESERVED_1.
        const RESERVED_1 = 0x08;
        /// PFC_CONC_MPX: the sender supports concurrent multiplexing (bind only).
        const CONC_MPX = 0x10;
        /// PFC_DID_NOT_EXECUTE: a fault guarantees the call did not execute.
        const DID_NOT_EXECUTE = 0x20;
        /// PFC_MAYBE: `maybe` call semantics.
        const MAYBE = 0x40;
        /// PFC_OBJECT_UUID: a request carries an object UUID.
        const OBJECT_UUID = 0x80;
    }
}

impl PfcFlags {
    /// The spec names of the bits set, naming bit 0x04 as the packet type uses it.
    pub fn names(self, ptype: PacketType) -> Vec<&'static str> {
        let header_sign = matches!(
            ptype,
            PacketType::BIND
                | PacketType::BIND_ACK
                | PacketType::ALTER_CONTEXT
                | PacketType::ALTER_CONTEXT_RESP
        );
        [
            (Self::FIRST_FRAG, "PFC_FIRST_FRAG"),
            (Self::LAST_FRAG, "PFC_LAST_FRAG"),
            (
                Self::PENDING_CANCEL,
                if header_sign {
                    "PFC_SUPPORT_HEADER_SIGN"
                } else {
                    "PFC_PENDING_CANCEL"
                },
            ),
            (Self::RESERVED_1, "PFC_RESERVED_1"),
            (Self::CONC_MPX, "PFC_CONC_MPX"),
            (Self::DID_NOT_EXECUTE, "PFC_DID_NOT_EXECUTE"),
            (Self::MAYBE, "PFC_MAYBE"),
            (Self::OBJECT_UUID, "PFC_OBJECT_UUID"),
        ]
        .into_iter()
        .filter(|(flag, _)| self.contains(*flag))
        .map(|(_, name)| name)
        .collect()
    }
}

/// The 16-byte common header of a connection-oriented PDU ([C706 §12.6.3.1]).
///
/// [C706 §12.6.3.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommonHeader {
    /// `rpc_vers_minor`: 0 or 1 (the version is always 5).
    pub rpc_vers_minor: u8,
    /// `PTYPE`.
    pub ptype: PacketType,
    /// `pfc_flags`.
    pub pfc_flags: PfcFlags,
    /// `packed_drep`: the byte order of this PDU's integers and of its stub.
    pub drep: DataRep,
    /// `frag_length`: the whole fragment, header and auth verifier included.
    pub frag_length: u16,
    /// `auth_length`: length of `auth_value` (the `sec_trailer` not included).
    pub auth_length: u16,
    /// `call_id`.
    pub call_id: u32,
}

impl CommonHeader {
    /// Encoded length: 1 /* rpc_vers */ + 1 /* rpc_vers_minor */ + 1 /* PTYPE */
    /// + 1 /* pfc_flags */ + 4 /* packed_drep */ + 2 /* frag_length */ + 2 /* auth_length */
    /// + 4 /* call_id */.
    pub const LEN: usize = 1 + 1 + 1 + 1 + 4 + 2 + 2 + 4;
    /// `rpc_vers`: "The major version number ... MUST be 5" ([C706 §12.6.3.1]).
    ///
    /// [C706 §12.6.3.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
    pub const RPC_VERS: u8 = 5;

    /// Decodes the first 16 bytes of `input` (any further bytes are ignored).
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] under 16 bytes; [`DecodeError::UnsupportedVersion`] unless the
    /// version is 5.0 or 5.1; [`DecodeError::UnknownPacketType`] for a `PTYPE` that is not
    /// connection-oriented; [`DecodeError::InvalidField`] for an unsupported `packed_drep`.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let Some(
            &[
                rpc_vers,
                rpc_vers_minor,
                ptype,
                flags,
                d0,
                d1,
                d2,
                d3,
                f0,
                f1,
                a0,
                a1,
                c0,
                c1,
                c2,
                c3,
            ],
        ) = input.first_chunk::<16>()
        else {
            return Err(DecodeError::Truncated {
                what: "common header",
                needed: Self::LEN,
                available: input.len(),
            });
        };
        if rpc_vers != Self::RPC_VERS || rpc_vers_minor > 1 {
            return Err(DecodeError::UnsupportedVersion {
                rpc_vers,
                rpc_vers_minor,
            });
        }
        let ptype = PacketType(ptype);
        if !ptype.is_connection_oriented() {
            return Err(DecodeError::UnknownPacketType { ptype: ptype.0 });
        }
        let drep = DataRep::decode([d0, d1, d2, d3])?;
        Ok(Self {
            rpc_vers_minor,
            ptype,
            pfc_flags: PfcFlags::from_bits_retain(flags),
            drep,
            frag_length: drep.u16([f0, f1]),
            auth_length: drep.u16([a0, a1]),
            call_id: drep.u32([c0, c1, c2, c3]),
        })
    }

    /// Appends the 16 header bytes.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(Self::RPC_VERS);
        dst.put_u8(self.rpc_vers_minor);
        dst.put_u8(self.ptype.0);
        dst.put_u8(self.pfc_flags.bits());
        dst.put_slice(&self.drep.encode());
        dst.put_u16_drep(self.drep, self.frag_length);
        dst.put_u16_drep(self.drep, self.auth_length);
        dst.put_u32_drep(self.drep, self.call_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIND_HEADER_LE: [u8; 16] = [
        0x05, 0x00, // rpc_vers 5, rpc_vers_minor 0
        0x0b, 0x07, // PTYPE bind (11), FIRST_FRAG | LAST_FRAG | SUPPORT_HEADER_SIGN
        0x10, 0x00, 0x00, 0x00, // packed_drep: little-endian, ASCII, IEEE
        0x48, 0x00, 0x00, 0x00, // frag_length 72, auth_length 0
        0x01, 0x00, 0x00, 0x00, // call_id 1
    ];
    const BIND_HEADER_BE: [u8; 16] = [
        0x05, 0x01, // rpc_vers 5, rpc_vers_minor 1
        0x0b, 0x03, // PTYPE bind (11), FIRST_FRAG | LAST_FRAG
        0x00, 0x00, 0x00, 0x00, // packed_drep: big-endian, ASCII, IEEE
        0x00, 0x48, 0x00, 0x10, // frag_length 72, auth_length 16
        0x00, 0x00, 0x01, 0x02, // call_id 0x102
    ];

    #[test]
    fn little_endian_header_round_trips() {
        let header = CommonHeader::decode(&BIND_HEADER_LE).unwrap();
        assert_eq!(
            header,
            CommonHeader {
                rpc_vers_minor: 0,
                ptype: PacketType::BIND,
                pfc_flags: PfcFlags::FIRST_FRAG
                    | PfcFlags::LAST_FRAG
                    | PfcFlags::SUPPORT_HEADER_SIGN,
                drep: DataRep::LITTLE_ENDIAN,
                frag_length: 72,
                auth_length: 0,
                call_id: 1,
            }
        );
        let mut out = BytesMut::new();
        header.encode(&mut out);
        assert_eq!(out[..], BIND_HEADER_LE);
    }

    #[test]
    fn big_endian_header_round_trips() {
        let header = CommonHeader::decode(&BIND_HEADER_BE).unwrap();
        assert_eq!(header.drep, DataRep::BIG_ENDIAN);
        assert_eq!(header.rpc_vers_minor, 1);
        assert_eq!(
            (header.frag_length, header.auth_length, header.call_id),
            (72, 16, 0x102)
        );
        let mut out = BytesMut::new();
        header.encode(&mut out);
        assert_eq!(out[..], BIND_HEADER_BE);
    }

    #[test]
    fn version_other_than_5_0_or_5_1_is_refused() {
        for (major, minor) in [(4, 0), (6, 0), (5, 2)] {
            let mut bytes = BIND_HEADER_LE;
            bytes[0] = major;
            bytes[1] = minor;
            assert_eq!(
                CommonHeader::decode(&bytes),
                Err(DecodeError::UnsupportedVersion {
                    rpc_vers: major,
                    rpc_vers_minor: minor
                })
            );
        }
    }

    #[test]
    fn connectionless_and_unknown_packet_types_are_refused() {
        for ptype in [1, 4, 9, 10, 20, 0xff] {
            let mut bytes = BIND_HEADER_LE;
            bytes[2] = ptype;
            assert_eq!(
                CommonHeader::decode(&bytes),
                Err(DecodeError::UnknownPacketType { ptype })
            );
        }
    }

    #[test]
    fn truncated_header_is_refused() {
        assert_eq!(
            CommonHeader::decode(&BIND_HEADER_LE[..15]),
            Err(DecodeError::Truncated {
                what: "common header",
                needed: 16,
                available: 15
            })
        );
    }

    #[test]
    fn flag_names_follow_the_packet_type() {
        let flags = PfcFlags::from_bits_retain(0x07);
        assert_eq!(
            flags.names(PacketType::BIND),
            ["PFC_FIRST_FRAG", "PFC_LAST_FRAG", "PFC_SUPPORT_HEADER_SIGN"]
        );
        assert_eq!(
            flags.names(PacketType::REQUEST),
            ["PFC_FIRST_FRAG", "PFC_LAST_FRAG", "PFC_PENDING_CANCEL"]
        );
        assert_eq!(format!("{:?}", PacketType(0x42)), "PacketType(66)");
        assert_eq!(PacketType::AUTH3.to_string(), "auth3");
    }
}
