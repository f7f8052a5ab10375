//! The exit codes of `dsbackup`, one per kind of failure, so scripts can tell them apart.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | any other failure |
//! | 2 | bad command line: clap's usage errors, and values that do not fit (a missing `--user`, `--read-size` out of range, a malformed `DSBACKUP_NT_HASH`, `mock-dc` with nothing to serve, a bad mock configuration) |
//! | 3 | verification failed: files of the set do not match the manifest |
//! | 4 | the server refused an operation (a status such as `ERROR_ACCESS_DENIED`) |
//! | 5 | authentication failed (wrong user or password; with Kerberos also the KDC's refusals: unknown service principal, clocks too far apart, an expired ticket or cache) |
//! | 6 | the server (or the KDC) could not be reached (name, port, endpoint mapper), or the connection broke |
//! | 7 | a local file problem: the backup set, the output directory, a missing configuration file, a disk error |
//! | 8 | a response failed its signature check, or SPNEGO's mechanism list MIC did not verify: the traffic was altered or corrupted |
//! | 9 | `online` only: the DC answered, and its directory service is offline (restore mode) |

use std::fmt;
use std::process::ExitCode;

use dsbackup_client::Error;
use dsbackup_mock::ConfigError;
use dsbackup_transport::TransportError;

/// Success.
pub(crate) const OK: u8 = 0;
/// Any other failure.
pub(crate) const FAILURE: u8 = 1;
/// A bad command line, found by clap or after it.
pub(crate) const USAGE: u8 = 2;
/// Verification failed.
pub(crate) const MISMATCH: u8 = 3;
/// The server refused an operation.
pub(crate) const REFUSED: u8 = 4;
/// Authentication failed.
pub(crate) const AUTH: u8 = 5;
/// Connection problem.
pub(crate) const CONNECTION: u8 = 6;
/// Local file problem.
pub(crate) const LOCAL: u8 = 7;
/// A response was altered on the way.
pub(crate) const INTEGRITY: u8 = 8;
/// `online`: the DC answered, and its directory service is offline (restore mode).
pub(crate) const OFFLINE: u8 = 9;

/// A usage error clap cannot see: a value that parses but does not fit (a missing `--user`,
/// a malformed `DSBACKUP_NT_HASH`, nothing to serve). Exit code 2, as clap's own.
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A usage error with `message`, for `?` and `return Err(..)`.
pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// The exit code for an error that ended a command: the first cause that has one.
pub(crate) fn code_of(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if cause.is::<Usage>() {
            return USAGE;
        }
        if let Some(explained) = cause.downcast_ref::<crate::diagnose::Explained>() {
            return explained.code;
        }
        if let Some(error) = cause.downcast_ref::<Error>() {
            return client_code(error);
        }
        if let Some(error) = cause.downcast_ref::<TransportError>() {
            return transport_code(error);
        }
        if let Some(error) = cause.downcast_ref::<ConfigError>() {
            return match error {
                ConfigError::Io { .. } => LOCAL,
                _ => USAGE,
            };
        }
        if cause.is::<std::io::Error>() {
            // A local file: a password file, an input of inspect, standard output.
            return LOCAL;
        }
    }
    FAILURE
}

/// Whether a transport error is the server refusing the credentials: a security error of the
/// handshake, or `nca_s_fault_access_denied` on a call that did not execute (how Windows and
/// Samba answer the first call after an AUTHENTICATE they reject).
pub(crate) fn is_refused_logon(error: &TransportError) -> bool {
    match error {
        // The KDC refused a ticket (a wrong password, clocks apart) or the ticket expired.
        TransportError::Kdc(kdc) => kdc.is_refusal(),
        _ => matches!(
            error,
            TransportError::Protocol(dsbackup_proto::ProtocolError::Security(_))
                | TransportError::Fault {
                    status: dsbackup_proto::FaultStatus::ACCESS_DENIED,
                    did_not_execute: true,
                }
        ),
    }
}

