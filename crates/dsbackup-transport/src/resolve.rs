//! Endpoint resolution through the endpoint mapper ([C706 Appendix O], [MS-RPCE §2.2.1.2]):
//! `ept_map` first; `ept_lookup` when `ept_map` finds nothing.
//!
//! Quirks handled: a tower address of 0.0.0.0 means the host we asked (Samba and Windows
//! behind NAT report it); `ept_lookup` ends with `ept_s_not_registered` (0x16c9a0d6) rather
//! than an empty page, and may or may not hand back a null entry handle with the last page.
//!
//! [C706 Appendix O]: https://pubs.opengroup.org/onlinepubs/9629399/apdxo.htm
//! [MS-RPCE §2.2.1.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;
use dsbackup_proto::iface::epm::{
    self, EPT_S_NOT_REGISTERED, EptEntry, EptLookupHandleFreeRequest, EptLookupHandleFreeResponse,
    EptLookupRequest, EptLookupResponse, EptMapRequest, EptMapResponse, Floor, RPC_C_EP_ALL_ELTS,
    RPC_C_VERS_ALL, Tower, Twr,
};
use dsbackup_proto::iface::mgmt;
use dsbackup_proto::ndr::{ContextHandle, Full, decode_stub, encode_stub};
use dsbackup_proto::{Status, SyntaxId, Uuid};

use crate::binding::{NCACN_IP_TCP, StringBinding};
use crate::client::{Binding, ClientOptions};
use crate::error::TransportError;
use crate::metrics::Metrics;

/// Opnums of the endpoint mapper.
const EPT_LOOKUP: u16 = 2;
const EPT_MAP: u16 = 3;
const EPT_LOOKUP_HANDLE_FREE: u16 = 4;

/// Entries asked for per `ept_lookup` page.
const LOOKUP_PAGE: u32 = 64;
/// Pages read at most (a server that never ends its list is cut off).
const MAX_LOOKUP_PAGES: usize = 1024;

/// The endpoint mapper's abstract syntax (v3.0).
pub fn epm_syntax() -> SyntaxId {
    epm::INTERFACE.syntax()
}

/// The management interface's abstract syntax (v1.0).
pub fn mgmt_syntax() -> SyntaxId {
    mgmt::INTERFACE.syntax()
}

/// The five-floor `ncacn_ip_tcp` tower of `interface` at `address`:`port`.
pub fn tcp_tower(interface: SyntaxId, port: u16, address: [u8; 4]) -> Tower {
    Tower {
        floors: vec![
            Floor::Uuid {
                uuid: interface.uuid,
                version_major: interface.version,
                version_minor: interface.version_minor,
            },
            Floor::Uuid {
                uuid: epm::NDR_TRANSFER_SYNTAX.0,
                version_major: epm::NDR_TRANSFER_SYNTAX.1,
                version_minor: 0,
            },
            Floor::ConnectionOriented { version_minor: 0 },
            Floor::Tcp { port },
            Floor::Ip { address },
        ],
    }
}

/// One entry of a server's endpoint map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointEntry {
    /// The object UUID (nil for most).
    pub object: Uuid,
    /// The interface of floor 1: UUID, major and minor version.
    pub interface: Option<SyntaxId>,
    /// The annotation.
    pub annotation: String,
    /// The tower as a string binding, when it is an `ncacn_ip_tcp` tower (other protocol
    /// sequences come back as `None`).
    pub binding: Option<StringBinding>,
    /// The tower.
    pub tower: Tower,
}

/// The socket address of the first address `host` resolves to on `port` (IPv4 first).
///
/// # Errors
/// [`TransportError::Io`] when the name does not resolve; [`TransportError::Resolve`] when it
/// resolves to nothing.
pub async fn lookup_host(host: &str, port: u16) -> Result<SocketAddr, TransportError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or(TransportError::Resolve(
            "the host name resolves to no address",
        ))
}

/// Where `interface` is served on the host of `epm`, the address of its endpoint mapper.
///
/// `ept_map` with a tower of the interface; when it returns no tower, the whole map is read
/// with `ept_lookup` and the first `ncacn_ip_tcp` entry of the interface (same UUID and major
/// version) is taken.
///
/// # Errors
/// [`TransportError::Resolve`] when the interface is not registered; errors of the calls.
pub async fn resolve(
    epm: SocketAddr,
    interface: SyntaxId,
    options: &ClientOptions,
) -> Result<SocketAddr, TransportError> {
    resolve_with(epm, interface, options, &Metrics::new()).await
}

pub(crate) async fn resolve_with(
    epm: SocketAddr,
    interface: SyntaxId,
    options: &ClientOptions,
    metrics: &Metrics,
) -> Result<SocketAddr, TransportError> {
    let binding = epm_binding(epm, options, metrics).await?;
    let result = resolve_on(&binding, epm, interface).await;
    binding.close().await;
    result
}

async fn epm_binding(
    epm: SocketAddr,
    options: &ClientOptions,
    metrics: &Metrics,
) -> Result<Binding, TransportError> {
    // The endpoint mapper answers anonymous calls; credentials are for the interface.
    let mut anonymous = options.clone();
    anonymous.auth = crate::client::ClientAuth::None;
    Binding::connect_with(epm, &[epm_syntax()], &anonymous, metrics).await
}

