//! The interface a server serves ([`RpcInterface`]), what each call gets ([`CallContext`]) and
//! how it fails ([`CallError`]); the context handles of an association.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use dsbackup_proto::ndr::ContextHandle;
use dsbackup_proto::ndr::NdrError;
use dsbackup_proto::{
    AuthLevel, AuthType, Chain, DataRep, EncodeError, FaultStatus, PeerIdentity, SyntaxId, Uuid,
};

use crate::metrics::{Metrics, Snapshot};
use crate::nonce;

/// The future of a call: the NDR-encoded output stub (in [`CallContext::reply_drep`]) or
/// the error to fault the call with. The stub is a [`Chain`], so that an answer carrying a
/// large buffer (a backup read) is fragmented and written without being copied; a `Bytes`
/// or `Vec<u8>` stub converts with `into()`.
pub type CallFuture = Pin<Box<dyn Future<Output = Result<Chain, CallError>> + Send + 'static>>;

/// An interface served by a [`Server`](super::Server).
///
/// ```
/// use std::sync::Arc;
///
/// use bytes::Bytes;
/// use dsbackup_proto::{AuthLevel, DataRep, SyntaxId, Uuid};
/// use dsbackup_transport::{CallContext, CallError, CallFuture, RpcInterface};
///
/// /// Opnum 0 returns its input.
/// struct Echo;
///
/// impl RpcInterface for Echo {
///     fn syntax(&self) -> SyntaxId {
///         SyntaxId::new(Uuid::from_str_const("6b6f6f6c-0000-4000-8000-000000000001"), 1, 0)
///     }
///     fn opnums(&self) -> u16 {
///         1
///     }
///     fn min_auth_level(&self) -> AuthLevel {
///         AuthLevel::PKT_PRIVACY
///     }
///     fn call(self: Arc<Self>, _: CallContext, _: u16, stub: Bytes, _: DataRep) -> CallFuture {
///         Box::pin(async move { Ok::<_, CallError>(stub.into()) })
///     }
/// }
/// ```
pub trait RpcInterface: Send + Sync + 'static {
    /// The abstract syntax: UUID and version (a client's minor version up to this one is
    /// accepted).
    fn syntax(&self) -> SyntaxId;

    /// Number of operations: opnums `0..opnums()` exist; others fault `nca_s_op_rng_error`.
    fn opnums(&self) -> u16;

    /// The annotation in the endpoint map.
    fn annotation(&self) -> &str {
        ""
    }

    /// The lowest auth level a call must come at (`AuthLevel::NONE`: anonymous calls).
    fn min_auth_level(&self) -> AuthLevel {
        AuthLevel::NONE
    }

    /// Whether the first parameter of `opnum`'s request is a context handle: the runtime
    /// then faults a handle that is not the association's with
    /// `nca_s_fault_context_mismatch`, and runs calls naming the same handle in order.
    fn takes_context_handle(&self, opnum: u16) -> bool {
        let _ = opnum;
        false
    }

    /// Runs a call; `drep` is the byte order of `stub`.
    fn call(
        self: Arc<Self>,
        ctx: CallContext,
        opnum: u16,
        stub: Bytes,
        drep: DataRep,
    ) -> CallFuture;

    /// Releases a context handle the association registered and did not release, when the
    /// association dies.
    fn rundown(&self, handle: ContextHandle) {
        let _ = handle;
    }
}

