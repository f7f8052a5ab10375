//! The endpoint mapper, mgmt, the registry, version fallback, context handles, and the
//! conversation dumped for the conformance check.

#![cfg(test)]

pub mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use common::*;
use dsbackup_proto::iface::epm::{
    EPT_S_NOT_REGISTERED, EptLookupHandleFreeRequest, EptLookupHandleFreeResponse,
    EptLookupRequest, EptLookupResponse, RPC_C_EP_ALL_ELTS, RPC_C_VERS_ALL,
};
use dsbackup_proto::iface::mgmt::{
    InqIfIdsRequest, InqIfIdsResponse, InqPrincNameRequest, InqPrincNameResponse, InqStatsRequest,
    InqStatsResponse, IsServerListeningRequest, IsServerListeningResponse,
    StopServerListeningRequest, StopServerListeningResponse,
};
use dsbackup_proto::ndr::{ContextHandle, Full, Ndr, NdrReader, decode_stub, encode_stub};
use dsbackup_proto::{AuthLevel, DataRep, FaultStatus, Status, SyntaxId, Uuid};
use dsbackup_transport::{
    Binding, ClientOptions, Registry, RpcInterface, StringBinding, TransportError, list_endpoints,
    resolve,
};
use dsbackup_transport::{epm_syntax, mgmt_syntax};

fn anonymous() -> ClientOptions {
    client_options(AuthLevel::NONE, 5840, DataRep::LITTLE_ENDIAN)
}

async fn call<Req: Ndr, Resp: Ndr>(binding: &Binding, opnum: u16, request: &Req) -> Resp {
    let stub = encode_stub(request, binding.drep()).unwrap();
    let reply = binding.call(opnum, Bytes::from(stub)).await.unwrap();
    decode_stub(reply.drep, &reply.stub.to_bytes(), "response").unwrap()
}

/// Five interfaces (the test interface at v1 and four others) on one server.
fn many() -> Vec<Arc<dyn RpcInterface>> {
    (1..=5)
        .map(|version| {
            Arc::new(TestInterface {
                version,
                ..TestInterface::default()
            }) as Arc<dyn RpcInterface>
        })
        .collect()
}

#[tokio::test]
async fn endpoint_mapper_maps_and_pages_through_its_entries() {
    let server = start(&many(), server_options(5840)).await;
    let epm = server.epm_addr().unwrap();
    // ept_map through resolve().
    for version in 1..=5 {
        let addr = resolve(epm, syntax(version), &anonymous()).await.unwrap();
        assert_eq!(addr, server.local_addr());
    }
    let unknown = SyntaxId::new(Uuid([7; 16]), 1, 0);
    assert!(matches!(
        resolve(epm, unknown, &anonymous()).await,
        Err(TransportError::Resolve(_))
    ));

    // ept_lookup two at a time: 2, 2, then 1 with the null handle (a page the map cannot fill
    // ends the list).
    let binding = Binding::connect(epm, &[epm_syntax()], &anonymous())
        .await
        .unwrap();
    let mut handle = ContextHandle::NULL;
    let mut pages = Vec::new();
    for _ in 0..10 {
        let response: EptLookupResponse = call(
            &binding,
            2,
            &EptLookupRequest {
                inquiry_type: RPC_C_EP_ALL_ELTS,
                object: Full(None),
                interface_id: Full(None),
                vers_option: RPC_C_VERS_ALL,
                entry_handle: handle,
                max_ents: 2,
            },
        )
        .await;
        assert_eq!(response.status, Status::SUCCESS);
        pages.push(response.entries.items.len());
        for entry in &response.entries.items {
            let tower = entry.tower.0.as_ref().unwrap().tower().unwrap();
            assert_eq!(tower.tcp_port(), Some(server.local_addr().port()));
            assert_eq!(tower.ip_address(), Some([127, 0, 0, 1]));
            assert_eq!(entry.annotation, "dsbackup test interface");
        }
        handle = response.entry_handle;
        if handle.is_null() {
            break;
        }
    }
    assert_eq!(pages, [2, 2, 1]);

    // A handle freed mid-way; freeing it again says so.
    let first: EptLookupResponse = call(
        &binding,
        2,
        &EptLookupRequest {
            inquiry_type: RPC_C_EP_ALL_ELTS,
            object: Full(None),
            interface_id: Full(None),
            vers_option: RPC_C_VERS_ALL,
            entry_handle: ContextHandle::NULL,
            max_ents: 1,
        },
    )
    .await;
    let free = EptLookupHandleFreeRequest {
        entry_handle: first.entry_handle,
    };
    let freed: EptLookupHandleFreeResponse = call(&binding, 4, &free).await;
    assert_eq!(freed.status, Status::SUCCESS);
    assert!(freed.entry_handle.is_null());
    let again: EptLookupHandleFreeResponse = call(&binding, 4, &free).await;
    assert_eq!(again.status, EPT_S_NOT_REGISTERED);
    // An interface the map does not hold: nothing, ept_s_not_registered.
    let none: EptLookupResponse = call(
        &binding,
        2,
        &EptLookupRequest {
            inquiry_type: 1, // rpc_c_ep_match_by_if
            object: Full(None),
            interface_id: Full(Some(dsbackup_proto::iface::epm::RpcIfId {
                uuid: Uuid([7; 16]),
                vers_major: 1,
                vers_minor: 0,
            })),
            vers_option: RPC_C_VERS_ALL,
            entry_handle: ContextHandle::NULL,
            max_ents: 2,
        },
    )
    .await;
    assert_eq!(
        (none.status, none.num_ents, none.entry_handle.is_null()),
        (EPT_S_NOT_REGISTERED, 0, true)
    );

    // The whole map as `dsbackup endpoints` lists it.
    let entries = list_endpoints(epm, &anonymous()).await.unwrap();
    assert_eq!(entries.len(), 5);
    let expected: StringBinding = format!("ncacn_ip_tcp:127.0.0.1[{}]", server.local_addr().port())
        .parse()
        .unwrap();
    assert_eq!(server.string_binding(), expected);
    assert!(
        entries
            .iter()
            .all(|entry| entry.binding.as_ref() == Some(&expected))
    );
    assert_eq!(entries[4].interface, Some(syntax(5)));
    binding.close().await;
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}

