//! Tests of the PDU codec: annotated bytes per PDU, the auth verifier, hostile input.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::security::{AuthLevel, AuthType};
use crate::syntax::{BindTimeFeatures, SyntaxId};
use crate::uuid::Uuid;

const EPM: SyntaxId = SyntaxId::new(
    Uuid::from_str_const("e1af8308-5d1f-11c9-91a4-08002b14a0fa"),
    3,
    0,
);

fn decode(bytes: &[u8]) -> Result<Pdu, DecodeError> {
    Pdu::decode(Bytes::copy_from_slice(bytes))
}

fn encode(pdu: &Pdu) -> Vec<u8> {
    pdu.to_bytes().unwrap().to_vec()
}

/// Decodes `bytes`, compares with `pdu`, and encodes `pdu` back to `bytes`.
fn assert_both_ways(bytes: &[u8], pdu: &Pdu) {
    assert_eq!(decode(bytes).as_ref(), Ok(pdu));
    assert_eq!(encode(pdu), bytes);
    assert_eq!(pdu.encoded_len(), bytes.len());
}

/// Samba 4.17's bind_ack to an anonymous endpoint-mapper bind (capture frame 6).
const SAMBA_BIND_ACK: [u8; 60] = [
    0x05, 0x00, 0x0c, 0x03, // rpc_vers 5.0, PTYPE bind_ack, FIRST_FRAG | LAST_FRAG
    0x10, 0x00, 0x00, 0x00, // packed_drep: little-endian
    0x3c, 0x00, 0x00, 0x00, // frag_length 60, auth_length 0
    0x01, 0x00, 0x00, 0x00, // call_id 1
    0xb8, 0x10, 0xb8, 0x10, // max_xmit_frag 4280, max_recv_frag 4280
    0x01, 0xc4, 0x00, 0x00, // assoc_group_id 0xc401
    0x04, 0x00, b'1', b'3', b'5', 0x00, // sec_addr: length 4, "135\0"
    0x00, 0x00, // pad to 4
    0x01, 0x00, 0x00, 0x00, // n_results 1, reserved, reserved2
    0x00, 0x00, 0x00, 0x00, // result acceptance, reason 0
    0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, // transfer_syntax NDR 8a885d04-1ceb-11c9-
    0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60, //   9fe8-08002b104860
    0x02, 0x00, 0x00, 0x00, // if_version 2.0
];

#[test]
fn bind_ack_from_samba_decodes_and_re_encodes() {
    let pdu = Pdu::new(
        1,
        PduBody::BindAck(BindAck {
            max_xmit_frag: 4280,
            max_recv_frag: 4280,
            assoc_group_id: 0xc401,
            sec_addr: PortAny::new("135"),
            p_result_list: vec![ContextResult::acceptance(SyntaxId::NDR)],
        }),
    );
    assert_both_ways(&SAMBA_BIND_ACK, &pdu);
}

/// Samba's bind_nak to a second bind on an association (capture frame 13).
const SAMBA_BIND_NAK: [u8; 24] = [
    0x05, 0x00, 0x0d, 0x03, // rpc_vers 5.0, PTYPE bind_nak, FIRST_FRAG | LAST_FRAG
    0x10, 0x00, 0x00, 0x00, // packed_drep: little-endian
    0x18, 0x00, 0x00, 0x00, // frag_length 24, auth_length 0
    0x02, 0x00, 0x00, 0x00, // call_id 2
    0x00, 0x00, // provider_reject_reason: reason_not_specified
    0x01, // n_protocols 1
    0x05, 0x00, // version 5.0
    0x00, 0x00, 0x00, // padding (kept as the trailer)
];

#[test]
fn bind_nak_keeps_its_versions_and_trailer() {
    let pdu = Pdu::new(
        2,
        PduBody::BindNak(BindNak::new(RejectReason::REASON_NOT_SPECIFIED)),
    );
    assert_both_ways(&SAMBA_BIND_NAK, &pdu);
}

/// Samba's fault to a request of an association whose NTLM logon failed (capture frame 173).
const SAMBA_FAULT: [u8; 32] = [
    0x05, 0x00, 0x03, 0x23, // rpc_vers 5.0, PTYPE fault, FIRST | LAST | DID_NOT_EXECUTE
    0x10, 0x00, 0x00, 0x00, // packed_drep: little-endian
    0x20, 0x00, 0x00, 0x00, // frag_length 32, auth_length 0
    0x04, 0x00, 0x00, 0x00, // call_id 4
    0x18, 0x00, 0x00, 0x00, // alloc_hint 24
    0x00, 0x00, 0x00, 0x00, // p_cont_id 0, cancel_count 0, flags 0
    0x0b, 0x00, 0x01, 0x1c, // status nca_s_proto_error
    0x00, 0x00, 0x00, 0x00, // reserved2
];

