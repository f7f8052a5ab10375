//! The mock's endpoint mapper ([C706 Appendix O], [MS-RPCE §2.2.1.2]): answers `ept_map` and
//! `ept_lookup` for the interfaces the mock serves, registered on one `ncacn_ip_tcp` endpoint,
//! so a client resolves the port as it would against a domain controller (port 135 first).
//!
//! Paging is stateless: an entry handle names the index of the next entry. As Windows does, a
//! call that returns the last entries still hands out a (non-null) handle; the call after it
//! returns no entry, `ept_s_not_registered` and the null handle, so a client that loops while
//! the status is 0 ends.
//!
//! [C706 Appendix O]: https://pubs.opengroup.org/onlinepubs/9629399/apdxo.htm
//! [MS-RPCE §2.2.1.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use dsbackup_proto::iface::epm::{
    self, EPT_S_NOT_REGISTERED, EpmRequest, EpmResponse, EptEntry, EptLookupHandleFreeResponse,
    EptLookupRequest, EptLookupResponse, EptMapRequest, EptMapResponse, Floor, NDR_TRANSFER_SYNTAX,
    RPC_C_EP_ALL_ELTS, Tower, Twr,
};
use dsbackup_proto::iface::{InterfaceId, ad_backup, ad_restore};
use dsbackup_proto::ndr::{ConformantVarying, Full};
use dsbackup_proto::server::Interface as ServerInterface;
use dsbackup_proto::{AuthLevel, ContextHandle, DataRep, NdrError, Status, SyntaxId, Uuid};

use crate::dc::ServeError;

/// `rpc_c_ep_match_by_if`: match on the interface.
const RPC_C_EP_MATCH_BY_IF: u32 = 1;
/// `rpc_c_ep_match_by_obj`: match on the object UUID.
const RPC_C_EP_MATCH_BY_OBJ: u32 = 2;
/// `rpc_c_ep_match_by_both`.
const RPC_C_EP_MATCH_BY_BOTH: u32 = 3;
/// `rpc_c_vers_all`: any version.
const RPC_C_VERS_ALL: u32 = 1;
/// `rpc_c_vers_compatible`: same major, minor at least the one asked.
const RPC_C_VERS_COMPATIBLE: u32 = 2;
/// `rpc_c_vers_exact`.
const RPC_C_VERS_EXACT: u32 = 3;
/// `rpc_c_vers_major_only`.
const RPC_C_VERS_MAJOR_ONLY: u32 = 4;
/// `rpc_c_vers_upto`: any version up to the one asked.
const RPC_C_VERS_UPTO: u32 = 5;
/// First bytes of the UUID of an entry handle this map hands out.
const HANDLE_MAGIC: [u8; 12] = *b"dsbackup-epm";

/// The endpoint map of one mock server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointMap {
    entries: Vec<&'static InterfaceId>,
    port: u16,
    address: [u8; 4],
}

impl EndpointMap {
    /// The map of the mock's interfaces (ad_backup, ad_restore) served on TCP `port` at IPv4
    /// `address` (what a client connects to).
    pub fn new(port: u16, address: [u8; 4]) -> Self {
        Self::with_interfaces(
            vec![&ad_backup::INTERFACE, &ad_restore::INTERFACE],
            port,
            address,
        )
    }

    /// The map of `interfaces` served on TCP `port` at `address`.
    pub fn with_interfaces(
        interfaces: Vec<&'static InterfaceId>,
        port: u16,
        address: [u8; 4],
    ) -> Self {
        Self {
            entries: interfaces,
            port,
            address,
        }
    }

    /// The endpoint mapper interface to register with a server association (anonymous calls
    /// allowed, opnums 0 to 4; the map answers 2, 3 and 4).
    pub fn server_interface() -> ServerInterface {
        let id = &epm::INTERFACE;
        ServerInterface {
            syntax: SyntaxId::new(id.uuid, id.version_major, id.version_minor),
            opnums: 5,
            min_auth_level: AuthLevel::NONE,
        }
    }