/// One `ept_lookup` call on `binding`: every entry of the map (or of `interface`, that exact
/// version, only), at most
/// `max_ents` a page, from `handle`.
async fn lookup_page(
    binding: &Binding,
    handle: ContextHandle,
    interface: Option<SyntaxId>,
    max_ents: u32,
) -> Result<EptLookupResponse, TransportError> {
    let request = EptLookupRequest {
        inquiry_type: if interface.is_some() {
            1 // rpc_c_ep_match_by_if
        } else {
            RPC_C_EP_ALL_ELTS
        },
        object: Full(None),
        interface_id: Full(interface.map(|syntax| dsbackup_proto::iface::epm::RpcIfId {
            uuid: syntax.uuid,
            vers_major: syntax.version,
            vers_minor: syntax.version_minor,
        })),
        vers_option: if interface.is_some() {
            3 // rpc_c_vers_exact
        } else {
            RPC_C_VERS_ALL
        },
        entry_handle: handle,
        max_ents,
    };
    let stub = encode_stub(&request, binding.drep()).unwrap();
    let reply = binding.call(2, Bytes::from(stub)).await?;
    Ok(decode_stub(reply.drep, &reply.stub.to_bytes(), "ept_lookup response").unwrap())
}

/// Pages through the map as rpcclient does (one entry a page, until `ept_s_not_registered`) and
/// with other page sizes: every entry comes exactly once; a full page keeps the handle live,
/// even the one holding the last entry, and the call after it says `ept_s_not_registered` with
/// the null handle; a page the map cannot fill ends the list with the null handle and status
/// 0 (where impacket's `hept_lookup` stops). Either way the handle is freed at the end.
#[tokio::test]
async fn ept_lookup_pages_end_with_every_entry_once_and_the_handle_freed() {
    let server = start(&many(), server_options(5840)).await;
    let binding = Binding::connect(server.epm_addr().unwrap(), &[epm_syntax()], &anonymous())
        .await
        .unwrap();
    // (max_ents, interface asked, the pages, whether ept_s_not_registered ends the list)
    let cases = [
        (1, None, vec![1, 1, 1, 1, 1], true),
        (5, None, vec![5], true),
        (2, None, vec![2, 2, 1], false),
        (3, None, vec![3, 2], false),
        (500, None, vec![5], false),
        (1, Some(syntax(3)), vec![1], true),
        (2, Some(syntax(3)), vec![1], false),
    ];
    for (max_ents, interface, expected_pages, ends_not_registered) in cases {
        let case = format!("max_ents {max_ents}, interface {interface:?}");
        let mut handle = ContextHandle::NULL;
        let mut live = Vec::new();
        let mut pages = Vec::new();
        let mut versions = Vec::new();
        let last = loop {
            assert!(pages.len() <= 5, "{case}: the list does not end: {pages:?}");
            let page = lookup_page(&binding, handle, interface, max_ents)
                .await
                .unwrap();
            if page.status == EPT_S_NOT_REGISTERED {
                break page;
            }
            assert_eq!(page.status, Status::SUCCESS, "{case}");
            assert_eq!(page.num_ents as usize, page.entries.items.len(), "{case}");
            pages.push(page.entries.items.len());
            for entry in &page.entries.items {
                let tower = entry.tower.0.as_ref().unwrap().tower().unwrap();
                let (uuid, major, _) = tower.interface().unwrap();
                assert_eq!(uuid, TEST_UUID, "{case}");
                versions.push(major);
            }
            if page.entry_handle.is_null() {
                break page;
            }
            // The handle is the same from page to page.
            assert!(handle.is_null() || handle == page.entry_handle, "{case}");
            handle = page.entry_handle;
            live.push(handle);
        };
        assert_eq!(pages, expected_pages, "{case}");
        let expected: Vec<u16> = match interface {
            Some(syntax) => vec![syntax.version],
            None => (1..=5).collect(),
        };
        assert_eq!(versions, expected, "{case}: every entry exactly once");
        assert!(last.entry_handle.is_null(), "{case}");
        assert_eq!(
            last.status == EPT_S_NOT_REGISTERED,
            ends_not_registered,
            "{case}"
        );
        if ends_not_registered {
            assert_eq!((last.num_ents, last.entries.items.len()), (0, 0), "{case}");
        }
        // The handle was freed with the end of the list: the server knows it no more.
        if let Some(&spent) = live.last() {
            let freed: EptLookupHandleFreeResponse = call(
                &binding,
                4,
                &EptLookupHandleFreeRequest {
                    entry_handle: spent,
                },
            )
            .await;
            assert_eq!(freed.status, EPT_S_NOT_REGISTERED, "{case}");
            match lookup_page(&binding, spent, interface, max_ents).await {
                Err(TransportError::Fault {
                    status: FaultStatus::FAULT_CONTEXT_MISMATCH,
                    ..
                }) => {}
                other => panic!("{case}: a spent handle gave {other:?}"),
            }
        }
    }
    // Our resolver's listing ends too, whatever its page size meets.
    let entries = list_endpoints(server.epm_addr().unwrap(), &anonymous())
        .await
        .unwrap();
    assert_eq!(entries.len(), 5);
    binding.close().await;
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}

