//! The one error type of the crate, its variants split by whose fault it was.

use std::io;
use std::path::PathBuf;

use dsbackup_proto::Status;
use dsbackup_proto::ndr::NdrError;
use dsbackup_proto::{EncodeError, FaultStatus, ProtocolError, RejectReason, SecurityError};
use dsbackup_transport::TransportError;

/// What went wrong in a call of this crate.
///
/// | fault | variants |
/// | --- | --- |
/// | the server answered with a failure status | [`Error::Status`] |
/// | the server broke the protocol | [`Error::BadResponse`], [`Error::Protocol`] |
/// | the server refused our credentials | [`Error::Authentication`] |
/// | a response was altered on the way (a signature that does not verify) | [`Error::Integrity`] |
/// | the network or the RPC layer | [`Error::Transport`] |
/// | the local disk | [`Error::Io`], [`Error::Target`] |
/// | the caller stopped it | [`Error::Interrupted`] |
/// | the backup set on disk | [`Error::Manifest`], [`Error::BadSet`], [`Error::Mismatch`] |
/// | the caller | [`Error::Misuse`], [`Error::Encode`] |
/// | this library (a bug) | [`Error::Internal`] |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered `call` with a failure status (`hr*` or Win32 code, named).
    #[error("{call} failed: {status}")]
    Status {
        /// The RPC operation, e.g. `HrRBackupPrepare`.
        call: &'static str,
        /// What the server said.
        status: Status,
    },
    /// The server's answer to `call` does not decode.
    #[error("malformed {call} response: {source}")]
    BadResponse {
        /// The RPC operation.
        call: &'static str,
        /// Why the stub does not decode.
        source: NdrError,
    },
    /// The server's answers make no sense together (e.g. a file longer than it said).
    #[error("server broke the protocol in {call}: {reason}")]
    Protocol {
        /// The RPC operation.
        call: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The server refused our credentials (bind rejected, access denied at the RPC layer, or
    /// a failed NTLM exchange), or the KDC refused to give a Kerberos ticket for it.
    #[error(
        "authentication failed: the {} refused the credentials ({context}: {source})",
        if matches!(source, TransportError::Kdc(_)) { "KDC" } else { "server" }
    )]
    Authentication {
        /// What was being done, e.g. `connect to ad_backup`.
        context: &'static str,
        /// The transport's error.
        source: TransportError,
    },
    /// A response failed its signature check (or came out of sequence) at
    /// `RPC_C_AUTHN_LEVEL_PKT_INTEGRITY` or above: the logon had succeeded, so the session key
    /// is right and the traffic was altered or corrupted on the way. The association is failed
    /// for good; a retry on a new connection may succeed.
    #[error(
        "{context} failed: a response failed its signature check: the traffic was altered or \
         corrupted ({source})"
    )]
    Integrity {
        /// What was being done, e.g. `HrRBackupRead`.
        context: &'static str,
        /// The transport's error.
        source: TransportError,
    },
    /// The RPC transport failed: connection, bind, fault, timeout, the server going away.
    #[error("{context} failed: {source}{}", lost_hint(source))]
    Transport {
        /// What was being done, e.g. `HrRBackupRead`.
        context: &'static str,
        /// The transport's error.
        source: TransportError,
    },
    /// A local file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// `manifest.json` cannot be read or written.
    #[error("manifest {}: {source}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The backup set on disk is not usable (missing manifest, a path leaving the set, ...).
    #[error("backup set {}: {reason}", path.display())]
    BadSet {
        /// The backup directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Files of the backup set do not match their manifest entries.
    #[error("{failed} of {total} files do not match the manifest")]
    Mismatch {
        /// Files that are missing, of another size or another SHA-256.
        failed: usize,
        /// Files in the manifest.
        total: usize,
    },
    /// A restore target was refused: no path-map rule covers the server's path, the path leaves
    /// its mapped root, a component is a symbolic link, or the file exists and replacing was
    /// not asked for.
    #[error("restore target {server_path:?}: {reason}")]
    Target {
        /// The server's path (`HrRRestoreGetDatabaseLocations` and the file's name).
        server_path: String,
        /// Why it is refused, naming the option that would change it.
        reason: String,
    },
    /// The caller's interruption (a signal) stopped the operation; the server session was
    /// ended and nothing partial was left.
    #[error("interrupted")]
    Interrupted,
    /// The caller used the API in a way it does not allow (named in the message).
    #[error("{0}")]
    Misuse(&'static str),
    /// A value the caller gave cannot be carried by `call`'s request (a name or token longer
    /// than its wire field); nothing was sent.
    #[error("{call} request cannot be encoded: {source}")]
    Encode {
        /// The RPC operation.
        call: &'static str,
        /// What does not fit.
        source: EncodeError,
    },
    /// An invariant of this library broke (a bug: neither the caller's nor the server's
    /// doing), named in the message.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// The server status behind the error, if the server answered with one.
    pub fn status(&self) -> Option<Status> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the server refused our credentials.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, Self::Authentication { .. })
    }

    /// Whether a response was altered on the way (its signature did not verify).
    pub fn is_integrity_failure(&self) -> bool {
        matches!(self, Self::Integrity { .. })
    }

    /// Whether the caller is to blame: the API used in a way it does not allow, a value too
    /// long for the wire, or a request the transport refused to send
    /// ([`TransportError::is_misuse`]).
    pub fn is_misuse(&self) -> bool {
        match self {
            Self::Misuse(_) | Self::Encode { .. } => true,
            Self::Transport { source, .. } => source.is_misuse(),
            _ => false,
        }
    }

    /// Whether the server is to blame: an answer that does not decode, answers that
    /// contradict each other, or a PDU that breaks the RPC protocol
    /// ([`TransportError::is_peer_fault`]; a response altered on the way is
    /// [`Error::Integrity`] instead).
    pub fn is_peer_fault(&self) -> bool {
        match self {
            Self::BadResponse { .. } | Self::Protocol { .. } => true,
            Self::Transport { source, .. } => source.is_peer_fault(),
            _ => false,
        }
    }

    /// The error for a transport failure while doing `context`: [`Error::Integrity`] when a
    /// response's signature did not verify, [`Error::Authentication`] when the failure says
    /// the credentials were refused, [`Error::Transport`] otherwise.
    pub(crate) fn transport(context: &'static str) -> impl FnOnce(TransportError) -> Self {
        move |source| {
            if is_tampering(&source) {
                Self::Integrity { context, source }
            } else if is_auth_refusal(&source) {
                Self::Authentication { context, source }
            } else {
                Self::Transport { context, source }
            }
        }
    }

    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    /// An [`Error::BadSet`] for `path`.
    pub(crate) fn bad_set(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::BadSet {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// A hint for errors that mean the connection is gone.
fn lost_hint(error: &TransportError) -> &'static str {
    match error {
        TransportError::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            " (nothing listens there)"
        }
        TransportError::Closed | TransportError::Io(_) => {
            " (the connection to the server was lost)"
        }
        TransportError::TimedOut => " (the server did not answer in time)",
        _ => "",
    }
}

