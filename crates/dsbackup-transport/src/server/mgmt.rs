//! The remote management interface every server answers ([C706 Appendix Q]).
//!
//! | opnum | call | answer |
//! | --- | --- | --- |
//! | 0 | `inq_if_ids` | the interfaces registered on the server |
//! | 1 | `inq_stats` | calls in, calls out, fragments in, fragments out |
//! | 2 | `is_server_listening` | status 0, true |
//! | 3 | `stop_server_listening` | status 5, access denied (never from the network) |
//! | 4 | `inq_princ_name` | the configured principal name |
//!
//! [C706 Appendix Q]: https://pubs.opengroup.org/onlinepubs/9629399/apdxq.htm

use std::sync::Arc;

use bytes::Bytes;
use dsbackup_proto::iface::epm::RpcIfId;
use dsbackup_proto::iface::mgmt::{
    CharString, InqIfIdsResponse, InqPrincNameResponse, InqStatsResponse,
    IsServerListeningResponse, MgmtRequest, RpcIfIdVector, StopServerListeningResponse,
};
use dsbackup_proto::ndr::{Full, encode_stub};
use dsbackup_proto::{Chain, DataRep, Status, SyntaxId};

use super::{CallContext, CallError, CallFuture, RpcInterface};
use crate::resolve::mgmt_syntax;

/// `rpc_s_access_denied`, the status of `stop_server_listening`.
const ACCESS_DENIED: Status = Status(5);

/// The mgmt interface of a server.
#[derive(Debug)]
pub(crate) struct Management {
    interfaces: Vec<SyntaxId>,
    principal_name: String,
}

impl Management {
    /// Answers for a server offering `interfaces`, named `principal_name`.
    pub(crate) fn new(interfaces: Vec<SyntaxId>, principal_name: String) -> Self {
        Self {
            interfaces,
            principal_name,
        }
    }

    fn answer(&self, ctx: &CallContext, request: MgmtRequest) -> Result<Vec<u8>, CallError> {
        let drep = ctx.reply_drep();
        Ok(match request {
            MgmtRequest::InqIfIds(_) => {
                let if_id = self
                    .interfaces
                    .iter()
                    .map(|syntax| {
                        Full(Some(RpcIfId {
                            uuid: syntax.uuid,
                            vers_major: syntax.version,
                            vers_minor: syntax.version_minor,
                        }))
                    })
                    .collect();
                encode_stub(
                    &InqIfIdsResponse {
                        if_id_vector: Full(Some(RpcIfIdVector { if_id })),
                        status: Status::SUCCESS,
                    },
                    drep,
                )?
            }
            MgmtRequest::InqStats(request) => {
                let stats = ctx.server_metrics();
                let all = [
                    u32::try_from(stats.calls_total).unwrap_or(u32::MAX),
                    u32::try_from(stats.calls_total).unwrap_or(u32::MAX),
                    u32::try_from(stats.frames_in).unwrap_or(u32::MAX),
                    u32::try_from(stats.frames_out).unwrap_or(u32::MAX),
                ];
                let statistics: Vec<u32> = all
                    .into_iter()
                    .take(usize::try_from(request.count).unwrap_or(0))
                    .collect();
                encode_stub(
                    &InqStatsResponse {
                        count: u32::try_from(statistics.len()).unwrap_or(0),
                        statistics,
                        status: Status::SUCCESS,
                    },
                    drep,
                )?
            }
            MgmtRequest::IsServerListening(_) => encode_stub(
                &IsServerListeningResponse {
                    status: Status::SUCCESS,
                    result: 1,
                },
                drep,
            )?,
            MgmtRequest::StopServerListening(_) => encode_stub(
                &StopServerListeningResponse {
                    status: ACCESS_DENIED,
                },
                drep,
            )?,
            MgmtRequest::InqPrincName(request) => {
                let room = usize::try_from(request.princ_name_size)
                    .unwrap_or(0)
                    .saturating_sub(1);
                let text: String = self.principal_name.chars().take(room).collect();
                encode_stub(
                    &InqPrincNameResponse {
                        princ_name: CharString {
                            // At least room for the NUL, whatever the caller's size.
                            max_count: request.princ_name_size.max(1),
                            text,
                        },
                        status: Status::SUCCESS,
                    },
                    drep,
                )?
            }
        })
    }
}

impl RpcInterface for Management {
    fn syntax(&self) -> SyntaxId {
        mgmt_syntax()
    }

    fn opnums(&self) -> u16 {
        5
    }

    fn annotation(&self) -> &str {
        "Remote management"
    }

    fn call(
        self: Arc<Self>,
        ctx: CallContext,
        opnum: u16,
        stub: Bytes,
        drep: DataRep,
    ) -> CallFuture {
        Box::pin(async move {
            let request = MgmtRequest::decode_shared(opnum, drep, &stub)?;
            Ok(Chain::from(self.answer(&ctx, request)?))
        })
    }
}