#[tokio::test]
async fn mgmt_answers_on_every_endpoint() {
    let server = start(&many(), server_options(5840)).await;
    let options = client_options(AuthLevel::PKT_PRIVACY, 5840, DataRep::BIG_ENDIAN);
    for addr in [server.local_addr(), server.epm_addr().unwrap()] {
        let binding = Binding::connect(addr, &[mgmt_syntax()], &options)
            .await
            .unwrap();
        let ids: InqIfIdsResponse = call(&binding, 0, &InqIfIdsRequest {}).await;
        let ids: Vec<_> = ids
            .if_id_vector
            .0
            .unwrap()
            .if_id
            .into_iter()
            .map(|id| id.0.unwrap())
            .map(|id| SyntaxId::new(id.uuid, id.vers_major, id.vers_minor))
            .collect();
        assert_eq!(ids, (1..=5).map(syntax).collect::<Vec<_>>());
        let stats: InqStatsResponse = call(&binding, 1, &InqStatsRequest { count: 4 }).await;
        assert_eq!(stats.statistics.len(), 4);
        assert!(stats.statistics.iter().all(|&n| n > 0), "{stats:?}");
        let listening: IsServerListeningResponse =
            call(&binding, 2, &IsServerListeningRequest {}).await;
        assert_eq!((listening.status, listening.result), (Status::SUCCESS, 1));
        let stop: StopServerListeningResponse =
            call(&binding, 3, &StopServerListeningRequest {}).await;
        assert_eq!(stop.status, Status(5));
        let name: InqPrincNameResponse = call(
            &binding,
            4,
            &InqPrincNameRequest {
                authn_proto: 10,
                princ_name_size: 256,
            },
        )
        .await;
        assert_eq!(name.princ_name.text, "DC1$@CORP.EXAMPLE");
        // An opnum past mgmt's five.
        assert!(matches!(
            binding.call(5, Bytes::new()).await,
            Err(TransportError::Fault {
                status: FaultStatus::OP_RNG_ERROR,
                did_not_execute: true
            })
        ));
        binding.close().await;
    }
    server.shutdown().await;
    // Still listening after a refused stop: the shutdown above is ours.
    assert!(server.snapshot().is_idle());
}

