//! The client and server association state machines talking to each other in memory, and each
//! facing a hostile peer.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::{Limits, Reassembly};
use crate::client::{ClientAssociation, ClientConfig, ClientEvent, ContextOutcome};
use crate::drep::DataRep;
use crate::error::{ApiMisuse, ProtocolError};
use crate::framing::frame_len;
use crate::header::{CommonHeader, PacketType, PfcFlags};
use crate::pdu::{
    AlterContext, AuthVerifier, Bind, Fault, FaultStatus, Pdu, PduBody, PresentationContext,
    ProviderReason, RejectReason, Request, Response,
};
use crate::security::{AuthLevel, AuthStep, AuthType, Protection, SecurityError, SecurityProvider};
use crate::server::{
    Interface, SecurityFactory, ServerAssociation, ServerConfig, ServerEvent, ServerRequest,
};
use crate::syntax::{BindTimeFeatures, SyntaxId};
use crate::trailer::{
    CLIENT_SUPPORT_HEADER_SIGNING, Header2, MAGIC, PContext, VerificationTrailer,
};
use crate::uuid::Uuid;

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

fn interfaces(min_auth_level: AuthLevel) -> Vec<Interface> {
    vec![
        Interface {
            syntax: AD_BACKUP,
            opnums: 9,
            min_auth_level,
        },
        Interface {
            syntax: AD_RESTORE,
            opnums: 8,
            min_auth_level,
        },
    ]
}

/// A stub whose bytes say where they are, so a misplaced byte shows.
fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| u8::try_from(i % 251).unwrap() ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

// --- A toy security package: XOR sealing and a keyed checksum, one sequence per direction. ---

#[derive(Debug)]
struct Toy {
    initiator: bool,
    key: u8,
    established: bool,
    send_seq: u32,
    recv_seq: u32,
    password: &'static [u8],
    /// Four legs (bind, bind_ack, alter_context, alter_context_resp) instead of three.
    four_legs: bool,
}

impl Toy {
    fn initiator() -> Box<dyn SecurityProvider> {
        Box::new(Self::new(true, b"toy-authenticate"))
    }

    fn with_password(password: &'static [u8]) -> Box<dyn SecurityProvider> {
        Box::new(Self::new(true, password))
    }

    fn acceptor() -> Box<dyn SecurityProvider> {
        Box::new(Self::new(false, b"toy-authenticate"))
    }

    fn new(initiator: bool, password: &'static [u8]) -> Self {
        Self {
            initiator,
            key: 0x5a,
            established: false,
            send_seq: 0,
            recv_seq: 0,
            password,
            four_legs: false,
        }
    }

    fn checksum(&self, seq: u32, pdu: &[u8]) -> [u8; 12] {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(self.key);
        for &byte in seq.to_le_bytes().iter().chain(pdu) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut out = [0; 12];
        out[..8].copy_from_slice(&hash.to_le_bytes());
        out[8..].copy_from_slice(&u32::try_from(pdu.len()).unwrap().to_le_bytes());
        out
    }

    fn xor(&self, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte ^= self.key ^ u8::try_from(i % 256).unwrap();
        }
    }
}

impl SecurityProvider for Toy {
    fn auth_type(&self) -> AuthType {
        AuthType::WINNT
    }

    fn step(&mut self, peer_token: Option<&[u8]>) -> Result<AuthStep, SecurityError> {
        match (self.initiator, peer_token) {
            (true, None) if self.four_legs => Ok(AuthStep::Continue(b"toy-4-negotiate".to_vec())),
            (true, Some(b"toy-4-challenge")) => Ok(AuthStep::Continue(self.password.to_vec())),
            (true, Some(b"toy-4-final")) => {
                self.established = true;
                Ok(AuthStep::Complete(None))
            }
            (false, Some(b"toy-4-negotiate")) => {
                self.four_legs = true;
                Ok(AuthStep::Continue(b"toy-4-challenge".to_vec()))
            }
            (false, Some(token)) if self.four_legs && token == self.password => {
                self.established = true;
                Ok(AuthStep::Complete(Some(b"toy-4-final".to_vec())))
            }
            (true, None) => Ok(AuthStep::Continue(b"toy-negotiate".to_vec())),
            (true, Some(b"toy-challenge")) => {
                self.established = true;
                Ok(AuthStep::Complete(Some(self.password.to_vec())))
            }
            (false, Some(b"toy-negotiate")) => Ok(AuthStep::Continue(b"toy-challenge".to_vec())),
            (false, Some(token)) if token == self.password => {
                self.established = true;
                Ok(AuthStep::Complete(None))
            }
            (false, Some(_)) => Err(SecurityError::LogonFailure("wrong toy password")),
            _ => Err(SecurityError::WrongState("unexpected toy token")),
        }
    }

    fn is_established(&self) -> bool {
        self.established
    }

    fn signature_len(&self) -> usize {
        16
    }

    fn wrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: core::ops::Range<usize>,
        signature: &mut [u8],
    ) -> Result<(), SecurityError> {
        if !self.established {
            return Err(SecurityError::WrongState("not established"));
        }
        let sum = self.checksum(self.send_seq, pdu);
        signature[..4].copy_from_slice(&self.send_seq.to_le_bytes());
        signature[4..].copy_from_slice(&sum);
        self.send_seq += 1;
        if protection == Protection::Privacy {
            self.xor(&mut pdu[stub]);
        }
        Ok(())
    }

    fn unwrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: core::ops::Range<usize>,
        signature: &[u8],
    ) -> Result<(), SecurityError> {
        if protection == Protection::Privacy {
            self.xor(&mut pdu[stub]);
        }
        let sum = self.checksum(self.recv_seq, pdu);
        if signature[..4] != self.recv_seq.to_le_bytes() || signature[4..] != sum {
            return Err(SecurityError::BadSignature);
        }
        self.recv_seq += 1;
        Ok(())
    }
}

fn toy_factory() -> SecurityFactory {
    Box::new(|auth_type| (auth_type == AuthType::WINNT).then(Toy::acceptor))
}

// --- The in-memory pair. ---

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    ToServer,
    ToClient,
}

/// The next PDU a side has to send, joined into one buffer (as the peer reads it).
trait NextFrame {
    fn next_frame(&mut self) -> Option<Bytes>;
}

impl NextFrame for ClientAssociation {
    fn next_frame(&mut self) -> Option<Bytes> {
        self.poll_transmit().map(|frame| frame.to_bytes())
    }
}

impl NextFrame for ServerAssociation {
    fn next_frame(&mut self) -> Option<Bytes> {
        self.poll_transmit().map(|frame| frame.to_bytes())
    }
}

struct Pair {
    client: ClientAssociation,
    server: ServerAssociation,
    wire: Vec<(Dir, Bytes)>,
    client_events: Vec<ClientEvent>,
    server_events: Vec<ServerEvent>,
}

impl Pair {
    fn new(client: ClientConfig, server: ServerConfig) -> Self {
        Self::with_security(client, None, server, None)
    }

    fn with_security(
        client: ClientConfig,
        client_security: Option<Box<dyn SecurityProvider>>,
        server: ServerConfig,
        factory: Option<SecurityFactory>,
    ) -> Self {
        Self {
            client: ClientAssociation::new(client, client_security).unwrap(),
            server: ServerAssociation::new(server, factory).unwrap(),
            wire: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
        }
    }

    /// A pair bound on ad_backup and ad_restore with default configurations.
    fn bound() -> (Self, [u16; 2]) {
        let mut pair = Self::new(
            ClientConfig::default(),
            ServerConfig::new(interfaces(AuthLevel::NONE), 0x1234),
        );
        let ids = pair.client.bind(&[AD_BACKUP, AD_RESTORE]).unwrap();
        pair.drive().unwrap();
        assert!(pair.client.is_bound());
        (pair, [ids[0], ids[1]])
    }

    /// Shuttles PDUs both ways until neither side has anything to send. Every PDU must frame
    /// within the receiver's size.
    fn drive(&mut self) -> Result<(), ProtocolError> {
        loop {
            let mut idle = true;
            while let Some(frame) = self.client.next_frame() {
                idle = false;
                assert_eq!(
                    frame_len(&frame, self.server.max_recv_frag()),
                    Ok(Some(frame.len()))
                );
                self.wire.push((Dir::ToServer, frame.clone()));
                let result = self.server.handle_frame(frame);
                self.collect();
                result?;
            }
            while let Some(frame) = self.server.next_frame() {
                idle = false;
                assert_eq!(
                    frame_len(&frame, self.client.max_recv_frag()),
                    Ok(Some(frame.len()))
                );
                self.wire.push((Dir::ToClient, frame.clone()));
                let result = self.client.handle_frame(frame);
                self.collect();
                result?;
            }
            if idle {
                return Ok(());
            }
        }
    }

    fn collect(&mut self) {
        self.client_events
            .extend(core::iter::from_fn(|| self.client.poll_event()));
        self.server_events
            .extend(core::iter::from_fn(|| self.server.poll_event()));
    }

    fn take_requests(&mut self) -> Vec<ServerRequest> {
        let mut requests = Vec::new();
        self.server_events.retain(|event| match event {
            ServerEvent::Request(request) => {
                requests.push(request.clone());
                false
            }
            _ => true,
        });
        requests
    }

    /// Answers every pending request by echoing its stub reversed, then drives.
    fn serve_echo(&mut self) {
        for request in self.take_requests() {
            let mut stub = request.stub.to_vec();
            stub.reverse();
            self.server.respond(request.call_id, stub).unwrap();
        }
        self.drive().unwrap();
    }

    fn responses(&mut self) -> Vec<(u32, Bytes)> {
        let mut out = Vec::new();
        self.client_events.retain(|event| match event {
            ClientEvent::Response { call_id, stub, .. } => {
                out.push((*call_id, stub.to_bytes()));
                false
            }
            _ => true,
        });
        out
    }

    fn frames(&self, dir: Dir, ptype: PacketType) -> Vec<Bytes> {
        self.wire
            .iter()
            .filter(|(d, frame)| *d == dir && frame.get(2) == Some(&ptype.0))
            .map(|(_, frame)| frame.clone())
            .collect()
    }
}

fn reversed(stub: &Bytes) -> Bytes {
    let mut v = stub.to_vec();
    v.reverse();
    v.into()
}

fn config_with_frag(size: u16) -> (ClientConfig, ServerConfig) {
    let mut client = ClientConfig::default();
    client.limits.max_xmit_frag = size;
    client.limits.max_recv_frag = size;
    let mut server = ServerConfig::new(interfaces(AuthLevel::NONE), 7);
    server.limits.max_xmit_frag = size;
    server.limits.max_recv_frag = size;
    (client, server)
}

fn request_pdu(call_id: u32, flags: PfcFlags, p_cont_id: u16, opnum: u16, stub: &[u8]) -> Bytes {
    let mut pdu = Pdu::new(
        call_id,
        PduBody::Request(Request {
            alloc_hint: u32::try_from(stub.len()).unwrap(),
            p_cont_id,
            opnum,
            object: None,
            stub: Bytes::copy_from_slice(stub),
        }),
    );
    pdu.pfc_flags = flags;
    pdu.to_bytes().unwrap()
}

fn response_pdu(call_id: u32, flags: PfcFlags, stub: &[u8]) -> Bytes {
    let mut pdu = Pdu::new(
        call_id,
        PduBody::Response(Response {
            alloc_hint: u32::try_from(stub.len()).unwrap(),
            p_cont_id: 0,
            cancel_count: 0,
            reserved: 0,
            stub: Bytes::copy_from_slice(stub),
        }),
    );
    pdu.pfc_flags = flags;
    pdu.to_bytes().unwrap()
}