    /// Answers one request.
    pub fn serve(&self, request: &EpmRequest) -> EpmResponse {
        match request {
            EpmRequest::EptLookup(r) => EpmResponse::EptLookup(self.lookup(r)),
            EpmRequest::EptMap(r) => EpmResponse::EptMap(self.map(r)),
            EpmRequest::EptLookupHandleFree(_) => {
                EpmResponse::EptLookupHandleFree(EptLookupHandleFreeResponse {
                    entry_handle: ContextHandle::NULL,
                    status: Status::SUCCESS,
                })
            }
        }
    }

    /// Answers one request from its stub bytes, in the request's data representation.
    ///
    /// # Errors
    /// As [`MockDc::serve_stub`](crate::MockDc::serve_stub).
    pub fn serve_stub(
        &self,
        opnum: u16,
        drep: DataRep,
        stub: &[u8],
    ) -> Result<Vec<u8>, ServeError> {
        let request = EpmRequest::decode(opnum, drep, stub).map_err(|error| match error {
            NdrError::UnknownOpnum { opnum, .. } => ServeError::UnknownOpnum {
                iface: dsbackup_proto::iface::Interface::Epm,
                opnum,
            },
            error => ServeError::BadStub(error),
        })?;
        Ok(self.serve(&request).encode(drep)?)
    }

    /// `ept_map`: the towers of the registered interface the request's tower names, when it
    /// asks for NDR 2.0 over `ncacn_ip_tcp`.
    fn map(&self, request: &EptMapRequest) -> EptMapResponse {
        let wanted = request
            .map_tower
            .0
            .as_ref()
            .and_then(|twr| twr.tower().ok())
            .filter(is_ncacn_ip_tcp_ndr)
            .and_then(|tower| tower.interface());
        let matching: Vec<&'static InterfaceId> = match wanted {
            Some((uuid, major, minor)) => self
                .entries
                .iter()
                .copied()
                .filter(|id| {
                    id.uuid == uuid && id.version_major == major && id.version_minor >= minor
                })
                .collect(),
            None => Vec::new(),
        };
        let (page, next) = page(&matching, request.entry_handle, request.max_towers);
        let towers: Vec<Full<Twr>> = page
            .iter()
            .filter_map(|id| {
                Twr::from_tower(&Tower::ncacn_ip_tcp(id, self.port, self.address)).ok()
            })
            .map(|twr| Full(Some(twr)))
            .collect();
        EptMapResponse {
            entry_handle: next,
            num_towers: u32::try_from(towers.len()).unwrap_or(u32::MAX),
            status: if towers.is_empty() {
                EPT_S_NOT_REGISTERED
            } else {
                Status::SUCCESS
            },
            towers: ConformantVarying {
                max_count: request.max_towers,
                items: towers,
            },
        }
    }

    /// `ept_lookup`: the entries matching the inquiry, `max_ents` at a time.
    fn lookup(&self, request: &EptLookupRequest) -> EptLookupResponse {
        let by_if = matches!(
            request.inquiry_type,
            RPC_C_EP_MATCH_BY_IF | RPC_C_EP_MATCH_BY_BOTH
        );
        let by_obj = matches!(
            request.inquiry_type,
            RPC_C_EP_MATCH_BY_OBJ | RPC_C_EP_MATCH_BY_BOTH
        );
        let matching: Vec<&'static InterfaceId> = self
            .entries
            .iter()
            .copied()
            .filter(|id| {
                if request.inquiry_type == RPC_C_EP_ALL_ELTS {
                    return true;
                }
                // Every registration has the nil object.
                let object_ok = !by_obj || request.object.0.is_none_or(|o| o == Uuid::NIL);
                let interface_ok = !by_if
                    || request.interface_id.0.is_some_and(|want| {
                        want.uuid == id.uuid
                            && version_matches(
                                request.vers_option,
                                (id.version_major, id.version_minor),
                                (want.vers_major, want.vers_minor),
                            )
                    });
                object_ok && interface_ok
            })
            .collect();
        let (page, next) = page(&matching, request.entry_handle, request.max_ents);
        let entries: Vec<EptEntry> = page
            .iter()
            .filter_map(|id| {
                let tower = Twr::from_tower(&Tower::ncacn_ip_tcp(id, self.port, self.address));
                Some(EptEntry {
                    object: Uuid::NIL,
                    tower: Full(Some(tower.ok()?)),
                    annotation: id.annotation.to_owned(),
                })
            })
            .collect();
        EptLookupResponse {
            entry_handle: next,
            num_ents: u32::try_from(entries.len()).unwrap_or(u32::MAX),
            status: if entries.is_empty() {
                EPT_S_NOT_REGISTERED
            } else {
                Status::SUCCESS
            },
            entries: ConformantVarying {
                max_count: request.max_ents,
                items: entries,
            },
        }
    }
}

