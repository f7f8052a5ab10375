//! What each failure returns to C: the documented mapping from [`dsbackup_client::Error`] to an
//! `HRESULT`.
//!
//! | failure | returned |
//! | --- | --- |
//! | the server answered with a status | that status, as it came (`hr*` or a Win32 code) |
//! | the server cannot be reached, resolved or bound (anything while connecting) | `hrCouldNotConnect` |
//! | the server refused the credentials | `ERROR_ACCESS_DENIED` |
//! | the call faulted | the fault's Win32 status, or the `RPC_S_*`/`RPC_X_*` code of its `nca_s_*` status |
//! | the connection broke or timed out during a call | `RPC_S_CALL_FAILED` |
//! | a response failed its signature check | `SEC_E_MESSAGE_ALTERED` |
//! | a response that does not decode | `RPC_X_BAD_STUB_DATA` |
//! | a server that breaks the protocol | `RPC_S_PROTOCOL_ERROR` |
//! | a bad argument, handle or call order, or any other misuse of the library (`Error::is_misuse`), even while connecting | `ERROR_INVALID_PARAMETER` (`hrInvalidParam` for the expiry token's pointers, `hrInvalidHandle` for `DsBackupClose` without an open file, as documented) |
//! | memory exhaustion | `ERROR_NOT_ENOUGH_MEMORY` |
//! | a panic or a broken invariant inside the library (a bug) | `E_UNEXPECTED` |

use dsbackup_client::Error;
use dsbackup_proto::{FaultStatus, Status};
use dsbackup_transport::TransportError;

/// An `HRESULT` as C sees it (`LONG`).
pub type Hresult = i32;

/// The codes the library returns besides server statuses, with the values of Windows'
/// `winerror.h` (`ntdsbcli.h` defines each for Linux; a test holds the header to this list).
pub mod codes {
    use super::Hresult;

    /// `S_OK`.
    pub const S_OK: Hresult = 0;
    /// `ERROR_ACCESS_DENIED`.
    pub const ERROR_ACCESS_DENIED: Hresult = 5;
    /// `ERROR_INVALID_HANDLE` (`RPC_X_SS_CONTEXT_MISMATCH`).
    pub const ERROR_INVALID_HANDLE: Hresult = 6;
    /// `ERROR_NOT_ENOUGH_MEMORY`.
    pub const ERROR_NOT_ENOUGH_MEMORY: Hresult = 8;
    /// `ERROR_OUTOFMEMORY` (`RPC_S_OUT_OF_MEMORY`).
    pub const ERROR_OUTOFMEMORY: Hresult = 14;
    /// `ERROR_HANDLE_EOF`.
    pub const ERROR_HANDLE_EOF: Hresult = 38;
    /// `ERROR_INVALID_PARAMETER`.
    pub const ERROR_INVALID_PARAMETER: Hresult = 87;
    /// `RPC_S_INVALID_BINDING`.
    pub const RPC_S_INVALID_BINDING: Hresult = 1702;
    /// `RPC_S_UNKNOWN_IF`.
    pub const RPC_S_UNKNOWN_IF: Hresult = 1717;
    /// `RPC_S_SERVER_TOO_BUSY`.
    pub const RPC_S_SERVER_TOO_BUSY: Hresult = 1723;
    /// `RPC_S_CALL_FAILED`.
    pub const RPC_S_CALL_FAILED: Hresult = 1726;
    /// `RPC_S_PROTOCOL_ERROR`.
    pub const RPC_S_PROTOCOL_ERROR: Hresult = 1728;
    /// `RPC_S_INVALID_TAG`.
    pub const RPC_S_INVALID_TAG: Hresult = 1733;
    /// `RPC_S_INVALID_BOUND`.
    pub const RPC_S_INVALID_BOUND: Hresult = 1734;
    /// `RPC_S_PROCNUM_OUT_OF_RANGE`.
    pub const RPC_S_PROCNUM_OUT_OF_RANGE: Hresult = 1745;
    /// `RPC_S_ZERO_DIVIDE`.
    pub const RPC_S_ZERO_DIVIDE: Hresult = 1767;
    /// `RPC_S_ADDRESS_ERROR`.
    pub const RPC_S_ADDRESS_ERROR: Hresult = 1768;
    /// `RPC_S_FP_DIV_ZERO`.
    pub const RPC_S_FP_DIV_ZERO: Hresult = 1769;
    /// `RPC_S_FP_UNDERFLOW`.
    pub const RPC_S_FP_UNDERFLOW: Hresult = 1770;
    /// `RPC_S_FP_OVERFLOW`.
    pub const RPC_S_FP_OVERFLOW: Hresult = 1771;
    /// `RPC_X_BAD_STUB_DATA`.
    pub const RPC_X_BAD_STUB_DATA: Hresult = 1783;
    /// `RPC_S_CALL_CANCELLED`.
    pub const RPC_S_CALL_CANCELLED: Hresult = 1818;
    /// `RPC_S_UNSUPPORTED_AUTHN_LEVEL`.
    pub const RPC_S_UNSUPPORTED_AUTHN_LEVEL: Hresult = 1821;
    /// `E_UNEXPECTED`.
    pub const E_UNEXPECTED: Hresult = 0x8000_FFFF_u32 as Hresult;
    /// `E_FAIL`.
    pub const E_FAIL: Hresult = 0x8000_4005_u32 as Hresult;
    /// `SEC_E_MESSAGE_ALTERED`.
    pub const SEC_E_MESSAGE_ALTERED: Hresult = 0x8009_030F_u32 as Hresult;