fn decode(frame: &Bytes) -> Pdu {
    Pdu::decode(frame.clone()).unwrap()
}

fn fault_status(frame: &Bytes) -> (FaultStatus, PfcFlags) {
    let pdu = decode(frame);
    match pdu.body {
        PduBody::Fault(fault) => (fault.status, pdu.pfc_flags),
        other => panic!("not a fault: {other:?}"),
    }
}

const FIRST: PfcFlags = PfcFlags::FIRST_FRAG;
const LAST: PfcFlags = PfcFlags::LAST_FRAG;
const WHOLE: PfcFlags = PfcFlags::FIRST_FRAG.union(PfcFlags::LAST_FRAG);

// --- Conversations. ---

#[test]
fn bind_then_several_calls_round_trip() {
    let (mut pair, [backup, restore]) = Pair::bound();
    assert!(pair.client_events.iter().any(|event| matches!(
        event,
        ClientEvent::Bound {
            assoc_group_id: 0x1234,
            max_xmit_frag: 5840,
            ..
        }
    )));
    assert!(pair.client_events.iter().any(|event| matches!(
        event,
        ClientEvent::ContextResults(reports) if reports.len() == 2
            && reports.iter().all(|r| r.outcome == ContextOutcome::Accepted(SyntaxId::NDR))
    )));
    let stubs = [pattern(0, 1), pattern(100, 2), pattern(3000, 3)];
    let mut ids = Vec::new();
    for (opnum, stub) in stubs.iter().enumerate() {
        let context = if opnum % 2 == 0 { backup } else { restore };
        let opnum = u16::try_from(opnum).unwrap();
        ids.push(
            pair.client
                .call(context, opnum, None, stub.clone())
                .unwrap(),
        );
    }
    assert_eq!(ids, [2, 3, 4], "call ids count up from the bind's");
    pair.drive().unwrap();
    let requests = pair.take_requests();
    assert_eq!(requests.len(), 3);
    for (request, stub) in requests.iter().zip(&stubs) {
        assert_eq!(&request.stub, stub);
        assert_eq!(request.drep, DataRep::LITTLE_ENDIAN);
    }
    assert_eq!((requests[1].interface, requests[1].opnum), (1, 1));
    for request in requests {
        pair.server
            .respond(request.call_id, reversed(&request.stub))
            .unwrap();
    }
    pair.drive().unwrap();
    let responses = pair.responses();
    assert_eq!(responses.len(), 3);
    for ((call_id, stub), (id, sent)) in responses.iter().zip(ids.iter().zip(&stubs)) {
        assert_eq!((call_id, stub), (id, &reversed(sent)));
    }
    assert_eq!(pair.client.calls_in_flight(), 0);
}

fn fragmented_round_trip(size: u16, len: usize) -> Pair {
    let (client, server) = config_with_frag(size);
    let mut pair = Pair::new(client, server);
    let ids = pair.client.bind(&[AD_BACKUP]).unwrap();
    pair.drive().unwrap();
    let stub = pattern(len, 9);
    pair.client.call(ids[0], 4, None, stub.clone()).unwrap();
    pair.drive().unwrap();
    let requests = pair.take_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].stub, stub);
    pair.server
        .respond(requests[0].call_id, reversed(&stub))
        .unwrap();
    pair.drive().unwrap();
    assert_eq!(pair.responses(), [(2, reversed(&stub))]);
    for (_, frame) in &pair.wire {
        assert!(frame.len() <= usize::from(size), "{} > {size}", frame.len());
    }
    pair
}

#[test]
fn requests_and_responses_fragment_at_the_smallest_legal_size() {
    let pair = fragmented_round_trip(1432, 10_000);
    let requests = pair.frames(Dir::ToServer, PacketType::REQUEST);
    // 1432 - 16 (header) - 8 (request fields) = 1408 stub bytes a fragment.
    assert_eq!(requests.len(), 10_000usize.div_ceil(1408));
    let first = decode(&requests[0]);
    assert_eq!(first.pfc_flags, FIRST);
    assert_eq!(requests[0].len(), 1432);
    match first.body {
        PduBody::Request(request) => assert_eq!(request.alloc_hint, 10_000),
        other => panic!("{other:?}"),
    }
    assert_eq!(decode(requests.last().unwrap()).pfc_flags, LAST);
    let responses = pair.frames(Dir::ToClient, PacketType::RESPONSE);
    assert_eq!(responses.len(), 10_000usize.div_ceil(1408));
}

#[test]
fn requests_and_responses_fragment_at_65535() {
    let pair = fragmented_round_trip(u16::MAX, 300_000);
    let requests = pair.frames(Dir::ToServer, PacketType::REQUEST);
    // The server negotiates a multiple of 8, as Windows and Samba do: 65528.
    let frag = usize::from(u16::MAX - 7);
    assert_eq!(requests.len(), 300_000usize.div_ceil(frag - 24));
    assert_eq!(requests[0].len(), frag);
}

#[test]
fn sixty_four_calls_in_flight_and_no_more() {
    let (mut pair, [backup, _]) = Pair::bound();
    let mut ids = Vec::new();
    for i in 0..64u8 {
        ids.push(
            pair.client
                .call(backup, 8, None, pattern(usize::from(i) * 7, i))
                .unwrap(),
        );
    }
    assert_eq!(
        pair.client.call(backup, 8, None, Bytes::new()),
        Err(ApiMisuse::LimitExceeded {
            what: "calls in flight",
            value: 65,
            limit: 64
        })
    );
    pair.drive().unwrap();
    let mut requests = pair.take_requests();
    assert_eq!(requests.len(), 64);
    // Answered in reverse order: responses match calls by id, not by position.
    requests.reverse();
    for request in &requests {
        pair.server
            .respond(request.call_id, reversed(&request.stub))
            .unwrap();
    }
    pair.drive().unwrap();
    let responses = pair.responses();
    assert_eq!(responses.len(), 64);
    for (call_id, stub) in responses {
        let index = ids.iter().position(|&id| id == call_id).unwrap();
        let i = u8::try_from(index).unwrap();
        assert_eq!(stub, reversed(&pattern(usize::from(i) * 7, i)));
    }
}

#[test]
fn big_endian_client_and_little_endian_server_understand_each_other() {
    let (mut client, server) = config_with_frag(1432);
    client.drep = DataRep::BIG_ENDIAN;
    let mut pair = Pair::new(client, server);
    let ids = pair.client.bind(&[AD_BACKUP, AD_RESTORE]).unwrap();
    pair.drive().unwrap();
    let stub = pattern(4000, 0x33);
    pair.client.call(ids[1], 3, None, stub.clone()).unwrap();
    pair.drive().unwrap();
    let requests = pair.take_requests();
    assert_eq!(requests[0].stub, stub);
    assert_eq!(requests[0].drep, DataRep::BIG_ENDIAN);
    assert_eq!((requests[0].interface, requests[0].opnum), (1, 3));
    pair.server
        .respond(requests[0].call_id, stub.clone())
        .unwrap();
    pair.drive().unwrap();
    assert!(pair.client_events.iter().any(|event| matches!(
        event,
        ClientEvent::Response { drep, stub: got, .. } if *drep == DataRep::LITTLE_ENDIAN && got.to_bytes() == stub
    )));
    for (dir, frame) in &pair.wire {
        let expected = if *dir == Dir::ToServer { 0x00 } else { 0x10 };
        assert_eq!(frame[4], expected, "packed_drep of {dir:?}");
    }
}

#[test]
fn a_big_endian_server_answers_in_its_own_byte_order() {
    let (client, mut server) = config_with_frag(1432);
    server.drep = DataRep::BIG_ENDIAN;
    let mut pair = Pair::new(client, server);
    let ids = pair.client.bind(&[AD_BACKUP]).unwrap();
    pair.drive().unwrap();
    assert!(pair.client.is_bound());
    let stub = pattern(3000, 0x44);
    pair.client.call(ids[0], 4, None, stub.clone()).unwrap();
    pair.drive().unwrap();
    let request = pair.take_requests().remove(0);
    assert_eq!(request.drep, DataRep::LITTLE_ENDIAN);
    pair.server.respond(request.call_id, stub.clone()).unwrap();
    pair.drive().unwrap();
    assert!(pair.client_events.iter().any(|event| matches!(
        event,
        ClientEvent::Response { drep, stub: got, .. } if *drep == DataRep::BIG_ENDIAN && got.to_bytes() == stub
    )));
    for (dir, frame) in &pair.wire {
        let expected = if *dir == Dir::ToServer { 0x10 } else { 0x00 };
        assert_eq!(frame[4], expected, "packed_drep of {dir:?}");
    }
}

#[test]
fn alter_context_adds_a_context_on_the_same_association() {
    let mut pair = Pair::new(
        ClientConfig::default(),
        ServerConfig::new(interfaces(AuthLevel::NONE), 1),
    );
    let ids = pair.client.bind(&[AD_BACKUP]).unwrap();
    pair.drive().unwrap();
    assert_eq!(ids, [0]);
    let added = pair.client.alter_context(&[AD_RESTORE, MGMT]).unwrap();
    assert_eq!(added, [1, 2]);
    assert_eq!(
        pair.client.alter_context(&[AD_RESTORE]),
        Err(ApiMisuse::InvalidState {
            operation: "alter the context",
            state: "altering its context"
        })
    );
    pair.drive().unwrap();
    let reports = pair
        .client_events
        .iter()
        .filter_map(|event| match event {
            ClientEvent::ContextResults(reports) => Some(reports.clone()),
            _ => None,
        })
        .next_back()
        .unwrap();
    assert_eq!(reports[0].outcome, ContextOutcome::Accepted(SyntaxId::NDR));
    assert_eq!(
        reports[1].outcome,
        ContextOutcome::Rejected {
            result: crate::pdu::ContResult::PROVIDER_REJECTION,
            reason: ProviderReason::ABSTRACT_SYNTAX_NOT_SUPPORTED
        }
    );
    assert_eq!(
        pair.client.call(2, 0, None, Bytes::new()),
        Err(ApiMisuse::UnknownContext { p_cont_id: 2 })
    );
    pair.client.call(1, 7, None, pattern(10, 1)).unwrap();
    pair.drive().unwrap();
    let requests = pair.take_requests();
    assert_eq!((requests[0].interface, requests[0].p_cont_id), (1, 1));
}

#[test]
fn co_cancel_reaches_the_server_and_drops_the_response() {
    let (mut pair, [backup, _]) = Pair::bound();
    let call_id = pair.client.call(backup, 1, None, pattern(10, 1)).unwrap();
    pair.drive().unwrap();
    pair.client.cancel(call_id).unwrap();
    pair.drive().unwrap();
    assert_eq!(pair.frames(Dir::ToServer, PacketType::CO_CANCEL).len(), 1);
    assert!(
        pair.server_events
            .contains(&ServerEvent::Cancelled { call_id })
    );
    pair.serve_echo();
    assert!(
        pair.responses().is_empty(),
        "the response of a cancelled call is dropped"
    );
    assert!(
        pair.client_events
            .contains(&ClientEvent::Cancelled { call_id })
    );
    assert_eq!(pair.client.calls_in_flight(), 0);
}

