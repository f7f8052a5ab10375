//! Failures told by their cause and their fix. A transport error says what broke ("connection
//! refused", "packet type 72 is not a connection-oriented PDU"); the command line knows what
//! the user asked for (`--server`, `--epm-port`, `--port`), and looks once more where needed
//! (a name lookup, a connection to the endpoint mapper, whether the DC is online) to say which
//! of them is wrong.

use std::fmt;
use std::time::Duration;

use dsbackup_client::{Client, Error};
use dsbackup_proto::{DecodeError, ProtocolError};
use dsbackup_transport::TransportError;

use crate::connect::ConnectArgs;
use crate::exit;

/// A failure explained in place of the error that revealed it, with its exit code.
#[derive(Debug)]
pub(crate) struct Explained {
    pub(crate) message: String,
    pub(crate) code: u8,
}

impl fmt::Display for Explained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Explained {}

/// How long the second look at the endpoint mapper may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The transport error in `error`'s chain.
fn transport(error: &anyhow::Error) -> Option<&TransportError> {
    error.chain().find_map(|cause| {
        cause
            .downcast_ref::<TransportError>()
            .or_else(|| match cause.downcast_ref::<Error>() {
                Some(Error::Transport { source, .. }) => Some(source),
                _ => None,
            })
    })
}

/// `error` with its cause named, when it is one of a connection: a name that does not resolve,
/// nothing listening where the endpoint mapper was asked for, a peer that is not DCE/RPC.
pub(crate) async fn connection(connect: &ConnectArgs, error: anyhow::Error) -> anyhow::Error {
    if let Some(target) = unescaped_target(&error) {
        return target;
    }
    let refused_logon = error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<Error>(),
            Some(Error::Authentication { .. })
        )
    });
    if refused_logon && connect.auth != crate::connect::Auth::Privacy {
        // Windows and Samba answer a level under their minimum as they answer a wrong
        // password: say both.
        let level = connect.auth.name();
        return anyhow::Error::new(Explained {
            message: format!(
                "the server refused the credentials, or the authentication level --auth {level}: \
                 a DC takes backup calls at --auth privacy (the default); with it, check --user, \
                 --domain and the password ({})",
                crate::render(&error)
            ),
            code: exit::AUTH,
        });
    }
    let Some(failure) = transport(&error) else {
        return error;
    };
    let server = &connect.server;
    let (port, flag) = match connect.port {
        Some(port) => (port, "--port"),
        None => (connect.epm_port, "--epm-port"),
    };
    let explained = |message: String| {
        anyhow::Error::new(Explained {
            message,
            code: exit::CONNECTION,
        })
    };
    match failure {
        TransportError::Protocol(ProtocolError::Malformed(
            DecodeError::UnknownPacketType { .. } | DecodeError::UnsupportedVersion { .. },
        )) => explained(format!(
            "{server} port {port} ({flag}) is not a DCE/RPC server: its answer is not an RPC \
             PDU ({failure}); check {flag}{}",
            if connect.port.is_none() {
                " (a DC's endpoint mapper is on 135)"
            } else {
                ""
            }
        )),
        TransportError::Io(io) => {
            if let Err(lookup) = tokio::net::lookup_host((server.as_str(), port)).await {
                return explained(format!(
                    "cannot resolve the server name {server:?} ({lookup}): check --server and \
                     the DNS"
                ));
            }
            if io.kind() != std::io::ErrorKind::ConnectionRefused {
                return error;
            }
            let probe = tokio::time::timeout(
                PROBE_TIMEOUT,
                tokio::net::TcpStream::connect((server.as_str(), port)),
            )
            .await;
            match probe {
                Ok(Err(refused)) if refused.kind() == std::io::ErrorKind::ConnectionRefused => {
                    explained(match connect.port {
                        None => format!(
                            "nothing listens on {server} port {port}, where the endpoint mapper \
                             was asked where ad_backup is: check --epm-port (a DC's endpoint \
                             mapper is on 135), or give ad_backup's own port with --port"
                        ),
                        Some(_) => format!(
                            "nothing listens on {server} port {port} (--port): check --port, or \
                             leave it out to ask the endpoint mapper"
                        ),
                    })
                }
                // The endpoint mapper is there: the port it gave was refused.
                _ => error,
            }
        }
        _ => error,
    }
}

/// `error` of a restore, with its cause named when the DC refused `HrRRestorePrepare` because
/// it is online (a restore needs directory services restore mode).
pub(crate) async fn restore(client: &Client, error: anyhow::Error) -> anyhow::Error {
    let refused_prepare = error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<Error>(),
            Some(Error::Status {
                call: "HrRRestorePrepare",
                ..
            })
        )
    });
    if refused_prepare && matches!(client.is_ntds_online().await, Ok(true)) {
        return error.context(
            "the DC is online: a restore needs it in directory services restore mode (restart \
             it in DSRM, then restore)",
        );
    }
    error
}

/// A restore target's refusal with the server path as the server spells it (the library's
/// message quotes it, doubling every backslash).
fn unescaped_target(error: &anyhow::Error) -> Option<anyhow::Error> {
    error
        .chain()
        .find_map(|cause| match cause.downcast_ref::<Error>() {
            Some(Error::Target {
                server_path,
                reason,
            }) => Some(anyhow::Error::new(Explained {
                message: format!("restore target {server_path}: {reason}"),
                code: exit::LOCAL,
            })),
            _ => None,
        })
}
