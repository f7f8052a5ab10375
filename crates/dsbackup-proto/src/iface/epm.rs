//! The endpoint mapper `epm` (e1af8308-5d1f-11c9-91a4-08002b14a0fa v3.0): `ept_lookup`,
//! `ept_map` and `ept_lookup_handle_free` ([C706 Appendix O], [MS-RPCE §2.2.1.2]), and the
//! protocol tower codec of [C706 Appendix L].
//!
//! [C706 Appendix L]: https://pubs.opengroup.org/onlinepubs/9629399/apdxl.htm
//! [C706 Appendix O]: https://pubs.opengroup.org/onlinepubs/9629399/apdxo.htm
//! [MS-RPCE §2.2.1.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use bytes::Bytes;

use crate::codec::len_u16;
use crate::drep::DataRep;
use crate::error::{DecodeError, EncodeError};
use crate::iface::{CountCheck, InterfaceId, calls, params};
use crate::ndr::{
    ConformantVarying, ContextHandle, Full, Ndr, NdrError, NdrReader, NdrWriter,
    decode_char_variance, encode_char_variance,
};
use crate::status::Status;
use crate::uuid::Uuid;

/// The interface identity and call table.
pub static INTERFACE: InterfaceId = InterfaceId {
    name: "epm",
    uuid: Uuid::from_str_const("e1af8308-5d1f-11c9-91a4-08002b14a0fa"),
    version_major: 3,
    version_minor: 0,
    annotation: "Endpoint Mapper",
    calls: EPM,
};

/// `ept_max_annotation_size`: characters of an annotation, NUL included.
pub const EPT_MAX_ANNOTATION_SIZE: u32 = 64;
/// `ept_s_not_registered`: no (more) matching entries.
pub const EPT_S_NOT_REGISTERED: Status = Status(0x16C9_A0D6);
/// `rpc_s_no_memory` (Samba's `EPMAPPER_STATUS_NO_MEMORY`).
pub const RPC_S_NO_MEMORY: Status = Status(0x16C9_A012);
/// `rpc_c_ep_all_elts`: `inquiry_type` that lists every entry.
pub const RPC_C_EP_ALL_ELTS: u32 = 0;
/// `rpc_c_vers_all`: `vers_option` that matches every version.
pub const RPC_C_VERS_ALL: u32 = 1;
/// The NDR 2.0 transfer syntax (8a885d04-1ceb-11c9-9fe8-08002b104860 v2.0), floor 2 of a tower.
pub const NDR_TRANSFER_SYNTAX: (Uuid, u16) = (
    Uuid::from_str_const("8a885d04-1ceb-11c9-9fe8-08002b104860"),
    2,
);

calls! {
    interface: "epm",
    table: EPM,
    request: EpmRequest,
    response: EpmResponse,
    calls: [
        2 => EptLookup(EptLookupRequest, EptLookupResponse),
        3 => EptMap(EptMapRequest, EptMapResponse),
        4 => EptLookupHandleFree(EptLookupHandleFreeRequest, EptLookupHandleFreeResponse),
    ]
}

/// `rpc_if_id_t`: an interface UUID and version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RpcIfId {
    /// `uuid`.
    pub uuid: Uuid,
    /// `vers_major`.
    pub vers_major: u16,
    /// `vers_minor`.
    pub vers_minor: u16,
}

impl Ndr for RpcIfId {
    const MIN_LEN: usize = 16 /* uuid */ + 2 /* vers_major */ + 2 /* vers_minor */;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        w.param(&self.uuid)?;
        w.u16(self.vers_major);
        w.u16(self.vers_minor);
        Ok(())
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        Ok(Self {
            uuid: r.param()?,
            vers_major: r.u16("vers_major")?,
            vers_minor: r.u16("vers_minor")?,
        })
    }
}