#[test]
fn a_call_cancelled_while_being_sent_goes_out_whole_and_its_answer_is_dropped() {
    let (client, server) = config_with_frag(1432);
    let mut pair = Pair::new(client, server);
    let ids = pair.client.bind(&[AD_BACKUP]).unwrap();
    pair.drive().unwrap();
    let call_id = pair.client.call(ids[0], 4, None, pattern(5000, 1)).unwrap();
    // One fragment goes out, then the caller gives up.
    let first = pair.client.next_frame().unwrap();
    pair.server.handle_frame(first).unwrap();
    pair.client.cancel(call_id).unwrap();
    // No orphaned (servers ignore it): the rest of the request, its last fragment LAST.
    let mut last = None;
    while let Some(frame) = pair.client.next_frame() {
        let pdu = decode(&frame);
        assert_eq!(pdu.ptype(), PacketType::REQUEST);
        last = Some(pdu.pfc_flags.contains(PfcFlags::LAST_FRAG));
        pair.server.handle_frame(frame).unwrap();
    }
    assert_eq!(last, Some(true), "the request went out whole");
    pair.collect();
    pair.serve_echo();
    pair.drive().unwrap();
    pair.collect();
    assert!(pair.responses().is_empty(), "its response is dropped");
    assert!(
        pair.client_events
            .contains(&ClientEvent::Cancelled { call_id })
    );
    // The association goes on.
    pair.client.call(ids[0], 5, None, pattern(10, 2)).unwrap();
    pair.drive().unwrap();
    pair.serve_echo();
    assert_eq!(pair.responses().len(), 1);
}

#[test]
fn a_call_cancelled_before_it_is_sent_sends_nothing() {
    let (mut pair, [backup, _]) = Pair::bound();
    let call_id = pair.client.call(backup, 1, None, pattern(10, 1)).unwrap();
    pair.client.cancel(call_id).unwrap();
    assert_eq!(pair.client.next_frame(), None);
    pair.collect();
    assert!(
        pair.client_events
            .contains(&ClientEvent::Cancelled { call_id })
    );
}

#[test]
fn unknown_context_gets_nca_s_unk_if_and_the_association_lives_on() {
    let (mut pair, [backup, _]) = Pair::bound();
    pair.server
        .handle_frame(request_pdu(50, WHOLE, 9, 0, b"abcd"))
        .unwrap();
    let fault = pair.server.next_frame().unwrap();
    assert_eq!(
        fault_status(&fault),
        (FaultStatus::UNK_IF, WHOLE | PfcFlags::DID_NOT_EXECUTE)
    );
    pair.client.call(backup, 0, None, pattern(4, 4)).unwrap();
    pair.drive().unwrap();
    assert_eq!(pair.take_requests().len(), 1);
}

#[test]
fn unknown_opnum_gets_nca_s_op_rng_error() {
    let (mut pair, [backup, restore]) = Pair::bound();
    let bad = pair.client.call(backup, 9, None, pattern(8, 1)).unwrap();
    let good = pair.client.call(restore, 7, None, pattern(8, 2)).unwrap();
    pair.drive().unwrap();
    assert!(pair.client_events.contains(&ClientEvent::Fault {
        call_id: bad,
        status: FaultStatus::OP_RNG_ERROR,
        did_not_execute: true
    }));
    let requests = pair.take_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].call_id, good);
}

#[test]
fn an_auth_level_under_the_interface_minimum_is_denied() {
    let mut pair = Pair::new(
        ClientConfig::default(),
        ServerConfig::new(interfaces(AuthLevel::PKT_INTEGRITY), 1),
    );
    let ids = pair.client.bind(&[AD_BACKUP]).unwrap();
    pair.drive().unwrap();
    let call_id = pair.client.call(ids[0], 0, None, pattern(8, 1)).unwrap();
    pair.drive().unwrap();
    assert!(pair.client_events.contains(&ClientEvent::Fault {
        call_id,
        status: FaultStatus::ACCESS_DENIED,
        did_not_execute: true
    }));
    assert!(pair.take_requests().is_empty());
}

#[test]
fn server_faults_reach_the_client_as_events() {
    let (mut pair, [backup, _]) = Pair::bound();
    let call_id = pair.client.call(backup, 2, None, pattern(8, 1)).unwrap();
    pair.drive().unwrap();
    let request = pair.take_requests().remove(0);
    pair.server
        .fault(request.call_id, FaultStatus::BAD_STUB_DATA)
        .unwrap();
    assert_eq!(
        pair.server.respond(request.call_id, Bytes::new()),
        Err(ApiMisuse::UnknownCallId { call_id })
    );
    pair.drive().unwrap();
    assert!(pair.client_events.contains(&ClientEvent::Fault {
        call_id,
        status: FaultStatus::BAD_STUB_DATA,
        did_not_execute: false
    }));
}

#[test]
fn bind_time_feature_negotiation_is_answered_with_negotiate_ack() {
    let client = ClientConfig {
        bind_time_features: Some(
            BindTimeFeatures::SECURITY_CONTEXT_MULTIPLEXING
                | BindTimeFeatures::KEEP_CONNECTION_ON_ORPHAN,
        ),
        ..ClientConfig::default()
    };
    let mut pair = Pair::new(client, ServerConfig::new(interfaces(AuthLevel::NONE), 1));
    let ids = pair.client.bind(&[AD_BACKUP]).unwrap();
    pair.drive().unwrap();
    assert_eq!(ids, [0]);
    let Some(ClientEvent::ContextResults(reports)) = pair
        .client_events
        .iter()
        .find(|event| matches!(event, ClientEvent::ContextResults(_)))
    else {
        panic!("no results: {:?}", pair.client_events);
    };
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[1].p_cont_id, 1);
    assert_eq!(
        reports[1].outcome,
        ContextOutcome::NegotiateAck(BindTimeFeatures::KEEP_CONNECTION_ON_ORPHAN)
    );
    assert_eq!(
        pair.client.call(1, 0, None, Bytes::new()),
        Err(ApiMisuse::UnknownContext { p_cont_id: 1 })
    );
}

#[test]
fn conc_mpx_and_header_signing_are_granted_when_both_ask() {
    let client = ClientConfig {
        conc_mpx: true,
        auth_level: AuthLevel::PKT_INTEGRITY,
        ..ClientConfig::default()
    };
    let mut server = ServerConfig::new(interfaces(AuthLevel::NONE), 1);
    server.conc_mpx = true;
    let mut pair = Pair::with_security(client, Some(Toy::initiator()), server, Some(toy_factory()));
    pair.client.bind(&[AD_BACKUP]).unwrap();
    pair.drive().unwrap();
    assert!(pair.client_events.iter().any(|event| matches!(
        event,
        ClientEvent::Bound {
            conc_mpx: true,
            header_signing: true,
            ..
        }
    )));
}

// --- Security. ---

fn secure_pair(level: AuthLevel, size: u16) -> (Pair, u16) {
    let (mut client, server) = config_with_frag(size);
    client.auth_level = level;
    client.auth_context_id = 79;
    let mut pair = Pair::with_security(client, Some(Toy::initiator()), server, Some(toy_factory()));
    let ids = pair.client.bind(&[AD_BACKUP]).unwrap();
    pair.drive().unwrap();
    assert!(pair.client.is_bound());
    assert!(pair.server_events.contains(&ServerEvent::Authenticated {
        auth_type: AuthType::WINNT,
        auth_level: level
    }));
    let auth3 = pair.frames(Dir::ToServer, PacketType::AUTH3);
    assert_eq!(auth3.len(), 1);
    assert_eq!(
        decode(&auth3[0]).call_id,
        1,
        "auth3 takes the bind's call id"
    );
    (pair, ids[0])
}

fn secure_round_trip(level: AuthLevel) -> (Pair, Bytes) {
    let (mut pair, context) = secure_pair(level, 1432);
    let stub = Bytes::from(b"SECRET-SECRET-SECRET".repeat(200));
    pair.client.call(context, 4, None, stub.clone()).unwrap();
    pair.drive().unwrap();
    let requests = pair.take_requests();
    assert_eq!(requests[0].stub, stub);
    assert_eq!(requests[0].auth_level, level);
    pair.server
        .respond(requests[0].call_id, stub.clone())
        .unwrap();
    pair.drive().unwrap();
    assert_eq!(pair.responses()[0].1, stub);
    for kind in [PacketType::REQUEST, PacketType::RESPONSE] {
        for dir in [Dir::ToServer, Dir::ToClient] {
            for frame in pair.frames(dir, kind) {
                assert!(frame.len() <= 1432);
                let header = CommonHeader::decode(&frame).unwrap();
                assert_eq!(header.auth_length, 16, "every fragment is signed");
                let pdu = decode(&frame);
                let verifier = pdu.auth_verifier.unwrap();
                assert_eq!((verifier.auth_level, verifier.auth_context_id), (level, 79));
                if !pdu.pfc_flags.contains(LAST) {
                    assert_eq!(verifier.auth_pad_length, 0);
                }
            }
        }
    }
    (pair, stub)
}

fn wire_contains(pair: &Pair, needle: &[u8]) -> bool {
    pair.wire
        .iter()
        .any(|(_, frame)| frame.windows(needle.len()).any(|w| w == needle))
}

#[test]
fn integrity_signs_every_fragment_and_leaves_the_stub_readable() {
    let (pair, _) = secure_round_trip(AuthLevel::PKT_INTEGRITY);
    assert!(wire_contains(&pair, b"SECRET-SECRET"));
}

#[test]
fn privacy_seals_every_fragment() {
    let (pair, _) = secure_round_trip(AuthLevel::PKT_PRIVACY);
    assert!(!wire_contains(&pair, b"SECRET-SECRET"));
}

#[test]
fn a_four_leg_handshake_continues_on_alter_context() {
    let (client, server) = config_with_frag(5840);
    let mut toy = Toy::new(true, b"toy-authenticate");
    toy.four_legs = true;
    let mut pair = Pair::with_security(client, Some(Box::new(toy)), server, Some(toy_factory()));
    let ids = pair.client.bind(&[AD_BACKUP]).unwrap();
    pair.drive().unwrap();
    assert!(pair.client.is_bound());
    assert_eq!(
        pair.frames(Dir::ToServer, PacketType::ALTER_CONTEXT).len(),
        1
    );
    assert_eq!(
        pair.frames(Dir::ToClient, PacketType::ALTER_CONTEXT_RESP)
            .len(),
        1
    );
    assert!(pair.frames(Dir::ToServer, PacketType::AUTH3).is_empty());
    assert!(pair.server_events.contains(&ServerEvent::Authenticated {
        auth_type: AuthType::WINNT,
        auth_level: AuthLevel::PKT_PRIVACY
    }));
    pair.client.call(ids[0], 1, None, pattern(3000, 1)).unwrap();
    pair.drive().unwrap();
    pair.serve_echo();
    assert_eq!(pair.responses()[0].1, reversed(&pattern(3000, 1)));
}

#[test]
fn a_request_before_the_handshake_completes_is_a_protocol_error() {
    let (client, server) = config_with_frag(5840);
    let mut pair = Pair::with_security(client, Some(Toy::initiator()), server, Some(toy_factory()));
    pair.client.bind(&[AD_BACKUP]).unwrap();
    let bind = pair.client.next_frame().unwrap();
    pair.server.handle_frame(bind).unwrap();
    assert!(matches!(
        pair.server
            .handle_frame(request_pdu(2, WHOLE, 0, 0, b"early")),
        Err(ProtocolError::UnexpectedPdu {
            got: PacketType::REQUEST,
            ..
        })
    ));
}

