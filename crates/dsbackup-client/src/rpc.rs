//! The client's use of the transport: where an interface is served, one binding per interface
//! of a session, and typed calls (a request of the proto crate's call table in, its response
//! out, the status checked by the caller).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use dsbackup_proto::iface::InterfaceId;
use dsbackup_proto::iface::ad_backup::{
    AdBackupRequest, AdBackupResponse, HrRBackupReadRequest, HrRBackupReadResponse,
};
use dsbackup_proto::iface::ad_restore::{
    AdRestoreRequest, AdRestoreResponse, HrRRestoreGetDatabaseLocationsRequest,
};
use dsbackup_proto::ndr::ContextHandle;
use dsbackup_proto::ndr::NdrError;
use dsbackup_proto::{NameEntry, Status, SyntaxId};
use dsbackup_transport::{Binding, Reply, StringBinding};

use crate::client::{Endpoint, Inner};
use crate::error::Error;

/// One bound interface (an association of its own), shared by the calls of a session.
#[derive(Clone, Debug)]
pub(crate) struct Rpc {
    binding: Arc<Binding>,
}

impl Rpc {
    /// Binds `iface` through the client's registry (the endpoint mapper asked for its port
    /// unless the client has a fixed one): v1.0 first, v2.0 of the same UUID when the server
    /// refuses v1.0.
    pub(crate) async fn connect(inner: &Inner, iface: &'static InterfaceId) -> Result<Self, Error> {
        let context = bind_context(iface);
        let port = match inner.endpoint {
            Endpoint::Port(port) => Some(port),
            Endpoint::Mapper { .. } => None,
        };
        let versions = [iface.syntax(), SyntaxId::new(iface.uuid, 2, 0)];
        let binding = inner
            .registry
            .open(&StringBinding::tcp(inner.server.clone(), port), &versions)
            .await
            .map_err(Error::transport(context))?;
        tracing::debug!(
            interface = iface.name,
            peer = %binding.association().peer_addr(),
            "Bound"
        );
        Ok(Self {
            binding: Arc::new(binding),
        })
    }

    /// Calls an ad_backup operation. The returned future owns what it needs (several can be
    /// in flight on the binding).
    pub(crate) fn backup(
        &self,
        request: &AdBackupRequest,
    ) -> impl Future<Output = Result<AdBackupResponse, Error>> + Send + 'static {
        let call = backup_name(request.opnum());
        let opnum = request.opnum();
        let reply = self.backup_call(request);
        async move {
            let reply = reply.await?;
            AdBackupResponse::decode_shared(opnum, reply.drep, &reply.stub.to_bytes())
                .map_err(|source| Error::BadResponse { call, source })
        }
    }

    /// Calls `HrRBackupRead`: the response's data stays in the fragments that brought it.
    pub(crate) fn read(
        &self,
        request: HrRBackupReadRequest,
    ) -> impl Future<Output = Result<HrRBackupReadResponse, Error>> + Send + 'static {
        let request = AdBackupRequest::HrRBackupRead(request);
        let call = backup_name(request.opnum());
        let reply = self.backup_call(&request);
        async move {
            let reply = reply.await?;
            HrRBackupReadResponse::decode_chain(reply.drep, reply.stub)
                .map_err(|source| Error::BadResponse { call, source })
        }
    }

    /// Sends an ad_backup request; its reply, undecoded.
    fn backup_call(
        &self,
        request: &AdBackupRequest,
    ) -> impl Future<Output = Result<Reply, Error>> + Send + 'static + use<> {
        let call = backup_name(request.opnum());
        let opnum = request.opnum();
        let binding = Arc::clone(&self.binding);
        let stub = request
            .encode(binding.drep())
            .map_err(|source| Error::Encode { call, source });
        async move {
            binding
                .call(opnum, Bytes::from(stub?))
                .await
                .map_err(Error::transport(call))
        }
    }

    /// Calls an ad_restore operation.
    pub(crate) async fn restore(
        &self,
        request: &AdRestoreRequest,
    ) -> Result<AdRestoreResponse, Error> {
        let call = restore_name(request.opnum());
        let opnum = request.opnum();
        let stub = request
            .encode(self.binding.drep())
            .map_err(|source| Error::Encode { call, source })?;
        let reply = self
            .binding
            .call(opnum, Bytes::from(stub))
            .await
            .map_err(Error::transport(call))?;
        AdRestoreResponse::decode_shared(opnum, reply.drep, &reply.stub.to_bytes())
            .map_err(|source| Error::BadResponse { call, source })
    }

    /// Whether the binding's association is closed (by us, the server, or a failure).
    /// `HrRRestoreGetDatabaseLocations` on this (ad_restore) binding, with the handle of a
    /// restore session or of a backup session.
    pub(crate) async fn database_locations(
        &self,
        handle: ContextHandle,
    ) -> Result<Vec<NameEntry>, Error> {
        const CALL: &str = "HrRRestoreGetDatabaseLocations";
        let request = AdRestoreRequest::HrRRestoreGetDatabaseLocations(
            HrRRestoreGetDatabaseLocationsRequest { h_context: handle },
        );
        let AdRestoreResponse::HrRRestoreGetDatabaseLocations(response) =
            self.restore(&request).await?
        else {
            return Err(wrong_response(CALL));
        };
        name_list(CALL, response.status, response.entries())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.binding.association().is_closed()
    }

    /// Closes the binding's association (whatever state it is in); returns once it is gone.
    pub(crate) async fn close(&self) {
        self.binding.association().close().await;
    }
}

fn bind_context(iface: &InterfaceId) -> &'static str {
    if iface.name == "ad_restore" {
        "connect to ad_restore"
    } else {
        "connect to ad_backup"
    }
}

/// The IDL name of an ad_backup opnum (for error messages).
fn backup_name(opnum: u16) -> &'static str {
    dsbackup_proto::iface::ad_backup::INTERFACE
        .call(opnum)
        .map_or("ad_backup call", |call| call.name)
}

/// The IDL name of an ad_restore opnum.
fn restore_name(opnum: u16) -> &'static str {
    dsbackup_proto::iface::ad_restore::INTERFACE
        .call(opnum)
        .map_or("ad_restore call", |call| call.name)
}

/// `Ok` for a success status, [`Error::Status`] naming `call` otherwise.
pub(crate) fn check(call: &'static str, status: Status) -> Result<(), Error> {
    if status.is_success() {
        Ok(())
    } else {
        Err(Error::Status { call, status })
    }
}

/// The entries of a name-list response: its status checked first, then the list parsed.
pub(crate) fn name_list(
    call: &'static str,
    status: Status,
    entries: Result<Vec<NameEntry>, NdrError>,
) -> Result<Vec<NameEntry>, Error> {
    check(call, status)?;
    entries.map_err(|source| Error::BadResponse { call, source })
}

/// The error for a response of another operation than the one called (cannot happen: the
/// response is decoded by the request's opnum).
pub(crate) fn wrong_response(call: &'static str) -> Error {
    Error::Protocol {
        call,
        reason: "the response is of another operation".to_owned(),
    }
}
