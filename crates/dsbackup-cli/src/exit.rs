//! The exit codes of `dsbackup`, one per kind of failure, so scripts can tell them apart.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | any other failure |
//! | 2 | bad command line (clap's usage errors) |
//! | 3 | verification failed: files of the set do not match the manifest |
//! | 4 | the server refused an operation (a status such as `ERROR_ACCESS_DENIED`) |
//! | 5 | authentication failed (wrong user or password) |
//! | 6 | the server could not be reached, or the connection broke |
//! | 7 | a local file problem: the backup set, the output directory, a disk error |
//! | 8 | a response failed its signature check: the traffic was altered or corrupted |

use std::process::ExitCode;

use dsbackup_client::Error;

/// Success.
pub(crate) const OK: u8 = 0;
/// Any other failure.
pub(crate) const FAILURE: u8 = 1;
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

/// The exit code for an error that ended a command.
pub(crate) fn code_of(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(error) = cause.downcast_ref::<Error>() {
            return client_code(error);
        }
    }
    FAILURE
}

fn client_code(error: &Error) -> u8 {
    match error {
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

/// Exit code as the process returns it.
pub(crate) fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use dsbackup_proto::{FaultStatus, ProtocolError, SecurityError};
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
}