#[test]
fn connect_level_authenticates_at_bind_time_only() {
    let (mut pair, context) = secure_pair(AuthLevel::CONNECT, 5840);
    pair.client.call(context, 0, None, pattern(100, 1)).unwrap();
    pair.drive().unwrap();
    pair.serve_echo();
    assert_eq!(pair.responses().len(), 1);
    let request = &pair.frames(Dir::ToServer, PacketType::REQUEST)[0];
    assert_eq!(CommonHeader::decode(request).unwrap().auth_length, 0);
}

#[test]
fn a_tampered_request_is_refused_with_a_security_package_error() {
    let (mut pair, context) = secure_pair(AuthLevel::PKT_INTEGRITY, 5840);
    pair.client.call(context, 0, None, pattern(100, 1)).unwrap();
    let mut frame = BytesMut::from(&pair.client.next_frame().unwrap()[..]);
    frame[40] ^= 1;
    let error = pair.server.handle_frame(frame.freeze()).unwrap_err();
    assert_eq!(error, ProtocolError::Security(SecurityError::BadSignature));
    let fault = pair.server.next_frame().unwrap();
    // As Samba: nca_s_fault_sec_pkg_error, the call not guaranteed unexecuted.
    assert_eq!(fault_status(&fault).0, FaultStatus::SEC_PKG_ERROR);
    assert!(!decode(&fault).pfc_flags.contains(PfcFlags::DID_NOT_EXECUTE));
    assert_eq!(pair.server.next_frame(), None);
    assert_eq!(
        pair.server.handle_frame(request_pdu(9, WHOLE, 0, 0, b"")),
        Err(error),
        "a failed association stays failed"
    );
}

#[test]
fn a_tampered_response_fails_the_client() {
    let (mut pair, context) = secure_pair(AuthLevel::PKT_PRIVACY, 5840);
    pair.client.call(context, 0, None, pattern(100, 1)).unwrap();
    pair.drive().unwrap();
    let request = pair.take_requests().remove(0);
    pair.server
        .respond(request.call_id, pattern(64, 3))
        .unwrap();
    let mut frame = BytesMut::from(&pair.server.next_frame().unwrap()[..]);
    frame[30] ^= 0x80;
    assert_eq!(
        pair.client.handle_frame(frame.freeze()),
        Err(ProtocolError::Security(SecurityError::BadSignature))
    );
    assert!(pair.client.error().is_some());
    // A call after the failure is the caller's misuse; the peer's error stays its source.
    assert_eq!(
        pair.client.call(context, 0, None, Bytes::new()),
        Err(ApiMisuse::AssociationFailed(ProtocolError::Security(
            SecurityError::BadSignature
        )))
    );
}

#[test]
fn an_unsigned_request_on_a_protected_association_is_refused() {
    let (mut pair, context) = secure_pair(AuthLevel::PKT_INTEGRITY, 5840);
    assert_eq!(
        pair.server
            .handle_frame(request_pdu(5, WHOLE, context, 0, b"1234")),
        Err(ProtocolError::AuthMismatch {
            field: "auth_length"
        })
    );
    assert_eq!(
        fault_status(&pair.server.next_frame().unwrap()).0,
        FaultStatus::ACCESS_DENIED
    );
}

#[test]
fn a_failed_auth3_denies_the_calls_that_follow() {
    let (client, server) = config_with_frag(5840);
    let mut pair = Pair::with_security(
        client,
        Some(Toy::with_password(b"wrong")),
        server,
        Some(toy_factory()),
    );
    let ids = pair.client.bind(&[AD_BACKUP]).unwrap();
    pair.drive().unwrap();
    pair.client.call(ids[0], 0, None, pattern(10, 1)).unwrap();
    assert!(matches!(
        pair.drive(),
        Err(ProtocolError::Security(SecurityError::LogonFailure(_)))
    ));
    let fault = pair.server.next_frame();
    assert_eq!(fault_status(&fault.unwrap()).0, FaultStatus::ACCESS_DENIED);
    assert!(pair.take_requests().is_empty());
}

#[test]
fn an_alter_context_changing_the_auth_level_is_refused() {
    let (mut pair, context) = secure_pair(AuthLevel::PKT_PRIVACY, 5840);
    let mut alter = Pdu::new(
        99,
        PduBody::AlterContext(AlterContext {
            max_xmit_frag: 5840,
            max_recv_frag: 5840,
            assoc_group_id: 0,
            p_context_elem: vec![PresentationContext {
                p_cont_id: 5,
                abstract_syntax: AD_RESTORE,
                transfer_syntaxes: vec![SyntaxId::NDR],
            }],
        }),
    );
    alter.auth_verifier = Some(AuthVerifier::new(
        AuthType::WINNT,
        AuthLevel::CONNECT,
        79,
        Bytes::from_static(b"toy-negotiate"),
    ));
    alter.align_auth_pad();
    assert_eq!(
        pair.server.handle_frame(alter.to_bytes().unwrap()),
        Err(ProtocolError::AuthMismatch {
            field: "auth_level"
        })
    );
    let fault = pair.server.next_frame().unwrap();
    assert_eq!(decode(&fault).call_id, 99);
    assert_eq!(fault_status(&fault).0, FaultStatus::ACCESS_DENIED);
    // The privacy association stays failed: no call gets through at any level.
    assert!(
        pair.server
            .handle_frame(request_pdu(100, WHOLE, context, 0, b""))
            .is_err()
    );
}

// --- Binds the server refuses. ---

fn bind_frame(contexts: Vec<PresentationContext>, verifier: Option<AuthVerifier>) -> Bytes {
    let mut pdu = Pdu::new(
        1,
        PduBody::Bind(Bind {
            max_xmit_frag: 5840,
            max_recv_frag: 5840,
            assoc_group_id: 0,
            p_context_elem: contexts,
        }),
    );
    pdu.auth_verifier = verifier;
    pdu.align_auth_pad();
    pdu.to_bytes().unwrap()
}

fn context(p_cont_id: u16, abstract_syntax: SyntaxId) -> PresentationContext {
    PresentationContext {
        p_cont_id,
        abstract_syntax,
        transfer_syntaxes: vec![SyntaxId::NDR],
    }
}

fn nak_reason(server: &mut ServerAssociation) -> RejectReason {
    let frame = server.next_frame().unwrap();
    match decode(&frame).body {
        PduBody::BindNak(nak) => nak.provider_reject_reason,
        other => panic!("not a bind_nak: {other:?}"),
    }
}

fn fresh_server() -> ServerAssociation {
    ServerAssociation::new(ServerConfig::new(interfaces(AuthLevel::NONE), 1), None).unwrap()
}

#[test]
fn an_unknown_auth_type_gets_authentication_type_not_recognized() {
    let mut server = fresh_server();
    let verifier = AuthVerifier::new(
        AuthType::GSS_KERBEROS,
        AuthLevel::PKT_PRIVACY,
        0,
        Bytes::from_static(b"token"),
    );
    assert!(
        server
            .handle_frame(bind_frame(vec![context(0, AD_BACKUP)], Some(verifier)))
            .is_err()
    );
    assert_eq!(
        nak_reason(&mut server),
        RejectReason::AUTHENTICATION_TYPE_NOT_RECOGNIZED
    );
}

#[test]
fn too_many_contexts_get_local_limit_exceeded() {
    let mut server = fresh_server();
    let contexts = (0..17).map(|id| context(id, AD_BACKUP)).collect();
    assert_eq!(
        server.handle_frame(bind_frame(contexts, None)),
        Err(ProtocolError::LimitExceeded {
            what: "presentation contexts",
            value: 17,
            limit: 16
        })
    );
    assert_eq!(nak_reason(&mut server), RejectReason::LOCAL_LIMIT_EXCEEDED);
}

#[test]
fn a_second_bind_gets_a_bind_nak() {
    let mut server = fresh_server();
    server
        .handle_frame(bind_frame(vec![context(0, AD_BACKUP)], None))
        .unwrap();
    assert_eq!(
        decode(&server.next_frame().unwrap()).ptype(),
        PacketType::BIND_ACK
    );
    assert!(
        server
            .handle_frame(bind_frame(vec![context(1, AD_RESTORE)], None))
            .is_err()
    );
    assert_eq!(nak_reason(&mut server), RejectReason::REASON_NOT_SPECIFIED);
}

#[test]
fn another_protocol_version_gets_protocol_version_not_supported() {
    let mut server = fresh_server();
    let mut frame = BytesMut::from(&bind_frame(vec![context(0, AD_BACKUP)], None)[..]);
    frame[1] = 2; // rpc_vers_minor 2
    assert!(server.handle_frame(frame.freeze()).is_err());
    assert_eq!(
        nak_reason(&mut server),
        RejectReason::PROTOCOL_VERSION_NOT_SUPPORTED
    );
}

#[test]
fn unsupported_syntaxes_are_rejected_per_context() {
    let mut server = fresh_server();
    let mut ndr64_only = context(1, AD_RESTORE);
    ndr64_only.transfer_syntaxes = vec![SyntaxId::NDR64];
    server
        .handle_frame(bind_frame(
            vec![context(0, MGMT), ndr64_only, context(2, AD_BACKUP)],
            None,
        ))
        .unwrap();
    let PduBody::BindAck(ack) = decode(&server.next_frame().unwrap()).body else {
        panic!("not a bind_ack");
    };
    let reasons: Vec<_> = ack
        .p_result_list
        .iter()
        .map(|result| (result.result.0, result.provider_reason()))
        .collect();
    assert_eq!(
        reasons,
        [
            (2, ProviderReason::ABSTRACT_SYNTAX_NOT_SUPPORTED),
            (2, ProviderReason::PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED),
            (0, ProviderReason::REASON_NOT_SPECIFIED),
        ]
    );
}

#[test]
fn the_client_reports_a_bind_nak() {
    let mut client = ClientAssociation::new(ClientConfig::default(), None).unwrap();
    client.bind(&[AD_BACKUP]).unwrap();
    let bind = client.next_frame().unwrap();
    // A server allowing no context at all refuses the bind.
    let mut config = ServerConfig::new(interfaces(AuthLevel::NONE), 1);
    config.limits.max_contexts = 0;
    let mut server = ServerAssociation::new(config, None).unwrap();
    assert!(server.handle_frame(bind).is_err());
    let nak = server.next_frame().unwrap();
    assert_eq!(
        client.handle_frame(nak),
        Err(ProtocolError::BindRejected(
            RejectReason::LOCAL_LIMIT_EXCEEDED
        ))
    );
    assert!(matches!(
        client.poll_event(),
        Some(ClientEvent::BindRejected {
            reason: RejectReason::LOCAL_LIMIT_EXCEEDED,
            ..
        })
    ));
}

// --- Hostile peers. ---

#[test]
fn hostile_middle_fragment_without_a_first_one() {
    let (mut pair, [backup, _]) = Pair::bound();
    assert_eq!(
        pair.server
            .handle_frame(request_pdu(40, PfcFlags::empty(), backup, 0, b"middle")),
        Err(ProtocolError::FragmentOutOfOrder {
            call_id: 40,
            reason: "a middle fragment without a first one"
        })
    );
    assert_eq!(
        fault_status(&pair.server.next_frame().unwrap()).0,
        FaultStatus::PROTO_ERROR
    );
    // The client side: a last fragment of a call whose first never came.
    let (mut pair, [backup, _]) = Pair::bound();
    let call_id = pair.client.call(backup, 0, None, Bytes::new()).unwrap();
    while pair.client.next_frame().is_some() {}
    assert_eq!(
        pair.client
            .handle_frame(response_pdu(call_id, LAST, b"tail")),
        Err(ProtocolError::FragmentOutOfOrder {
            call_id,
            reason: "a middle fragment without a first one"
        })
    );
}