/// `twr_t`: a protocol tower as NDR carries it, a conformant structure.
///
/// ```text
///  max_count (u32) | tower_length (u32) = max_count | tower_octet_string[tower_length]
/// ```
///
/// The octets are kept as received (so any tower round-trips); [`Twr::tower`] parses them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Twr {
    /// `tower_octet_string`, whose length is `tower_length`.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::iface::serialize_hex")
    )]
    pub tower_octet_string: Bytes,
}

impl Twr {
    /// The octets of `tower`.
    ///
    /// # Errors
    /// As [`Tower::encode`].
    pub fn from_tower(tower: &Tower) -> Result<Self, EncodeError> {
        Ok(Self {
            tower_octet_string: tower.encode()?.into(),
        })
    }

    /// Parses the octets.
    ///
    /// # Errors
    /// As [`Tower::decode`].
    pub fn tower(&self) -> Result<Tower, DecodeError> {
        Tower::decode(&self.tower_octet_string)
    }
}

impl Ndr for Twr {
    const MIN_LEN: usize = 4 /* max_count */ + 4 /* tower_length */;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        w.count(self.tower_octet_string.len(), "twr_t")?;
        w.count(self.tower_octet_string.len(), "twr_t")?;
        w.bytes(&self.tower_octet_string);
        Ok(())
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        let what = "twr_t";
        let max_count = r.count(what, 1)?;
        let tower_length = r.u32(what)?;
        crate::ndr::check_count_param(
            what,
            "tower_length",
            tower_length,
            usize::try_from(max_count).unwrap_or(usize::MAX),
        )?;
        Ok(Self {
            tower_octet_string: r.byte_run(max_count, what)?,
        })
    }
}

/// `ept_entry_t`: one registration of the endpoint map.
///
/// ```text
///  scalars: object (uuid) | tower referent id | annotation: offset 0, actual_count, chars + NUL
///  buffers: *tower (twr_t)
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct EptEntry {
    /// `object`.
    pub object: Uuid,
    /// `tower` (a full pointer).
    pub tower: Full<Twr>,
    /// `annotation`: `[string] char[64]`, read as ISO 8859-1.
    pub annotation: String,
}

impl Ndr for EptEntry {
    const MIN_LEN: usize = 16 /* object */ + 4 /* tower */ + 4 /* offset */ + 4 /* actual_count */;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        w.param(&self.object)?;
        self.tower.encode_scalars(w)?;
        encode_char_variance(
            w,
            &self.annotation,
            EPT_MAX_ANNOTATION_SIZE as usize,
            "ept_entry_t annotation",
        )
    }

    fn encode_buffers(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        self.tower.encode_buffers(w)
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        Ok(Self {
            object: r.param()?,
            tower: Ndr::decode_scalars(r)?,
            annotation: decode_char_variance(r, EPT_MAX_ANNOTATION_SIZE, "ept_entry_t annotation")?,
        })
    }

    fn decode_buffers(&mut self, r: &mut NdrReader<'_>) -> Result<(), NdrError> {
        self.tower.decode_buffers(r)
    }
}

params! {
    /// Opnum 2 request: lists the entries of the endpoint map, `max_ents` at a time.
    EptLookupRequest {
        /// `rpc_c_ep_all_elts` (0), or a match on interface and/or object.
        "inquiry_type" inquiry_type: u32,
        /// The object UUID to match, if any.
        "object" object: Full<Uuid>,
        /// The interface to match, if any.
        "interface_id" interface_id: Full<RpcIfId>,
        /// How to match versions (`rpc_c_vers_all` = 1, ...).
        "vers_option" vers_option: u32,
        /// Null at first, then the handle the previous call returned.
        "entry_handle" entry_handle: ContextHandle,
        /// The most entries to return.
        "max_ents" max_ents: u32,
    }
}