#[test]
fn fault_names_its_status() {
    let mut pdu = Pdu::new(
        4,
        PduBody::Fault(Fault {
            alloc_hint: 24,
            ..Fault::new(0, FaultStatus::PROTO_ERROR)
        }),
    );
    pdu.pfc_flags |= PfcFlags::DID_NOT_EXECUTE;
    assert_both_ways(&SAMBA_FAULT, &pdu);
}

const BIND_BE_TWO_CONTEXTS: [u8; 136] = [
    0x05, 0x00, 0x0b, 0x07, // rpc_vers 5.0, PTYPE bind, FIRST | LAST | SUPPORT_HEADER_SIGN
    0x00, 0x00, 0x00, 0x00, // packed_drep: big-endian
    0x00, 0x88, 0x00, 0x00, // frag_length 136, auth_length 0
    0x00, 0x00, 0x00, 0x07, // call_id 7
    0x10, 0xb8, 0x10, 0xb8, // max_xmit_frag 4280, max_recv_frag 4280
    0x00, 0x00, 0x00, 0x00, // assoc_group_id 0
    0x02, 0x00, 0x00, 0x00, // n_context_elem 2, reserved, reserved2
    0x00, 0x00, 0x02, 0x00, // p_cont_id 0, n_transfer_syn 2, reserved
    0xe1, 0xaf, 0x83, 0x08, 0x5d, 0x1f, 0x11, 0xc9, // abstract_syntax epm e1af8308-5d1f-11c9-
    0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14, 0xa0, 0xfa, //   91a4-08002b14a0fa
    0x00, 0x00, 0x00, 0x03, // if_version 3.0 (big-endian: minor 0, major 3)
    0x8a, 0x88, 0x5d, 0x04, 0x1c, 0xeb, 0x11, 0xc9, // transfer_syntaxes[0] NDR
    0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60, //
    0x00, 0x00, 0x00, 0x02, // if_version 2.0
    0x71, 0x71, 0x05, 0x33, 0xbe, 0xba, 0x49, 0x37, // transfer_syntaxes[1] NDR64
    0x83, 0x19, 0xb5, 0xdb, 0xef, 0x9c, 0xcc, 0x36, //
    0x00, 0x00, 0x00, 0x01, // if_version 1.0
    0x00, 0x01, 0x01, 0x00, // p_cont_id 1, n_transfer_syn 1, reserved
    0xe1, 0xaf, 0x83, 0x08, 0x5d, 0x1f, 0x11, 0xc9, // abstract_syntax epm
    0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14, 0xa0, 0xfa, //
    0x00, 0x00, 0x00, 0x03, // if_version 3.0
    0x6c, 0xb7, 0x1c, 0x2c, 0x98, 0x12, 0x45,
    0x40, // transfer_syntaxes[0] bind-time features:
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   bitmask 0x0003 in the last 8 bytes
    0x00, 0x00, 0x00, 0x01, // if_version 1.0
];

#[test]
fn big_endian_bind_with_two_contexts() {
    let both = BindTimeFeatures::SECURITY_CONTEXT_MULTIPLEXING
        | BindTimeFeatures::KEEP_CONNECTION_ON_ORPHAN;
    let pdu = Pdu {
        pfc_flags: PfcFlags::FIRST_FRAG | PfcFlags::LAST_FRAG | PfcFlags::SUPPORT_HEADER_SIGN,
        drep: DataRep::BIG_ENDIAN,
        ..Pdu::new(
            7,
            PduBody::Bind(Bind {
                max_xmit_frag: 4280,
                max_recv_frag: 4280,
                assoc_group_id: 0,
                p_context_elem: vec![
                    PresentationContext {
                        p_cont_id: 0,
                        abstract_syntax: EPM,
                        transfer_syntaxes: vec![SyntaxId::NDR, SyntaxId::NDR64],
                    },
                    PresentationContext {
                        p_cont_id: 1,
                        abstract_syntax: EPM,
                        transfer_syntaxes: vec![SyntaxId::bind_time_feature_negotiation(both)],
                    },
                ],
            }),
        )
    };
    assert_both_ways(&BIND_BE_TWO_CONTEXTS, &pdu);
}