    /// Every code above by its C name (what `ntdsbcli.h` must define).
    pub const ALL: &[(&str, Hresult)] = &[
        ("S_OK", S_OK),
        ("ERROR_ACCESS_DENIED", ERROR_ACCESS_DENIED),
        ("ERROR_INVALID_HANDLE", ERROR_INVALID_HANDLE),
        ("ERROR_NOT_ENOUGH_MEMORY", ERROR_NOT_ENOUGH_MEMORY),
        ("ERROR_OUTOFMEMORY", ERROR_OUTOFMEMORY),
        ("ERROR_HANDLE_EOF", ERROR_HANDLE_EOF),
        ("ERROR_INVALID_PARAMETER", ERROR_INVALID_PARAMETER),
        ("RPC_S_INVALID_BINDING", RPC_S_INVALID_BINDING),
        ("RPC_S_UNKNOWN_IF", RPC_S_UNKNOWN_IF),
        ("RPC_S_SERVER_TOO_BUSY", RPC_S_SERVER_TOO_BUSY),
        ("RPC_S_CALL_FAILED", RPC_S_CALL_FAILED),
        ("RPC_S_PROTOCOL_ERROR", RPC_S_PROTOCOL_ERROR),
        ("RPC_S_INVALID_TAG", RPC_S_INVALID_TAG),
        ("RPC_S_INVALID_BOUND", RPC_S_INVALID_BOUND),
        ("RPC_S_PROCNUM_OUT_OF_RANGE", RPC_S_PROCNUM_OUT_OF_RANGE),
        ("RPC_S_ZERO_DIVIDE", RPC_S_ZERO_DIVIDE),
        ("RPC_S_ADDRESS_ERROR", RPC_S_ADDRESS_ERROR),
        ("RPC_S_FP_DIV_ZERO", RPC_S_FP_DIV_ZERO),
        ("RPC_S_FP_UNDERFLOW", RPC_S_FP_UNDERFLOW),
        ("RPC_S_FP_OVERFLOW", RPC_S_FP_OVERFLOW),
        ("RPC_X_BAD_STUB_DATA", RPC_X_BAD_STUB_DATA),
        ("RPC_S_CALL_CANCELLED", RPC_S_CALL_CANCELLED),
        (
            "RPC_S_UNSUPPORTED_AUTHN_LEVEL",
            RPC_S_UNSUPPORTED_AUTHN_LEVEL,
        ),
        ("E_UNEXPECTED", E_UNEXPECTED),
        ("E_FAIL", E_FAIL),
        ("SEC_E_MESSAGE_ALTERED", SEC_E_MESSAGE_ALTERED),
    ];
}

