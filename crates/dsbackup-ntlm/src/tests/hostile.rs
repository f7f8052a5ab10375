//! Hostile and broken messages: each gives a typed error, never a panic.

use dsbackup_proto::DecodeError;
use proptest::prelude::*;

use super::acceptor;
use crate::fuzzing::decode_message;
use crate::messages::{AuthenticateMessage, AvPairs, ChallengeMessage, Message, NegotiateMessage};
use crate::{LogonFailure, NtlmError};

const SPEC_CHALLENGE: &[u8] =
    include_bytes!("../../../../fixtures/ntlm/ms-nlmp-4.2.4-challenge.bin");
const SPEC_AUTHENTICATE: &[u8] =
    include_bytes!("../../../../fixtures/ntlm/ms-nlmp-4.2.4-authenticate.bin");

/// A NEGOTIATE without payload: 32 bytes.
#[rustfmt::skip]
const NEGOTIATE: [u8; 32] = [
    b'N', b'T', b'L', b'M', b'S', b'S', b'P', 0,    // Signature
    0x01, 0x00, 0x00, 0x00,                         // MessageType 1
    0x35, 0x82, 0x08, 0x60,                         // NegotiateFlags: UNICODE REQUEST_TARGET SIGN
                                                    // SEAL NTLM ALWAYS_SIGN ESS 128 KEY_EXCH
    0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, // DomainNameFields: Len 0, MaxLen 0, Offset 32
    0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, // WorkstationFields: Len 0, MaxLen 0, Offset 32
];

fn set_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn set_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn minimal_negotiate_decodes() {
    let message = NegotiateMessage::decode(&NEGOTIATE).unwrap();
    assert!(message.domain_name.is_empty() && message.version.is_none());
    assert_eq!(message.encode().unwrap(), NEGOTIATE);
}

#[test]
fn offset_outside_the_message() {
    // UserNameFields of the spec AUTHENTICATE pointed past its end.
    let mut bytes = SPEC_AUTHENTICATE.to_vec();
    set_u32(&mut bytes, 36 + 4, 0x1000);
    assert_eq!(
        AuthenticateMessage::decode(&bytes),
        Err(DecodeError::Truncated {
            what: "UserNameFields",
            needed: 0x1008,
            available: SPEC_AUTHENTICATE.len(),
        })
    );
}

#[test]
fn offset_near_u32_max_does_not_overflow() {
    let mut bytes = SPEC_AUTHENTICATE.to_vec();
    set_u32(&mut bytes, 20 + 4, u32::MAX);
    assert!(matches!(
        AuthenticateMessage::decode(&bytes),
        Err(DecodeError::Truncated {
            what: "NtChallengeResponseFields",
            ..
        })
    ));
}

#[test]
fn huge_length() {
    let mut bytes = SPEC_CHALLENGE.to_vec();
    set_u16(&mut bytes, 40, u16::MAX); // TargetInfoFields.Len
    assert!(matches!(
        ChallengeMessage::decode(&bytes),
        Err(DecodeError::Truncated { what: "TargetInfoFields", needed, .. }) if needed == 0x44 + 0xffff
    ));
}

#[test]
fn offset_inside_the_fixed_part() {
    let mut bytes = SPEC_CHALLENGE.to_vec();
    set_u32(&mut bytes, 12 + 4, 8); // TargetNameFields.BufferOffset into the header
    assert!(matches!(
        ChallengeMessage::decode(&bytes),
        Err(DecodeError::InvalidField {
            field: "TargetNameFields",
            ..
        })
    ));
}