const REQUEST_WITH_OBJECT: [u8; 44] = [
    0x05, 0x00, 0x00, 0x83, // rpc_vers 5.0, PTYPE request, FIRST | LAST | OBJECT_UUID
    0x10, 0x00, 0x00, 0x00, // packed_drep: little-endian
    0x2c, 0x00, 0x00, 0x00, // frag_length 44, auth_length 0
    0x05, 0x00, 0x00, 0x00, // call_id 5
    0x04, 0x00, 0x00, 0x00, // alloc_hint 4
    0x01, 0x00, 0x03, 0x00, // p_cont_id 1, opnum 3
    0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, // object 00112233-4455-6677-
    0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, //   8899-aabbccddeeff
    0xde, 0xad, 0xbe, 0xef, // stub
];

#[test]
fn request_carries_an_object_uuid_when_flagged() {
    let pdu = Pdu::new(
        5,
        PduBody::Request(Request {
            alloc_hint: 4,
            p_cont_id: 1,
            opnum: 3,
            object: Some(Uuid::from_str_const("00112233-4455-6677-8899-aabbccddeeff")),
            stub: Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]),
        }),
    );
    assert_both_ways(&REQUEST_WITH_OBJECT, &pdu);
    // The flag follows `object`: dropping it clears PFC_OBJECT_UUID.
    let mut without = pdu;
    if let PduBody::Request(request) = &mut without.body {
        request.object = None;
    }
    assert_eq!(encode(&without)[3], 0x03);
}

const SIGNED_RESPONSE: [u8; 64] = [
    0x05, 0x00, 0x02, 0x03, // rpc_vers 5.0, PTYPE response, FIRST | LAST
    0x10, 0x00, 0x00, 0x00, // packed_drep: little-endian
    0x40, 0x00, 0x10, 0x00, // frag_length 64, auth_length 16
    0x09, 0x00, 0x00, 0x00, // call_id 9
    0x03, 0x00, 0x00, 0x00, // alloc_hint 3
    0x00, 0x00, 0x00, 0x00, // p_cont_id 0, cancel_count 0, reserved 0
    0x01, 0x02, 0x03, // stub
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, // auth pad 13
    0x0a, 0x05, 0x0d,
    0x00, // auth_type WINNT, level PKT_INTEGRITY, auth_pad_length 13, reserved
    0x00, 0x00, 0x00, 0x00, // auth_context_id 0
    0x01, 0x00, 0x00, 0x00, 0xaa, 0xbb, 0xcc, 0xdd, // auth_value: NTLM signature (version 1,
    0xee, 0xff, 0x00, 0x11, 0x00, 0x00, 0x00, 0x00, //   checksum, seq_num 0)
];

#[test]
fn signed_response_pads_its_stub_to_16_bytes() {
    let signature = Bytes::copy_from_slice(&SIGNED_RESPONSE[48..]);
    let mut pdu = Pdu::new(
        9,
        PduBody::Response(Response {
            alloc_hint: 3,
            p_cont_id: 0,
            cancel_count: 0,
            reserved: 0,
            stub: Bytes::from_static(&[1, 2, 3]),
        }),
    );
    pdu.auth_verifier = Some(AuthVerifier::new(
        AuthType::WINNT,
        AuthLevel::PKT_INTEGRITY,
        0,
        signature,
    ));
    pdu.align_auth_pad();
    assert_both_ways(&SIGNED_RESPONSE, &pdu);

    let location = AuthLocation {
        stub: 24..40,
        sec_trailer: 40..48,
        auth_value: 48..64,
    };
    assert_eq!(locate_auth(&SIGNED_RESPONSE), Ok(Some(location.clone())));
    let mut out = BytesMut::new();
    assert_eq!(pdu.encode_located(&mut out), Ok(Some(location)));
    assert_eq!(locate_auth(&SAMBA_FAULT), Ok(None));
}

#[test]
fn stubs_and_tokens_are_slices_of_the_frame() {
    let frame = Bytes::copy_from_slice(&SIGNED_RESPONSE);
    let range = frame.as_ptr_range();
    let pdu = Pdu::decode(frame.clone()).unwrap();
    let stub = pdu.body.stub().unwrap();
    let auth_value = &pdu.auth_verifier.as_ref().unwrap().auth_value;
    for part in [stub, auth_value] {
        assert!(range.contains(&part.as_ptr()), "not a slice of the frame");
    }
    assert_eq!(stub.as_ptr(), frame[24..].as_ptr());
}