#[test]
fn hostile_fragments_of_two_calls_interleaved() {
    let (mut pair, [backup, _]) = Pair::bound();
    pair.server
        .handle_frame(request_pdu(40, FIRST, backup, 0, b"first of 40"))
        .unwrap();
    assert_eq!(
        pair.server
            .handle_frame(request_pdu(41, FIRST, backup, 0, b"first of 41")),
        Err(ProtocolError::InterleavedCalls {
            call_id: 41,
            in_progress: 40
        })
    );
    // The client side.
    let (mut pair, [backup, _]) = Pair::bound();
    let a = pair.client.call(backup, 0, None, Bytes::new()).unwrap();
    let b = pair.client.call(backup, 0, None, Bytes::new()).unwrap();
    while pair.client.next_frame().is_some() {}
    pair.client
        .handle_frame(response_pdu(a, FIRST, b"a"))
        .unwrap();
    assert_eq!(
        pair.client.handle_frame(response_pdu(b, WHOLE, b"b")),
        Err(ProtocolError::InterleavedCalls {
            call_id: b,
            in_progress: a
        })
    );
}

#[test]
fn hostile_reassembly_past_the_stub_budget() {
    let mut config = ServerConfig::new(interfaces(AuthLevel::NONE), 1);
    config.limits.max_stub_len = 4000;
    let mut server = ServerAssociation::new(config, None).unwrap();
    server
        .handle_frame(bind_frame(vec![context(0, AD_BACKUP)], None))
        .unwrap();
    server.next_frame().unwrap();
    let chunk = [0xaa; 1400];
    server
        .handle_frame(request_pdu(2, FIRST, 0, 0, &chunk))
        .unwrap();
    server
        .handle_frame(request_pdu(2, PfcFlags::empty(), 0, 0, &chunk))
        .unwrap();
    assert_eq!(
        server.handle_frame(request_pdu(2, PfcFlags::empty(), 0, 0, &chunk)),
        Err(ProtocolError::LimitExceeded {
            what: "reassembled stub",
            value: 4200,
            limit: 4000
        })
    );
    assert_eq!(
        fault_status(&server.next_frame().unwrap()).0,
        FaultStatus::ACCESS_DENIED
    );
    // The client side, with a small response budget.
    let mut client_config = ClientConfig::default();
    client_config.limits.max_stub_len = 2000;
    let mut pair = Pair::new(
        client_config,
        ServerConfig::new(interfaces(AuthLevel::NONE), 1),
    );
    let ids = pair.client.bind(&[AD_BACKUP]).unwrap();
    pair.drive().unwrap();
    pair.client.call(ids[0], 0, None, Bytes::new()).unwrap();
    pair.drive().unwrap();
    let request = pair.take_requests().remove(0);
    pair.server
        .respond(request.call_id, pattern(9000, 1))
        .unwrap();
    assert!(matches!(
        pair.drive(),
        Err(ProtocolError::LimitExceeded {
            what: "reassembled stub",
            limit: 2000,
            ..
        })
    ));
}

#[test]
fn an_early_fault_stops_a_request_being_sent() {
    let (client, server) = config_with_frag(1432);
    let mut pair = Pair::new(client, server);
    let ids = pair.client.bind(&[AD_BACKUP]).unwrap();
    pair.drive().unwrap();
    let call_id = pair.client.call(ids[0], 4, None, pattern(5000, 1)).unwrap();
    let _first = pair.client.next_frame().unwrap();
    let mut fault = Fault::new(ids[0], FaultStatus::ACCESS_DENIED);
    fault.alloc_hint = 24;
    let fault = Pdu::new(call_id, PduBody::Fault(fault)).to_bytes().unwrap();
    pair.client.handle_frame(fault).unwrap();
    assert_eq!(
        decode(&pair.client.next_frame().unwrap()).ptype(),
        PacketType::ORPHANED
    );
    assert_eq!(pair.client.next_frame(), None);
    assert_eq!(pair.client.calls_in_flight(), 0);
}

#[test]
fn hostile_partial_requests_of_two_calls_are_refused_even_with_conc_mpx() {
    let mut config = ServerConfig::new(interfaces(AuthLevel::NONE), 1);
    config.conc_mpx = true;
    let mut server = ServerAssociation::new(config, None).unwrap();
    let mut bind = decode(&bind_frame(vec![context(0, AD_BACKUP)], None));
    bind.pfc_flags |= PfcFlags::CONC_MPX;
    server.handle_frame(bind.to_bytes().unwrap()).unwrap();
    let _ack = server.poll_transmit().unwrap();
    server
        .handle_frame(request_pdu(1, FIRST, 0, 0, b"part"))
        .unwrap();
    assert_eq!(
        server.handle_frame(request_pdu(2, FIRST, 0, 0, b"part")),
        Err(ProtocolError::InterleavedCalls {
            call_id: 2,
            in_progress: 1
        })
    );
    // With PFC_CONC_MPX the fault names the new call, without PFC_DID_NOT_EXECUTE.
    let fault = decode(&server.poll_transmit().unwrap().to_bytes());
    assert_eq!(fault.call_id, 2);
    assert_eq!(fault.ptype(), PacketType::FAULT);
    assert!(!fault.pfc_flags.contains(PfcFlags::DID_NOT_EXECUTE));
}

#[test]
fn hostile_too_many_fragments_for_one_call() {
    let mut config = ServerConfig::new(interfaces(AuthLevel::NONE), 1);
    config.limits.max_fragments_per_call = 3;
    let mut server = ServerAssociation::new(config, None).unwrap();
    server
        .handle_frame(bind_frame(vec![context(0, AD_BACKUP)], None))
        .unwrap();
    server
        .handle_frame(request_pdu(2, FIRST, 0, 0, b""))
        .unwrap();
    for _ in 0..2 {
        server
            .handle_frame(request_pdu(2, PfcFlags::empty(), 0, 0, b""))
            .unwrap();
    }
    assert!(matches!(
        server.handle_frame(request_pdu(2, PfcFlags::empty(), 0, 0, b"")),
        Err(ProtocolError::LimitExceeded {
            what: "fragments of a call",
            ..
        })
    ));
}

#[test]
fn hostile_response_for_a_call_id_never_sent() {
    let (mut pair, _) = Pair::bound();
    assert_eq!(
        pair.client
            .handle_frame(response_pdu(77, WHOLE, b"surprise")),
        Err(ProtocolError::UnknownCallId { call_id: 77 })
    );
    assert_eq!(
        pair.client.error(),
        Some(&ProtocolError::UnknownCallId { call_id: 77 })
    );
}

/// A large response stub given as a chain (counts, shared data, status: a backup read's
/// shape) goes out unprotected as fragments that carry the data as slices of the data itself;
/// the client gets the stub back whole.
#[test]
fn an_unprotected_response_is_sent_without_copying_its_shared_data() {
    let (mut pair, [backup, _]) = Pair::bound();
    pair.client
        .call(backup, 4, None, Bytes::from_static(b"read"))
        .unwrap();
    pair.drive().unwrap();
    let request = pair.take_requests().pop().unwrap();
    let data = Bytes::from(
        (0..64 * 1024_u32)
            .map(|i| (i % 251).to_le_bytes()[0])
            .collect::<Vec<u8>>(),
    );
    let stub: crate::chain::Chain = [
        Bytes::from_static(&[0; 12]),
        data.clone(),
        Bytes::from_static(&[1; 8]),
    ]
    .into_iter()
    .collect();
    let expected = stub.to_bytes();
    pair.server.respond(request.call_id, stub).unwrap();
    let within_data = |segment: &Bytes| {
        let start = data.as_ptr() as usize;
        let at = segment.as_ptr() as usize;
        at >= start && at + segment.len() <= start + data.len()
    };
    let mut frames = 0;
    let mut shared = 0;
    let mut received = Vec::new();
    while let Some(frame) = pair.server.poll_transmit() {
        frames += 1;
        let segments: Vec<&Bytes> = frame.segments().collect();
        // The header and fixed fields (with the 12 bytes of counts in the first fragment)
        // are a buffer of their own; the data follows as slices.
        assert!(!within_data(segments[0]), "frame {frames}");
        shared += segments
            .iter()
            .filter(|segment| within_data(segment))
            .map(|segment| segment.len())
            .sum::<usize>();
        received.push(frame.to_bytes());
    }
    // 65556 stub bytes in fragments of 5816: 12 fragments. Every data byte is sent from
    // `data` but those of the last fragment, whose 1580-byte stub (1572 of data, the 8 of
    // status) is shorter than SHARE_AT_LEAST and cheaper copied.
    assert_eq!(frames, 12);
    assert_eq!(shared, data.len() - 1572);
    for frame in received {
        pair.client.handle_frame(frame).unwrap();
    }
    pair.collect();
    assert_eq!(pair.responses(), vec![(request.call_id, expected)]);
}

#[test]
fn hostile_alloc_hint_of_4_gib_preallocates_nothing_by_it() {
    let limits = Limits::client();
    // The reassembly never sees `alloc_hint`: it holds what arrived, and joins exactly that.
    let mut reassembly =
        Reassembly::start(DataRep::LITTLE_ENDIAN, Bytes::from_static(b"ti"), &limits).unwrap();
    reassembly.push(Bytes::from_static(b"ny"), &limits).unwrap();
    let stub = reassembly.finish();
    assert_eq!(stub.to_bytes(), Bytes::from_static(b"tiny"));
    // Through the server: a first fragment announcing 4 GiB is taken as a hint only.
    let (mut pair, [backup, _]) = Pair::bound();
    let mut pdu = decode(&request_pdu(60, FIRST, backup, 0, b"tiny"));
    if let PduBody::Request(request) = &mut pdu.body {
        request.alloc_hint = u32::MAX;
    }
    pair.server.handle_frame(pdu.to_bytes().unwrap()).unwrap();
    pair.server
        .handle_frame(request_pdu(60, LAST, backup, 0, b" stub"))
        .unwrap();
    pair.collect();
    assert_eq!(
        pair.take_requests()[0].stub,
        Bytes::from_static(b"tiny stub")
    );
}

#[test]
fn hostile_unexpected_pdus_fail_the_association() {
    let (mut pair, _) = Pair::bound();
    let bind = bind_frame(vec![context(0, AD_BACKUP)], None);
    assert_eq!(
        pair.client.handle_frame(bind),
        Err(ProtocolError::UnexpectedPdu {
            expected: &[
                PacketType::RESPONSE,
                PacketType::FAULT,
                PacketType::ALTER_CONTEXT_RESP,
                PacketType::SHUTDOWN
            ],
            got: PacketType::BIND
        })
    );
    let mut server = fresh_server();
    assert!(matches!(
        server.handle_frame(request_pdu(1, WHOLE, 0, 0, b"")),
        Err(ProtocolError::UnexpectedPdu { .. })
    ));
}

#[test]
fn shutdown_from_the_server_is_an_event() {
    let (mut pair, _) = Pair::bound();
    pair.server.shutdown().unwrap();
    pair.drive().unwrap();
    assert!(pair.client_events.contains(&ClientEvent::Shutdown));
}

