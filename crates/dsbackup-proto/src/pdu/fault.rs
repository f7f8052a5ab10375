//! [C706 §12.6.4.7] fault, with the flags byte of [MS-RPCE §2.2.2.7].
//!
//! ```text
//!  16                  20          22           23        24                28           32
//! +-------------------+-----------+------------+---------+-----------------+------------+------
//! |    alloc_hint     | p_cont_id |cancel_count| flags   |     status      | reserved2  | stub
//! +-------------------+-----------+------------+---------+-----------------+------------+------
//! ```
//!
//! [C706 §12.6.4.7]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
//! [MS-RPCE §2.2.2.7]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use core::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{PutDrep, Reader};
use crate::drep::DataRep;
use crate::error::DecodeError;
use crate::wire_enum::known_values;

/// A fault: the call failed; `status` says why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// `alloc_hint`: the stub length the sender expects (a hint only).
    pub alloc_hint: u32,
    /// `p_cont_id`.
    pub p_cont_id: u16,
    /// `cancel_count`.
    pub cancel_count: u8,
    /// `reserved` in C706; flags in [MS-RPCE §2.2.2.7] (0x01: extended error information
    /// follows).
    ///
    /// [MS-RPCE §2.2.2.7]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    pub flags: u8,
    /// `status`.
    pub status: FaultStatus,
    /// `reserved2`.
    pub reserved2: u32,
    /// The stub (extended error information), usually empty.
    pub stub: Bytes,
}

impl Fault {
    /// Fixed part: 4 /* alloc_hint */ + 2 /* p_cont_id */ + 1 /* cancel_count */
    /// + 1 /* reserved */ + 4 /* status */ + 4 /* reserved2 */.
    pub const FIXED_LEN: usize = 4 + 2 + 1 + 1 + 4 + 4;

    /// A fault with `status` on context `p_cont_id`, no stub.
    pub const fn new(p_cont_id: u16, status: FaultStatus) -> Self {
        Self {
            alloc_hint: 0,
            p_cont_id,
            cancel_count: 0,
            flags: 0,
            status,
            reserved2: 0,
            stub: Bytes::new(),
        }
    }

    /// Exact number of bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        Self::FIXED_LEN + self.stub.len()
    }

    /// Appends the body (without auth padding).
    pub fn encode(&self, drep: DataRep, dst: &mut BytesMut) {
        self.encode_fixed(drep, dst);
        dst.put_slice(&self.stub);
    }

    /// Appends the body up to the stub.
    pub fn encode_fixed(&self, drep: DataRep, dst: &mut BytesMut) {
        dst.put_u32_drep(drep, self.alloc_hint);
        dst.put_u16_drep(drep, self.p_cont_id);
        dst.put_u8(self.cancel_count);
        dst.put_u8(self.flags);
        dst.put_u32_drep(drep, self.status.0);
        dst.put_u32_drep(drep, self.reserved2);
    }

    pub(crate) fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        reader.ensure(Self::FIXED_LEN)?;
        Ok(Self {
            alloc_hint: reader.u32()?,
            p_cont_id: reader.u16()?,
            cancel_count: reader.u8()?,
            flags: reader.u8()?,
            status: FaultStatus(reader.u32()?),
            reserved2: reader.u32()?,
            stub: reader.rest(),
        })
    }
}

/// `status` of a fault ([C706 Appendix E], [MS-RPCE §2.2.2.7] and Appendix C of
/// [MS-RPCE]): an `nca_s_*` code or a Windows error.
///
/// Names follow C706 and Wireshark's dissector; unknown values round-trip and print in hex.
///
/// [C706 Appendix E]: https://pubs.opengroup.org/onlinepubs/9629399/apdxe.htm
/// [MS-RPCE §2.2.2.7]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
/// [MS-RPCE]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FaultStatus(pub u32);