use codes::*;

/// `hrCouldNotConnect`.
pub const HR_COULD_NOT_CONNECT: Status = Status(0xC7FF_0007);

/// The `HRESULT` of a status the server sent: its 32 bits, as they came.
pub fn from_status(status: Status) -> Hresult {
    i32::from_ne_bytes(status.0.to_ne_bytes())
}

/// The `HRESULT` of a failed call (the table in the module's docs).
pub fn from_error(error: &Error) -> Hresult {
    match error {
        Error::Status { status, .. } => from_status(*status),
        // The caller's misuse (`Error::is_misuse`), whenever it is found, connecting included.
        _ if error.is_misuse() => ERROR_INVALID_PARAMETER,
        Error::Integrity { .. } => SEC_E_MESSAGE_ALTERED,
        Error::Authentication { .. } => ERROR_ACCESS_DENIED,
        Error::BadResponse { .. } => RPC_X_BAD_STUB_DATA,
        Error::Protocol { .. } => RPC_S_PROTOCOL_ERROR,
        Error::Transport { context, source } => from_transport(context, source),
        Error::Internal(_) => E_UNEXPECTED,
        _ => E_FAIL,
    }
}

/// A transport failure while doing `context`.
fn from_transport(context: &str, error: &TransportError) -> Hresult {
    match error {
        TransportError::Fault { status, .. } => from_fault(*status),
        // Everything that fails before a call is on the wire (resolution, connection, bind).
        _ if context.starts_with("connect") => from_status(HR_COULD_NOT_CONNECT),
        TransportError::Protocol(_) => RPC_S_PROTOCOL_ERROR,
        TransportError::Ndr(_) => RPC_X_BAD_STUB_DATA,
        _ => RPC_S_CALL_FAILED,
    }
}

