//! Oracles for the cargo-fuzz targets (`fuzz/`), built and tested on stable.
//!
//! Each takes arbitrary bytes; a panic is a finding.

use bytes::Bytes;

use crate::client::{ClientAssociation, ClientConfig};
use crate::framing::frame_len;
use crate::names::{build_name_list, parse_name_list};
use crate::pdu::{BindAck, ContextResult, Pdu, PduBody, PortAny};
use crate::security::AuthLevel;
use crate::server::{Interface, ServerAssociation, ServerConfig, ServerEvent};
use crate::syntax::SyntaxId;
use crate::token::ExpiryToken;
use crate::uuid::Uuid;

/// Decodes `data` as one fragment; must never panic.
pub fn decode_pdu(data: &[u8]) {
    let _ = Pdu::decode(Bytes::copy_from_slice(data));
    let _ = crate::pdu::locate_auth(data);
}

/// Decodes `data`; if it decodes, re-encodes it and decodes that again: the values must be
/// equal, and encoding the second value must give the same bytes.
///
/// # Panics
/// When a decoded PDU does not survive the round trip.
pub fn round_trip_pdu(data: &[u8]) {
    let Ok(pdu) = Pdu::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    #[expect(
        clippy::panic,
        reason = "a fuzzing oracle reports a finding by panicking"
    )]
    let Ok(encoded) = pdu.to_bytes() else {
        panic!("a decoded PDU does not encode: {pdu:?}");
    };
    assert_eq!(encoded.len(), pdu.encoded_len(), "encoded_len is exact");
    let again = Pdu::decode(encoded.clone());
    assert_eq!(
        again.as_ref(),
        Ok(&pdu),
        "re-encoded PDU decodes to the same value"
    );
    if let Ok(again) = again {
        assert_eq!(
            again.to_bytes().ok(),
            Some(encoded),
            "encoding is deterministic"
        );
    }
}

/// Parses `data`, read as little-endian UTF-16 code units (an odd last byte is dropped), as a
/// BFT name list. A list that parses must build back to the same units when it names at least
/// one file (the accepted spellings of an empty list, nothing, one NUL or two, all build to two
/// NULs), and what it builds must parse to the same entries.
///
/// # Panics
/// When a parsed list does not survive building and parsing again.
pub fn name_list(data: &[u8]) {
    let units: Vec<u16> = data
        .chunks_exact(2)
        .filter_map(|pair| pair.try_into().ok())
        .map(u16::from_le_bytes)
        .collect();
    let Ok(entries) = parse_name_list(&units) else {
        return;
    };
    let built = build_name_list(&entries);
    if entries.is_empty() {
        assert_eq!(built, [0, 0], "an empty list builds to two NULs");
    } else {
        assert_eq!(built, units, "a parsed list builds back to its units");
    }
    assert_eq!(
        parse_name_list(&built).as_ref(),
        Ok(&entries),
        "a built list parses to its entries"
    );
    for entry in &entries {
        let kind = entry.kind.classify();
        assert!(
            kind == entry.kind || kind == crate::names::BftKind::UNKNOWN,
            "classify keeps a kind or calls it unknown"
        );
    }
}

/// Decodes `data` as an expiry token. A token that decodes must encode to the same 16 bytes,
/// and its expiry must be consistent: never before the backup, expired one interval after it
/// expires (unless that is past the end of time) and not at the instant it expires.
///
/// # Panics
/// When one of those does not hold.
pub fn expiry_token(data: &[u8]) {
    let Ok(token) = ExpiryToken::decode(data) else {
        assert!(
            data.len() != ExpiryToken::LEN
                || data.get(..4) != Some(ExpiryToken::VERSION.to_le_bytes().as_slice()),
            "a 16-byte token of the known version decodes"
        );
        return;
    };
    assert_eq!(
        token.encode().as_slice(),
        data,
        "a decoded token encodes to its bytes"
    );
    let expires = token.expires_at();
    assert!(
        expires >= token.backup_time,
        "a backup expires after it was taken"
    );
    assert!(
        !token.is_expired(expires),
        "a token has not expired at its expiry"
    );
    assert!(
        !token.is_expired(token.backup_time),
        "a token is valid when taken"
    );
    if let Some(after) = expires.checked_add(1) {
        assert!(
            token.is_expired(after),
            "a token has expired after its expiry"
        );
    }
}

