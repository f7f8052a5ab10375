//! The PDU fixtures of `fixtures/pdu/`: real traffic from a capture, and PDUs of our own encoder
//! (checked with tshark), each decoded and re-encoded byte for byte.

use bytes::Bytes;

use crate::drep::DataRep;
use crate::header::{PacketType, PfcFlags};
use crate::pdu::*;
use crate::security::{AuthLevel, AuthType};
use crate::syntax::{BindTimeFeatures, SyntaxId};
use crate::uuid::Uuid;

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../fixtures/pdu/",
                $name
            ))
            .as_slice(),
        )
    };
}

/// PDUs captured between Samba 4.17, impacket and rpcclient (see fixtures/PROVENANCE.md).
pub(super) const CAPTURED: &[(&str, &[u8])] = &[
    fixture!("impacket-bind-epm.bin"),
    fixture!("samba-bind_ack-epm.bin"),
    fixture!("impacket-request-ept_lookup.bin"),
    fixture!("samba-response-ept_lookup-frag1.bin"),
    fixture!("samba-response-ept_lookup-frag2.bin"),
    fixture!("samba-bind_nak.bin"),
    fixture!("impacket-bind-ntlm-negotiate.bin"),
    fixture!("samba-bind_ack-ntlm-challenge.bin"),
    fixture!("impacket-auth3-ntlm-authenticate.bin"),
    fixture!("impacket-request-signed.bin"),
    fixture!("samba-response-signed-frag1.bin"),
    fixture!("samba-response-signed-frag2.bin"),
    fixture!("impacket-request-sealed.bin"),
    fixture!("rpcclient-bind-header-sign.bin"),
    fixture!("samba-bind_ack-header-sign.bin"),
    fixture!("rpcclient-request-signed-samr.bin"),
    fixture!("rpcclient-request-sealed-samr.bin"),
    fixture!("samba-response-sealed-samr.bin"),
    fixture!("samba-fault-proto_error.bin"),
];

/// PDUs of our own encoder, with the value each was made from.
pub(super) const OWN: &[(&str, &[u8])] = &[
    fixture!("request.bin"),
    fixture!("request-object-be.bin"),
    fixture!("response.bin"),
    fixture!("response-be.bin"),
    fixture!("fault-op_rng_error.bin"),
    fixture!("fault-be.bin"),
    fixture!("bind-multi-context.bin"),
    fixture!("bind-be.bin"),
    fixture!("bind-btfn.bin"),
    fixture!("bind_ack-btfn.bin"),
    fixture!("bind_ack-be.bin"),
    fixture!("bind_nak-versions.bin"),
    fixture!("alter_context.bin"),
    fixture!("alter_context_resp.bin"),
    fixture!("auth3.bin"),
    fixture!("shutdown.bin"),
    fixture!("co_cancel.bin"),
    fixture!("orphaned.bin"),
    fixture!("request-signed-placeholder.bin"),
];

fn with_drep(mut pdu: Pdu, drep: DataRep) -> Pdu {
    pdu.drep = drep;
    pdu
}

fn request(object: Option<Uuid>) -> Request {
    Request {
        alloc_hint: 12,
        p_cont_id: 0,
        opnum: 2,
        object,
        stub: Bytes::from_static(&[0, 0, 0, 0, 1, 0, 0, 0, 0xf4, 0x01, 0, 0]),
    }
}

fn response() -> Response {
    Response {
        alloc_hint: 8,
        p_cont_id: 1,
        cancel_count: 0,
        reserved: 0,
        stub: Bytes::from_static(&[0, 0, 0, 0, 0xd6, 0xa0, 0xc9, 0x16]),
    }
}

fn bind(contexts: Vec<PresentationContext>) -> Bind {
    Bind {
        max_xmit_frag: 4280,
        max_recv_frag: 4280,
        assoc_group_id: 0,
        p_context_elem: contexts,
    }
}

fn context(p_cont_id: u16, transfer_syntaxes: Vec<SyntaxId>) -> PresentationContext {
    PresentationContext {
        p_cont_id,
        abstract_syntax: AD_BACKUP,
        transfer_syntaxes,
    }
}

/// ad_backup 1.0 ([dsbackup.idl](../../../../../spec/dsbackup.idl)): an interface tshark has no
/// dissector for, so it shows our stubs as plain bytes.
const AD_BACKUP: SyntaxId = SyntaxId::new(
    Uuid::from_str_const("ecec0d70-a603-11d0-96b1-00a0c91ece30"),
    1,
    0,
);

/// A minimal NTLM AUTHENTICATE message ([MS-NLMP §2.2.1.3]): signature, type 3, six empty
/// security buffers pointing at the end of the 64-byte header, no flags.
///
/// [MS-NLMP §2.2.1.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/
const NTLM_AUTHENTICATE: [u8; 64] = [
    b'N', b'T', b'L', b'M', b'S', b'S', b'P', 0, // Signature
    3, 0, 0, 0, // MessageType 3
    0, 0, 0, 0, 64, 0, 0, 0, // LmChallengeResponseFields: len 0, max 0, offset 64
    0, 0, 0, 0, 64, 0, 0, 0, // NtChallengeResponseFields
    0, 0, 0, 0, 64, 0, 0, 0, // DomainNameFields
    0, 0, 0, 0, 64, 0, 0, 0, // UserNameFields
    0, 0, 0, 0, 64, 0, 0, 0, // WorkstationFields
    0, 0, 0, 0, 64, 0, 0, 0, // EncryptedRandomSessionKeyFields
    0, 0, 0, 0, // NegotiateFlags
];