#[tokio::test]
async fn registry_resolves_tracks_and_closes_everything() {
    let interface = TestInterface::new(AuthLevel::PKT_PRIVACY);
    let server = start(
        &[interface.clone() as Arc<dyn RpcInterface>],
        server_options(5840),
    )
    .await;
    let mut options = client_options(AuthLevel::PKT_PRIVACY, 5840, DataRep::LITTLE_ENDIAN);
    options.epm_port = server.epm_addr().unwrap().port();
    let registry = Registry::new(options);
    // No endpoint: resolved through the endpoint mapper.
    let target: StringBinding = "ncacn_ip_tcp:127.0.0.1".parse().unwrap();
    let bindings: Vec<_> = {
        let mut bindings = Vec::new();
        for _ in 0..3 {
            bindings.push(Arc::new(
                registry.open(&target, &[syntax(1)]).await.unwrap(),
            ));
        }
        bindings
    };
    let snapshot = registry.snapshot();
    assert_eq!((snapshot.bindings, snapshot.associations), (3, 3));
    assert_eq!(registry.open_associations(), 3);
    // A call in flight when the registry closes fails with Closed.
    let stalled = {
        let binding = Arc::clone(&bindings[0]);
        tokio::spawn(async move { binding.call(op::STALL, Bytes::new()).await })
    };
    assert!(settle(|| interface.stalled.load(Ordering::SeqCst) == 1).await);
    registry.close().await;
    assert!(matches!(
        stalled.await.unwrap(),
        Err(TransportError::Closed)
    ));
    for binding in &bindings {
        assert!(binding.association().is_closed());
        assert!(matches!(
            binding.call(op::ECHO, Bytes::new()).await,
            Err(TransportError::Closed)
        ));
    }
    assert!(matches!(
        registry.open(&target, &[syntax(1)]).await,
        Err(TransportError::Closed)
    ));
    let snapshot = registry.snapshot();
    assert_eq!(
        (snapshot.associations, snapshot.tasks, snapshot.calls),
        (0, 0, 0)
    );
    drop(bindings);
    assert!(registry.snapshot().is_idle());
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}

#[tokio::test]
async fn version_fallback_binds_v2_when_v1_is_rejected() {
    let v2: Arc<dyn RpcInterface> = Arc::new(TestInterface {
        version: 2,
        ..TestInterface::default()
    });
    let server = start(&[v2], server_options(5840)).await;
    let binding = Binding::connect(server.local_addr(), &[syntax(1), syntax(2)], &anonymous())
        .await
        .unwrap();
    assert_eq!(binding.interface(), syntax(2));
    assert_eq!(
        call_bytes(&binding, op::ECHO, pattern(5, 5)).await,
        pattern(5, 5)
    );
    // Another interface on the same association, through alter_context.
    let mgmt = binding
        .association()
        .bind_interface(&[mgmt_syntax()])
        .await
        .unwrap();
    let ids: InqIfIdsResponse = call(&mgmt, 0, &InqIfIdsRequest {}).await;
    assert_eq!(ids.if_id_vector.0.unwrap().if_id.len(), 1);
    assert!(matches!(
        Binding::connect(server.local_addr(), &[syntax(1)], &anonymous()).await,
        Err(TransportError::InterfaceRejected { .. })
    ));
    drop(mgmt);
    binding.close().await;
    server.shutdown().await;
    assert!(server.snapshot().is_idle());
}

