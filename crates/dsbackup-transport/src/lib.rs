//! DCE/RPC over TCP (`ncacn_ip_tcp`) on tokio: the I/O around the sans-IO state machines of
//! `dsbackup-proto` and the NTLM provider of `dsbackup-ntlm`.
//!
//! - the client: [`Association`] (one connection, calls from many tasks multiplexed by call
//!   id, a deadline per call, cancellation on the wire when a caller gives up) and
//!   [`Binding`] (an interface on an association, with version fallback);
//! - endpoint resolution through the endpoint mapper ([`resolve()`]), and [`list_endpoints`];
//! - [`Registry`], which tracks the bindings it opens and closes them all;
//! - [`Server`], a runtime serving [`RpcInterface`]s with the endpoint mapper and mgmt built
//!   in;
//! - [`Metrics`]: counts of open bindings, associations, tasks and calls.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dsbackup_transport::TransportError> {
//! use bytes::Bytes;
//! use dsbackup_ntlm::Credentials;
//! use dsbackup_proto::{AuthLevel, SyntaxId, Uuid};
//! use dsbackup_transport::{ClientAuth, ClientOptions, Registry, StringBinding};
//!
//! let credentials = Credentials::from_password("svc-backup", "CORP", "s3cret!");
//! let options =
//!     ClientOptions::with_auth(ClientAuth::ntlm(credentials, AuthLevel::PKT_PRIVACY));
//! let registry = Registry::new(options);
//! let interface = SyntaxId::new(Uuid::from_str_const("12345678-1234-abcd-ef00-0123456789ab"), 1, 0);
//! // No endpoint: the port comes from the endpoint mapper on port 135.
//! let binding = registry.open(&"ncacn_ip_tcp:dc1.corp.example".parse()?, &[interface]).await?;
//! let reply = binding.call(0, Bytes::from_static(&[0; 8])).await?;
//! println!("{} bytes", reply.stub.len());
//! registry.close().await;
//! # Ok(())
//! # }
//! ```

mod binding;
mod client;
mod codec;
mod error;
mod kdc;
mod kerberos;
mod metrics;
mod nonce;
mod registry;
mod resolve;
mod server;
mod tap;
mod writer;

pub use crate::binding::{ParseBindingError, StringBinding};
pub use crate::client::{Association, Binding, ClientAuth, ClientOptions, Reply};
pub use crate::codec::{FrameCodec, FrameError};
pub use crate::error::TransportError;
pub use crate::kdc::{KdcClient, KdcError};
pub use crate::kerberos::{
    AcceptorConfig, ServiceKeys, TicketSource, Tickets, encode_keytab, parse_keytab,
};
pub use crate::metrics::{Metrics, Snapshot};
pub use crate::registry::Registry;
pub use crate::resolve::{
    EndpointEntry, epm_syntax, list_endpoints, lookup_host, mgmt_syntax, resolve, tcp_tower,
};
pub use crate::server::{
    CallContext, CallError, CallFuture, ConnectionHook, ConnectionTap, RpcInterface, RunningServer,
    Server, ServerOptions, Verdict,
};
pub use crate::tap::{Tap, TapEnds, TapEvent};
