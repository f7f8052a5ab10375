//! Property tests: arbitrary valid PDUs round-trip in both byte orders; framing does not depend
//! on how the bytes arrive; arbitrary bytes never panic the decoder.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;

use super::fixtures::{CAPTURED, OWN};
use crate::drep::DataRep;
use crate::framing::frame_len;
use crate::header::PfcFlags;
use crate::pdu::*;
use crate::security::{AuthLevel, AuthType};
use crate::syntax::SyntaxId;
use crate::uuid::Uuid;

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn syntax() -> impl Strategy<Value = SyntaxId> {
    (any::<[u8; 16]>(), any::<u16>(), any::<u16>())
        .prop_map(|(uuid, major, minor)| SyntaxId::new(Uuid(uuid), major, minor))
}

fn contexts() -> impl Strategy<Value = Vec<PresentationContext>> {
    vec(
        (any::<u16>(), syntax(), vec(syntax(), 0..4)).prop_map(
            |(p_cont_id, abstract_syntax, transfer_syntaxes)| PresentationContext {
                p_cont_id,
                abstract_syntax,
                transfer_syntaxes,
            },
        ),
        0..4,
    )
}

fn results() -> impl Strategy<Value = Vec<ContextResult>> {
    vec(
        (any::<u16>(), any::<u16>(), syntax()).prop_map(|(result, reason, transfer_syntax)| {
            ContextResult {
                result: ContResult(result),
                reason,
                transfer_syntax,
            }
        }),
        0..4,
    )
}

fn body() -> impl Strategy<Value = PduBody> {
    prop_oneof![
        (
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
            any::<Option<[u8; 16]>>(),
            bytes(64)
        )
            .prop_map(
                |(alloc_hint, p_cont_id, opnum, object, stub)| PduBody::Request(Request {
                    alloc_hint,
                    p_cont_id,
                    opnum,
                    object: object.map(Uuid),
                    stub,
                })
            ),
        (
            any::<u32>(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            bytes(64)
        )
            .prop_map(|(alloc_hint, p_cont_id, cancel_count, reserved, stub)| {
                PduBody::Response(Response {
                    alloc_hint,
                    p_cont_id,
                    cancel_count,
                    reserved,
                    stub,
                })
            }),
        (any::<(u32, u16, u8, u8, u32, u32)>(), bytes(16)).prop_map(
            |((alloc_hint, p_cont_id, cancel_count, flags, status, reserved2), stub)| {
                PduBody::Fault(Fault {
                    alloc_hint,
                    p_cont_id,
                    cancel_count,
                    flags,
                    status: FaultStatus(status),
                    reserved2,
                    stub,
                })
            }
        ),
        (any::<(u16, u16, u32)>(), contexts(), any::<bool>()).prop_map(
            |((max_xmit_frag, max_recv_frag, assoc_group_id), p_context_elem, alter)| {
                if alter {
                    PduBody::AlterContext(AlterContext {
                        max_xmit_frag,
                        max_recv_frag,
                        assoc_group_id,
                        p_context_elem,
                    })
                } else {
                    PduBody::Bind(Bind {
                        max_xmit_frag,
                        max_recv_frag,
                        assoc_group_id,
                        p_context_elem,
                    })
                }
            }
        ),
        (
            any::<(u16, u16, u32)>(),
            bytes(12),
            results(),
            any::<bool>()
        )
            .prop_map(
                |((max_xmit_frag, max_recv_frag, assoc_group_id), addr, p_result_list, alter)| {
                    let sec_addr = PortAny(addr);
                    if alter {
                        PduBody::AlterContextResp(AlterContextResp {
                            max_xmit_frag,
                            max_recv_frag,
                            assoc_group_id,
                            sec_addr,
                            p_result_list,
                        })
                    } else {
                        PduBody::BindAck(BindAck {
                            max_xmit_frag,
                            max_recv_frag,
                            assoc_group_id,
                            sec_addr,
                            p_result_list,
                        })
                    }
                }
            ),
        (any::<u16>(), vec(any::<(u8, u8)>(), 0..4), bytes(24)).prop_map(
            |(reason, versions, trailer)| PduBody::BindNak(BindNak {
                provider_reject_reason: RejectReason(reason),
                versions: versions
                    .into_iter()
                    .map(|(major, minor)| Version { major, minor })
                    .collect(),
                trailer,
            })
        ),
        any::<[u8; 4]>().prop_map(|pad| PduBody::Auth3(Auth3 { pad })),
        Just(PduBody::Shutdown(Shutdown)),
        Just(PduBody::CoCancel(CoCancel)),
        Just(PduBody::Orphaned(Orphaned)),
    ]
}

fn verifier() -> impl Strategy<Value = Option<AuthVerifier>> {
    let auth_value = vec(any::<u8>(), 1..40).prop_map(Bytes::from);
    proptest::option::of(
        (any::<(u8, u8, u8, u32)>(), auth_value, bytes(16)).prop_map(
            |((auth_type, auth_level, auth_reserved, auth_context_id), auth_value, pad)| {
                let mut verifier = AuthVerifier::new(
                    AuthType(auth_type),
                    AuthLevel(auth_level),
                    auth_context_id,
                    auth_value,
                );
                verifier.auth_reserved = auth_reserved;
                verifier.auth_pad_length = u8::try_from(pad.len()).unwrap();
                verifier.auth_pad = pad;
                verifier
            },
        ),
    )
}

fn pdu() -> impl Strategy<Value = Pdu> {
    (
        0..=1u8,
        any::<u8>(),
        any::<bool>(),
        any::<u32>(),
        body(),
        verifier(),
    )
        .prop_map(
            |(rpc_vers_minor, flags, big_endian, call_id, body, auth_verifier)| {
                let mut pfc_flags = PfcFlags::from_bits_retain(flags);
                if matches!(body, PduBody::Request(_)) {
                    pfc_flags.remove(PfcFlags::OBJECT_UUID);
                }
                Pdu {
                    rpc_vers_minor,
                    pfc_flags,
                    drep: if big_endian {
                        DataRep::BIG_ENDIAN
                    } else {
                        DataRep::LITTLE_ENDIAN
                    },
                    call_id,
                    body,
                    auth_verifier,
                }
            },
        )
}

/// Splits `stream` into fragments when it arrives as `chunks`.
fn frame_chunks(chunks: &[&[u8]]) -> Vec<Bytes> {
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        while let Some(len) = frame_len(&buffer, u16::MAX).unwrap() {
            frames.push(buffer.split_to(len).freeze());
        }
    }
    assert!(buffer.is_empty(), "bytes left over after the last fragment");
    frames
}