#[test]
fn the_client_accepts_fragments_up_to_the_servers_announced_size() {
    // Samba answers a client announcing 1432 with max_xmit_frag 2048, and sends 2048-byte
    // fragments.
    let mut config = ClientConfig::default();
    config.limits.max_xmit_frag = 1432;
    config.limits.max_recv_frag = 1432;
    let mut client = ClientAssociation::new(config, None).unwrap();
    let ids = client.bind(&[AD_BACKUP]).unwrap();
    client.next_frame().unwrap();
    let ack = Pdu::new(
        1,
        PduBody::BindAck(crate::pdu::BindAck {
            max_xmit_frag: 2048,
            max_recv_frag: 2048,
            assoc_group_id: 9,
            sec_addr: crate::pdu::PortAny::new("135"),
            p_result_list: vec![crate::pdu::ContextResult::acceptance(SyntaxId::NDR)],
        }),
    );
    client.handle_frame(ack.to_bytes().unwrap()).unwrap();
    assert_eq!(
        (client.max_xmit_frag(), client.max_recv_frag()),
        (1432, 2048)
    );
    let call_id = client.call(ids[0], 0, None, Bytes::new()).unwrap();
    client.next_frame().unwrap();
    client
        .handle_frame(response_pdu(call_id, WHOLE, &[7; 2000]))
        .unwrap();
}

#[test]
fn fragment_sizes_under_1432_are_refused_by_the_client_and_raised_by_the_server() {
    let mut config = ClientConfig::default();
    config.limits.max_recv_frag = 1431;
    assert!(matches!(
        ClientAssociation::new(config, None),
        Err(ApiMisuse::InvalidConfig { .. })
    ));
    let mut server = fresh_server();
    let mut bind = decode(&bind_frame(vec![context(0, AD_BACKUP)], None));
    if let PduBody::Bind(body) = &mut bind.body {
        body.max_recv_frag = 1000;
    }
    // The server is not refused a bind offering less: as Windows and Samba, it answers with
    // the 2048 bytes every server accepts.
    server.handle_frame(bind.to_bytes().unwrap()).unwrap();
    let ack = decode(&server.poll_transmit().unwrap().to_bytes());
    match ack.body {
        PduBody::BindAck(ack) => assert_eq!((ack.max_xmit_frag, ack.max_recv_frag), (2048, 2048)),
        other => panic!("{other:?}"),
    }
}

/// Why a scripted conversation stopped: the peer's doing or the script's request refused.
#[derive(Debug, PartialEq)]
enum Stop {
    Peer(ProtocolError),
    Misuse(ApiMisuse),
}

impl From<ProtocolError> for Stop {
    fn from(error: ProtocolError) -> Self {
        Self::Peer(error)
    }
}

impl From<ApiMisuse> for Stop {
    fn from(error: ApiMisuse) -> Self {
        Self::Misuse(error)
    }
}

/// A scripted conversation (bind, fragmented calls both ways, an alter_context, a fault, a
/// cancel) in which `mutate` may alter the `n`th PDU on the wire; stops at the first error.
fn scripted(
    level: Option<AuthLevel>,
    target: usize,
    mutate: &dyn Fn(&mut BytesMut),
) -> (usize, Result<(), Stop>) {
    let (mut client, server) = config_with_frag(1432);
    let security = level.map(|level| {
        client.auth_level = level;
        Toy::initiator()
    });
    let factory = level.map(|_| toy_factory());
    let mut pair = Pair::with_security(client, security, server, factory);
    let mut count = 0;
    let mut step = |pair: &mut Pair, hold: bool| -> Result<(), Stop> {
        loop {
            let mut idle = true;
            while let Some(frame) = pair.client.next_frame() {
                idle = false;
                let mut frame = BytesMut::from(&frame[..]);
                if count == target {
                    mutate(&mut frame);
                }
                count += 1;
                pair.server.handle_frame(frame.freeze())?;
            }
            while let Some(frame) = pair.server.next_frame() {
                idle = false;
                let mut frame = BytesMut::from(&frame[..]);
                if count == target {
                    mutate(&mut frame);
                }
                count += 1;
                pair.client.handle_frame(frame.freeze())?;
            }
            pair.collect();
            if !hold {
                for request in pair.take_requests() {
                    pair.server
                        .respond(request.call_id, reversed(&request.stub))?;
                    idle = false;
                }
            }
            if idle {
                return Ok(());
            }
        }
    };
    let script = |pair: &mut Pair, step: &mut dyn FnMut(&mut Pair, bool) -> Result<(), Stop>| {
        let ids = pair.client.bind(&[AD_BACKUP])?;
        step(pair, false)?;
        pair.client.call(ids[0], 1, None, pattern(3000, 1))?;
        pair.client.call(ids[0], 2, None, pattern(10, 2))?;
        step(pair, false)?;
        let added = pair.client.alter_context(&[AD_RESTORE])?;
        step(pair, false)?;
        pair.client.call(added[0], 99, None, pattern(10, 3))?;
        let cancelled = pair.client.call(added[0], 0, None, pattern(2000, 4))?;
        // The server holds the call until the client cancels it.
        step(pair, true)?;
        pair.client.cancel(cancelled)?;
        step(pair, false)
    };
    let result = script(&mut pair, &mut step);
    (count, result)
}

#[test]
fn every_pdu_of_a_conversation_mutated_in_its_first_bytes_never_panics() {
    for level in [None, Some(AuthLevel::PKT_PRIVACY)] {
        let (total, result) = scripted(level, usize::MAX, &|_| {});
        assert_eq!(result, Ok(()));
        assert!(total > 10, "{total} PDUs");
        for target in 0..total {
            for position in 0..48 {
                for mask in [0x01, 0x80, 0xff] {
                    let _ = scripted(level, target, &|frame: &mut BytesMut| {
                        if let Some(byte) = frame.get_mut(position) {
                            *byte ^= mask;
                        }
                    });
                }
            }
            // Truncated and extended frames too.
            let _ = scripted(level, target, &|frame: &mut BytesMut| {
                frame.truncate(frame.len() / 2);
            });
            let _ = scripted(level, target, &|frame: &mut BytesMut| {
                frame.extend_from_slice(&[0; 8]);
            });
        }
    }
}

#[test]
fn the_fuzzing_client_is_bound_with_three_calls_in_flight() {
    let client = crate::fuzzing::client_for_fuzzing(true).unwrap();
    assert!(client.is_bound());
    assert_eq!(client.calls_in_flight(), 3);
    assert!(
        !crate::fuzzing::client_for_fuzzing(false)
            .unwrap()
            .is_bound()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_either_machine(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        crate::fuzzing::client_association(&data);
        crate::fuzzing::server_association(&data);
    }

    #[test]
    fn arbitrary_frames_after_a_valid_header_never_panic(
        ptype in prop_oneof![Just(0u8), Just(2), Just(3), 11u8..=19],
        flags in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let len = u16::try_from(16 + body.len()).unwrap();
        let mut frame = vec![5, 0, ptype, flags, 0x10, 0, 0, 0];
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&[0, 0, 2, 0, 0, 0]);
        frame.extend_from_slice(&body);
        crate::fuzzing::client_association(&frame);
        crate::fuzzing::server_association(&frame);
    }
}

// --- Connect level, byte by byte: what Samba, impacket and Windows send. ---

#[test]
fn at_connect_requests_and_responses_carry_no_verifier() {
    // What Samba's rpcclient and impacket send at connect, and what we send: the NTLM context
    // was built at bind time; no fragment after it carries a sec_trailer.
    let (mut pair, context) = secure_pair(AuthLevel::CONNECT, 5840);
    assert_eq!(context, 0);
    pair.client
        .call(context, 4, None, Bytes::from_static(b"ABCD"))
        .unwrap();
    pair.drive().unwrap();
    pair.serve_echo();
    assert_eq!(pair.responses(), [(2, Bytes::from_static(b"DCBA"))]);
    #[rustfmt::skip]
    let request: &[u8] = &[
        0x05, 0x00, 0x00, 0x03, // rpc_vers 5.0, PTYPE request, PFC_FIRST_FRAG | PFC_LAST_FRAG
        0x10, 0x00, 0x00, 0x00, // packed_drep: little-endian, ASCII, IEEE
        0x1c, 0x00, 0x00, 0x00, // frag_length 28, auth_length 0: no sec_trailer
        0x02, 0x00, 0x00, 0x00, // call_id 2 (the bind and the auth3 took 1)
        0x04, 0x00, 0x00, 0x00, // alloc_hint 4
        0x00, 0x00, 0x04, 0x00, // p_cont_id 0, opnum 4
        b'A', b'B', b'C', b'D', // stub, no auth padding
    ];
    assert_eq!(pair.frames(Dir::ToServer, PacketType::REQUEST), [request]);
    #[rustfmt::skip]
    let response: &[u8] = &[
        0x05, 0x00, 0x02, 0x03, // rpc_vers 5.0, PTYPE response, PFC_FIRST_FRAG | PFC_LAST_FRAG
        0x10, 0x00, 0x00, 0x00, // packed_drep
        0x1c, 0x00, 0x00, 0x00, // frag_length 28, auth_length 0
        0x02, 0x00, 0x00, 0x00, // call_id 2
        0x04, 0x00, 0x00, 0x00, // alloc_hint 4
        0x00, 0x00, 0x00, 0x00, // p_cont_id 0, cancel_count 0, reserved
        b'D', b'C', b'B', b'A', // stub
    ];
    assert_eq!(pair.frames(Dir::ToClient, PacketType::RESPONSE), [response]);
}

/// A request at connect that carries a verifier anyway, as Samba's test suite sends one
/// (`python/samba/tests/dcerpc/raw_protocol.py`) and Samba's and Windows' servers accept: a
/// sec_trailer naming the connect-level context, and an `auth_value` that is an NTLM signature of
/// version 1 and nothing else. Offsets 40..48 are the sec_trailer, 48..64 the `auth_value`.
#[rustfmt::skip]
const CONNECT_REQUEST_WITH_VERIFIER: [u8; 64] = [
    0x05, 0x00, 0x00, 0x03, // rpc_vers 5.0, PTYPE request, PFC_FIRST_FRAG | PFC_LAST_FRAG
    0x10, 0x00, 0x00, 0x00, // packed_drep: little-endian
    0x40, 0x00, 0x10, 0x00, // frag_length 64, auth_length 16
    0x05, 0x00, 0x00, 0x00, // call_id 5
    0x05, 0x00, 0x00, 0x00, // alloc_hint 5
    0x00, 0x00, 0x04, 0x00, // p_cont_id 0, opnum 4
    b'h', b'e', b'l', b'l', b'o', // stub (5 bytes)
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // auth padding: 11 bytes, to a 16-byte boundary
    0x0a, 0x02, 0x0b, 0x00, // auth_type WINNT, auth_level CONNECT, auth_pad_length 11, reserved
    0x4f, 0x00, 0x00, 0x00, // auth_context_id 79 (the bind's)
    0x01, 0x00, 0x00, 0x00, // auth_value: Version 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // then zeros (checksum and sequence number)
];