#[test]
fn placeholder_verifier_leaves_a_zeroed_signature_to_fill() {
    let mut pdu = Pdu::new(
        2,
        PduBody::Request(Request {
            alloc_hint: 20,
            p_cont_id: 0,
            opnum: 7,
            object: None,
            stub: Bytes::from(vec![0x5a; 20]),
        }),
    );
    pdu.auth_verifier = Some(AuthVerifier::placeholder(
        AuthType::WINNT,
        AuthLevel::PKT_PRIVACY,
        1,
        16,
    ));
    pdu.align_auth_pad();
    let mut out = BytesMut::new();
    let location = pdu.encode_located(&mut out).unwrap().unwrap();
    // Stub 20 bytes + 12 of padding; then the trailer; then 16 zero bytes of signature.
    assert_eq!(location.stub, 24..56);
    assert_eq!(location.sec_trailer, 56..64);
    assert_eq!(location.auth_value, 64..80);
    assert_eq!(out.len(), 80);
    assert_eq!(out[58], 12, "auth_pad_length");
    assert!(out[64..].iter().all(|&b| b == 0));
    assert_eq!(locate_auth(&out), Ok(Some(location)));
}

#[test]
fn empty_bodies_and_auth3() {
    for body in [
        PduBody::Shutdown(Shutdown),
        PduBody::CoCancel(CoCancel),
        PduBody::Orphaned(Orphaned),
    ] {
        let pdu = Pdu::new(3, body);
        let bytes = encode(&pdu);
        assert_eq!(bytes.len(), 16);
        assert_eq!(decode(&bytes), Ok(pdu));
    }
    let mut pdu = Pdu::new(1, PduBody::Auth3(Auth3 { pad: *b"    " }));
    pdu.auth_verifier = Some(AuthVerifier::new(
        AuthType::WINNT,
        AuthLevel::PKT_PRIVACY,
        0,
        Bytes::from_static(b"NTLMSSP\0"),
    ));
    let bytes = encode(&pdu);
    assert_eq!(&bytes[16..20], b"    ", "auth3 pad");
    assert_eq!(&bytes[20..24], &[0x0a, 0x06, 0x00, 0x00], "sec_trailer");
    assert_eq!(decode(&bytes), Ok(pdu));
}

// Hostile input: every case is a typed error, without a panic and without allocating by a size
// the peer announced.

#[test]
fn hostile_truncated_header() {
    assert!(matches!(
        decode(&SAMBA_FAULT[..10]),
        Err(DecodeError::Truncated {
            what: "common header",
            ..
        })
    ));
}

#[test]
fn hostile_frag_length_below_16_or_above_the_limit() {
    let mut short = SAMBA_FAULT;
    short[8] = 8;
    assert!(matches!(
        decode(&short),
        Err(DecodeError::InvalidField {
            field: "frag_length",
            ..
        })
    ));
    let limits = DecodeLimits::default().with_max_frag_length(24);
    assert_eq!(
        Pdu::decode_with(Bytes::copy_from_slice(&SAMBA_FAULT), &limits),
        Err(DecodeError::LimitExceeded {
            what: "frag_length",
            value: 32,
            limit: 24
        })
    );
    // A frame shorter or longer than its frag_length.
    assert!(matches!(
        decode(&SAMBA_FAULT[..31]),
        Err(DecodeError::Truncated { needed: 32, .. })
    ));
    let mut long = SAMBA_FAULT.to_vec();
    long.push(0);
    assert!(matches!(
        decode(&long),
        Err(DecodeError::TrailingBytes { count: 1, .. })
    ));
}

#[test]
fn hostile_auth_length_beyond_the_fragment() {
    let mut bytes = SIGNED_RESPONSE;
    bytes[10] = 0x39; // auth_length 57: trailer would start at 64 - 57 - 8 = -1
    let error = DecodeError::InvalidField {
        what: "common header",
        field: "auth_length",
        reason: "the auth verifier does not fit in the fragment",
    };
    assert_eq!(decode(&bytes), Err(error.clone()));
    assert_eq!(locate_auth(&bytes), Err(error));
    bytes[10] = 0x29; // 64 - 41 - 8 = 15: inside the common header
    assert!(decode(&bytes).is_err());
}