/// Whether a transport error means a response was altered on the way.
///
/// The client only checks signatures once the handshake has completed (the server accepted
/// the AUTHENTICATE message, or it would have faulted the call with `nca_s_fault_access_denied`
/// instead of answering), so a signature that does not verify is not a credentials problem.
///
/// SPNEGO's mechanism list MIC that does not verify is one too: the server's signature over
/// the negotiation, which only an alteration on the way breaks once it accepted us.
fn is_tampering(error: &TransportError) -> bool {
    matches!(
        error,
        TransportError::Protocol(ProtocolError::Security(
            SecurityError::BadSignature | SecurityError::MechListMic(_)
        ))
    )
}

/// Whether a transport error means the server refused our credentials.
fn is_auth_refusal(error: &TransportError) -> bool {
    let auth_fault = |status: &FaultStatus| {
        matches!(
            *status,
            FaultStatus::ACCESS_DENIED | FaultStatus::SEC_PKG_ERROR
        )
    };
    let auth_reject = |reason: &RejectReason| {
        matches!(
            *reason,
            RejectReason::AUTHENTICATION_TYPE_NOT_RECOGNIZED | RejectReason::INVALID_CHECKSUM
        )
    };
    match error {
        TransportError::Fault { status, .. } => auth_fault(status),
        TransportError::BindRejected(reason) => auth_reject(reason),
        TransportError::Protocol(ProtocolError::Security(_)) => true,
        // The KDC refused (a wrong password, an unknown service, clocks apart) or the ticket
        // expired; a KDC that cannot be reached is a transport failure.
        TransportError::Kdc(error) => error.is_refusal(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use dsbackup_proto::{ApiMisuse, PacketType};

    use super::*;

    #[test]
    fn status_errors_name_the_hr_code() {
        let error = Error::Status {
            call: "HrRBackupPrepare",
            status: Status::HR_BACKUP_IN_PROGRESS,
        };
        let text = error.to_string();
        assert!(text.starts_with("HrRBackupPrepare failed: "), "{text}");
        assert!(text.contains("0xc80001f9"), "{text}");
        assert!(text.contains("hrBackupInProgress"), "{text}");
        assert_eq!(error.status(), Some(Status::HR_BACKUP_IN_PROGRESS));
    }

    #[test]
    fn a_bad_signature_is_an_integrity_failure_not_a_refused_logon() {
        let error = Error::transport("HrRBackupRead")(TransportError::Protocol(
            ProtocolError::Security(SecurityError::BadSignature),
        ));
        assert!(error.is_integrity_failure(), "{error:?}");
        assert!(!error.is_auth_failure(), "{error:?}");
        let text = error.to_string();
        assert!(
            text.starts_with(
                "HrRBackupRead failed: a response failed its signature check: \
                 the traffic was altered or corrupted ("
            ),
            "{text}"
        );
        assert!(!text.contains("credentials"), "{text}");
    }

    #[test]
    fn refused_credentials_stay_an_authentication_failure() {
        let refusals = [
            TransportError::Protocol(ProtocolError::Security(SecurityError::LogonFailure(
                "NTProofStr does not verify",
            ))),
            TransportError::Fault {
                status: FaultStatus::ACCESS_DENIED,
                did_not_execute: true,
            },
            TransportError::BindRejected(RejectReason::AUTHENTICATION_TYPE_NOT_RECOGNIZED),
        ];
        for source in refusals {
            let error = Error::transport("connect to ad_backup")(source);
            assert!(error.is_auth_failure(), "{error:?}");
            assert!(!error.is_integrity_failure(), "{error:?}");
            assert!(
                error
                    .to_string()
                    .contains("the server refused the credentials"),
                "{error}"
            );
        }
    }

    #[test]
    fn each_error_is_the_callers_or_the_peers_fault_or_neither() {
        let transport = |source| Error::transport("HrRBackupRead")(source);
        let misuse = [
            Error::Misuse("no file is open"),
            Error::Encode {
                call: "HrRBackupOpenFile",
                source: EncodeError::TooLong {
                    what: "name",
                    field: "size_is",
                    value: 1 << 20,
                    max: 1 << 16,
                },
            },
            transport(TransportError::Misuse(ApiMisuse::UnknownContext {
                p_cont_id: 7,
            })),
            transport(TransportError::Misuse(ApiMisuse::LimitExceeded {
                what: "calls in flight",
                value: 65,
                limit: 64,
            })),
        ];
        for error in misuse {
            assert!(error.is_misuse() && !error.is_peer_fault(), "{error:?}");
        }
        let peer = [
            transport(TransportError::Protocol(ProtocolError::UnexpectedPdu {
                expected: &[PacketType::RESPONSE],
                got: PacketType::BIND_ACK,
            })),
            transport(TransportError::Protocol(ProtocolError::LimitExceeded {
                what: "reassembled stub",
                value: 1 << 30,
                limit: 1 << 24,
            })),
            Error::Protocol {
                call: "HrRBackupRead",
                reason: "a file longer than announced".into(),
            },
        ];
        for error in peer {
            assert!(error.is_peer_fault() && !error.is_misuse(), "{error:?}");
        }
        // A status, an altered response, a refused logon and a lost connection are neither.
        let neither = [
            Error::Status {
                call: "HrRBackupPrepare",
                status: Status::HR_BACKUP_IN_PROGRESS,
            },
            transport(TransportError::Protocol(ProtocolError::Security(
                SecurityError::BadSignature,
            ))),
            transport(TransportError::Protocol(ProtocolError::Security(
                SecurityError::LogonFailure("NTProofStr does not verify"),
            ))),
            transport(TransportError::Closed),
        ];
        for error in neither {
            assert!(!error.is_misuse() && !error.is_peer_fault(), "{error:?}");
        }
    }
}