params! {
    /// Opnum 2 response.
    EptLookupResponse check lookup_counts {
        /// The handle to continue from (null when done).
        "entry_handle" entry_handle: ContextHandle,
        /// Entries returned; equals the array's actual count.
        "num_ents" num_ents: u32,
        /// The entries, with the request's `max_ents` as conformance.
        "entries" entries: ConformantVarying<EptEntry>,
        /// 0, or [`EPT_S_NOT_REGISTERED`] at the end of the map.
        "status" status: Status,
    }
}

fn lookup_counts(v: &EptLookupResponse) -> [CountCheck; 1] {
    [CountCheck {
        what: "ept_lookup response",
        field: "num_ents",
        count: v.num_ents,
        array_len: v.entries.items.len(),
    }]
}

params! {
    /// Opnum 3 request: the towers where an interface is served.
    EptMapRequest {
        /// The object UUID, if any.
        "object" object: Full<Uuid>,
        /// The tower to complete (interface, transfer syntax, protocols, no port).
        "map_tower" map_tower: Full<Twr>,
        /// Null at first, then the handle the previous call returned.
        "entry_handle" entry_handle: ContextHandle,
        /// The most towers to return.
        "max_towers" max_towers: u32,
    }
}

params! {
    /// Opnum 3 response.
    EptMapResponse check map_counts {
        /// The handle to continue from (null when done).
        "entry_handle" entry_handle: ContextHandle,
        /// Towers returned; equals the array's actual count.
        "num_towers" num_towers: u32,
        /// The towers (full pointers), with the request's `max_towers` as conformance.
        "towers" towers: ConformantVarying<Full<Twr>>,
        /// 0, or [`EPT_S_NOT_REGISTERED`].
        "status" status: Status,
    }
}

fn map_counts(v: &EptMapResponse) -> [CountCheck; 1] {
    [CountCheck {
        what: "ept_map response",
        field: "num_towers",
        count: v.num_towers,
        array_len: v.towers.items.len(),
    }]
}

params! {
    /// Opnum 4 request: releases a lookup handle.
    EptLookupHandleFreeRequest {
        /// The handle.
        "entry_handle" entry_handle: ContextHandle,
    }
}

params! {
    /// Opnum 4 response.
    EptLookupHandleFreeResponse {
        /// The null handle.
        "entry_handle" entry_handle: ContextHandle,
        /// The status.
        "status" status: Status,
    }
}

/// A protocol tower ([C706 Appendix L]): a floor count and floors, all **little-endian**
/// whatever the stub's data representation.
///
/// ```text
///  floor_count (u16 LE)
///  per floor: lhs_length (u16 LE) | protocol id (u8) | lhs data | rhs_length (u16 LE) | rhs data
///
///  ncacn_ip_tcp:  1: 0x0d uuid(16, LE fields) major(u16 LE) | minor(u16 LE)   interface
///                 2: 0x0d uuid major                        | minor          transfer syntax
///                 3: 0x0b                                   | minor (0)      connection-oriented
///                 4: 0x07                                   | port (u16 BE)  TCP
///                 5: 0x09                                   | address (4)    IP
/// ```
///
/// [C706 Appendix L]: https://pubs.opengroup.org/onlinepubs/9629399/apdxl.htm
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Tower {
    /// The floors, top (interface) first.
    pub floors: Vec<Floor>,
}

/// One floor of a tower.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Floor {
    /// Protocol 0x0d: an interface or transfer syntax identifier.
    Uuid {
        /// The UUID.
        uuid: Uuid,
        /// Major version (left-hand side).
        version_major: u16,
        /// Minor version (right-hand side).
        version_minor: u16,
    },
    /// Protocol 0x0b: connection-oriented RPC (`ncacn`).
    ConnectionOriented {
        /// The RPC minor version (0).
        version_minor: u16,
    },
    /// Protocol 0x07: a TCP port.
    Tcp {
        /// The port (big-endian on the wire).
        port: u16,
    },
    /// Protocol 0x09: an IPv4 address.
    Ip {
        /// The address.
        address: [u8; 4],
    },
    /// Any other floor, kept as bytes: named pipe (0x0f), ncalrpc (0x10), NetBIOS (0x11), ...
    Other {
        /// The protocol identifier.
        protocol: u8,
        /// The rest of the left-hand side.
        lhs_data: Vec<u8>,
        /// The right-hand side.
        rhs_data: Vec<u8>,
    },
}