const BTFN: BindTimeFeatures = BindTimeFeatures::SECURITY_CONTEXT_MULTIPLEXING
    .union(BindTimeFeatures::KEEP_CONNECTION_ON_ORPHAN);

/// The value behind each of our own fixtures.
fn own_value(name: &str) -> Pdu {
    let le = DataRep::LITTLE_ENDIAN;
    let be = DataRep::BIG_ENDIAN;
    match name {
        "request.bin" => Pdu::new(2, PduBody::Request(request(None))),
        "request-object-be.bin" => with_drep(
            Pdu::new(
                3,
                PduBody::Request(request(Some(Uuid::from_str_const(
                    "00112233-4455-6677-8899-aabbccddeeff",
                )))),
            ),
            be,
        ),
        "response.bin" => Pdu::new(2, PduBody::Response(response())),
        "response-be.bin" => with_drep(Pdu::new(3, PduBody::Response(response())), be),
        "fault-op_rng_error.bin" => Pdu {
            pfc_flags: PfcFlags::FIRST_FRAG | PfcFlags::LAST_FRAG | PfcFlags::DID_NOT_EXECUTE,
            ..Pdu::new(4, PduBody::Fault(Fault::new(0, FaultStatus::OP_RNG_ERROR)))
        },
        "fault-be.bin" => with_drep(
            Pdu::new(5, PduBody::Fault(Fault::new(1, FaultStatus::ACCESS_DENIED))),
            be,
        ),
        "bind-multi-context.bin" => Pdu::new(
            1,
            PduBody::Bind(bind(vec![
                context(0, vec![SyntaxId::NDR, SyntaxId::NDR64]),
                context(1, vec![SyntaxId::NDR64]),
                context(2, vec![SyntaxId::bind_time_feature_negotiation(BTFN)]),
            ])),
        ),
        "bind-be.bin" => with_drep(
            Pdu::new(
                1,
                PduBody::Bind(bind(vec![context(0, vec![SyntaxId::NDR, SyntaxId::NDR64])])),
            ),
            be,
        ),
        "bind-btfn.bin" => Pdu::new(
            1,
            PduBody::Bind(bind(vec![
                context(0, vec![SyntaxId::NDR]),
                context(1, vec![SyntaxId::bind_time_feature_negotiation(BTFN)]),
            ])),
        ),
        "bind_ack-btfn.bin" => Pdu::new(
            1,
            PduBody::BindAck(BindAck {
                max_xmit_frag: 4280,
                max_recv_frag: 4280,
                assoc_group_id: 0x1234,
                sec_addr: PortAny::new("49154"),
                p_result_list: vec![
                    ContextResult::acceptance(SyntaxId::NDR),
                    ContextResult::negotiate_ack(BindTimeFeatures::KEEP_CONNECTION_ON_ORPHAN),
                ],
            }),
        ),
        "bind_ack-be.bin" => with_drep(
            Pdu::new(
                1,
                PduBody::BindAck(BindAck {
                    max_xmit_frag: 4280,
                    max_recv_frag: 4280,
                    assoc_group_id: 0x5678,
                    sec_addr: PortAny::new("135"),
                    p_result_list: vec![ContextResult::acceptance(SyntaxId::NDR)],
                }),
            ),
            be,
        ),
        "bind_nak-versions.bin" => Pdu::new(
            1,
            PduBody::BindNak(BindNak {
                versions: vec![
                    Version { major: 5, minor: 0 },
                    Version { major: 5, minor: 1 },
                ],
                trailer: Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0]),
                ..BindNak::new(RejectReason::PROTOCOL_VERSION_NOT_SUPPORTED)
            }),
        ),
        "alter_context.bin" => Pdu::new(
            2,
            PduBody::AlterContext(AlterContext {
                max_xmit_frag: 4280,
                max_recv_frag: 4280,
                assoc_group_id: 0x1234,
                p_context_elem: vec![context(1, vec![SyntaxId::NDR])],
            }),
        ),
        "alter_context_resp.bin" => Pdu::new(
            2,
            PduBody::AlterContextResp(AlterContextResp {
                max_xmit_frag: 4280,
                max_recv_frag: 4280,
                assoc_group_id: 0x1234,
                sec_addr: PortAny::empty(),
                p_result_list: vec![ContextResult::provider_rejection(
                    ProviderReason::PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED,
                )],
            }),
        ),
        "auth3.bin" => Pdu {
            auth_verifier: Some(AuthVerifier::new(
                AuthType::WINNT,
                AuthLevel::PKT_PRIVACY,
                0,
                Bytes::from_static(&NTLM_AUTHENTICATE),
            )),
            ..Pdu::new(1, PduBody::Auth3(Auth3 { pad: *b"    " }))
        },
        "shutdown.bin" => Pdu::new(0, PduBody::Shutdown(Shutdown)),
        "co_cancel.bin" => Pdu::new(6, PduBody::CoCancel(CoCancel)),
        "orphaned.bin" => Pdu::new(6, PduBody::Orphaned(Orphaned)),
        "request-signed-placeholder.bin" => {
            let mut pdu = Pdu::new(7, PduBody::Request(request(None)));
            pdu.auth_verifier = Some(AuthVerifier::placeholder(
                AuthType::WINNT,
                AuthLevel::PKT_INTEGRITY,
                0,
                16,
            ));
            pdu.align_auth_pad();
            pdu
        }
        _ => with_drep(Pdu::new(0, PduBody::Shutdown(Shutdown)), le),
    }
}