#[test]
fn at_connect_a_request_with_a_verifier_is_served_and_answered_without_one() {
    // The dummy signature, then 16 other bytes: nothing checks an auth_value at connect.
    let mut other = CONNECT_REQUEST_WITH_VERIFIER;
    other[48..].copy_from_slice(&[0xa5; 16]);
    for frame in [CONNECT_REQUEST_WITH_VERIFIER, other] {
        let (mut pair, _) = secure_pair(AuthLevel::CONNECT, 5840);
        pair.server
            .handle_frame(Bytes::copy_from_slice(&frame))
            .unwrap();
        pair.collect();
        let requests = pair.take_requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].call_id, 5);
        assert_eq!(requests[0].auth_level, AuthLevel::CONNECT);
        assert_eq!(
            requests[0].stub,
            b"hello"[..],
            "the padding and the verifier are not the stub"
        );
        pair.server
            .respond(5, Bytes::from_static(b"world"))
            .unwrap();
        let response = pair.server.next_frame().unwrap();
        assert_eq!(decode(&response).ptype(), PacketType::RESPONSE);
        assert_eq!(
            CommonHeader::decode(&response).unwrap().auth_length,
            0,
            "the answer at connect has no verifier, as Samba's and Windows' have none"
        );
    }
}

#[test]
fn at_connect_a_verifier_naming_another_context_is_denied() {
    // As Samba and Windows do: a sec_trailer that does not name the association's context
    // (type, level or context id) gets nca_s_fault_access_denied.
    for (offset, value, field) in [
        (40, 0x09, "auth_type"),
        (41, 0x05, "auth_level"),
        (44, 0x50, "auth_context_id"),
    ] {
        let (mut pair, _) = secure_pair(AuthLevel::CONNECT, 5840);
        let mut frame = CONNECT_REQUEST_WITH_VERIFIER;
        frame[offset] = value;
        assert_eq!(
            pair.server.handle_frame(Bytes::copy_from_slice(&frame)),
            Err(ProtocolError::AuthMismatch { field }),
        );
        let fault = pair.server.next_frame().unwrap();
        assert_eq!(decode(&fault).call_id, 5);
        assert_eq!(
            fault_status(&fault).0,
            FaultStatus::ACCESS_DENIED,
            "{field}"
        );
        pair.collect();
        assert!(pair.take_requests().is_empty());
    }
}

/// A bind of another version or an unsupported data representation is answered (bind_nak
/// protocol_version_not_supported naming 5.0, as Samba and Windows), not dropped unanswered:
/// `frame_len` still cuts it whole.
#[test]
fn other_versions_and_data_representations_get_a_bind_nak() {
    let variants: [(usize, u8); 4] = [
        (0, 4),    // rpc_vers 4
        (1, 9),    // rpc_vers_minor 9
        (4, 0x11), // EBCDIC characters
        (5, 1),    // VAX floating point
    ];
    for (at, value) in variants {
        let mut frame = BytesMut::from(&bind_frame(vec![context(0, AD_BACKUP)], None)[..]);
        frame[at] = value;
        let frame = frame.freeze();
        assert_eq!(
            frame_len(&frame, 5840),
            Ok(Some(frame.len())),
            "{at}={value}"
        );
        let mut server = fresh_server();
        assert!(server.handle_frame(frame).is_err());
        let nak = server.next_frame().unwrap();
        match decode(&nak).body {
            PduBody::BindNak(nak) => {
                assert_eq!(
                    nak.provider_reject_reason,
                    RejectReason::PROTOCOL_VERSION_NOT_SUPPORTED,
                    "{at}={value}"
                );
                assert_eq!(
                    nak.versions
                        .iter()
                        .map(|v| (v.major, v.minor))
                        .collect::<Vec<_>>(),
                    vec![(5, 0)],
                    "{at}={value}"
                );
            }
            other => panic!("{at}={value}: {other:?}"),
        }
    }
}

/// Any PDU but a bind on a fresh association gets a bind_nak, as Samba answers.
#[test]
fn a_request_before_the_bind_gets_a_bind_nak() {
    let mut server = fresh_server();
    let request = request_pdu(1, WHOLE, 0, 0, &[]);
    assert!(server.handle_frame(request).is_err());
    assert_eq!(
        nak_reason(&mut server),
        RejectReason::PROTOCOL_VERSION_NOT_SUPPORTED
    );
}

#[test]
fn a_bind_naming_a_group_that_does_not_exist_gets_a_bind_nak() {
    let mut server =
        ServerAssociation::new(ServerConfig::new(interfaces(AuthLevel::NONE), 7), None).unwrap();
    let mut bind = decode(&bind_frame(vec![context(0, AD_BACKUP)], None));
    if let PduBody::Bind(body) = &mut bind.body {
        body.assoc_group_id = 0x0bad_cafe;
    }
    assert!(server.handle_frame(bind.to_bytes().unwrap()).is_err());
    let answer = decode(&server.poll_transmit().unwrap().to_bytes());
    assert_eq!(answer.ptype(), PacketType::BIND_NAK);
    // The group the driver put the association in is joined.
    let mut server =
        ServerAssociation::new(ServerConfig::new(interfaces(AuthLevel::NONE), 7), None).unwrap();
    if let PduBody::Bind(body) = &mut bind.body {
        body.assoc_group_id = 7;
    }
    server.handle_frame(bind.to_bytes().unwrap()).unwrap();
    assert_eq!(
        decode(&server.poll_transmit().unwrap().to_bytes()).ptype(),
        PacketType::BIND_ACK
    );
}

#[test]
fn an_orphaned_is_ignored_and_the_next_call_faults_on_the_unfinished_one() {
    let (mut pair, [backup, _]) = Pair::bound();
    pair.server
        .handle_frame(request_pdu(40, FIRST, backup, 0, b"first of 40"))
        .unwrap();
    let orphaned = Pdu::new(40, PduBody::Orphaned(crate::pdu::Orphaned));
    pair.server
        .handle_frame(orphaned.to_bytes().unwrap())
        .unwrap();
    assert_eq!(
        pair.server.next_frame(),
        None,
        "an orphaned is not answered"
    );
    assert!(
        pair.server
            .handle_frame(request_pdu(41, WHOLE, backup, 0, b"41"))
            .is_err()
    );
    let frame = pair.server.next_frame().unwrap();
    assert_eq!(
        decode(&frame).call_id,
        40,
        "the fault names the unfinished call"
    );
    let (status, flags) = fault_status(&frame);
    assert_eq!(status, FaultStatus::PROTO_ERROR);
    assert!(!flags.contains(PfcFlags::DID_NOT_EXECUTE));
}

/// At privacy, a response frame the client owns (a `BytesMut` cut from its receive buffer) is
/// unsealed where it lies: the stub handed up is a slice of that very buffer, not of a copy.
#[test]
fn an_owned_frame_is_unsealed_in_its_own_buffer() {
    let (mut pair, context) = secure_pair(AuthLevel::PKT_PRIVACY, 5840);
    pair.client
        .call(context, 0, None, pattern(1000, 3))
        .unwrap();
    pair.drive().unwrap();
    for request in pair.take_requests() {
        pair.server
            .respond(request.call_id, pattern(1000, 5))
            .unwrap();
    }
    let sealed = pair.server.next_frame().unwrap();
    assert_eq!(pair.server.next_frame(), None, "one fragment");
    assert!(!sealed.windows(16).any(|w| w == &pattern(1000, 5)[..16]));
    let owned = BytesMut::from(&sealed[..]);
    let received = owned.as_ptr_range();
    pair.client.handle_frame(owned).unwrap();
    pair.collect();
    let stub = match pair.client_events.pop() {
        Some(ClientEvent::Response { stub, .. }) => stub,
        other => panic!("expected a response, got {other:?}"),
    };
    assert_eq!(stub.to_bytes(), pattern(1000, 5));
    let stub = stub.to_bytes();
    assert!(
        received.contains(&stub.as_ptr()),
        "the stub is a slice of the received buffer"
    );
}

/// A pair bound on ad_backup with a security context (a trailer is sent with one), whose
/// client asks for header signing or not.
fn bound_with_header_signing(header_signing: bool) -> (Pair, u16) {
    let client = ClientConfig {
        header_signing,
        ..ClientConfig::default()
    };
    let server = ServerConfig::new(interfaces(AuthLevel::NONE), 0x1234);
    let mut pair = Pair::with_security(client, Some(Toy::initiator()), server, Some(toy_factory()));
    let ids = pair.client.bind(&[AD_BACKUP]).unwrap();
    pair.drive().unwrap();
    (pair, ids[0])
}

/// The trailer a client such as Samba's rpcclient appends to a call on ad_backup.
fn good_trailer(call_id: u32, p_cont_id: u16, opnum: u16) -> VerificationTrailer {
    VerificationTrailer {
        bitmask1: Some((0, false)),
        pcontext: Some((
            PContext {
                abstract_syntax: AD_BACKUP,
                transfer_syntax: SyntaxId::NDR,
            },
            false,
        )),
        header2: Some((
            Header2::of_request(DataRep::LITTLE_ENDIAN, call_id, p_cont_id, opnum),
            false,
        )),
        unknown_must_process: None,
        commands: 3,
    }
}

/// 13 stub bytes, padded to 4, then the trailer.
fn stub_with(trailer: &[u8]) -> Bytes {
    let mut stub = pattern(13, 2).to_vec();
    stub.resize(16, 0);
    stub.extend_from_slice(trailer);
    Bytes::from(stub)
}

#[test]
fn a_request_with_a_matching_verification_trailer_reaches_the_interface_without_it() {
    for header_signing in [false, true] {
        let (mut pair, ctx) = bound_with_header_signing(header_signing);
        let plain = pair.client.call(ctx, 2, None, pattern(8, 1)).unwrap();
        pair.drive().unwrap();
        assert_eq!(pair.take_requests()[0].stub, pattern(8, 1));
        let call_id = plain + 1;
        let mut trailer = good_trailer(call_id, ctx, 2);
        if header_signing {
            trailer.bitmask1 = Some((CLIENT_SUPPORT_HEADER_SIGNING, false));
        }
        let sent = pair
            .client
            .call(ctx, 2, None, stub_with(&trailer.encode()))
            .unwrap();
        assert_eq!(sent, call_id);
        pair.drive().unwrap();
        let requests = pair.take_requests();
        assert_eq!(requests.len(), 1, "header signing {header_signing}");
        assert_eq!(requests[0].stub[..13], pattern(13, 2)[..]);
        assert_eq!(requests[0].stub.len(), 16, "the trailer is stripped");
        pair.server.respond(call_id, Bytes::new()).unwrap();
        pair.drive().unwrap();
        assert_eq!(pair.responses(), [(call_id, Bytes::new())]);
    }
}