proptest! {
    #[test]
    fn valid_pdus_round_trip(pdu in pdu()) {
        let encoded = pdu.to_bytes().unwrap();
        prop_assert_eq!(encoded.len(), pdu.encoded_len());
        prop_assert_eq!(Pdu::decode(encoded.clone()), Ok(pdu.clone()));
        let location = pdu.encode_located(&mut BytesMut::new()).unwrap();
        prop_assert_eq!(locate_auth(&encoded), Ok(location));
    }

    /// A request or response whose stub is given apart, cut anywhere into segments, encodes
    /// to the bytes of the whole PDU.
    #[test]
    fn a_stub_given_apart_encodes_as_the_whole_pdu(
        stub in vec(any::<u8>(), 0..12_000),
        cuts in vec(any::<usize>(), 0..6),
        request in any::<bool>(),
        big_endian in any::<bool>(),
    ) {
        let stub = Bytes::from(stub);
        let body = if request {
            PduBody::Request(Request { alloc_hint: 9, p_cont_id: 1, opnum: 4, object: None, stub: stub.clone() })
        } else {
            PduBody::Response(Response { alloc_hint: 9, p_cont_id: 1, cancel_count: 0, reserved: 0, stub: stub.clone() })
        };
        let mut pdu = Pdu::new(3, body);
        if big_endian {
            pdu.drep = DataRep::BIG_ENDIAN;
        }
        let whole = pdu.to_bytes().unwrap();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stub.len() + 1)).collect();
        points.sort_unstable();
        let mut chain = Chain::new();
        let mut at = 0;
        for point in points.into_iter().chain([stub.len()]) {
            chain.push(stub.slice(at..point));
            at = point;
        }
        let mut head = pdu.clone();
        head.body.take_stub();
        prop_assert_eq!(head.to_chain_with_stub(chain).unwrap().to_bytes(), whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(data in vec(any::<u8>(), 0..200)) {
        crate::fuzzing::decode_pdu(&data);
        crate::fuzzing::round_trip_pdu(&data);
        crate::fuzzing::frame_split(&data);
    }

    #[test]
    fn header_like_bytes_never_panic_the_decoder(
        ptype in 0..=19u8,
        flags in any::<u8>(),
        auth_length in 0..64u16,
        body in vec(any::<u8>(), 0..120),
    ) {
        // Valid headers over random bodies reach the body decoders far more often.
        let frag_length = u16::try_from(16 + body.len()).unwrap();
        let mut data = vec![5, 0, ptype, flags, 0x10, 0, 0, 0];
        data.extend_from_slice(&frag_length.to_le_bytes());
        data.extend_from_slice(&auth_length.to_le_bytes());
        data.extend_from_slice(&[1, 0, 0, 0]);
        data.extend_from_slice(&body);
        crate::fuzzing::decode_pdu(&data);
        crate::fuzzing::round_trip_pdu(&data);
    }
}

#[test]
fn every_fixture_split_at_every_offset_frames_the_same() {
    let (_, first) = CAPTURED
        .iter()
        .find(|(name, _)| *name == "samba-bind_nak.bin")
        .unwrap();
    for (name, fixture) in CAPTURED.iter().chain(OWN) {
        let stream = [*first, *fixture].concat();
        let expected = [
            Pdu::decode(Bytes::from_static(first)).unwrap(),
            Pdu::decode(Bytes::from_static(fixture)).unwrap(),
        ];
        for split in 0..=stream.len() {
            let (head, tail) = stream.split_at(split);
            let frames = frame_chunks(&[head, tail]);
            let pdus: Vec<Pdu> = frames
                .into_iter()
                .map(|f| Pdu::decode(f).unwrap())
                .collect();
            assert_eq!(pdus, expected, "{name} split at {split}");
        }
    }
}

#[test]
fn fixtures_survive_the_fuzzing_oracles() {
    for (_, fixture) in CAPTURED.iter().chain(OWN) {
        crate::fuzzing::round_trip_pdu(fixture);
        // Three chunk sizes: 1, 17 and 256 bytes.
        let mut seeded = vec![2, 0, 16, 255];
        seeded.extend_from_slice(fixture);
        seeded.extend_from_slice(fixture);
        crate::fuzzing::frame_split(&seeded);
    }
}
