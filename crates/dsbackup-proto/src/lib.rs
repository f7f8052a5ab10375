//! Sans-IO core of dsbackup: the connection-oriented DCE/RPC protocol of [C706] and [MS-RPCE],
//! NDR 2.0, and the interfaces an NTDS backup speaks (ad_backup, ad_restore, the endpoint mapper
//! and mgmt).
//!
//! Nothing in this crate touches a socket, a clock or a random number generator: drivers pass
//! bytes, time and identifiers in, and take bytes and events out.
//!
//! [C706]: https://pubs.opengroup.org/onlinepubs/9629399/
//! [MS-RPCE]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

pub mod assoc;
pub mod chain;
pub mod client;
mod codec;
pub mod drep;
pub mod error;
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
pub mod header;
pub mod iface;
pub mod names;
pub mod ndr;
pub mod observe;
pub mod pdu;
pub mod security;
pub mod server;
pub mod status;
pub mod syntax;
pub mod token;
pub mod uuid;
mod wire_enum;

pub use crate::assoc::{DEFAULT_FRAG_SIZE, Limits, MIN_FRAG_SIZE, Received};
pub use crate::chain::Chain;
pub use crate::client::{
    ClientAssociation, ClientConfig, ClientEvent, ContextOutcome, ContextReport,
};
pub use crate::drep::{ByteOrder, DataRep};
pub use crate::error::{ApiMisuse, DecodeError, EncodeError, ProtocolError};
pub use crate::framing::frame_len;
pub use crate::header::{CommonHeader, PacketType, PfcFlags};
pub use crate::iface::{CallInfo, DecodedStub, Direction, InterfaceId, decode_stub};
pub use crate::names::{BftKind, NameEntry};
pub use crate::ndr::{ContextHandle, NdrError};
pub use crate::pdu::{
    AlterContext, AlterContextResp, Auth3, AuthLocation, AuthVerifier, Bind, BindAck, BindNak,
    CoCancel, ContResult, ContextResult, DecodeLimits, Fault, FaultStatus, Orphaned, Pdu, PduBody,
    PortAny, PresentationContext, ProviderReason, RejectReason, Request, Response, Shutdown,
    Version, locate_auth, max_stub_len,
};
pub use crate::security::{
    AuthLevel, AuthStep, AuthType, PeerIdentity, Protection, SecurityError, SecurityProvider,
};
pub use crate::server::{
    Interface, SecurityFactory, ServerAssociation, ServerConfig, ServerEvent, ServerRequest,
};
pub use crate::status::Status;
pub use crate::syntax::{BindTimeFeatures, SyntaxId};
pub use crate::token::ExpiryToken;
pub use crate::uuid::{ParseUuidError, Uuid};