impl Floor {
    /// Protocol id of an interface or transfer syntax floor.
    pub const PROTOCOL_UUID: u8 = 0x0d;
    /// Protocol id of connection-oriented RPC.
    pub const PROTOCOL_NCACN: u8 = 0x0b;
    /// Protocol id of TCP.
    pub const PROTOCOL_TCP: u8 = 0x07;
    /// Protocol id of IP.
    pub const PROTOCOL_IP: u8 = 0x09;
    /// Protocol id of a named pipe (SMB).
    pub const PROTOCOL_NAMED_PIPE: u8 = 0x0f;
    /// Protocol id of ncalrpc.
    pub const PROTOCOL_NCALRPC: u8 = 0x10;
    /// Protocol id of NetBIOS.
    pub const PROTOCOL_NETBIOS: u8 = 0x11;

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let (protocol, lhs, rhs): (u8, Vec<u8>, Vec<u8>) = match self {
            Self::Uuid {
                uuid,
                version_major,
                version_minor,
            } => {
                let mut lhs = uuid.to_wire(DataRep::LITTLE_ENDIAN).to_vec();
                lhs.extend(version_major.to_le_bytes());
                (
                    Self::PROTOCOL_UUID,
                    lhs,
                    version_minor.to_le_bytes().to_vec(),
                )
            }
            Self::ConnectionOriented { version_minor } => (
                Self::PROTOCOL_NCACN,
                Vec::new(),
                version_minor.to_le_bytes().to_vec(),
            ),
            Self::Tcp { port } => (Self::PROTOCOL_TCP, Vec::new(), port.to_be_bytes().to_vec()),
            Self::Ip { address } => (Self::PROTOCOL_IP, Vec::new(), address.to_vec()),
            Self::Other {
                protocol,
                lhs_data,
                rhs_data,
            } => (*protocol, lhs_data.clone(), rhs_data.clone()),
        };
        out.extend(length(lhs.len().saturating_add(1), "lhs_length")?.to_le_bytes());
        out.push(protocol);
        out.extend(&lhs);
        out.extend(length(rhs.len(), "rhs_length")?.to_le_bytes());
        out.extend(&rhs);
        Ok(())
    }

    fn decode(protocol: u8, lhs: &[u8], rhs: &[u8]) -> Self {
        match (protocol, lhs, rhs) {
            (Self::PROTOCOL_UUID, lhs, &[m0, m1]) if lhs.len() == 18 => {
                let mut uuid = [0; 16];
                let (uuid_bytes, major) = lhs.split_at(16);
                uuid.copy_from_slice(uuid_bytes);
                let version_major = match *major {
                    [a, b] => u16::from_le_bytes([a, b]),
                    _ => 0,
                };
                Self::Uuid {
                    uuid: Uuid::from_wire(uuid, DataRep::LITTLE_ENDIAN),
                    version_major,
                    version_minor: u16::from_le_bytes([m0, m1]),
                }
            }
            (Self::PROTOCOL_NCACN, [], &[m0, m1]) => Self::ConnectionOriented {
                version_minor: u16::from_le_bytes([m0, m1]),
            },
            (Self::PROTOCOL_TCP, [], &[p0, p1]) => Self::Tcp {
                port: u16::from_be_bytes([p0, p1]),
            },
            (Self::PROTOCOL_IP, [], &[a, b, c, d]) => Self::Ip {
                address: [a, b, c, d],
            },
            (protocol, lhs, rhs) => Self::Other {
                protocol,
                lhs_data: lhs.to_vec(),
                rhs_data: rhs.to_vec(),
            },
        }
    }
}