/// Frames a byte stream twice, once whole and once fed in chunks, as a transport would receive
/// it: both must give the same fragments and end in the same error.
///
/// `data[0] % 8 + 1` is the number of chunk sizes that follow; each of those bytes plus one is a
/// chunk size, used in turn; the rest of `data` is the stream.
///
/// # Panics
/// When chunked framing differs from whole framing.
pub fn frame_split(data: &[u8]) {
    let Some((&count, data)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 8) + 1;
    let (sizes, stream) = data.split_at(count.min(data.len()));
    let whole = frames(stream, &mut core::iter::once(stream.len()));
    let mut chunks = sizes.iter().map(|&size| usize::from(size) + 1).cycle();
    let chunked = frames(stream, &mut chunks);
    assert_eq!(
        whole, chunked,
        "framing does not depend on how bytes arrive"
    );
}

/// Frames `stream` delivered in chunks of the sizes `chunks` yields.
fn frames(
    stream: &[u8],
    chunks: &mut dyn Iterator<Item = usize>,
) -> (Vec<Vec<u8>>, Option<crate::error::DecodeError>) {
    const MAX_FRAG: u16 = u16::MAX;
    let mut buffer: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut rest = stream;
    loop {
        match frame_len(&buffer, MAX_FRAG) {
            Ok(Some(len)) => {
                let frame: Vec<u8> = buffer.drain(..len).collect();
                out.push(frame);
            }
            Ok(None) if rest.is_empty() => return (out, None),
            Ok(None) => {
                let take = chunks.next().unwrap_or(rest.len()).clamp(1, rest.len());
                let (head, tail) = rest.split_at(take);
                buffer.extend_from_slice(head);
                rest = tail;
            }
            Err(error) => return (out, Some(error)),
        }
    }
}

/// Feeds peer bytes to a client association: with `data[0]` odd, one that a valid bind_ack
/// bound and that has three calls in flight; with it even, one awaiting its bind_ack. The rest
/// of `data` is split into frames with [`frame_len`]. Must never panic.
pub fn client_association(data: &[u8]) {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let Some(mut client) = client_for_fuzzing(mode & 1 == 1) else {
        return;
    };
    let max = client.max_recv_frag();
    for_each_frame(stream, max, |frame| {
        let _ = client.handle_frame(frame);
        while client.poll_transmit().is_some() {}
        while client.poll_event().is_some() {}
    });
}

/// A client that sent its bind and, when `bound`, got a valid bind_ack and queued (and sent)
/// three calls, one of them fragmented.
pub(crate) fn client_for_fuzzing(bound: bool) -> Option<ClientAssociation> {
    let mut client = ClientAssociation::new(ClientConfig::default(), None).ok()?;
    let ids = client
        .bind(&[FUZZ_INTERFACE.syntax, SyntaxId::NDR64])
        .ok()?;
    let bind = client.poll_transmit()?;
    if bound {
        let call_id = crate::header::CommonHeader::decode(&bind.to_bytes())
            .ok()?
            .call_id;
        let ack = Pdu::new(
            call_id,
            PduBody::BindAck(BindAck {
                max_xmit_frag: 5840,
                max_recv_frag: 5840,
                assoc_group_id: 1,
                sec_addr: PortAny::new("135"),
                p_result_list: vec![ContextResult::acceptance(SyntaxId::NDR); 2],
            }),
        );
        client.handle_frame(ack.to_bytes().ok()?).ok()?;
        let context = *ids.first()?;
        for (opnum, len) in [(0, 0), (1, 100), (2, 20_000)] {
            client
                .call(context, opnum, None, Bytes::from(vec![0x42; len]))
                .ok()?;
        }
        while client.poll_transmit().is_some() {}
    }
    Some(client)
}

/// Feeds peer bytes, split into frames with [`frame_len`], to a fresh server association
/// serving one interface; every request it dispatches is answered. Must never panic.
pub fn server_association(data: &[u8]) {
    let config = ServerConfig::new(vec![FUZZ_INTERFACE], 1);
    let Ok(mut server) = ServerAssociation::new(config, None) else {
        return;
    };
    for_each_frame(data, u16::MAX, |frame| {
        let _ = server.handle_frame(frame);
        while let Some(event) = server.poll_event() {
            if let ServerEvent::Request(request) = event {
                let _ = server.respond(request.call_id, request.stub);
            }
        }
        while server.poll_transmit().is_some() {}
    });
}