known_values! {
    FaultStatus, name: "The name of a known status (`\"nca_s_proto_error\"`...).";
    /// ERROR_ACCESS_DENIED, `nca_s_fault_access_denied` in Wireshark.
    ACCESS_DENIED = 0x0000_0005 => "nca_s_fault_access_denied",
    /// RPC_S_PROCNUM_OUT_OF_RANGE (1745).
    RPC_S_PROCNUM_OUT_OF_RANGE = 0x0000_06d1 => "rpc_s_procnum_out_of_range",
    /// EPT_S_CANT_PERFORM_OP (1752), `nca_s_fault_cant_perform` in Wireshark.
    CANT_PERFORM = 0x0000_06d8 => "nca_s_fault_cant_perform",
    /// RPC_X_BAD_STUB_DATA (1783), `nca_s_fault_ndr` in Wireshark.
    BAD_STUB_DATA = 0x0000_06f7 => "rpc_x_bad_stub_data",
    /// RPC_S_SEC_PKG_ERROR (1825), `nca_s_fault_sec_pkg_error` in Wireshark.
    SEC_PKG_ERROR = 0x0000_0721 => "nca_s_fault_sec_pkg_error",
    /// nca_s_fault_int_div_by_zero.
    FAULT_INT_DIV_BY_ZERO = 0x1c00_0001 => "nca_s_fault_int_div_by_zero",
    /// nca_s_fault_addr_error.
    FAULT_ADDR_ERROR = 0x1c00_0002 => "nca_s_fault_addr_error",
    /// nca_s_fault_fp_div_zero.
    FAULT_FP_DIV_ZERO = 0x1c00_0003 => "nca_s_fault_fp_div_zero",
    /// nca_s_fault_fp_underflow.
    FAULT_FP_UNDERFLOW = 0x1c00_0004 => "nca_s_fault_fp_underflow",
    /// nca_s_fault_fp_overflow.
    FAULT_FP_OVERFLOW = 0x1c00_0005 => "nca_s_fault_fp_overflow",
    /// nca_s_fault_invalid_tag.
    FAULT_INVALID_TAG = 0x1c00_0006 => "nca_s_fault_invalid_tag",
    /// nca_s_fault_invalid_bound.
    FAULT_INVALID_BOUND = 0x1c00_0007 => "nca_s_fault_invalid_bound",
    /// nca_rpc_version_mismatch.
    RPC_VERSION_MISMATCH = 0x1c00_0008 => "nca_rpc_version_mismatch",
    /// nca_unspec_reject.
    UNSPEC_REJECT = 0x1c00_0009 => "nca_unspec_reject",
    /// nca_s_bad_actid.
    BAD_ACTID = 0x1c00_000a => "nca_s_bad_actid",
    /// nca_who_are_you_failed.
    WHO_ARE_YOU_FAILED = 0x1c00_000b => "nca_who_are_you_failed",
    /// nca_manager_not_entered.
    MANAGER_NOT_ENTERED = 0x1c00_000c => "nca_manager_not_entered",
    /// nca_s_fault_cancel.
    FAULT_CANCEL = 0x1c00_000d => "nca_s_fault_cancel",
    /// nca_s_fault_ill_inst.
    FAULT_ILL_INST = 0x1c00_000e => "nca_s_fault_ill_inst",
    /// nca_s_fault_fp_error.
    FAULT_FP_ERROR = 0x1c00_000f => "nca_s_fault_fp_error",
    /// nca_s_fault_int_overflow.
    FAULT_INT_OVERFLOW = 0x1c00_0010 => "nca_s_fault_int_overflow",
    /// nca_s_fault_pipe_empty.
    FAULT_PIPE_EMPTY = 0x1c00_0014 => "nca_s_fault_pipe_empty",
    /// nca_s_fault_pipe_closed.
    FAULT_PIPE_CLOSED = 0x1c00_0015 => "nca_s_fault_pipe_closed",
    /// nca_s_fault_pipe_order.
    FAULT_PIPE_ORDER = 0x1c00_0016 => "nca_s_fault_pipe_order",
    /// nca_s_fault_pipe_discipline.
    FAULT_PIPE_DISCIPLINE = 0x1c00_0017 => "nca_s_fault_pipe_discipline",
    /// nca_s_fault_pipe_comm_error.
    FAULT_PIPE_COMM_ERROR = 0x1c00_0018 => "nca_s_fault_pipe_comm_error",
    /// nca_s_fault_pipe_memory.
    FAULT_PIPE_MEMORY = 0x1c00_0019 => "nca_s_fault_pipe_memory",
    /// nca_s_fault_context_mismatch: a context handle that the server does not know.
    FAULT_CONTEXT_MISMATCH = 0x1c00_001a => "nca_s_fault_context_mismatch",
    /// nca_s_fault_remote_no_memory.
    FAULT_REMOTE_NO_MEMORY = 0x1c00_001b => "nca_s_fault_remote_no_memory",
    /// nca_invalid_pres_context_id.
    INVALID_PRES_CONTEXT_ID = 0x1c00_001c => "nca_invalid_pres_context_id",
    /// nca_unsupported_authn_level.
    UNSUPPORTED_AUTHN_LEVEL = 0x1c00_001d => "nca_unsupported_authn_level",
    /// nca_invalid_checksum.
    INVALID_CHECKSUM = 0x1c00_001f => "nca_invalid_checksum",
    /// nca_invalid_crc.
    INVALID_CRC = 0x1c00_0020 => "nca_invalid_crc",
    /// nca_s_fault_user_defined.
    FAULT_USER_DEFINED = 0x1c00_0021 => "nca_s_fault_user_defined",
    /// nca_s_fault_tx_open_failed.
    FAULT_TX_OPEN_FAILED = 0x1c00_0022 => "nca_s_fault_tx_open_failed",
    /// nca_s_fault_codeset_conv_error.
    FAULT_CODESET_CONV_ERROR = 0x1c00_0023 => "nca_s_fault_codeset_conv_error",
    /// nca_s_fault_object_not_found.
    FAULT_OBJECT_NOT_FOUND = 0x1c00_0024 => "nca_s_fault_object_not_found",
    /// nca_s_fault_no_client_stub.
    FAULT_NO_CLIENT_STUB = 0x1c00_0025 => "nca_s_fault_no_client_stub",
    /// nca_s_op_rng_error: the opnum is out of range for the interface.
    OP_RNG_ERROR = 0x1c01_0002 => "nca_s_op_rng_error",
    /// nca_s_unk_if: unknown interface.
    UNK_IF = 0x1c01_0003 => "nca_s_unk_if",
    /// nca_s_wrong_boot_time.
    WRONG_BOOT_TIME = 0x1c01_0006 => "nca_s_wrong_boot_time",
    /// nca_s_you_crashed.
    YOU_CRASHED = 0x1c01_0009 => "nca_s_you_crashed",
    /// nca_s_proto_error: the peer broke the protocol (Samba's answer to a bad signature).
    PROTO_ERROR = 0x1c01_000b => "nca_s_proto_error",
    /// nca_s_out_args_too_big.
    OUT_ARGS_TOO_BIG = 0x1c01_0013 => "nca_s_out_args_too_big",
    /// nca_s_server_too_busy.
    SERVER_TOO_BUSY = 0x1c01_0014 => "nca_s_server_too_busy",
    /// nca_s_unsupported_type.
    UNSUPPORTED_TYPE = 0x1c01_0017 => "nca_s_unsupported_type",
    /// ept_s_not_registered: the endpoint mapper has no (more) entries.
    EPT_S_NOT_REGISTERED = 0x16c9_a0d6 => "ept_s_not_registered",
}

impl fmt::Debug for FaultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({:#010x})", self.0),
            None => write!(f, "FaultStatus({:#010x})", self.0),
        }
    }
}

impl fmt::Display for FaultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_named_and_unknown_ones_kept() {
        assert_eq!(FaultStatus::PROTO_ERROR.name(), Some("nca_s_proto_error"));
        assert_eq!(FaultStatus(0x1c01_0003).name(), Some("nca_s_unk_if"));
        assert_eq!(FaultStatus(0x1c01_0002).name(), Some("nca_s_op_rng_error"));
        assert_eq!(FaultStatus(0x6f7).name(), Some("rpc_x_bad_stub_data"));
        assert_eq!(
            FaultStatus::EPT_S_NOT_REGISTERED.to_string(),
            "ept_s_not_registered (0x16c9a0d6)"
        );
        assert_eq!(
            format!("{:?}", FaultStatus(0xdead)),
            "FaultStatus(0x0000dead)"
        );
    }
}