#[test]
fn hostile_rpc_vers_not_5() {
    let mut bytes = SAMBA_FAULT;
    bytes[0] = 4;
    assert_eq!(
        decode(&bytes),
        Err(DecodeError::UnsupportedVersion {
            rpc_vers: 4,
            rpc_vers_minor: 0
        })
    );
}

#[test]
fn hostile_unknown_packet_type() {
    let mut bytes = SAMBA_FAULT;
    bytes[2] = 20;
    assert_eq!(
        decode(&bytes),
        Err(DecodeError::UnknownPacketType { ptype: 20 })
    );
}

#[test]
fn hostile_255_contexts_with_no_bytes_behind_them() {
    let bind: [u8; 28] = [
        0x05, 0x00, 0x0b, 0x03, // rpc_vers 5.0, PTYPE bind, FIRST | LAST
        0x10, 0x00, 0x00, 0x00, // packed_drep: little-endian
        0x1c, 0x00, 0x00, 0x00, // frag_length 28, auth_length 0
        0x01, 0x00, 0x00, 0x00, // call_id 1
        0xb8, 0x10, 0xb8, 0x10, // max_xmit_frag, max_recv_frag
        0x00, 0x00, 0x00, 0x00, // assoc_group_id
        0xff, 0x00, 0x00, 0x00, // n_context_elem 255, and nothing behind
    ];
    let limits = DecodeLimits {
        max_context_elems: u8::MAX,
        ..DecodeLimits::default()
    };
    // Refused before the vector of 255 contexts is allocated.
    assert_eq!(
        Pdu::decode_with(Bytes::copy_from_slice(&bind), &limits),
        Err(DecodeError::Truncated {
            what: "bind",
            needed: 255 * 24,
            available: 0
        })
    );
    assert_eq!(
        decode(&bind),
        Err(DecodeError::LimitExceeded {
            what: "n_context_elem",
            value: 255,
            limit: 64
        })
    );
}

