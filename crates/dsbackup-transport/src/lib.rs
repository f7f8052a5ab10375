//! DCE/RPC over TCP (`ncacn_ip_tcp`) on tokio: the I/O around the sans-IO state machines of
//! `dsbackup-proto` and the NTLM provider of `dsbackup-ntlm`.
//!
//! - [`client`]: [`Association`] (one connection, calls from many tasks multiplexed by call
//!   id, a deadline per call, cancellation on the wire when a caller gives up) and
//!   [`Binding`] (an interface on an association, with version fallback);
//! - [`resolve`](mod@resolve): endpoint resolution through the endpoint mapper, and [`list_endpoints`];
//! - [`registry`]: [`Registry`], which tracks the bindings it opens and closes them all;
//! - [`server`]: [`Server`], a runtime serving [`RpcInterface`]s with the endpoint mapper and
//!   mgmt built in;
//! - [`metrics`]: counts of open bindings, associations, tasks and calls.
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

pub mod binding;
pub mod client;
pub mod codec;
pub mod error;
pub mod kdc;
pub mod kerberos;
pub mod metrics;
mod nonce;
pub mod registry;
pub mod resolve;
pub mod server;
pub mod tap;
mod writer;

pub use crate::binding::{ParseBindingError, StringBinding};
pub use crate::client::{Association, Binding, ClientAuth, ClientOptions, Reply};
pub use crate::codec::{FrameCodec, FrameError};
pub use crate::error::TransportError;
pub use crate::kdc::{KdcClient, KdcError};
pub use crate::kerberos::{TicketSource, Tickets};
pub use crate::metrics::{Metrics, Snapshot};
pub use crate::registry::Registry;
pub use crate::resolve::{EndpointEntry, list_endpoints, resolve};
pub use crate::server::{
    CallContext, CallError, CallFuture, ConnectionHook, ConnectionTap, RpcInterface, RunningServer,
    Server, ServerOptions, Verdict,
};
pub use crate::tap::{Tap, TapEnds, TapEvent};
