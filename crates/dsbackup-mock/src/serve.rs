//! The mock DC on the network: [`MockDc`] behind the transport's server runtime, with the
//! endpoint mapper, mgmt and NTLM.
//!
//! ```text
//!  TCP ──► dsbackup_transport::Server ──(ad_backup / ad_restore calls)──► AdBackup / AdRestore
//!              │  NTLM acceptor ◄── MockDc::nt_hash; Kerberos ◄── a keytab      │
//!              │  context handles registered per association ◄──────────────┤ prepare / end
//!              └─ association gone ──► RpcInterface::rundown ──► MockDc::rundown
//! ```
//!
//! A sweeper task ends sessions idle past the configured timeout ([`MockDc::expire_idle`]).
//! Each call becomes a [`Caller`] (the authenticated user, the auth level, the association as
//! [`ConnectionId`]) and goes through [`MockDc::serve_stub`]; the delay the fault script asks
//! for is slept before the answer. Calls that name a context handle are checked by the runtime
//! against the association's handles and run in order, so pipelined reads are answered in the
//! order they were sent.
//!
//! The connection faults of the script (refused binds, connections dropped after N calls or N
//! bytes, a corrupted response fragment) are applied through the runtime's connection hook,
//! one [`ConnectionFaults`] per connection: a corrupted fragment is altered after signing or
//! sealing, so that the client's signature check sees it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use dsbackup_ntlm::{AcceptorConfig, CredentialStore};
use dsbackup_proto::Interface as ServerInterface;
use dsbackup_proto::iface::Interface;
use dsbackup_proto::iface::ad_backup::{self, AdBackupResponse};
use dsbackup_proto::iface::ad_restore::{self, AdRestoreResponse};
use dsbackup_proto::ndr::ContextHandle;
use dsbackup_proto::{AuthLevel, Chain, DataRep, Limits, SyntaxId};
use dsbackup_transport::AcceptorConfig as KerberosConfig;
use dsbackup_transport::{
    CallContext, CallError, CallFuture, ConnectionHook, ConnectionTap, RpcInterface, RunningServer,
    Server, ServerOptions, Snapshot, Tap, Verdict,
};

use crate::dc::{ByteOrders, Caller, ConnectionId, MockDc, ServeError};
use crate::faults::{ConnectionFaults, Faults, corrupt_fragment};

/// Where and how the mock DC listens.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The address of ad_backup, ad_restore (and an endpoint mapper); port 0 for any.
    pub listen: SocketAddr,
    /// A separate endpoint-mapper listener (`None`: only the one on `listen`).
    pub epm_listen: Option<SocketAddr>,
    /// The largest fragment the server sends and receives (1432..=65535).
    pub max_frag: u16,
    /// The NetBIOS domain the NTLM acceptor announces (empty: the configured one).
    pub domain: String,
    /// Unauthenticated callers act as this configured user (for benchmarks at auth level
    /// none); `None`: they are anonymous and hold no privilege.
    pub danger_anonymous_user: Option<String>,
    /// Where to copy every PDU served (a capture file); `None` for none.
    pub capture: Option<Tap>,
    /// Kerberos (auth type 16) from these service keys (a keytab), beside NTLM; clients of
    /// the keys' realm are the configured users of their name (`None`: NTLM only).
    pub kerberos: Option<KerberosConfig>,
}

impl ServeOptions {
    /// Loopback on any free port, no separate endpoint mapper, 64 KiB fragments.
    pub fn loopback() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            epm_listen: None,
            max_frag: u16::MAX,
            domain: String::new(),
            danger_anonymous_user: None,
            capture: None,
            kerberos: None,
        }
    }
}

/// A running mock DC. Dropping it stops the idle-session sweeper; [`shutdown`](Self::shutdown)
/// also closes every connection.
#[derive(Debug)]
pub struct MockServer {
    running: RunningServer,
    dc: MockDc,
    sweeper: tokio::task::JoinHandle<()>,
}