#[test]
fn captured_pdus_decode_and_re_encode_byte_for_byte() {
    for (name, bytes) in CAPTURED {
        let pdu = Pdu::decode(Bytes::from_static(bytes)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(pdu.to_bytes().unwrap(), bytes, "{name}");
        assert_eq!(pdu.encoded_len(), bytes.len(), "{name}");
    }
}

#[test]
fn captured_pdus_have_the_fields_tshark_shows() {
    let decode = |name: &str| {
        let (_, bytes) = CAPTURED.iter().find(|(n, _)| *n == name).unwrap();
        Pdu::decode(Bytes::from_static(bytes)).unwrap()
    };
    let nak = decode("samba-bind_nak.bin");
    let PduBody::BindNak(body) = &nak.body else {
        panic!("{nak:?}")
    };
    assert_eq!(body.versions, [Version { major: 5, minor: 0 }]);
    assert_eq!(body.trailer.len(), 3);

    let ack = decode("samba-bind_ack-ntlm-challenge.bin");
    let auth = ack.auth_verifier.as_ref().unwrap();
    assert_eq!(auth.auth_type, AuthType::WINNT);
    assert_eq!(auth.auth_level, AuthLevel::PKT_INTEGRITY);
    assert_eq!(auth.auth_value.len(), 158);
    assert!(auth.auth_value.starts_with(b"NTLMSSP\0\x02\0\0\0"));

    let auth3 = decode("impacket-auth3-ntlm-authenticate.bin");
    assert_eq!(auth3.body, PduBody::Auth3(Auth3 { pad: *b"    " }));

    let first = decode("samba-response-ept_lookup-frag1.bin");
    let last = decode("samba-response-ept_lookup-frag2.bin");
    assert_eq!(first.pfc_flags, PfcFlags::FIRST_FRAG);
    assert_eq!(last.pfc_flags, PfcFlags::LAST_FRAG);
    let (PduBody::Response(a), PduBody::Response(b)) = (&first.body, &last.body) else {
        panic!("not responses")
    };
    assert_eq!(a.stub.len() + b.stub.len(), 4280 - 24 + 2452 - 24);

    let bind = decode("rpcclient-bind-header-sign.bin");
    assert!(bind.pfc_flags.contains(PfcFlags::SUPPORT_HEADER_SIGN));

    let fault = decode("samba-fault-proto_error.bin");
    let PduBody::Fault(body) = &fault.body else {
        panic!("{fault:?}")
    };
    assert_eq!(body.status, FaultStatus::PROTO_ERROR);
    assert!(fault.pfc_flags.contains(PfcFlags::DID_NOT_EXECUTE));

    let sealed = decode("rpcclient-request-sealed-samr.bin");
    assert_eq!(sealed.ptype(), PacketType::REQUEST);
    assert_eq!(
        sealed.auth_verifier.as_ref().map(|a| a.auth_level),
        Some(AuthLevel::PKT_PRIVACY)
    );
}

#[test]
fn own_fixtures_are_what_the_encoder_writes() {
    for (name, bytes) in OWN {
        let pdu = own_value(name);
        assert_eq!(pdu.to_bytes().unwrap(), bytes, "{name}: encoder changed");
        assert_eq!(
            Pdu::decode(Bytes::from_static(bytes)).as_ref(),
            Ok(&pdu),
            "{name}"
        );
    }
}

#[test]
fn own_fixtures_cover_every_packet_type_and_both_byte_orders() {
    let pdus: Vec<Pdu> = OWN.iter().map(|(name, _)| own_value(name)).collect();
    for ptype in (0..=19)
        .map(PacketType)
        .filter(|p| p.is_connection_oriented())
    {
        assert!(pdus.iter().any(|p| p.ptype() == ptype), "{ptype}");
    }
    assert!(pdus.iter().any(|p| p.drep == DataRep::BIG_ENDIAN));
}

/// Rewrites the files of our own fixtures: `cargo test -p dsbackup-proto -- --ignored
/// write_own_fixtures`, then check them with tshark and record them in fixtures/PROVENANCE.md.
#[test]
#[ignore = "writes fixtures/pdu/"]
fn write_own_fixtures() {
    for (name, _) in OWN {
        let path = format!("{}/../../fixtures/pdu/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(path, own_value(name).to_bytes().unwrap()).unwrap();
    }
}