async fn resolve_on(
    binding: &Binding,
    epm: SocketAddr,
    interface: SyntaxId,
) -> Result<SocketAddr, TransportError> {
    if let Some(addr) = ept_map(binding, epm, interface).await? {
        return Ok(addr);
    }
    tracing::debug!(
        ?interface,
        "ept_map found nothing; reading the map with ept_lookup"
    );
    let entries = ept_lookup_all(binding).await?;
    entries
        .iter()
        .filter(|entry| {
            entry.interface.is_some_and(|found| {
                found.uuid == interface.uuid && found.version == interface.version
            })
        })
        .find_map(|entry| tower_addr(&entry.tower, epm.ip()))
        .ok_or(TransportError::Resolve(
            "the endpoint mapper does not know the interface",
        ))
}

/// The address a tower names; 0.0.0.0 (or no address floor) means `asked`.
fn tower_addr(tower: &Tower, asked: IpAddr) -> Option<SocketAddr> {
    let port = tower.tcp_port().filter(|&port| port != 0)?;
    let ip = match tower.ip_address() {
        Some(address) if address != [0; 4] => IpAddr::V4(Ipv4Addr::from(address)),
        _ => asked,
    };
    Some(SocketAddr::new(ip, port))
}

async fn ept_map(
    binding: &Binding,
    epm: SocketAddr,
    interface: SyntaxId,
) -> Result<Option<SocketAddr>, TransportError> {
    let request = EptMapRequest {
        object: Full(Some(Uuid::NIL)),
        map_tower: Full(Some(Twr::from_tower(&tcp_tower(interface, 0, [0; 4]))?)),
        entry_handle: ContextHandle::NULL,
        max_towers: 4,
    };
    let stub = encode_stub(&request, binding.drep())?;
    let reply = binding.call(EPT_MAP, Bytes::from(stub)).await?;
    let response: EptMapResponse =
        decode_stub(reply.drep, &reply.stub.to_bytes(), "ept_map response")?;
    if response.status != Status::SUCCESS {
        return Ok(None);
    }
    Ok(response
        .towers
        .items
        .iter()
        .filter_map(|twr| twr.0.as_ref())
        .filter_map(|twr| twr.tower().ok())
        .find_map(|tower| tower_addr(&tower, epm.ip())))
}

/// Every entry of the endpoint map, page by page.
async fn ept_lookup_all(binding: &Binding) -> Result<Vec<EndpointEntry>, TransportError> {
    let mut entries = Vec::new();
    let mut handle = ContextHandle::NULL;
    for _ in 0..MAX_LOOKUP_PAGES {
        let request = EptLookupRequest {
            inquiry_type: RPC_C_EP_ALL_ELTS,
            object: Full(None),
            interface_id: Full(None),
            vers_option: RPC_C_VERS_ALL,
            entry_handle: handle,
            max_ents: LOOKUP_PAGE,
        };
        let stub = encode_stub(&request, binding.drep())?;
        let reply = binding.call(EPT_LOOKUP, Bytes::from(stub)).await?;
        let response: EptLookupResponse =
            decode_stub(reply.drep, &reply.stub.to_bytes(), "ept_lookup response")?;
        handle = response.entry_handle;
        if response.status == EPT_S_NOT_REGISTERED {
            break;
        }
        if response.status != Status::SUCCESS {
            return Err(TransportError::Resolve("ept_lookup failed"));
        }
        entries.extend(response.entries.items.iter().map(entry));
        if handle.is_null() || response.entries.items.is_empty() {
            break;
        }
    }
    if !handle.is_null() {
        let request = EptLookupHandleFreeRequest {
            entry_handle: handle,
        };
        let stub = encode_stub(&request, binding.drep())?;
        let reply = binding
            .call(EPT_LOOKUP_HANDLE_FREE, Bytes::from(stub))
            .await?;
        let _: EptLookupHandleFreeResponse = decode_stub(
            reply.drep,
            &reply.stub.to_bytes(),
            "ept_lookup_handle_free response",
        )?;
    }
    Ok(entries)
}

fn entry(entry: &EptEntry) -> EndpointEntry {
    let tower = entry
        .tower
        .0
        .as_ref()
        .and_then(|twr| twr.tower().ok())
        .unwrap_or_default();
    let interface = tower
        .interface()
        .map(|(uuid, major, minor)| SyntaxId::new(uuid, major, minor));
    let is_tcp = tower
        .floors
        .iter()
        .any(|floor| matches!(floor, Floor::Tcp { .. }));
    let binding = is_tcp.then(|| StringBinding {
        object: (entry.object != Uuid::NIL).then_some(entry.object),
        protseq: NCACN_IP_TCP.to_owned(),
        host: Ipv4Addr::from(tower.ip_address().unwrap_or([0; 4])).to_string(),
        endpoint: tower.tcp_port().map(|port| port.to_string()),
        options: Vec::new(),
    });
    EndpointEntry {
        object: entry.object,
        interface,
        annotation: entry.annotation.clone(),
        binding,
        tower,
    }
}

/// Every entry of the endpoint map of the server at `epm` (what `rpcdump` lists).
///
/// # Errors
/// Errors of the connection and of the calls.
pub async fn list_endpoints(
    epm: SocketAddr,
    options: &ClientOptions,
) -> Result<Vec<EndpointEntry>, TransportError> {
    list_on(epm, options, &Metrics::new()).await
}

async fn list_on(
    epm: SocketAddr,
    options: &ClientOptions,
    metrics: &Metrics,
) -> Result<Vec<EndpointEntry>, TransportError> {
    let binding = Binding::connect_with(epm, &[epm_syntax()], options, metrics).await?;
    let result = ept_lookup_all(&binding).await;
    binding.close().await;
    result
}