#[test]
fn truncated_fixed_part() {
    assert_eq!(
        ChallengeMessage::decode(&SPEC_CHALLENGE[..30]),
        Err(DecodeError::Truncated {
            what: "CHALLENGE_MESSAGE",
            needed: 48,
            available: 30
        })
    );
    assert!(matches!(
        Message::decode(&[]),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn wrong_signature_or_message_type() {
    let mut bytes = NEGOTIATE;
    bytes[0] = b'X';
    assert!(matches!(
        NegotiateMessage::decode(&bytes),
        Err(DecodeError::InvalidField {
            field: "Signature",
            ..
        })
    ));
    let mut bytes = NEGOTIATE;
    bytes[8] = 9;
    assert!(matches!(
        Message::decode(&bytes),
        Err(DecodeError::InvalidField {
            field: "MessageType",
            ..
        })
    ));
    assert!(matches!(
        ChallengeMessage::decode(SPEC_AUTHENTICATE),
        Err(DecodeError::InvalidField {
            field: "MessageType",
            ..
        })
    ));
}

#[test]
fn truncated_av_pair() {
    // MsvAvNbDomainName claiming 12 bytes with 4 present.
    let bytes = [0x02, 0x00, 0x0c, 0x00, 0x44, 0x00, 0x6f, 0x00];
    assert_eq!(
        AvPairs::decode(&bytes),
        Err(DecodeError::Truncated {
            what: "AV_PAIR value",
            needed: 16,
            available: 8
        })
    );
    // Half an AV_PAIR header.
    assert!(matches!(
        AvPairs::decode(&[0x02, 0x00]),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn missing_msv_av_eol() {
    // A complete MsvAvNbComputerName and nothing after it.
    let bytes = [0x01, 0x00, 0x02, 0x00, 0x41, 0x00];
    assert!(matches!(
        AvPairs::decode(&bytes),
        Err(DecodeError::Truncated {
            what: "AV_PAIR list (no MsvAvEOL)",
            ..
        })
    ));
    // In a CHALLENGE: cut the MsvAvEOL off the spec's TargetInfo.
    let mut bytes = SPEC_CHALLENGE[..SPEC_CHALLENGE.len() - 4].to_vec();
    set_u16(&mut bytes, 40, 32);
    assert!(matches!(
        ChallengeMessage::decode(&bytes),
        Err(DecodeError::Truncated {
            what: "AV_PAIR list (no MsvAvEOL)",
            ..
        })
    ));
}

#[test]
fn msv_av_eol_with_a_length() {
    assert!(matches!(
        AvPairs::decode(&[0, 0, 1, 0, 0]),
        Err(DecodeError::InvalidField { field: "AvLen", .. })
    ));
}

#[test]
fn bytes_after_msv_av_eol_in_target_info() {
    let mut message = ChallengeMessage::decode(SPEC_CHALLENGE).unwrap();
    message.target_info = None;
    let mut bytes = message.encode().unwrap();
    // TargetInfo = MsvAvEOL followed by 2 stray bytes.
    let at = bytes.len();
    bytes.extend_from_slice(&[0, 0, 0, 0, 0xee, 0xee]);
    set_u16(&mut bytes, 40, 6);
    set_u32(&mut bytes, 44, u32::try_from(at).unwrap());
    assert_eq!(
        ChallengeMessage::decode(&bytes),
        Err(DecodeError::TrailingBytes {
            what: "TargetInfo after MsvAvEOL",
            count: 2
        })
    );
}

#[test]
fn truncated_nt_response_is_malformed_not_a_panic() {
    let mut client = super::initiator("Administrator", "CORP", "Passw0rd!123");
    let mut server = acceptor();
    server.challenge(&client.negotiate().unwrap()).unwrap();
    let mut message = AuthenticateMessage::decode(SPEC_AUTHENTICATE).unwrap();
    message.nt_challenge_response.truncate(20);
    let error = server.authenticate(&message.encode().unwrap()).unwrap_err();
    assert!(matches!(
        error,
        NtlmError::Malformed(DecodeError::InvalidField { .. })
    ));
}

#[test]
fn garbage_authenticate_is_refused_with_a_typed_error() {
    let mut client = super::initiator("Administrator", "CORP", "Passw0rd!123");
    let mut server = acceptor();
    server.challenge(&client.negotiate().unwrap()).unwrap();
    assert!(matches!(
        server.authenticate(b"NTLMSSP\0\x03\0\0\0"),
        Err(NtlmError::Malformed(DecodeError::Truncated { .. }))
    ));
    // The acceptor is spent after a bad AUTHENTICATE.
    assert_eq!(
        server.authenticate(SPEC_AUTHENTICATE),
        Err(NtlmError::WrongState("failed"))
    );
}

#[test]
fn spec_authenticate_with_a_changed_proof_is_refused() {
    // The helper's acceptor uses the spec's server challenge and knows Domain\User: the spec's
    // AUTHENTICATE would pass; one flipped bit of its NTProofStr must not.
    let mut client = super::initiator("User", "Domain", "Password");
    let mut server = acceptor();
    server.challenge(&client.negotiate().unwrap()).unwrap();
    let mut bytes = SPEC_AUTHENTICATE.to_vec();
    bytes[0x84] ^= 1;
    assert_eq!(
        server.authenticate(&bytes),
        Err(LogonFailure::BadProof.into())
    );
}

#[test]
fn fuzz_oracle_accepts_every_fixture_and_its_truncations() {
    let fixtures: [&[u8]; 3] = [&NEGOTIATE, SPEC_CHALLENGE, SPEC_AUTHENTICATE];
    for fixture in fixtures {
        for end in 0..=fixture.len() {
            decode_message(&fixture[..end]);
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..200), kind in 1u8..=3) {
        let mut bytes = b"NTLMSSP\0".to_vec();
        bytes.extend_from_slice(&[kind, 0, 0, 0]);
        bytes.extend_from_slice(&tail);
        decode_message(&bytes);
    }

    #[test]
    fn mutated_spec_messages_never_panic(at in 0usize..232, value in any::<u8>()) {
        for fixture in [SPEC_CHALLENGE, SPEC_AUTHENTICATE] {
            let mut bytes = fixture.to_vec();
            if let Some(byte) = bytes.get_mut(at) {
                *byte = value;
            }
            decode_message(&bytes);
        }
    }
}

#[test]
fn acceptor_oracle_refuses_what_it_is_given() {
    let mut client = super::initiator("user", "DOMAIN", "not the password");
    let negotiate = client.negotiate().unwrap();
    let mut data = vec![u8::try_from(negotiate.len()).unwrap()];
    data.extend_from_slice(&negotiate);
    data.extend_from_slice(SPEC_AUTHENTICATE);
    crate::fuzzing::acceptor(&data);
    crate::fuzzing::acceptor(&[]);
    crate::fuzzing::acceptor(&[200, 1, 2, 3]);
}
