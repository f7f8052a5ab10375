//! Sans-IO core of dsbackup: the connection-oriented DCE/RPC protocol of [C706] and [MS-RPCE],
//! NDR 2.0, and the interfaces an NTDS backup speaks (ad_backup, ad_restore, the endpoint mapper
//! and mgmt).
//!
//! Nothing in this crate touches a socket, a clock or a random number generator: drivers pass
//! bytes, time and identifiers in, and take bytes and events out.
//!
//! [C706]: https://pubs.opengroup.org/onlinepubs/9629399/
//! [MS-RPCE]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

mod assoc;
mod chain;
mod client;
mod codec;
mod drep;
mod error;
mod framing;
#[doc(hidden)]
pub mod fuzzing;
mod header;
pub mod iface;
mod names;
pub mod ndr;
pub mod observe;
mod pdu;
mod security;
mod server;
mod status;
mod syntax;
mod token;
pub mod trailer;
mod uuid;
mod wire_enum;

pub use crate::assoc::{DEFAULT_FRAG_SIZE, Limits, MIN_FRAG_SIZE, Received};
pub use crate::chain::{Chain, SHARE_AT_LEAST};
pub use crate::client::{
    ClientAssociation, ClientConfig, ClientEvent, ContextOutcome, ContextReport,
};
pub use crate::drep::{ByteOrder, DataRep};
pub use crate::error::{ApiMisuse, DecodeError, EncodeError, ProtocolError};
pub use crate::framing::frame_len;
pub use crate::header::{CommonHeader, PacketType, PfcFlags};
pub use crate::names::{BftKind, NameEntry, build_name_list, parse_name_list};
pub use crate::pdu::{
    AUTH_PAD_ALIGNMENT, AlterContext, AlterContextResp, Auth3, AuthLocation, AuthVerifier, Bind,
    BindAck, BindNak, CoCancel, ContResult, ContextResult, DecodeLimits, Fault, FaultStatus,
    Orphaned, Pdu, PduBody, PortAny, PresentationContext, ProviderReason, RejectReason, Request,
    Response, Shutdown, Version, locate_auth, max_stub_len,
};
pub use crate::security::{
    AuthLevel, AuthStep, AuthType, BatchError, PeerIdentity, ProtectedFragment, Protection,
    SecurityError, SecurityProvider, SpnegoMechanism, one_by_one,
};
pub use crate::server::{
    Interface, SecurityFactory, ServerAssociation, ServerConfig, ServerEvent, ServerRequest,
};
pub use crate::status::Status;
pub use crate::syntax::{BindTimeFeatures, SyntaxId};
pub use crate::token::ExpiryToken;
pub use crate::uuid::{ParseUuidError, Uuid};