/// Whether a tower asks for NDR 2.0 over connection-oriented RPC on TCP.
fn is_ncacn_ip_tcp_ndr(tower: &Tower) -> bool {
    let ndr = matches!(
        tower.floors.get(1),
        Some(Floor::Uuid { uuid, version_major, .. })
            if *uuid == NDR_TRANSFER_SYNTAX.0 && *version_major == NDR_TRANSFER_SYNTAX.1
    );
    let ncacn = matches!(tower.floors.get(2), Some(Floor::ConnectionOriented { .. }));
    ndr && ncacn && tower.tcp_port().is_some()
}

/// Whether a registration at `have` answers an inquiry for `want` under `option`
/// ([C706 Appendix O] `vers_option`).
fn version_matches(option: u32, have: (u16, u16), want: (u16, u16)) -> bool {
    match option {
        RPC_C_VERS_ALL => true,
        RPC_C_VERS_COMPATIBLE => have.0 == want.0 && have.1 >= want.1,
        RPC_C_VERS_EXACT => have == want,
        RPC_C_VERS_MAJOR_ONLY => have.0 == want.0,
        RPC_C_VERS_UPTO => have <= want,
        _ => false,
    }
}

/// The page of `items` an entry handle asks for (at most `max` of them) and the handle of the
/// next page: non-null after a page with entries, null after an empty one.
fn page<T>(items: &[T], handle: ContextHandle, max: u32) -> (&[T], ContextHandle) {
    let start = if handle.is_null() {
        Some(0)
    } else {
        handle_index(handle)
    };
    let Some(start) = start else {
        return (&[], ContextHandle::NULL);
    };
    let len = usize::try_from(max).unwrap_or(usize::MAX);
    let page = items
        .get(start..)
        .map(|rest| rest.get(..len.min(rest.len())).unwrap_or_default())
        .unwrap_or_default();
    if page.is_empty() {
        return (page, ContextHandle::NULL);
    }
    let next = u32::try_from(start.saturating_add(page.len())).unwrap_or(u32::MAX);
    (page, index_handle(next))
}

/// The entry handle naming entry `index`.
fn index_handle(index: u32) -> ContextHandle {
    let mut bytes = [0u8; 16];
    let (magic, tail) = bytes.split_at_mut(HANDLE_MAGIC.len());
    magic.copy_from_slice(&HANDLE_MAGIC);
    tail.copy_from_slice(&index.to_be_bytes());
    ContextHandle {
        attributes: 0,
        uuid: Uuid(bytes),
    }
}