impl Tower {
    /// The five-floor `ncacn_ip_tcp` tower of an interface: interface, NDR 2.0, connection-
    /// oriented RPC, TCP `port`, IP `address` (port 0 and address 0.0.0.0 in an `ept_map`
    /// request).
    pub fn ncacn_ip_tcp(interface: &InterfaceId, port: u16, address: [u8; 4]) -> Self {
        Self {
            floors: vec![
                Floor::Uuid {
                    uuid: interface.uuid,
                    version_major: interface.version_major,
                    version_minor: interface.version_minor,
                },
                Floor::Uuid {
                    uuid: NDR_TRANSFER_SYNTAX.0,
                    version_major: NDR_TRANSFER_SYNTAX.1,
                    version_minor: 0,
                },
                Floor::ConnectionOriented { version_minor: 0 },
                Floor::Tcp { port },
                Floor::Ip { address },
            ],
        }
    }

    /// The tower's octets.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] for more than 65535 floors or a floor side above 65535 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        out.extend(length(self.floors.len(), "floor_count")?.to_le_bytes());
        for floor in &self.floors {
            floor.encode(&mut out)?;
        }
        Ok(out)
    }

    /// Parses tower octets.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] when a floor runs past the end; [`DecodeError::InvalidField`]
    /// for a floor without a protocol id; [`DecodeError::TrailingBytes`] after the last floor.
    pub fn decode(octets: &[u8]) -> Result<Self, DecodeError> {
        let mut rest = octets;
        let count = take_u16(&mut rest, "floor_count")?;
        // INVARIANT: a floor is at least 5 bytes, so the capacity is bounded by the input.
        let mut floors = Vec::with_capacity(usize::from(count).min(rest.len() / 5));
        for _ in 0..count {
            let lhs_length = take_u16(&mut rest, "lhs_length")?;
            let lhs = take(&mut rest, usize::from(lhs_length), "lhs")?;
            let Some((&protocol, lhs_data)) = lhs.split_first() else {
                return Err(DecodeError::InvalidField {
                    what: "protocol tower",
                    field: "lhs_length",
                    reason: "a floor's left-hand side holds at least the protocol id",
                });
            };
            let rhs_length = take_u16(&mut rest, "rhs_length")?;
            let rhs = take(&mut rest, usize::from(rhs_length), "rhs")?;
            floors.push(Floor::decode(protocol, lhs_data, rhs));
        }
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes {
                what: "protocol tower",
                count: rest.len(),
            });
        }
        Ok(Self { floors })
    }

    /// The TCP port (floor 0x07), if any.
    pub fn tcp_port(&self) -> Option<u16> {
        self.floors.iter().find_map(|f| match f {
            Floor::Tcp { port } => Some(*port),
            _ => None,
        })
    }

    /// The IPv4 address (floor 0x09), if any.
    pub fn ip_address(&self) -> Option<[u8; 4]> {
        self.floors.iter().find_map(|f| match f {
            Floor::Ip { address } => Some(*address),
            _ => None,
        })
    }

    /// The interface of floor 1: UUID and major, minor version.
    pub fn interface(&self) -> Option<(Uuid, u16, u16)> {
        match self.floors.first() {
            Some(Floor::Uuid {
                uuid,
                version_major,
                version_minor,
            }) => Some((*uuid, *version_major, *version_minor)),
            _ => None,
        }
    }
}

/// A length or count of a tower that must fit its `u16` field.
fn length(len: usize, field: &'static str) -> Result<u16, EncodeError> {
    len_u16("protocol tower", field, len)
}

fn take<'a>(rest: &mut &'a [u8], len: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
    if rest.len() < len {
        return Err(DecodeError::Truncated {
            what: field,
            needed: len,
            available: rest.len(),
        });
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Ok(head)
}

