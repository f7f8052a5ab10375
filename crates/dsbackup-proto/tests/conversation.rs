//! A whole conversation between the client and server association state machines, written as
//! one PDU a line (`I <hex>` client to server, `O <hex>` server to client) for
//! `cargo xtask conformance`, which checks every PDU with tshark.
//!
//! The conversation: a bind with two contexts (ad_backup, ad_restore) at a negotiated fragment
//! size of 2048; calls with varied opnums, requests and responses fragmented; an alter_context
//! adding mgmt; a call to mgmt; a fault for an unknown opnum; a call cancelled with co_cancel.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failure is a panic"
)]

use std::fmt::Write as _;
use std::path::PathBuf;

use bytes::Bytes;
use dsbackup_proto::{
    AuthLevel, ClientAssociation, ClientConfig, ClientEvent, FaultStatus, Interface,
    ServerAssociation, ServerConfig, ServerEvent, ServerRequest, SyntaxId, Uuid, frame_len,
};

const AD_BACKUP: SyntaxId = SyntaxId::new(
    Uuid::from_str_const("ecec0d70-a603-11d0-96b1-00a0c91ece30"),
    1,
    0,
);
const AD_RESTORE: SyntaxId = SyntaxId::new(
    Uuid::from_str_const("16e0cf3a-a604-11d0-96b1-00a0c91ece30"),
    1,
    0,
);
const MGMT: SyntaxId = SyntaxId::new(
    Uuid::from_str_const("afa8bd80-7d8a-11c9-bef4-08002b102989"),
    1,
    0,
);

struct Conversation {
    client: ClientAssociation,
    server: ServerAssociation,
    lines: String,
    client_events: Vec<ClientEvent>,
    requests: Vec<ServerRequest>,
    server_events: Vec<ServerEvent>,
}

impl Conversation {
    fn drive(&mut self) {
        loop {
            let mut idle = true;
            while let Some(frame) = self.client.poll_transmit().map(|frame| frame.to_bytes()) {
                idle = false;
                assert_eq!(
                    frame_len(&frame, self.server.max_recv_frag()),
                    Ok(Some(frame.len()))
                );
                writeln!(self.lines, "I {}", hex(&frame)).unwrap();
                self.server.handle_frame(frame).unwrap();
            }
            while let Some(frame) = self.server.poll_transmit().map(|frame| frame.to_bytes()) {
                idle = false;
                assert_eq!(
                    frame_len(&frame, self.client.max_recv_frag()),
                    Ok(Some(frame.len()))
                );
                writeln!(self.lines, "O {}", hex(&frame)).unwrap();
                self.client.handle_frame(frame).unwrap();
            }
            while let Some(event) = self.server.poll_event() {
                match event {
                    ServerEvent::Request(request) => self.requests.push(request),
                    other => self.server_events.push(other),
                }
            }
            self.client_events
                .extend(std::iter::from_fn(|| self.client.poll_event()));
            if idle {
                return;
            }
        }
    }

    /// Runs one call: the server sees `stub` and answers `answer`, or faults by itself.
    fn call(&mut self, p_cont_id: u16, opnum: u16, stub: &Bytes, answer: &Bytes) -> ClientEvent {
        let call_id = self
            .client
            .call(p_cont_id, opnum, None, stub.clone())
            .unwrap();
        self.drive();
        if let Some(request) = self.requests.pop() {
            assert_eq!(request.call_id, call_id);
            assert_eq!(&request.stub, stub, "the request stub arrived intact");
            assert_eq!(request.opnum, opnum);
            self.server.respond(call_id, answer.clone()).unwrap();
            self.drive();
        }
        let event = self.client_events.pop().unwrap();
        match &event {
            ClientEvent::Response { call_id: id, .. } | ClientEvent::Fault { call_id: id, .. } => {
                assert_eq!(*id, call_id);
            }
            other => panic!("unexpected {other:?}"),
        }
        event
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        write!(out, "{byte:02x}").unwrap();
        out
    })
}

/// NDR-looking stub bytes: a length then a recognisable pattern, padded to 4.
fn stub(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| u8::try_from(i % 251).unwrap() ^ seed)
        .collect::<Vec<_>>()
        .into()
}