#[test]
fn hostile_alloc_hint_of_4_gib_is_only_a_hint() {
    let mut bytes = REQUEST_WITH_OBJECT;
    bytes[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    let pdu = decode(&bytes).unwrap();
    let PduBody::Request(request) = pdu.body else {
        panic!("not a request")
    };
    assert_eq!(request.alloc_hint, u32::MAX);
    assert_eq!(request.stub.len(), 4);
}

#[test]
fn hostile_bad_pad_length() {
    let mut bytes = SIGNED_RESPONSE;
    bytes[42] = 17; // auth_pad_length 17 reaches into the response's fixed fields
    let error = DecodeError::InvalidField {
        what: "sec_trailer",
        field: "auth_pad_length",
        reason: "the padding reaches before the stub",
    };
    assert_eq!(decode(&bytes), Err(error.clone()));
    assert_eq!(locate_auth(&bytes), Err(error));
    bytes[42] = 16; // exactly the stub and padding: an empty stub, still valid
    assert_eq!(decode(&bytes).unwrap().body.stub().map(Bytes::len), Some(0));
}

#[test]
fn hostile_trailing_bytes_after_a_bind_ack() {
    let mut bytes = SAMBA_BIND_ACK.to_vec();
    bytes.extend_from_slice(&[0; 4]);
    bytes[8] = 64;
    assert_eq!(
        decode(&bytes),
        Err(DecodeError::TrailingBytes {
            what: "bind_ack",
            count: 4
        })
    );
}

#[test]
fn a_bare_sec_trailer_after_a_bind_ack_is_read_as_no_verifier() {
    // Samba's answer to an alter_context whose leg completes the handshake: a sec_trailer with
    // auth_length 0. Eight bytes are that; four are not.
    let mut bytes = SAMBA_BIND_ACK.to_vec();
    bytes.extend_from_slice(&[10, 2, 0, 0, 0, 0, 0, 0]);
    bytes[8] = 68;
    let pdu = decode(&bytes).unwrap();
    assert_eq!(pdu.ptype(), PacketType::BIND_ACK);
    assert!(pdu.auth_verifier.is_none());
}

#[test]
fn too_large_pdu_is_an_encode_error() {
    let pdu = Pdu::new(
        1,
        PduBody::Response(Response {
            alloc_hint: 0,
            p_cont_id: 0,
            cancel_count: 0,
            reserved: 0,
            stub: Bytes::from(vec![0; 70_000]),
        }),
    );
    assert!(matches!(
        pdu.to_bytes(),
        Err(EncodeError::TooLong {
            field: "frag_length",
            ..
        })
    ));
}

#[test]
fn max_stub_len_fills_a_fragment_without_overflowing_it() {
    // 4280 - 24 = 4256 bytes of stub without authentication.
    assert_eq!(max_stub_len(4280, 24, None), 4256);
    // 4280 - 24 - 8 - 16 = 4232, rounded down to 16: 4224.
    assert_eq!(max_stub_len(4280, 24, Some(16)), 4224);
    assert_eq!(max_stub_len(16, 24, Some(16)), 0);
    for (frag, offset, auth) in [(4280u16, 24, 16), (5840, 40, 16), (u16::MAX, 24, 76)] {
        let len = max_stub_len(frag, offset, Some(auth));
        let mut pdu = Pdu::new(
            1,
            PduBody::Request(Request {
                alloc_hint: 0,
                p_cont_id: 0,
                opnum: 0,
                object: (offset == 40).then_some(Uuid::NIL),
                stub: Bytes::from(vec![0; len]),
            }),
        );
        pdu.auth_verifier = Some(AuthVerifier::placeholder(
            AuthType::WINNT,
            AuthLevel::PKT_PRIVACY,
            0,
            auth,
        ));
        pdu.align_auth_pad();
        assert!(
            pdu.encoded_len() <= usize::from(frag),
            "{frag} {offset} {auth}"
        );
        assert!(pdu.encoded_len() + AUTH_PAD_ALIGNMENT > usize::from(frag));
    }
}

#[test]
fn non_stub_bodies_with_auth_are_padded_to_4_bytes() {
    let mut pdu = Pdu::new(
        1,
        PduBody::BindNak(BindNak {
            trailer: Bytes::new(),
            ..BindNak::new(RejectReason::INVALID_CHECKSUM)
        }),
    );
    pdu.auth_verifier = Some(AuthVerifier::new(
        AuthType::WINNT,
        AuthLevel::PKT_PRIVACY,
        0,
        Bytes::from_static(b"token"),
    ));
    pdu.align_auth_pad();
    // 16 (header) + 2 (reason) + 1 (n_protocols) + 2 (5.0) = 21: 3 bytes of padding.
    assert_eq!(pdu.auth_verifier.as_ref().unwrap().auth_pad_length, 3);
    let encoded = encode(&pdu);
    let location = locate_auth(&encoded).unwrap().unwrap();
    assert_eq!(location.sec_trailer, 24..32);
    assert_eq!(decode(&encoded), Ok(pdu));
}

#[test]
fn too_many_transfer_syntaxes_is_a_limit() {
    let mut bytes = BIND_BE_TWO_CONTEXTS;
    bytes[30] = 17; // n_transfer_syn 17 in the first context
    assert_eq!(
        decode(&bytes),
        Err(DecodeError::LimitExceeded {
            what: "n_transfer_syn",
            value: 17,
            limit: 16
        })
    );
}

#[test]
fn a_stub_given_apart_needs_an_unprotected_pdu_without_a_stub_of_its_own() {
    let response = |stub: &'static [u8]| {
        Pdu::new(
            1,
            PduBody::Response(Response {
                alloc_hint: 0,
                p_cont_id: 0,
                cancel_count: 0,
                reserved: 0,
                stub: Bytes::from_static(stub),
            }),
        )
    };
    let apart = Chain::from(Bytes::from_static(b"stub"));
    assert!(matches!(
        response(b"own").to_chain_with_stub(apart.clone()),
        Err(EncodeError::InvalidField { field: "stub", .. })
    ));
    let mut signed = response(b"");
    signed.auth_verifier = Some(AuthVerifier::placeholder(
        AuthType::WINNT,
        AuthLevel::PKT_INTEGRITY,
        0,
        16,
    ));
    assert!(matches!(
        signed.to_chain_with_stub(apart.clone()),
        Err(EncodeError::InvalidField { field: "stub", .. })
    ));
    let shutdown = Pdu::new(1, PduBody::Shutdown(Shutdown));
    assert!(shutdown.to_chain_with_stub(apart.clone()).is_err());
    assert_eq!(
        response(b"").to_chain_with_stub(apart).unwrap().to_bytes(),
        response(b"stub").to_bytes().unwrap()
    );
}

mod fixtures;
mod properties;