impl MockServer {
    /// Starts serving `dc`.
    ///
    /// # Errors
    /// The I/O error of binding a listener.
    pub async fn start(dc: MockDc, options: &ServeOptions) -> std::io::Result<Self> {
        let config = dc.config();
        let domain = if options.domain.is_empty() {
            config.domain.clone()
        } else {
            options.domain.clone()
        };
        let store: Arc<dyn CredentialStore> = Arc::new(dc.clone());
        let mut server_options = ServerOptions::default();
        server_options.listen = options.listen;
        server_options.epm_listen = options.epm_listen;
        let mut limits = Limits::server();
        let frag = options.max_frag.max(dsbackup_proto::MIN_FRAG_SIZE);
        limits.max_recv_frag = frag;
        limits.max_xmit_frag = frag;
        server_options.limits = limits;
        config.server.apply(&mut server_options);
        server_options.ntlm = Some(AcceptorConfig::new(
            store,
            &config.dc_name,
            &domain,
            "mock.example",
        ));
        server_options.kerberos = options.kerberos.clone().map(|mut kerberos| {
            kerberos.domain.get_or_insert_with(|| domain.clone());
            kerberos
        });
        server_options.principal_name = format!("{}$", config.dc_name);
        server_options.hook = Some(Arc::new(FaultHook(dc.faults().clone())));
        server_options.capture = options.capture.clone();
        let mut server = Server::new(server_options);
        for (interface, served) in MockDc::SERVED_INTERFACES
            .into_iter()
            .zip(dc.server_interfaces())
        {
            server.register(Arc::new(Service {
                dc: dc.clone(),
                interface,
                served,
                anonymous_user: options.danger_anonymous_user.clone(),
            }));
        }
        let running = server.start().await?;
        tracing::info!(
            addr = %running.local_addr(),
            epm = ?running.epm_addr(),
            dc = %dc.config().dc_name,
            "Mock DC listening"
        );
        let sweeper = tokio::spawn(sweep_idle(dc.clone()));
        Ok(Self {
            running,
            dc,
            sweeper,
        })
    }

    /// Where ad_backup and ad_restore (and an endpoint mapper) are served.
    pub fn local_addr(&self) -> SocketAddr {
        self.running.local_addr()
    }

    /// The separate endpoint-mapper listener, if any.
    pub fn epm_addr(&self) -> Option<SocketAddr> {
        self.running.epm_addr()
    }

    /// The mock's behaviour (sessions, faults, mode).
    pub fn dc(&self) -> &MockDc {
        &self.dc
    }

    /// The server's counters: associations, tasks, calls in flight.
    pub fn snapshot(&self) -> Snapshot {
        self.running.snapshot()
    }

    /// Stops serving (gracefully: calls in flight get their grace period); returns when every
    /// connection is closed.
    pub async fn shutdown(&self) {
        self.sweeper.abort();
        self.running.shutdown().await;
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.sweeper.abort();
    }
}

/// Ends the sessions idle past the configured timeout, checking a few times per timeout
/// (at least every second, at most every 30 s).
async fn sweep_idle(dc: MockDc) {
    let period =
        (dc.config().idle_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let ended = dc.expire_idle(SystemTime::now());
        if !ended.is_empty() {
            tracing::info!(sessions = ended.len(), "Idle sessions ended");
        }
    }
}

/// ad_backup or ad_restore of one mock DC.
struct Service {
    dc: MockDc,
    interface: Interface,
    /// Its syntax, opnum count and minimum auth level.
    served: ServerInterface,
    anonymous_user: Option<String>,
}

impl RpcInterface for Service {
    fn syntax(&self) -> SyntaxId {
        self.served.syntax
    }

    fn opnums(&self) -> u16 {
        self.served.opnums
    }

    fn annotation(&self) -> &str {
        self.interface.id().annotation
    }

    fn min_auth_level(&self) -> AuthLevel {
        self.served.min_auth_level
    }

    fn takes_context_handle(&self, opnum: u16) -> bool {
        match self.interface {
            // Every operation but HrRBackupPrepare (0) and HrRBackupPing (8).
            Interface::AdBackup => (1..=7).contains(&opnum),
            // Register (2), RegisterComplete (3), End (5). GetDatabaseLocations (4) also takes
            // the handle of a backup session, which lives on the ad_backup association.
            Interface::AdRestore => matches!(opnum, 2 | 3 | 5),
            Interface::Epm | Interface::Mgmt => false,
        }
    }

    fn call(
        self: Arc<Self>,
        ctx: CallContext,
        opnum: u16,
        stub: Bytes,
        drep: DataRep,
    ) -> CallFuture {
        Box::pin(async move {
            let caller = match ctx.peer() {
                Some(peer) => Caller::user(
                    peer.user.clone(),
                    peer.domain.clone(),
                    ctx.auth_level(),
                    ConnectionId(ctx.association_id()),
                ),
                None => match &self.anonymous_user {
                    Some(user) => Caller::user(
                        user.clone(),
                        "",
                        ctx.auth_level(),
                        ConnectionId(ctx.association_id()),
                    ),
                    None => Caller::anonymous(ConnectionId(ctx.association_id())),
                },
            };
            let ended = ended_handle(self.interface, opnum, drep, &stub);
            let reply = self
                .dc
                .serve_stub(
                    &caller,
                    SystemTime::now(),
                    self.interface,
                    opnum,
                    ByteOrders::new(drep, ctx.reply_drep()),
                    &stub,
                )
                .map_err(|error| match error {
                    ServeError::BadStub(error) => CallError::BadStub(error),
                    error => CallError::Fault(error.fault_status()),
                })?;
            self.track_handles(&ctx, opnum, &reply.response, ended);
            if !reply.delay.is_zero() {
                tokio::time::sleep(reply.delay).await;
            }
            Ok(reply.response)
        })
    }