/// The interface the association oracles negotiate.
const FUZZ_INTERFACE: Interface = Interface {
    syntax: SyntaxId::new(
        Uuid::from_str_const("ecec0d70-a603-11d0-96b1-00a0c91ece30"),
        1,
        0,
    ),
    opnums: 9,
    min_auth_level: AuthLevel::NONE,
};

/// Calls `f` with each whole frame of `stream`, stopping at the first framing error.
fn for_each_frame(mut stream: &[u8], max: u16, mut f: impl FnMut(Bytes)) {
    while let Ok(Some(len)) = frame_len(stream, max) {
        let Some((frame, rest)) = stream.split_at_checked(len) else {
            return;
        };
        f(Bytes::copy_from_slice(frame));
        stream = rest;
    }
}

/// Follows `data`, read as whole PDUs back to back (both directions, as a capture's stream
/// holds them), with an observer whose eavesdropper derives keys from any handshake (see
/// [`ToyEavesdropper`]), so that the fuzzer reaches the checks and unsealing of protected
/// fragments and the reassembly of their stubs.
///
/// # Panics
/// When the observer tells a different PDU from the frame's own, holds more calls than its
/// limit, or holds more stub bytes than it was given.
pub fn observe(data: &[u8]) {
    use crate::observe::Observer;

    let mut observer = Observer::new(Some(Box::new(ToyEavesdropper)));
    let limit = Observer::limits().max_calls_in_flight;
    for_each_frame(data, u16::MAX, |frame| {
        let expected = Pdu::decode(frame.clone());
        match (observer.observe(frame), expected) {
            (Ok(observation), Ok(pdu)) => {
                assert_eq!(
                    observation.pdu, pdu,
                    "the observation is of the frame's PDU"
                );
            }
            (Err(error), Err(expected)) => assert_eq!(error, expected, "the same decode error"),
            (Ok(_), Err(_)) | (Err(_), Ok(_)) => {
                #[expect(
                    clippy::panic,
                    reason = "a fuzzing oracle reports a finding by panicking"
                )]
                {
                    panic!("the observer and Pdu::decode disagree on whether the frame decodes")
                }
            }
        }
        let (calls, _) = observer.pending();
        assert!(calls <= limit, "{calls} calls held, over the limit {limit}");
    });
    assert!(
        observer.held_bytes() <= data.len(),
        "the observer holds more stub bytes than it was given"
    );
}

/// An eavesdropper for fuzzing: any handshake of any type is established by its second token
/// from the client, with a one-byte key (the XOR of that token's bytes). Its providers unseal
/// by XOR with the key and take a signature whose first byte is the key XOR the fragment's
/// length (low byte): easy for a fuzzer to forge, so that it gets past them.
#[derive(Debug)]
pub struct ToyEavesdropper;

impl crate::observe::Eavesdropper for ToyEavesdropper {
    fn handshake(
        &self,
        _auth_type: crate::security::AuthType,
    ) -> Option<Box<dyn crate::observe::HandshakeObserver>> {
        Some(Box::new(ToyHandshake { client_tokens: 0 }))
    }
}

#[derive(Debug)]
struct ToyHandshake {
    client_tokens: usize,
}

impl crate::observe::HandshakeObserver for ToyHandshake {
    fn token(
        &mut self,
        sender: crate::observe::Sender,
        token: &[u8],
    ) -> Result<Option<crate::observe::ObservedKeys>, crate::security::SecurityError> {
        if token.first() == Some(&0xff) {
            return Err(crate::security::SecurityError::LogonFailure("toy refusal"));
        }
        if sender == crate::observe::Sender::Client {
            self.client_tokens += 1;
        }
        if self.client_tokens < 2 {
            return Ok(None);
        }
        let key = token.iter().fold(0, |key, byte| key ^ byte);
        Ok(Some(crate::observe::ObservedKeys {
            from_client: Box::new(ToyDirection { key }),
            from_server: Box::new(ToyDirection { key }),
        }))
    }
}