fn output_path() -> PathBuf {
    let dir = std::env::var_os("DSBACKUP_CONFORMANCE_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/conformance"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("conversation.txt")
}

#[test]
fn conformance_dump_conversation() {
    let mut client_config = ClientConfig::default();
    client_config.limits.max_xmit_frag = 2048;
    client_config.limits.max_recv_frag = 2048;
    let interfaces = vec![
        Interface {
            syntax: AD_BACKUP,
            opnums: 9,
            min_auth_level: AuthLevel::NONE,
        },
        Interface {
            syntax: AD_RESTORE,
            opnums: 8,
            min_auth_level: AuthLevel::NONE,
        },
        Interface {
            syntax: MGMT,
            opnums: 5,
            min_auth_level: AuthLevel::NONE,
        },
    ];
    let mut conversation = Conversation {
        client: ClientAssociation::new(client_config, None).unwrap(),
        server: ServerAssociation::new(ServerConfig::new(interfaces, 0x5a5a), None).unwrap(),
        lines: String::new(),
        client_events: Vec::new(),
        requests: Vec::new(),
        server_events: Vec::new(),
    };
    let ids = conversation.client.bind(&[AD_BACKUP, AD_RESTORE]).unwrap();
    conversation.drive();
    assert!(conversation.client.is_bound());
    assert_eq!(conversation.client.max_xmit_frag(), 2048);
    conversation.client_events.clear();
    let (backup, restore) = (ids[0], ids[1]);

    // HrRBackupPrepare, HrRBackupOpenFile (a fragmented request), HrRBackupRead (a fragmented
    // response), HrRIsNTDSOnline on ad_restore.
    for (context, opnum, request_len, response_len) in [
        (backup, 0, 64, 24),
        (backup, 3, 5000, 16),
        (backup, 4, 24, 9000),
        (restore, 0, 0, 8),
    ] {
        let request = stub(request_len, u8::try_from(opnum).unwrap());
        let answer = stub(response_len, 0x80 | u8::try_from(opnum).unwrap());
        let event = conversation.call(context, opnum, &request, &answer);
        assert_eq!(
            event,
            ClientEvent::Response {
                call_id: match event {
                    ClientEvent::Response { call_id, .. } => call_id,
                    _ => 0,
                },
                stub: answer.into(),
                drep: dsbackup_proto::DataRep::LITTLE_ENDIAN,
            },
            "the response stub arrived intact"
        );
    }

    // alter_context adds mgmt; rpc_mgmt_is_server_listening (opnum 2): no input, and the
    // output is a status pointer's referent and the boolean result.
    let added = conversation.client.alter_context(&[MGMT]).unwrap();
    conversation.drive();
    let listening = Bytes::from_static(&[0, 0, 0, 0, 1, 0, 0, 0]);
    let event = conversation.call(added[0], 2, &Bytes::new(), &listening);
    assert!(matches!(event, ClientEvent::Response { stub, .. } if stub.to_bytes() == listening));

    // An opnum past ad_backup's nine: the server faults by itself.
    let event = conversation.call(backup, 12, &stub(16, 1), &Bytes::new());
    assert!(matches!(
        event,
        ClientEvent::Fault {
            status: FaultStatus::OP_RNG_ERROR,
            did_not_execute: true,
            ..
        }
    ));

    // A call cancelled once sent: co_cancel, and its response is dropped.
    let call_id = conversation
        .client
        .call(backup, 8, None, stub(4, 8))
        .unwrap();
    conversation.drive();
    conversation.client.cancel(call_id).unwrap();
    conversation.drive();
    assert!(
        conversation
            .server_events
            .contains(&ServerEvent::Cancelled { call_id })
    );
    let request = conversation.requests.pop().unwrap();
    conversation
        .server
        .respond(request.call_id, stub(4, 0x88))
        .unwrap();
    conversation.drive();
    assert_eq!(
        conversation.client_events.pop(),
        Some(ClientEvent::Cancelled { call_id })
    );

    let path = output_path();
    std::fs::write(&path, &conversation.lines).unwrap();
    let lines = conversation.lines.lines().count();
    assert!(lines > 20, "{lines} PDUs written to {}", path.display());
}