fn handle_of(reply: &dsbackup_transport::Reply) -> ContextHandle {
    NdrReader::new(reply.drep, &reply.stub.to_bytes())
        .param()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_on_one_context_handle_run_in_order_and_handles_run_down() {
    let interface = TestInterface::new(AuthLevel::NONE);
    let server = start(
        &[interface.clone() as Arc<dyn RpcInterface>],
        server_options(5840),
    )
    .await;
    for drep in [DataRep::LITTLE_ENDIAN, DataRep::BIG_ENDIAN] {
        let options = client_options(AuthLevel::PKT_INTEGRITY, 5840, drep);
        let binding = Arc::new(
            Binding::connect(server.local_addr(), &[syntax(1)], &options)
                .await
                .unwrap(),
        );
        let handle = handle_of(&binding.call(op::OPEN, Bytes::new()).await.unwrap());
        // 48 appends sent at once from as many tasks, in order on the wire.
        let mut tasks = Vec::new();
        for value in 0..48u32 {
            let binding = Arc::clone(&binding);
            let stub = handle_stub(drep, handle, Some(value));
            let call = async move { binding.call(op::APPEND, stub).await };
            // Spawned one by one after the previous is queued: the wire order is 0..48.
            tasks.push(tokio::spawn(call));
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let log = call_bytes(&binding, op::CLOSE, handle_stub(drep, handle, None)).await;
        let values: Vec<u32> = log
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let mut sorted = values.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..48).collect::<Vec<_>>());
        // Calls were issued from racing tasks: what matters is that the server ran them in
        // the order they arrived, which is checked by the next, sequential part.
        let handle = handle_of(&binding.call(op::OPEN, Bytes::new()).await.unwrap());
        let pending: Vec<_> = (0..32u32)
            .map(|value| binding.call(op::APPEND, handle_stub(drep, handle, Some(value))))
            .collect();
        // Polled together: all requests go out before any answer, in this order.
        let results = futures_util::future::join_all(pending).await;
        assert!(results.iter().all(Result::is_ok));
        let log = call_bytes(&binding, op::CLOSE, handle_stub(drep, handle, None)).await;
        let values: Vec<u32> = log
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(values, (0..32).collect::<Vec<_>>());
        // A handle left open is run down when the association dies.
        let before = interface.rundowns.load(Ordering::SeqCst);
        let _open = handle_of(&binding.call(op::OPEN, Bytes::new()).await.unwrap());
        Arc::into_inner(binding).unwrap().close().await;
        assert!(settle(|| interface.rundowns.load(Ordering::SeqCst) == before + 1).await);
    }
    server.shutdown().await;
    assert!(interface.logs.lock().unwrap().is_empty());
    assert!(server.snapshot().is_idle());
}

/// An endpoint mapper as Samba answers: `ept_map` finds nothing, `ept_lookup` lists towers
/// with address 0.0.0.0 and ends with `ept_s_not_registered`.
struct SambaLikeMapper {
    port: u16,
}

impl RpcInterface for SambaLikeMapper {
    fn syntax(&self) -> SyntaxId {
        epm_syntax()
    }

    fn opnums(&self) -> u16 {
        5
    }

    fn call(
        self: Arc<Self>,
        ctx: dsbackup_transport::CallContext,
        opnum: u16,
        stub: Bytes,
        drep: DataRep,
    ) -> dsbackup_transport::CallFuture {
        use dsbackup_proto::iface::epm::{EpmRequest, EptEntry, EptMapResponse, Twr};
        use dsbackup_proto::ndr::ConformantVarying;
        use dsbackup_transport::tcp_tower;
        Box::pin(async move {
            let out = match EpmRequest::decode(opnum, drep, &stub)? {
                EpmRequest::EptMap(request) => encode_stub(
                    &EptMapResponse {
                        entry_handle: ContextHandle::NULL,
                        num_towers: 0,
                        towers: ConformantVarying {
                            max_count: request.max_towers,
                            items: Vec::new(),
                        },
                        status: EPT_S_NOT_REGISTERED,
                    },
                    ctx.reply_drep(),
                )?,
                EpmRequest::EptLookup(request) if request.entry_handle.is_null() => {
                    let entries: Vec<_> = [syntax(3), syntax(1)]
                        .into_iter()
                        .map(|syntax| EptEntry {
                            object: Uuid::NIL,
                            tower: Full(Some(
                                Twr::from_tower(&tcp_tower(syntax, self.port, [0; 4])).unwrap(),
                            )),
                            annotation: String::new(),
                        })
                        .collect();
                    let handle = ctx.new_context_handle().unwrap();
                    encode_stub(
                        &EptLookupResponse {
                            entry_handle: handle,
                            num_ents: 2,
                            entries: ConformantVarying {
                                max_count: request.max_ents,
                                items: entries,
                            },
                            status: Status::SUCCESS,
                        },
                        ctx.reply_drep(),
                    )?
                }
                // Samba keeps the handle with the final status.
                EpmRequest::EptLookup(request) => encode_stub(
                    &EptLookupResponse {
                        entry_handle: request.entry_handle,
                        num_ents: 0,
                        entries: ConformantVarying {
                            max_count: request.max_ents,
                            items: Vec::new(),
                        },
                        status: EPT_S_NOT_REGISTERED,
                    },
                    ctx.reply_drep(),
                )?,
                EpmRequest::EptLookupHandleFree(request) => {
                    assert!(ctx.release_context_handle(&request.entry_handle));
                    encode_stub(
                        &EptLookupHandleFreeResponse {
                            entry_handle: ContextHandle::NULL,
                            status: Status::SUCCESS,
                        },
                        ctx.reply_drep(),
                    )?
                }
            };
            Ok(out.into())
        })
    }
}

