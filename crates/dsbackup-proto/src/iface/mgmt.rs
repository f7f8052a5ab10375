//! The remote management interface `mgmt` (afa8bd80-7d8a-11c9-bef4-08002b102989 v1.0) of
//! [C706 Appendix Q], which every DCE/RPC server answers on every endpoint.
//!
//! [C706 Appendix Q]: https://pubs.opengroup.org/onlinepubs/9629399/apdxq.htm

use crate::error::EncodeError;
use crate::iface::epm::RpcIfId;
use crate::iface::{CountCheck, InterfaceId, calls, params};
use crate::ndr::{
    Full, Ndr, NdrError, NdrReader, NdrWriter, decode_char_variance, encode_char_variance,
};
use crate::status::Status;
use crate::uuid::Uuid;

/// The interface identity and call table.
pub static INTERFACE: InterfaceId = InterfaceId {
    name: "mgmt",
    uuid: Uuid::from_str_const("afa8bd80-7d8a-11c9-bef4-08002b102989"),
    version_major: 1,
    version_minor: 0,
    annotation: "DCE/RPC Remote Management",
    calls: MGMT,
};

calls! {
    interface: "mgmt",
    table: MGMT,
    request: MgmtRequest,
    response: MgmtResponse,
    calls: [
        0 => InqIfIds(InqIfIdsRequest, InqIfIdsResponse),
        1 => InqStats(InqStatsRequest, InqStatsResponse),
        2 => IsServerListening(IsServerListeningRequest, IsServerListeningResponse),
        3 => StopServerListening(StopServerListeningRequest, StopServerListeningResponse),
        4 => InqPrincName(InqPrincNameRequest, InqPrincNameResponse),
    ]
}

/// `rpc_if_id_vector_t`: a conformant structure of full pointers to interface ids.
///
/// ```text
///  scalars: max_count | count | referent ids[count]
///  buffers: rpc_if_id_t per non-null pointer, in order
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RpcIfIdVector {
    /// `if_id`: `count` pointers (count is the length).
    pub if_id: Vec<Full<RpcIfId>>,
}

impl Ndr for RpcIfIdVector {
    const MIN_LEN: usize = 4 /* max_count */ + 4 /* count */;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        w.count(self.if_id.len(), "rpc_if_id_vector_t")?;
        w.count(self.if_id.len(), "rpc_if_id_vector_t")?;
        for id in &self.if_id {
            id.encode_scalars(w)?;
        }
        Ok(())
    }

    fn encode_buffers(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        for id in &self.if_id {
            id.encode_buffers(w)?;
        }
        Ok(())
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        let what = "rpc_if_id_vector_t";
        let max_count = r.count(what, 4)?;
        let count = r.u32(what)?;
        crate::ndr::check_count_param(
            what,
            "count",
            count,
            usize::try_from(max_count).unwrap_or(usize::MAX),
        )?;
        let mut if_id = Vec::with_capacity(usize::try_from(max_count).unwrap_or(0));
        for _ in 0..max_count {
            if_id.push(Ndr::decode_scalars(r)?);
        }
        Ok(Self { if_id })
    }

    fn decode_buffers(&mut self, r: &mut NdrReader<'_>) -> Result<(), NdrError> {
        for id in &mut self.if_id {
            id.decode_buffers(r)?;
        }
        Ok(())
    }
}

/// A `[string, size_is(n)] char[]` out parameter: a conformant varying octet string,
/// `max_count`, offset 0, `actual_count` (NUL included), the octets (ISO 8859-1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CharString {
    /// The conformance: the caller's buffer size.
    pub max_count: u32,
    /// The text, without its NUL.
    pub text: String,
}

impl Ndr for CharString {
    const MIN_LEN: usize = 4 /* max_count */ + 4 /* offset */ + 4 /* actual_count */;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        w.u32(self.max_count);
        encode_char_variance(
            w,
            &self.text,
            usize::try_from(self.max_count).unwrap_or(usize::MAX),
            "princ_name",
        )
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        let max_count = r.u32("princ_name")?;
        let text = decode_char_variance(r, max_count, "princ_name")?;
        Ok(Self { max_count, text })
    }
}

params! {
    /// Opnum 0 request (`rpc_mgmt_inq_if_ids`): no parameter on the wire.
    InqIfIdsRequest {}
}

params! {
    /// Opnum 0 response: the interfaces the server offers.
    InqIfIdsResponse {
        /// `if_id_vector` (a full pointer).
        "if_id_vector" if_id_vector: Full<RpcIfIdVector>,
        /// The status.
        "status" status: Status,
    }
}

params! {
    /// Opnum 1 request (`rpc_mgmt_inq_stats`).
    InqStatsRequest {
        /// Size of the caller's statistics array.
        "count" count: u32,
    }
}

params! {
    /// Opnum 1 response: calls in, calls out, packets in, packets out.
    InqStatsResponse check stats_counts {
        /// Number of statistics; equals the array's conformance.
        "count" count: u32,
        /// The statistics.
        "statistics" statistics: Vec<u32>,
        /// The status.
        "status" status: Status,
    }
}

fn stats_counts(v: &InqStatsResponse) -> [CountCheck; 1] {
    [CountCheck {
        what: "inq_stats response",
        field: "count",
        count: v.count,
        array_len: v.statistics.len(),
    }]
}

params! {
    /// Opnum 2 request (`rpc_mgmt_is_server_listening`): no parameter on the wire.
    IsServerListeningRequest {}
}

params! {
    /// Opnum 2 response: the `[out]` status, then the `boolean32` return value (C706 and
    /// Samba; impacket's definition stops after the status).
    IsServerListeningResponse {
        /// The status.
        "status" status: Status,
        /// The return value: non-zero when the server listens.
        "result" result: u32,
    }
}

params! {
    /// Opnum 3 request (`rpc_mgmt_stop_server_listening`): no parameter on the wire.
    StopServerListeningRequest {}
}

params! {
    /// Opnum 3 response.
    StopServerListeningResponse {
        /// The status.
        "status" status: Status,
    }
}

params! {
    /// Opnum 4 request (`rpc_mgmt_inq_server_princ_name`).
    InqPrincNameRequest {
        /// The authentication service (`RPC_C_AUTHN_*`).
        "authn_proto" authn_proto: u32,
        /// Size of the caller's buffer, NUL included.
        "princ_name_size" princ_name_size: u32,
    }
}

params! {
    /// Opnum 4 response.
    InqPrincNameResponse {
        /// The principal name, with the request's `princ_name_size` as conformance.
        "princ_name" princ_name: CharString,
        /// The status.
        "status" status: Status,
    }
}