/// The index an entry handle of this map names.
fn handle_index(handle: ContextHandle) -> Option<usize> {
    let (magic, tail) = handle.uuid.0.split_at(HANDLE_MAGIC.len());
    if handle.attributes != 0 || magic != HANDLE_MAGIC {
        return None;
    }
    let index: [u8; 4] = tail.try_into().ok()?;
    usize::try_from(u32::from_be_bytes(index)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDRESS: [u8; 4] = [127, 0, 0, 1];

    /// The tower of an `ept_map` request: the interface, no port, no address.
    fn map_request_tower(interface: &InterfaceId) -> Option<bytes::Bytes> {
        Tower::ncacn_ip_tcp(interface, 0, [0; 4])
            .encode()
            .ok()
            .map(bytes::Bytes::from)
    }

    fn map_request(interface: &InterfaceId, handle: ContextHandle, max: u32) -> EpmRequest {
        EpmRequest::EptMap(EptMapRequest {
            object: Full(None),
            map_tower: Full(Some(Twr {
                tower_octet_string: map_request_tower(interface).unwrap(),
            })),
            entry_handle: handle,
            max_towers: max,
        })
    }

    fn lookup_request(handle: ContextHandle, max: u32) -> EpmRequest {
        EpmRequest::EptLookup(EptLookupRequest {
            inquiry_type: RPC_C_EP_ALL_ELTS,
            object: Full(None),
            interface_id: Full(None),
            vers_option: RPC_C_VERS_ALL,
            entry_handle: handle,
            max_ents: max,
        })
    }

    #[test]
    fn ept_map_answers_the_port_of_a_served_interface() {
        let map = EndpointMap::new(49_152, ADDRESS);
        let EpmResponse::EptMap(r) =
            map.serve(&map_request(&ad_backup::INTERFACE, ContextHandle::NULL, 4))
        else {
            panic!("wrong response variant");
        };
        assert_eq!(r.status, Status::SUCCESS);
        assert_eq!(r.num_towers, 1);
        assert_eq!(r.towers.max_count, 4);
        let tower = r.towers.items[0].0.as_ref().unwrap().tower().unwrap();
        assert_eq!(
            tower,
            Tower::ncacn_ip_tcp(&ad_backup::INTERFACE, 49_152, ADDRESS)
        );
        // The next page is empty and ends the iteration.
        let EpmResponse::EptMap(r) =
            map.serve(&map_request(&ad_backup::INTERFACE, r.entry_handle, 4))
        else {
            panic!("wrong response variant");
        };
        assert_eq!((r.num_towers, r.status), (0, EPT_S_NOT_REGISTERED));
        assert!(r.entry_handle.is_null());
    }

    #[test]
    fn ept_map_refuses_other_interfaces_versions_and_protocols() {
        let map = EndpointMap::new(49_152, ADDRESS);
        let EpmResponse::EptMap(r) =
            map.serve(&map_request(&epm::INTERFACE, ContextHandle::NULL, 4))
        else {
            panic!("wrong response variant");
        };
        assert_eq!((r.num_towers, r.status), (0, EPT_S_NOT_REGISTERED));
        let mut v2 = Tower::ncacn_ip_tcp(&ad_backup::INTERFACE, 0, [0; 4]);
        v2.floors[0] = Floor::Uuid {
            uuid: ad_backup::INTERFACE.uuid,
            version_major: 2,
            version_minor: 0,
        };
        let mut pipe = Tower::ncacn_ip_tcp(&ad_backup::INTERFACE, 0, [0; 4]);
        pipe.floors.truncate(3);
        for tower in [v2, pipe] {
            let request = EpmRequest::EptMap(EptMapRequest {
                object: Full(None),
                map_tower: Full(Some(Twr::from_tower(&tower).unwrap())),
                entry_handle: ContextHandle::NULL,
                max_towers: 4,
            });
            let EpmResponse::EptMap(r) = map.serve(&request) else {
                panic!("wrong response variant");
            };
            assert_eq!(r.status, EPT_S_NOT_REGISTERED, "{tower:?}");
        }
        let no_tower = EpmRequest::EptMap(EptMapRequest {
            object: Full(None),
            map_tower: Full(None),
            entry_handle: ContextHandle::NULL,
            max_towers: 4,
        });
        let EpmResponse::EptMap(r) = map.serve(&no_tower) else {
            panic!("wrong response variant");
        };
        assert_eq!(r.status, EPT_S_NOT_REGISTERED);
    }

    #[test]
    fn ept_lookup_pages_through_every_entry_and_ends() {
        let map = EndpointMap::new(49_152, ADDRESS);
        let mut handle = ContextHandle::NULL;
        let mut seen = Vec::new();
        for _ in 0..5 {
            let EpmResponse::EptLookup(r) = map.serve(&lookup_request(handle, 1)) else {
                panic!("wrong response variant");
            };
            if r.status != Status::SUCCESS {
                assert_eq!((r.status, r.num_ents), (EPT_S_NOT_REGISTERED, 0));
                assert!(r.entry_handle.is_null());
                break;
            }
            assert_eq!(r.entries.max_count, 1);
            seen.extend(r.entries.items.iter().map(|e| e.annotation.clone()));
            handle = r.entry_handle;
            assert!(!handle.is_null());
        }
        assert_eq!(seen, ["NTDS Backup Interface", "NTDS Restore Interface"]);
        // A handle this map did not hand out ends the iteration too.
        let forged = ContextHandle {
            attributes: 0,
            uuid: Uuid([9; 16]),
        };
        let EpmResponse::EptLookup(r) = map.serve(&lookup_request(forged, 10)) else {
            panic!("wrong response variant");
        };
        assert_eq!((r.status, r.num_ents), (EPT_S_NOT_REGISTERED, 0));
    }

    #[test]
    fn ept_lookup_matches_by_interface_and_version() {
        let map = EndpointMap::new(1, ADDRESS);
        let count = |vers_option: u32, vers: (u16, u16)| {
            let request = EpmRequest::EptLookup(EptLookupRequest {
                inquiry_type: RPC_C_EP_MATCH_BY_IF,
                object: Full(None),
                interface_id: Full(Some(epm::RpcIfId {
                    uuid: ad_restore::INTERFACE.uuid,
                    vers_major: vers.0,
                    vers_minor: vers.1,
                })),
                vers_option,
                entry_handle: ContextHandle::NULL,
                max_ents: 10,
            });
            let EpmResponse::EptLookup(r) = map.serve(&request) else {
                panic!("wrong response variant");
            };
            r.num_ents
        };
        assert_eq!(count(RPC_C_VERS_ALL, (9, 9)), 1);
        assert_eq!(count(RPC_C_VERS_COMPATIBLE, (1, 0)), 1);
        assert_eq!(count(RPC_C_VERS_COMPATIBLE, (1, 1)), 0);
        assert_eq!(count(RPC_C_VERS_EXACT, (1, 0)), 1);
        assert_eq!(count(RPC_C_VERS_EXACT, (2, 0)), 0);
        assert_eq!(count(RPC_C_VERS_MAJOR_ONLY, (1, 7)), 1);
        assert_eq!(count(RPC_C_VERS_UPTO, (0, 9)), 0);
        assert_eq!(count(RPC_C_VERS_UPTO, (2, 0)), 1);
        assert_eq!(count(99, (1, 0)), 0);
    }

    #[test]
    fn stubs_round_trip_and_unknown_opnums_are_faults() {
        let map = EndpointMap::new(49_152, ADDRESS);
        for drep in [DataRep::LITTLE_ENDIAN, DataRep::BIG_ENDIAN] {
            let request = map_request(&ad_restore::INTERFACE, ContextHandle::NULL, 1);
            let stub = map
                .serve_stub(3, drep, &request.encode(drep).unwrap())
                .unwrap();
            let EpmResponse::EptMap(r) = EpmResponse::decode(3, drep, &stub).unwrap() else {
                panic!("wrong response variant");
            };
            let tower = r.towers.items[0].0.as_ref().unwrap().tower().unwrap();
            assert_eq!(tower.tcp_port(), Some(49_152));
            assert_eq!(tower.ip_address(), Some(ADDRESS));
        }
        assert!(matches!(
            map.serve_stub(0, DataRep::LITTLE_ENDIAN, &[]),
            Err(ServeError::UnknownOpnum { opnum: 0, .. })
        ));
        assert!(matches!(
            map.serve_stub(3, DataRep::LITTLE_ENDIAN, &[1, 2, 3]),
            Err(ServeError::BadStub(_))
        ));
        assert_eq!(EndpointMap::server_interface().opnums, 5);
    }
}