/// A transport error met outside the client library (`endpoints`).
fn transport_code(error: &TransportError) -> u8 {
    use dsbackup_proto::{ProtocolError, SecurityError};
    if let TransportError::Protocol(ProtocolError::Security(
        SecurityError::BadSignature | SecurityError::MechListMic(_),
    )) = error
    {
        return INTEGRITY;
    }
    if is_refused_logon(error) {
        return AUTH;
    }
    match error {
        _ if error.is_misuse() => USAGE,
        TransportError::Fault { .. } => REFUSED,
        _ => CONNECTION,
    }
}

fn client_code(error: &Error) -> u8 {
    match error {
        // What the library refused to do as asked (a value too long for the wire, a request
        // out of order): the command line's values, whatever layer found it.
        _ if error.is_misuse() => USAGE,
        Error::Status { .. } => REFUSED,
        Error::Mismatch { .. } => MISMATCH,
        Error::Io { .. } | Error::Manifest { .. } | Error::BadSet { .. } | Error::Target { .. } => {
            LOCAL
        }
        Error::Authentication { .. } => AUTH,
        Error::Integrity { .. } => INTEGRITY,
        Error::Transport { .. } | Error::BadResponse { .. } | Error::Protocol { .. } => CONNECTION,
        _ => FAILURE,
    }
}

/// What kind of failure `code` is, as the `--json` error object names it.
fn kind_of(code: u8) -> &'static str {
    match code {
        USAGE => "usage",
        MISMATCH => "mismatch",
        REFUSED => "refused",
        AUTH => "authentication",
        CONNECTION => "connection",
        LOCAL => "local",
        INTEGRITY => "integrity",
        _ => "failure",
    }
}

/// The `--json` document of an error: `{"error": {kind, message, status, status_name, hresult},
/// "exit_code"}`; the status fields are null when the server sent no status.
pub(crate) fn error_json(error: &anyhow::Error, message: &str, code: u8) -> serde_json::Value {
    let status = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Error>())
        .and_then(Error::status);
    serde_json::json!({
        "error": {
            "kind": kind_of(code),
            "message": message,
            "status": status.map(|status| status.0),
            "status_name": status.and_then(|status| status.name()),
            "hresult": status.map(|status| format!("{:#010x}", status.to_hresult().0)),
        },
        "exit_code": code,
    })
}

/// Exit code as the process returns it.
pub(crate) fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use dsbackup_proto::{ApiMisuse, FaultStatus, ProtocolError, SecurityError};
    use dsbackup_transport::TransportError;

    use super::*;

    #[test]
    fn altered_traffic_and_refused_credentials_have_their_own_codes() {
        let altered = anyhow::Error::new(Error::Integrity {
            context: "HrRBackupRead",
            source: TransportError::Protocol(ProtocolError::Security(SecurityError::BadSignature)),
        });
        assert_eq!(code_of(&altered), INTEGRITY);
        let refused = anyhow::Error::new(Error::Authentication {
            context: "connect to ad_backup",
            source: TransportError::Fault {
                status: FaultStatus::ACCESS_DENIED,
                did_not_execute: true,
            },
        })
        .context("backup failed");
        assert_eq!(code_of(&refused), AUTH);
    }

    #[test]
    fn misuse_is_usage_and_a_peers_violation_a_connection_failure() {
        let misuse = anyhow::Error::new(Error::Transport {
            context: "HrRBackupRead",
            source: TransportError::Misuse(ApiMisuse::UnknownContext { p_cont_id: 1 }),
        });
        assert_eq!(code_of(&misuse), USAGE);
        let peer = anyhow::Error::new(Error::Transport {
            context: "HrRBackupRead",
            source: TransportError::Protocol(ProtocolError::UnknownCallId { call_id: 4 }),
        });
        assert_eq!(code_of(&peer), CONNECTION);
        let endpoints = anyhow::Error::new(TransportError::Misuse(ApiMisuse::InvalidState {
            operation: "call",
            state: "binding",
        }));
        assert_eq!(code_of(&endpoints), USAGE);
    }
}