fn take_u16(rest: &mut &[u8], field: &'static str) -> Result<u16, DecodeError> {
    match take(rest, 2, field)? {
        &[a, b] => Ok(u16::from_le_bytes([a, b])),
        _ => Err(DecodeError::Truncated {
            what: field,
            needed: 2,
            available: 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ept_map tower for ad_backup on 10.0.0.5:49667, byte by byte.
    const AD_BACKUP_TOWER: [u8; 75] = [
        0x05, 0x00, // floor_count 5
        0x13, 0x00, // floor 1 lhs_length 19
        0x0d, // protocol: UUID
        0x70, 0x0d, 0xec, 0xec, 0x03, 0xa6, 0xd0, 0x11, // ecec0d70-a603-11d0
        0x96, 0xb1, 0x00, 0xa0, 0xc9, 0x1e, 0xce, 0x30, // -96b1-00a0c91ece30
        0x01, 0x00, // version_major 1
        0x02, 0x00, 0x00, 0x00, // rhs_length 2, version_minor 0
        0x13, 0x00, // floor 2 lhs_length 19
        0x0d, // protocol: UUID
        0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, // 8a885d04-1ceb-11c9
        0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60, // -9fe8-08002b104860
        0x02, 0x00, // version_major 2
        0x02, 0x00, 0x00, 0x00, // rhs_length 2, version_minor 0
        0x01, 0x00, 0x0b, // floor 3 lhs_length 1, protocol: connection-oriented RPC
        0x02, 0x00, 0x00, 0x00, // rhs_length 2, version_minor 0
        0x01, 0x00, 0x07, // floor 4 lhs_length 1, protocol: TCP
        0x02, 0x00, 0xc2, 0x03, // rhs_length 2, port 49667 (big-endian)
        0x01, 0x00, 0x09, // floor 5 lhs_length 1, protocol: IP
        0x04, 0x00, 0x0a, 0x00, 0x00, 0x05, // rhs_length 4, 10.0.0.5
    ];

    #[test]
    fn ncacn_ip_tcp_tower_layout() {
        let tower = Tower::ncacn_ip_tcp(&crate::iface::ad_backup::INTERFACE, 49667, [10, 0, 0, 5]);
        assert_eq!(tower.encode().unwrap(), AD_BACKUP_TOWER);
        let parsed = Tower::decode(&AD_BACKUP_TOWER).unwrap();
        assert_eq!(parsed, tower);
        assert_eq!(parsed.tcp_port(), Some(49667));
        assert_eq!(parsed.ip_address(), Some([10, 0, 0, 5]));
        assert_eq!(
            parsed.interface(),
            Some((crate::iface::ad_backup::INTERFACE.uuid, 1, 0))
        );
    }

    #[test]
    fn named_pipe_and_netbios_floors_are_kept_as_other() {
        let tower = Tower {
            floors: vec![
                Floor::Other {
                    protocol: 0x0f,
                    lhs_data: vec![],
                    rhs_data: b"\\PIPE\\lsass\0".to_vec(),
                },
                Floor::Other {
                    protocol: 0x11,
                    lhs_data: vec![],
                    rhs_data: b"DC1\0".to_vec(),
                },
                Floor::Other {
                    protocol: 0x10,
                    lhs_data: vec![],
                    rhs_data: b"LRPC-1\0".to_vec(),
                },
            ],
        };
        assert_eq!(Tower::decode(&tower.encode().unwrap()).unwrap(), tower);
    }

    #[test]
    fn truncated_and_padded_towers_are_refused() {
        assert!(matches!(
            Tower::decode(&AD_BACKUP_TOWER[..74]),
            Err(DecodeError::Truncated { .. })
        ));
        let mut padded = AD_BACKUP_TOWER.to_vec();
        padded.push(0);
        assert!(matches!(
            Tower::decode(&padded),
            Err(DecodeError::TrailingBytes { count: 1, .. })
        ));
        assert!(matches!(
            Tower::decode(&[0xff, 0xff, 0x00, 0x00]),
            Err(DecodeError::InvalidField { .. })
        ));
    }
}
