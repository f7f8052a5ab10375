//! Kerberos 5 for DCE/RPC, sans-IO: the encryption types ([RFC 3961], [RFC 3962],
//! [RFC 4757]), the messages of [RFC 4120], the KDC exchanges as state machines that hand out
//! the bytes to send and take the bytes received, and the per-message tokens of [RFC 4121].
//!
//! Nothing here touches a socket, a clock or a random number generator: the caller passes the
//! time, the nonces, the confounders and the subkeys in.
//!
//! [RFC 3961]: https://www.rfc-editor.org/rfc/rfc3961
//! [RFC 3962]: https://www.rfc-editor.org/rfc/rfc3962
//! [RFC 4120]: https://www.rfc-editor.org/rfc/rfc4120
//! [RFC 4121]: https://www.rfc-editor.org/rfc/rfc4121
//! [RFC 4757]: https://www.rfc-editor.org/rfc/rfc4757

mod acceptor;
mod config;
mod crypto;
mod der;
mod error;
mod exchange;
mod files;
#[doc(hidden)]
pub mod fuzzing;
mod gss;
mod gss_rc4;
mod messages;
mod spnego;
mod spnego_observer;
mod wire;

pub use crate::acceptor::{
    Accepted, AcceptorConfig, AcceptorInputs, KerberosAcceptor, MAX_SKEW, ReplayCache, ServiceKeys,
    verify_ap_req,
};
pub use crate::config::Krb5Conf;
pub use crate::crypto::{EncType, Key, nfold};
pub use crate::der::KerberosTime;
pub use crate::error::{CryptoError, DecodeError, KrbError};
pub use crate::exchange::{AsExchange, AsStep, Credential, Grant, Inputs, Secret, TgsExchange};
pub use crate::files::{
    Ccache, KeytabEntry, encode_ccache, encode_keytab, parse_ccache, parse_keytab,
};
pub use crate::gss::{Confounders, InitiatorInputs, KerberosInitiator, initial_context_token};
pub use crate::messages::{
    ApRep, ApReq, Authenticator, Checksum, EncApRepPart, EncKdcRepPart, EncTicketPart,
    EncryptedData, EncryptionKey, ErrorCode, EtypeInfo2, KdcRep, KdcReply, KdcReq, KrbErrorMsg,
    PaData, PrincipalName, Ticket, ap_options, kdc_options, name_type, pa_type, usage,
};
pub use crate::spnego::{
    KRB5_OID, MS_KRB5_OID, MechFactory, NTLM_OID, NegTokenInit, NegTokenResp, Offer, SPNEGO_OID,
    SpnegoAcceptor, SpnegoInitiator, is_kerberos, neg_state,
};
pub use crate::spnego_observer::SpnegoEavesdropper;
