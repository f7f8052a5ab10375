//! Sans-IO core of dsbackup: the connection-oriented DCE/RPC protocol of [C706] and [MS-RPCE],
//! NDR 2.0, and the interfaces an NTDS backup speaks (ad_backup, ad_restore, the endpoint mapper
//! and mgmt).
//!
//! Nothing in this crate touches a socket, a clock or a random number generator: drivers pass
//! bytes, time and identifiers in, and take bytes and events out.
//!
//! [C706]: https://pubs.opengroup.org/onlinepubs/9629399/
//! [MS-RPCE]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

pub mod drep;
pub mod error;
pub mod iface;
pub mod names;
pub mod ndr;
pub mod security;
pub mod status;
pub mod token;
pub mod uuid;

pub use crate::drep::{ByteOrder, DataRep};
pub use crate::error::{DecodeError, EncodeError, ProtocolError};
pub use crate::iface::{CallInfo, DecodedStub, Direction, Interface, InterfaceId, decode_stub};
pub use crate::names::{BftKind, NameEntry};
pub use crate::ndr::{ContextHandle, NdrError};
pub use crate::security::{
    AuthLevel, AuthStep, AuthType, Protection, SecurityError, SecurityProvider,
};
pub use crate::status::Status;
pub use crate::token::ExpiryToken;
pub use crate::uuid::{ParseUuidError, Uuid};