#[test]
fn each_verification_trailer_mismatch_is_access_denied_and_the_association_goes_on() {
    type Spoil = fn(&mut VerificationTrailer);
    let cases: [(&str, Spoil); 9] = [
        ("header signing the bind did not ask for", |t| {
            t.bitmask1 = Some((CLIENT_SUPPORT_HEADER_SIGNING, false));
        }),
        ("abstract syntax", |t| {
            t.pcontext.as_mut().unwrap().0.abstract_syntax = AD_RESTORE;
        }),
        ("transfer syntax", |t| {
            t.pcontext.as_mut().unwrap().0.transfer_syntax = SyntaxId::NDR64;
        }),
        ("ptype", |t| t.header2.as_mut().unwrap().0.ptype = 2),
        ("drep", |t| t.header2.as_mut().unwrap().0.drep = [0; 4]),
        ("call id", |t| t.header2.as_mut().unwrap().0.call_id += 1),
        ("context id", |t| {
            t.header2.as_mut().unwrap().0.p_cont_id += 1
        }),
        ("opnum", |t| t.header2.as_mut().unwrap().0.opnum += 1),
        ("an unknown must-process command", |t| {
            t.unknown_must_process = Some(9);
        }),
    ];
    for (what, spoil) in cases {
        let (mut pair, ctx) = bound_with_header_signing(false);
        let plain = pair.client.call(ctx, 2, None, pattern(8, 1)).unwrap();
        pair.drive().unwrap();
        pair.take_requests();
        let call_id = plain + 1;
        let mut trailer = good_trailer(call_id, ctx, 2);
        spoil(&mut trailer);
        let mut bytes = trailer.encode();
        if trailer.unknown_must_process.is_some() {
            // The encoder writes known commands only: append command 9, must-process, END.
            let end = bytes.len() - 20;
            bytes[end + 1] &= !0x40;
            bytes.extend_from_slice(&[0x09, 0xc0, 0x04, 0x00, 0, 0, 0, 0]);
        }
        pair.client.call(ctx, 2, None, stub_with(&bytes)).unwrap();
        pair.drive().unwrap();
        assert!(pair.take_requests().is_empty(), "{what}: not dispatched");
        let fault = pair.frames(Dir::ToClient, PacketType::FAULT).pop().unwrap();
        let (status, flags) = fault_status(&fault);
        assert_eq!(status, FaultStatus::ACCESS_DENIED, "{what}");
        assert!(!flags.contains(PfcFlags::DID_NOT_EXECUTE), "{what}");
        let Fault { p_cont_id, .. } = match decode(&fault).body {
            PduBody::Fault(fault) => fault,
            other => panic!("{other:?}"),
        };
        assert_eq!(p_cont_id, ctx, "{what}: names the call's context");
        // The association goes on: the next call is served.
        let next = pair.client.call(ctx, 2, None, pattern(8, 3)).unwrap();
        pair.drive().unwrap();
        assert_eq!(pair.take_requests()[0].call_id, next, "{what}");
    }
}

#[test]
fn a_duplicated_verification_trailer_command_is_access_denied() {
    let (mut pair, ctx) = bound_with_header_signing(false);
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&[0x01, 0x00, 0x04, 0x00, 0, 0, 0, 0]);
    bytes.extend_from_slice(&[0x01, 0x40, 0x04, 0x00, 0, 0, 0, 0]);
    pair.client.call(ctx, 2, None, stub_with(&bytes)).unwrap();
    pair.drive().unwrap();
    assert!(pair.take_requests().is_empty());
    let fault = pair.frames(Dir::ToClient, PacketType::FAULT).pop().unwrap();
    assert_eq!(fault_status(&fault).0, FaultStatus::ACCESS_DENIED);
}

// --- Fragments protected and verified in batches. ---

/// Toy, recording the size of every batch the associations hand it.
#[derive(Debug)]
struct Batching {
    toy: Toy,
    /// `(wrap, fragments)` of each batch.
    batches: std::sync::Arc<std::sync::Mutex<Vec<(bool, usize)>>>,
}

impl SecurityProvider for Batching {
    fn auth_type(&self) -> AuthType {
        self.toy.auth_type()
    }

    fn step(&mut self, peer_token: Option<&[u8]>) -> Result<AuthStep, SecurityError> {
        self.toy.step(peer_token)
    }

    fn is_established(&self) -> bool {
        self.toy.is_established()
    }

    fn signature_len(&self) -> usize {
        self.toy.signature_len()
    }

    fn wrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: core::ops::Range<usize>,
        signature: &mut [u8],
    ) -> Result<(), SecurityError> {
        self.toy.wrap(protection, pdu, stub, signature)
    }

    fn unwrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: core::ops::Range<usize>,
        signature: &[u8],
    ) -> Result<(), SecurityError> {
        self.toy.unwrap(protection, pdu, stub, signature)
    }

    fn wrap_batch(
        &mut self,
        protection: Protection,
        fragments: &mut [crate::security::ProtectedFragment<'_>],
    ) -> Result<(), crate::security::BatchError> {
        self.batches.lock().unwrap().push((true, fragments.len()));
        crate::security::one_by_one(fragments, |f| {
            self.toy
                .wrap(protection, f.pdu, f.stub.clone(), f.signature)
        })
    }

    fn unwrap_batch(
        &mut self,
        protection: Protection,
        fragments: &mut [crate::security::ProtectedFragment<'_>],
    ) -> Result<(), crate::security::BatchError> {
        self.batches.lock().unwrap().push((false, fragments.len()));
        crate::security::one_by_one(fragments, |f| {
            self.toy
                .unwrap(protection, f.pdu, f.stub.clone(), f.signature)
        })
    }
}

type Batches = std::sync::Arc<std::sync::Mutex<Vec<(bool, usize)>>>;

/// A pair bound at `level` whose both providers record their batches; with the context id.
fn batching_pair(level: AuthLevel, size: u16) -> (Pair, u16, Batches, Batches) {
    let (mut client, server) = config_with_frag(size);
    client.auth_level = level;
    let client_batches = Batches::default();
    let server_batches = Batches::default();
    let initiator = Batching {
        toy: Toy::new(true, b"toy-authenticate"),
        batches: client_batches.clone(),
    };
    let seen = server_batches.clone();
    let factory: SecurityFactory = Box::new(move |auth_type| {
        (auth_type == AuthType::WINNT).then(|| {
            Box::new(Batching {
                toy: Toy::new(false, b"toy-authenticate"),
                batches: seen.clone(),
            }) as Box<dyn SecurityProvider>
        })
    });
    let mut pair = Pair::with_security(client, Some(Box::new(initiator)), server, Some(factory));
    let ids = pair.client.bind(&[AD_BACKUP]).unwrap();
    pair.drive().unwrap();
    assert!(pair.client.is_bound());
    (pair, ids[0], client_batches, server_batches)
}

/// Three calls answered with `sizes`-byte stubs; the server's frames, not yet given to the
/// client.
fn answered_frames(pair: &mut Pair, context: u16, sizes: [usize; 3]) -> Vec<Bytes> {
    for (seed, _) in sizes.iter().enumerate() {
        pair.client
            .call(context, 4, None, pattern(10, u8::try_from(seed).unwrap()))
            .unwrap();
    }
    pair.drive().unwrap();
    for (request, size) in pair.take_requests().into_iter().zip(sizes) {
        pair.server
            .respond(request.call_id, pattern(size, 7))
            .unwrap();
    }
    core::iter::from_fn(|| pair.server.next_frame()).collect()
}

/// The server protects the fragments of its answers eight at a time, and a client handed every
/// fragment at once verifies them in one batch: the calls get the same answers as when the
/// fragments come one by one.
#[test]
fn fragments_protected_and_verified_in_batches_answer_as_one_by_one() {
    for level in [AuthLevel::PKT_INTEGRITY, AuthLevel::PKT_PRIVACY] {
        let sizes = [20_000, 100, 9_000];
        let (mut batched, context, client_batches, server_batches) = batching_pair(level, 1432);
        let frames = answered_frames(&mut batched, context, sizes);
        let server_wraps: Vec<usize> = server_batches
            .lock()
            .unwrap()
            .iter()
            .filter(|(wrap, _)| *wrap)
            .map(|&(_, n)| n)
            .collect();
        // 15 + 1 + 7 fragments, cut eight at a time, a batch running on into the next answer.
        assert_eq!(server_wraps, [8, 8, 7], "{level:?}");
        assert_eq!(frames.len(), 23);
        client_batches.lock().unwrap().clear();
        batched
            .client
            .handle_frames(frames.iter().map(|f| BytesMut::from(&f[..])))
            .unwrap();
        assert_eq!(*client_batches.lock().unwrap(), [(false, 23)]);
        batched.collect();

        let (mut single, context, _, _) = batching_pair(level, 1432);
        let again = answered_frames(&mut single, context, sizes);
        assert_eq!(again, frames, "the toy is deterministic");
        for frame in again {
            single.client.handle_frame(frame).unwrap();
        }
        single.collect();
        let answers = batched.responses();
        assert_eq!(answers, single.responses());
        assert_eq!(
            answers
                .iter()
                .map(|(_, stub)| stub.len())
                .collect::<Vec<_>>(),
            sizes
        );
        assert!(
            answers
                .iter()
                .all(|(_, stub)| stub[..] == pattern(stub.len(), 7)[..])
        );
    }
}

/// A tampered fragment in the middle of a batch fails the association; the calls whose
/// fragments came before it are answered, the ones after it are not.
#[test]
fn a_tampered_fragment_in_a_batch_fails_after_the_ones_before_it() {
    let (mut pair, context, _, _) = batching_pair(AuthLevel::PKT_PRIVACY, 1432);
    let frames = answered_frames(&mut pair, context, [100, 100, 100]);
    assert_eq!(frames.len(), 3);
    let mut batch: Vec<BytesMut> = frames.iter().map(|f| BytesMut::from(&f[..])).collect();
    batch[1][40] ^= 1;
    let error = pair.client.handle_frames(batch).unwrap_err();
    assert_eq!(error, ProtocolError::Security(SecurityError::BadSignature));
    pair.collect();
    let answered: Vec<u32> = pair.responses().iter().map(|(id, _)| *id).collect();
    assert_eq!(answered.len(), 1, "only the first call is answered");
    assert_eq!(pair.client.error(), Some(&error));
    assert!(pair.client.poll_transmit().is_none());
}

/// A batch that mixes protected responses and an unsigned fault is handled in the order
/// received: the fault answers its call, the responses theirs.
#[test]
fn an_unsigned_fault_inside_a_batch_answers_its_call_in_order() {
    let (mut pair, context, _, _) = batching_pair(AuthLevel::PKT_INTEGRITY, 5840);
    for seed in 0..3 {
        pair.client
            .call(context, 4, None, pattern(10, seed))
            .unwrap();
    }
    pair.drive().unwrap();
    let requests = pair.take_requests();
    pair.server
        .respond(requests[0].call_id, pattern(50, 1))
        .unwrap();
    pair.server
        .fault(requests[1].call_id, FaultStatus::OP_RNG_ERROR)
        .unwrap();
    pair.server
        .respond(requests[2].call_id, pattern(60, 2))
        .unwrap();
    let frames: Vec<BytesMut> = core::iter::from_fn(|| pair.server.next_frame())
        .map(|f| BytesMut::from(&f[..]))
        .collect();
    assert_eq!(frames.len(), 3);
    let received: Vec<u32> = frames
        .iter()
        .map(|f| CommonHeader::decode(f).unwrap().call_id)
        .collect();
    assert_eq!(
        frames
            .iter()
            .map(|f| CommonHeader::decode(f).unwrap().auth_length)
            .collect::<Vec<_>>(),
        [0, 16, 16],
        "the fault (sent first) is unsigned, the responses signed"
    );
    pair.client.handle_frames(frames).unwrap();
    pair.collect();
    let order: Vec<u32> = pair
        .client_events
        .iter()
        .filter_map(|event| match event {
            ClientEvent::Response { call_id, .. } | ClientEvent::Fault { call_id, .. } => {
                Some(*call_id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(order, received);
    let mut ids: Vec<u32> = requests.iter().map(|r| r.call_id).collect();
    ids.sort_unstable();
    let mut answered = order.clone();
    answered.sort_unstable();
    assert_eq!(answered, ids, "every call answered once");
}