    fn rundown(&self, handle: ContextHandle) {
        if self.dc.rundown(handle) {
            tracing::info!(interface = %self.interface, "Session run down: its association is gone");
        }
    }
}

impl Service {
    /// Registers the handle a successful prepare hands out with the association, and releases
    /// the one an end returns null for, so that the runtime checks and runs them down.
    fn track_handles(
        &self,
        ctx: &CallContext,
        opnum: u16,
        response: &Chain,
        ended: Option<ContextHandle>,
    ) {
        // The response is in the byte order its PDU will declare, not the request's.
        let drep = ctx.reply_drep();
        // Only the small answers below are read back (one segment: no copy); a read's answer,
        // whose data is a segment of its own, is never joined.
        let response = || response.to_bytes();
        match (self.interface, opnum) {
            (Interface::AdBackup, 0) => {
                if let Ok(AdBackupResponse::HrRBackupPrepare(r)) =
                    AdBackupResponse::decode(opnum, drep, &response())
                    && r.status.is_success()
                    && !r.ph_context.is_null()
                {
                    ctx.register_context_handle(r.ph_context);
                }
            }
            (Interface::AdRestore, 1) => {
                if let Ok(AdRestoreResponse::HrRRestorePrepare(r)) =
                    AdRestoreResponse::decode(opnum, drep, &response())
                    && r.status.is_success()
                    && !r.ph_context.is_null()
                {
                    ctx.register_context_handle(r.ph_context);
                }
            }
            (Interface::AdBackup, 1) => {
                if let (Some(handle), Ok(AdBackupResponse::HrRBackupEnd(r))) =
                    (ended, AdBackupResponse::decode(opnum, drep, &response()))
                    && r.status.is_success()
                {
                    ctx.release_context_handle(&handle);
                }
            }
            (Interface::AdRestore, 5) => {
                if let (Some(handle), Ok(AdRestoreResponse::HrRRestoreEnd(r))) =
                    (ended, AdRestoreResponse::decode(opnum, drep, &response()))
                    && r.status.is_success()
                {
                    ctx.release_context_handle(&handle);
                }
            }
            _ => {}
        }
    }
}

/// The handle an end request names (released from the association once the end succeeded).
fn ended_handle(
    interface: Interface,
    opnum: u16,
    drep: DataRep,
    request: &[u8],
) -> Option<ContextHandle> {
    match (interface, opnum) {
        (Interface::AdBackup, 1) => {
            match ad_backup::AdBackupRequest::decode(opnum, drep, request) {
                Ok(ad_backup::AdBackupRequest::HrRBackupEnd(r)) => Some(r.ph_context),
                _ => None,
            }
        }
        (Interface::AdRestore, 5) => {
            match ad_restore::AdRestoreRequest::decode(opnum, drep, request) {
                Ok(ad_restore::AdRestoreRequest::HrRRestoreEnd(r)) => Some(r.ph_context),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The connection faults of the live script, for the runtime's connection hook.
#[derive(Debug)]
struct FaultHook(Faults);

impl ConnectionHook for FaultHook {
    fn connection(&self, _remote: SocketAddr) -> Box<dyn ConnectionTap> {
        Box::new(FaultTap(ConnectionFaults::new(self.0.clone())))
    }
}

/// One connection's fault counters.
struct FaultTap(ConnectionFaults);

impl ConnectionTap for FaultTap {
    fn accept_bind(&mut self) -> bool {
        !self.0.refuse_bind()
    }

    fn on_call(&mut self) -> Verdict {
        if self.0.call_answered() {
            Verdict::Close
        } else {
            Verdict::Continue
        }
    }

    fn outgoing(&mut self, frame: &mut Chain) -> Verdict {
        const PTYPE_RESPONSE: u8 = 2;
        if frame.get(2) == Some(PTYPE_RESPONSE) && self.0.response_fragment() {
            frame.edit(corrupt_fragment);
        }
        let allowed = self.0.allow_bytes(frame.len());
        frame.truncate(allowed);
        if self.0.must_close() {
            Verdict::Close
        } else {
            Verdict::Continue
        }
    }
}