#[derive(Debug)]
struct ToyDirection {
    key: u8,
}

impl crate::security::SpnegoMechanism for ToyDirection {}

impl crate::security::SecurityProvider for ToyDirection {
    fn auth_type(&self) -> crate::security::AuthType {
        crate::security::AuthType::WINNT
    }

    fn step(
        &mut self,
        _peer_token: Option<&[u8]>,
    ) -> Result<crate::security::AuthStep, crate::security::SecurityError> {
        Err(crate::security::SecurityError::WrongState("observer"))
    }

    fn is_established(&self) -> bool {
        true
    }

    fn signature_len(&self) -> usize {
        16
    }

    fn wrap(
        &mut self,
        _protection: crate::security::Protection,
        _pdu: &mut [u8],
        _stub: core::ops::Range<usize>,
        _signature: &mut [u8],
    ) -> Result<(), crate::security::SecurityError> {
        Err(crate::security::SecurityError::Unsupported("observer"))
    }

    fn unwrap(
        &mut self,
        protection: crate::security::Protection,
        pdu: &mut [u8],
        stub: core::ops::Range<usize>,
        signature: &[u8],
    ) -> Result<(), crate::security::SecurityError> {
        let expected = self.key ^ u8::try_from(pdu.len() % 256).unwrap_or(0);
        if signature.first() != Some(&expected) {
            return Err(crate::security::SecurityError::BadSignature);
        }
        if protection == crate::security::Protection::Privacy {
            let range = pdu
                .get_mut(stub)
                .ok_or(crate::security::SecurityError::BadSignature)?;
            range.iter_mut().for_each(|byte| *byte ^= self.key);
        }
        Ok(())
    }
}

/// Looks for a verification trailer at the end of `data` taken as a request stub, and decodes
/// `data` as a trailer from its start: never a panic; a trailer found starts with the magic at a
/// 4-aligned offset within the scanned window; its known commands encode to a trailer that
/// decodes to the same commands and is found again after the same stub; a trailer checked
/// against its own commands matches unless it holds an unknown must-process command.
///
/// # Panics
/// When one of these properties fails.
pub fn verification_trailer(data: &[u8]) {
    use crate::trailer::{self, MAGIC, MAX_SCAN, VerificationTrailer};
    let _ = VerificationTrailer::decode(data);
    let Some(found) = trailer::locate(data) else {
        return;
    };
    let stub_len = found.stub_len;
    assert_eq!(stub_len % 4, 0, "the trailer is 4-aligned");
    assert!(
        data.get(stub_len..)
            .is_some_and(|tail| tail.starts_with(&MAGIC)),
        "the trailer starts with the magic"
    );
    assert!(
        data.len() - stub_len <= MAX_SCAN + MAGIC.len() + 3,
        "the trailer is within the scanned window"
    );
    let Ok(decoded) = found.trailer else {
        return;
    };
    let known = VerificationTrailer {
        unknown_must_process: None,
        ..decoded
    };
    let encoded = known.encode();
    if known.bitmask1.is_some() || known.pcontext.is_some() || known.header2.is_some() {
        let again = VerificationTrailer::decode(&encoded).expect("an encoded trailer decodes");
        assert_eq!(
            (again.bitmask1, again.pcontext, again.header2),
            (known.bitmask1, known.pcontext, known.header2),
            "the known commands survive encoding"
        );
        let mut stub = data.get(..stub_len).unwrap_or_default().to_vec();
        stub.extend_from_slice(&encoded);
        let relocated = trailer::locate(&stub).expect("found again");
        assert_eq!(relocated.stub_len, stub_len, "found at the same place");
        let (Some((bits, _)), Some((pcontext, _)), Some((header2, _))) =
            (known.bitmask1, known.pcontext, known.header2)
        else {
            return;
        };
        let own = trailer::Expected {
            client_header_signing: bits & trailer::CLIENT_SUPPORT_HEADER_SIGNING != 0,
            pcontext,
            header2,
        };
        assert_eq!(
            decoded.check(&own).is_ok(),
            decoded.unknown_must_process.is_none(),
            "a trailer matches its own request"
        );
    }
}
