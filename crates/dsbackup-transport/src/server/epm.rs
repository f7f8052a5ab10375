//! The endpoint mapper every server answers ([C706 Appendix O], [MS-RPCE §2.2.1.2]):
//! `ept_map`, `ept_lookup` (paged through its entry handle) and `ept_lookup_handle_free`,
//! from the interfaces registered on the server. `ept_insert` and `ept_delete` are refused
//! with access denied (the map is the server's own).
//!
//! `ept_lookup` pages end the way every client we know stops on: a full page keeps the entry
//! handle live, even when it holds the last entry, and the next call finds nothing and answers
//! `ept_s_not_registered` with the null handle (as Samba does; Samba's `rpcclient epmlookup`,
//! which asks one entry at a time, stops on nothing else); a page the map cannot fill comes
//! with the null handle and status 0 (as Windows does; impacket's `hept_lookup` stops on the
//! null handle and raises on any other status). Either way the handle is released.
//!
//! Towers carry the listening address (0.0.0.0 when the server listens on every address:
//! clients then use the host they asked, as with Samba) and port.
//!
//! [C706 Appendix O]: https://pubs.opengroup.org/onlinepubs/9629399/apdxo.htm
//! [MS-RPCE §2.2.1.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use dsbackup_proto::iface::epm::{
    EPT_S_NOT_REGISTERED, EpmRequest, EptEntry, EptLookupHandleFreeResponse, EptLookupRequest,
    EptLookupResponse, EptMapRequest, EptMapResponse, Twr,
};
use dsbackup_proto::ndr::{ConformantVarying, ContextHandle, Full, encode_stub};
use dsbackup_proto::{Chain, DataRep, FaultStatus, Status, SyntaxId, Uuid};

use super::{CallContext, CallError, CallFuture, RpcInterface};
use crate::resolve::{epm_syntax, tcp_tower};

/// `rpc_c_ep_match_by_if`, `_by_obj`, `_by_both`: inquiry types of `ept_lookup`.
const MATCH_BY_IF: u32 = 1;
const MATCH_BY_BOTH: u32 = 3;
/// `rpc_c_vers_compatible`, `_exact`, `_major_only`, `_upto`.
const VERS_COMPATIBLE: u32 = 2;
const VERS_EXACT: u32 = 3;
const VERS_MAJOR_ONLY: u32 = 4;
const VERS_UPTO: u32 = 5;
/// Entries returned at most per `ept_lookup` and towers per `ept_map`, whatever is asked.
const MAX_PAGE: u32 = 500;

/// One registered endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MapEntry {
    /// The interface.
    pub syntax: SyntaxId,
    /// Its annotation.
    pub annotation: String,
    /// The TCP port it is served on.
    pub port: u16,
    /// The IPv4 address (0.0.0.0 for every address).
    pub address: [u8; 4],
}

impl MapEntry {
    fn twr(&self) -> Result<Twr, CallError> {
        Ok(Twr::from_tower(&tcp_tower(
            self.syntax,
            self.port,
            self.address,
        ))?)
    }
}

/// The endpoint mapper of a server.
#[derive(Debug)]
pub(crate) struct EndpointMapper {
    entries: Vec<MapEntry>,
    /// Open `ept_lookup` entry handles and the index they continue from.
    lookups: Mutex<HashMap<ContextHandle, usize>>,
}

impl EndpointMapper {
    /// A mapper answering from `entries`.
    pub(crate) fn new(entries: Vec<MapEntry>) -> Self {
        Self {
            entries,
            lookups: Mutex::new(HashMap::new()),
        }
    }

    fn lookups(&self) -> std::sync::MutexGuard<'_, HashMap<ContextHandle, usize>> {
        self.lookups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn map(&self, request: &EptMapRequest, drep: DataRep) -> Result<Bytes, CallError> {
        let wanted = request
            .map_tower
            .0
            .as_ref()
            .and_then(|twr| twr.tower().ok())
            .and_then(|tower| tower.interface());
        let max = request.max_towers.min(MAX_PAGE);
        let mut towers = Vec::new();
        if let Some((uuid, major, _)) = wanted {
            for entry in self
                .entries
                .iter()
                .filter(|entry| entry.syntax.uuid == uuid && entry.syntax.version == major)
                .take(usize::try_from(max).unwrap_or(0))
            {
                towers.push(Full(Some(entry.twr()?)));
            }
        }
        let response = EptMapResponse {
            entry_handle: ContextHandle::NULL,
            num_towers: u32::try_from(towers.len()).unwrap_or(0),
            status: if towers.is_empty() {
                EPT_S_NOT_REGISTERED
            } else {
                Status::SUCCESS
            },
            towers: ConformantVarying {
                max_count: request.max_towers,
                items: towers,
            },
        };
        Ok(Bytes::from(encode_stub(&response, drep)?))
    }