/// The Win32 status of a fault: a Win32 status as it came, an `nca_s_*` status as the
/// `RPC_S_*`/`RPC_X_*` code Windows' runtime raises for it.
pub fn from_fault(status: FaultStatus) -> Hresult {
    match status {
        FaultStatus::OP_RNG_ERROR => RPC_S_PROCNUM_OUT_OF_RANGE,
        FaultStatus::UNK_IF => RPC_S_UNKNOWN_IF,
        FaultStatus::PROTO_ERROR => RPC_S_PROTOCOL_ERROR,
        FaultStatus::FAULT_CONTEXT_MISMATCH => ERROR_INVALID_HANDLE,
        FaultStatus::FAULT_CANCEL => RPC_S_CALL_CANCELLED,
        FaultStatus::SERVER_TOO_BUSY => RPC_S_SERVER_TOO_BUSY,
        FaultStatus::UNSUPPORTED_AUTHN_LEVEL => RPC_S_UNSUPPORTED_AUTHN_LEVEL,
        FaultStatus::FAULT_REMOTE_NO_MEMORY => ERROR_OUTOFMEMORY,
        FaultStatus::FAULT_INVALID_TAG => RPC_S_INVALID_TAG,
        FaultStatus::FAULT_INVALID_BOUND => RPC_S_INVALID_BOUND,
        FaultStatus::FAULT_INT_DIV_BY_ZERO => RPC_S_ZERO_DIVIDE,
        FaultStatus::FAULT_ADDR_ERROR => RPC_S_ADDRESS_ERROR,
        FaultStatus::FAULT_FP_DIV_ZERO => RPC_S_FP_DIV_ZERO,
        FaultStatus::FAULT_FP_UNDERFLOW => RPC_S_FP_UNDERFLOW,
        FaultStatus::FAULT_FP_OVERFLOW => RPC_S_FP_OVERFLOW,
        // Windows statuses (ERROR_ACCESS_DENIED, RPC_X_BAD_STUB_DATA, ...) travel as they are.
        FaultStatus(code) if code < 0x1_0000 => i32::try_from(code).unwrap_or(RPC_S_CALL_FAILED),
        _ => RPC_S_CALL_FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dsbackup_proto::{ApiMisuse, ProtocolError, SecurityError};

    #[test]
    fn server_statuses_come_through_unchanged() {
        let error = Error::Status {
            call: "HrRBackupPrepare",
            status: Status::HR_BACKUP_IN_PROGRESS,
        };
        assert_eq!(from_error(&error).cast_unsigned(), 0xC800_01F9);
        let error = Error::Status {
            call: "HrRBackupOpenFile",
            status: Status::from(87_u32),
        };
        assert_eq!(from_error(&error), ERROR_INVALID_PARAMETER);
    }

    #[test]
    fn could_not_connect_is_the_headers_code() {
        assert_eq!(HR_COULD_NOT_CONNECT.name(), Some("hrCouldNotConnect"));
    }

    #[test]
    fn failures_to_connect_are_could_not_connect_whatever_the_cause() {
        let causes = [
            TransportError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
            TransportError::Resolve("not registered"),
            TransportError::TimedOut,
            TransportError::Closed,
        ];
        for source in causes {
            let error = Error::Transport {
                context: "connect to ad_backup",
                source,
            };
            assert_eq!(from_error(&error).cast_unsigned(), 0xC7FF_0007, "{error}");
        }
    }

    #[test]
    fn faults_become_rpc_codes() {
        let fault = |status| Error::Transport {
            context: "HrRBackupRead",
            source: TransportError::Fault {
                status,
                did_not_execute: false,
            },
        };
        assert_eq!(from_error(&fault(FaultStatus::OP_RNG_ERROR)), 1745);
        assert_eq!(from_error(&fault(FaultStatus::UNK_IF)), 1717);
        assert_eq!(from_error(&fault(FaultStatus::BAD_STUB_DATA)), 1783);
        assert_eq!(from_error(&fault(FaultStatus::ACCESS_DENIED)), 5);
        assert_eq!(from_error(&fault(FaultStatus::FAULT_CONTEXT_MISMATCH)), 6);
        assert_eq!(from_error(&fault(FaultStatus(0x1c01_00ff))), 1726);
        let lost = Error::Transport {
            context: "HrRBackupRead",
            source: TransportError::Closed,
        };
        assert_eq!(from_error(&lost), RPC_S_CALL_FAILED);
    }

    #[test]
    fn a_bad_signature_is_message_altered_and_misuse_invalid_parameter() {
        let error = Error::Integrity {
            context: "HrRBackupRead",
            source: TransportError::Protocol(ProtocolError::Security(SecurityError::BadSignature)),
        };
        assert_eq!(from_error(&error).cast_unsigned(), 0x8009_030F);
        assert_eq!(from_error(&Error::Misuse("x")), 87);
    }

    #[test]
    fn the_callers_misuse_is_invalid_parameter_and_the_peers_a_protocol_error() {
        for context in ["connect to ad_backup", "HrRBackupRead"] {
            let misuse = Error::Transport {
                context,
                source: TransportError::Misuse(ApiMisuse::UnknownContext { p_cont_id: 3 }),
            };
            assert!(misuse.is_misuse());
            assert_eq!(from_error(&misuse), ERROR_INVALID_PARAMETER, "{context}");
        }
        let peer = Error::Transport {
            context: "HrRBackupRead",
            source: TransportError::Protocol(ProtocolError::UnknownCallId { call_id: 9 }),
        };
        assert!(peer.is_peer_fault());
        assert_eq!(from_error(&peer), RPC_S_PROTOCOL_ERROR);
        let stub = Error::Transport {
            context: "HrRBackupRead",
            source: TransportError::Ndr(dsbackup_proto::ndr::NdrError::Truncated {
                what: "HrRBackupReadResponse",
                needed: 8,
                available: 2,
            }),
        };
        assert!(stub.is_peer_fault());
        assert_eq!(from_error(&stub), RPC_X_BAD_STUB_DATA);
    }
}