/// Why a call faults.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// Fault with this status.
    #[error("fault {0}")]
    Fault(FaultStatus),
    /// The input stub does not decode: `rpc_x_bad_stub_data` (`nca_s_fault_ndr`).
    #[error("bad stub: {0}")]
    BadStub(#[from] NdrError),
    /// The output could not be encoded (a server bug): `nca_s_fault_cant_perform`.
    #[error("output not encodable: {0}")]
    Encode(#[from] EncodeError),
}

impl CallError {
    /// The fault status sent.
    pub fn status(&self) -> FaultStatus {
        match self {
            Self::Fault(status) => *status,
            Self::BadStub(_) => FaultStatus::BAD_STUB_DATA,
            Self::Encode(_) => FaultStatus::CANT_PERFORM,
        }
    }
}

impl From<FaultStatus> for CallError {
    fn from(status: FaultStatus) -> Self {
        Self::Fault(status)
    }
}

/// The context handles of one association.
pub(super) struct HandleTable {
    pub(super) handles: HashMap<ContextHandle, Arc<dyn RpcInterface>>,
    /// The association is gone: handles registered now are run down at once.
    pub(super) closed: bool,
}

/// What the calls of one association share.
pub(super) struct AssocState {
    pub(super) id: u64,
    pub(super) table: Mutex<HandleTable>,
}

impl AssocState {
    pub(super) fn table(&self) -> std::sync::MutexGuard<'_, HandleTable> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the association holds a context handle.
    pub(super) fn has_handles(&self) -> bool {
        !self.table().handles.is_empty()
    }

    /// Runs down every handle left (once).
    pub(super) fn run_down(&self) {
        let handles: Vec<_> = {
            let mut table = self.table();
            table.closed = true;
            table.handles.drain().collect()
        };
        for (handle, interface) in handles {
            interface.rundown(handle);
        }
    }
}

/// Who calls, how, and the association's context handles: what an interface gets with each
/// call.
#[derive(Clone)]
pub struct CallContext {
    pub(super) assoc: Arc<AssocState>,
    pub(super) interface: Arc<dyn RpcInterface>,
    pub(super) call_id: u32,
    pub(super) auth: Option<(AuthType, AuthLevel)>,
    pub(super) peer: Option<PeerIdentity>,
    pub(super) local_addr: SocketAddr,
    pub(super) remote_addr: SocketAddr,
    pub(super) reply_drep: DataRep,
    pub(super) stats: Metrics,
}

impl core::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CallContext")
            .field("association_id", &self.assoc.id)
            .field("call_id", &self.call_id)
            .field("auth", &self.auth)
            .field("peer", &self.peer)
            .field("remote_addr", &self.remote_addr)
            .finish_non_exhaustive()
    }
}

impl CallContext {
    /// The association's number on this server (from 1).
    pub fn association_id(&self) -> u64 {
        self.assoc.id
    }

    /// The call's `call_id`.
    pub fn call_id(&self) -> u32 {
        self.call_id
    }

    /// Who authenticated (user and domain from NTLM); `None` for an anonymous caller.
    pub fn peer(&self) -> Option<&PeerIdentity> {
        self.peer.as_ref()
    }

    /// The association's auth level (`AuthLevel::NONE` without authentication).
    pub fn auth_level(&self) -> AuthLevel {
        self.auth.map_or(AuthLevel::NONE, |(_, level)| level)
    }

    /// The association's auth type, if authenticated.
    pub fn auth_type(&self) -> Option<AuthType> {
        self.auth.map(|(auth_type, _)| auth_type)
    }

    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// The address the client connected to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The byte order the output stub is to be encoded in.
    pub fn reply_drep(&self) -> DataRep {
        self.reply_drep
    }

    /// Counters of the server.
    pub fn server_metrics(&self) -> Snapshot {
        self.stats.snapshot()
    }

    /// A fresh context handle (attributes 0, a random UUID), registered to the association.
    ///
    /// # Errors
    /// The OS error when no randomness is available.
    pub fn new_context_handle(&self) -> std::io::Result<ContextHandle> {
        let mut bytes = nonce::random::<16>()?;
        // RFC 4122 version 4, variant 1.
        if let Some(byte) = bytes.get_mut(6) {
            *byte = (*byte & 0x0f) | 0x40;
        }
        if let Some(byte) = bytes.get_mut(8) {
            *byte = (*byte & 0x3f) | 0x80;
        }
        let handle = ContextHandle {
            attributes: 0,
            uuid: Uuid(bytes),
        };
        self.register_context_handle(handle);
        Ok(handle)
    }

    /// Records that `handle` belongs to this association and to the interface of this call:
    /// it is run down when the association dies unless released first.
    pub fn register_context_handle(&self, handle: ContextHandle) {
        let mut table = self.assoc.table();
        if table.closed {
            drop(table);
            self.interface.rundown(handle);
            return;
        }
        table.handles.insert(handle, Arc::clone(&self.interface));
    }

    /// Forgets `handle` (closed by the client); whether it was the association's.
    pub fn release_context_handle(&self, handle: &ContextHandle) -> bool {
        self.assoc.table().handles.remove(handle).is_some()
    }

    /// Whether `handle` is one of the association's.
    pub fn owns_context_handle(&self, handle: &ContextHandle) -> bool {
        self.assoc.table().handles.contains_key(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_errors_map_to_the_fault_statuses_clients_expect() {
        assert_eq!(
            CallError::from(NdrError::UnknownOpnum {
                interface: "x",
                opnum: 9
            })
            .status(),
            FaultStatus::BAD_STUB_DATA
        );
        assert_eq!(
            CallError::from(FaultStatus::FAULT_CONTEXT_MISMATCH).status(),
            FaultStatus::FAULT_CONTEXT_MISMATCH
        );
    }
}