    fn matches(request: &EptLookupRequest, entry: &MapEntry) -> bool {
        if !matches!(request.inquiry_type, MATCH_BY_IF | MATCH_BY_BOTH) {
            return true;
        }
        let Some(wanted) = request.interface_id.0.as_ref() else {
            return true;
        };
        let found = entry.syntax;
        if found.uuid != wanted.uuid {
            return false;
        }
        let (major, minor) = (wanted.vers_major, wanted.vers_minor);
        match request.vers_option {
            VERS_COMPATIBLE => found.version == major && found.version_minor >= minor,
            VERS_EXACT => found.version == major && found.version_minor == minor,
            VERS_MAJOR_ONLY => found.version == major,
            VERS_UPTO => (found.version, found.version_minor) <= (major, minor),
            _ => true,
        }
    }

    fn lookup(
        &self,
        ctx: &CallContext,
        request: &EptLookupRequest,
        drep: DataRep,
    ) -> Result<Bytes, CallError> {
        let start = if request.entry_handle.is_null() {
            0
        } else {
            let known = ctx.owns_context_handle(&request.entry_handle);
            match self.lookups().get(&request.entry_handle) {
                Some(&start) if known => start,
                _ => return Err(CallError::Fault(FaultStatus::FAULT_CONTEXT_MISMATCH)),
            }
        };
        let max = usize::try_from(request.max_ents.min(MAX_PAGE)).unwrap_or(0);
        let mut items = Vec::new();
        let mut next = start;
        for (index, entry) in self.entries.iter().enumerate().skip(start) {
            if items.len() >= max {
                break;
            }
            next = index + 1;
            if Self::matches(request, entry) {
                items.push(EptEntry {
                    object: Uuid::NIL,
                    tower: Full(Some(entry.twr()?)),
                    annotation: entry.annotation.clone(),
                });
            }
        }
        // How a list ends: see the module documentation.
        let full = !items.is_empty() && items.len() >= max;
        let status = if items.is_empty() {
            EPT_S_NOT_REGISTERED
        } else {
            Status::SUCCESS
        };
        let entry_handle = if full {
            let handle = if request.entry_handle.is_null() {
                ctx.new_context_handle()
                    .map_err(|_| CallError::Fault(FaultStatus::FAULT_REMOTE_NO_MEMORY))?
            } else {
                request.entry_handle
            };
            self.lookups().insert(handle, next);
            handle
        } else {
            if !request.entry_handle.is_null() {
                ctx.release_context_handle(&request.entry_handle);
                self.lookups().remove(&request.entry_handle);
            }
            ContextHandle::NULL
        };
        let response = EptLookupResponse {
            entry_handle,
            num_ents: u32::try_from(items.len()).unwrap_or(0),
            entries: ConformantVarying {
                max_count: request.max_ents,
                items,
            },
            status,
        };
        Ok(Bytes::from(encode_stub(&response, drep)?))
    }

    fn handle_free(
        &self,
        ctx: &CallContext,
        handle: &ContextHandle,
        drep: DataRep,
    ) -> Result<Bytes, CallError> {
        let known = ctx.release_context_handle(handle);
        let removed = self.lookups().remove(handle).is_some();
        let response = EptLookupHandleFreeResponse {
            entry_handle: ContextHandle::NULL,
            status: if known && removed {
                Status::SUCCESS
            } else {
                EPT_S_NOT_REGISTERED
            },
        };
        Ok(Bytes::from(encode_stub(&response, drep)?))
    }
}

impl RpcInterface for EndpointMapper {
    fn syntax(&self) -> SyntaxId {
        epm_syntax()
    }

    fn opnums(&self) -> u16 {
        // ept_insert, ept_delete, ept_lookup, ept_map, ept_lookup_handle_free.
        5
    }

    fn annotation(&self) -> &str {
        "Endpoint Mapper"
    }

    fn call(
        self: Arc<Self>,
        ctx: CallContext,
        opnum: u16,
        stub: Bytes,
        drep: DataRep,
    ) -> CallFuture {
        Box::pin(async move {
            let reply = ctx.reply_drep();
            match opnum {
                0 | 1 => Err(CallError::Fault(FaultStatus::ACCESS_DENIED)),
                _ => match EpmRequest::decode_shared(opnum, drep, &stub)? {
                    EpmRequest::EptMap(request) => self.map(&request, reply),
                    EpmRequest::EptLookup(request) => self.lookup(&ctx, &request, reply),
                    EpmRequest::EptLookupHandleFree(request) => {
                        self.handle_free(&ctx, &request.entry_handle, reply)
                    }
                },
            }
            .map(Chain::from)
        })
    }

    fn rundown(&self, handle: ContextHandle) {
        self.lookups().remove(&handle);
    }
}