#[tokio::test]
async fn resolution_falls_back_to_ept_lookup_and_reads_0000_as_the_host_asked() {
    let mut options = server_options(5840);
    options.epm_listen = None;
    // Registered before the built-in mapper: it answers the epm calls of the main listener.
    let server = start(
        &[Arc::new(SambaLikeMapper { port: 4321 }) as Arc<dyn RpcInterface>],
        options,
    )
    .await;
    let addr = resolve(server.local_addr(), syntax(1), &anonymous())
        .await
        .unwrap();
    assert_eq!(addr, "127.0.0.1:4321".parse().unwrap());
    assert!(matches!(
        resolve(server.local_addr(), syntax(2), &anonymous()).await,
        Err(TransportError::Resolve(_))
    ));
    server.shutdown().await;
    assert!(server.snapshot().is_idle());
}

#[tokio::test]
async fn graceful_shutdown_lets_the_call_in_flight_finish() {
    let interface = TestInterface::new(AuthLevel::NONE);
    let server = Arc::new(
        start(
            &[interface.clone() as Arc<dyn RpcInterface>],
            server_options(5840),
        )
        .await,
    );
    let binding = Arc::new(
        Binding::connect(server.local_addr(), &[syntax(1)], &privacy_options())
            .await
            .unwrap(),
    );
    let call = {
        let binding = Arc::clone(&binding);
        tokio::spawn(async move { binding.call(op::GATED, pattern(100, 3)).await })
    };
    assert!(settle(|| interface.gated.load(Ordering::SeqCst) == 1).await);
    let shutdown = {
        let server = Arc::clone(&server);
        tokio::spawn(async move { server.shutdown().await })
    };
    interface.gate.0.add_permits(1);
    assert_eq!(
        call.await.unwrap().unwrap().stub.to_bytes(),
        pattern(100, 3)
    );
    shutdown.await.unwrap();
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
    // The association is gone with the server; new connections are refused.
    assert!(binding.call(op::ECHO, Bytes::new()).await.is_err());
    assert!(
        Binding::connect(server.local_addr(), &[syntax(1)], &privacy_options())
            .await
            .is_err()
    );
}

fn privacy_options() -> ClientOptions {
    client_options(AuthLevel::PKT_PRIVACY, 5840, DataRep::LITTLE_ENDIAN)
}

#[tokio::test]
async fn associations_join_a_live_group_and_an_unknown_one_is_refused() {
    let interface = TestInterface::new(AuthLevel::NONE);
    let server = start(&[interface as Arc<dyn RpcInterface>], server_options(5840)).await;
    let first = Binding::connect(server.local_addr(), &[syntax(1)], &anonymous())
        .await
        .unwrap();
    let group = first.association().assoc_group_id();
    assert_ne!(group, 0);
    let mut joining = anonymous();
    joining.assoc_group_id = group;
    let second = Binding::connect(server.local_addr(), &[syntax(1)], &joining)
        .await
        .unwrap();
    assert_eq!(second.association().assoc_group_id(), group);
    // A group that does not exist: bind_nak, as Samba and Windows answer.
    let mut unknown = anonymous();
    unknown.assoc_group_id = 0x00de_ad00;
    let third = Binding::connect(server.local_addr(), &[syntax(1)], &unknown).await;
    assert!(third.is_err(), "{:?}", third.map(|_| ()));
    for binding in [first, second] {
        binding.close().await;
    }
    server.shutdown().await;
    assert!(server.snapshot().is_idle());
}
