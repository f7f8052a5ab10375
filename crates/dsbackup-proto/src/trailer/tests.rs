use proptest::prelude::*;

use super::*;

const IFACE: SyntaxId = SyntaxId::new(
    Uuid::from_str_const("e1af8308-5d1f-11c9-91a4-08002b14a0fa"),
    3,
    0,
);

fn expected() -> Expected {
    Expected {
        client_header_signing: false,
        pcontext: PContext {
            abstract_syntax: IFACE,
            transfer_syntax: SyntaxId::NDR,
        },
        header2: Header2::of_request(DataRep::LITTLE_ENDIAN, 2, 0, 3),
    }
}

/// The trailer rpcclient sends on its first call: all three commands.
fn full() -> VerificationTrailer {
    let expected = expected();
    VerificationTrailer {
        bitmask1: Some((0, false)),
        pcontext: Some((expected.pcontext, false)),
        header2: Some((expected.header2, false)),
        unknown_must_process: None,
        commands: 3,
    }
}

/// The bytes rpcclient sends for `full()` (epm_Map, call 2, context 0, opnum 3), written out
/// from MS-RPCE §2.2.2.13.
const RPCCLIENT: [u8; 80] = [
    0x8a, 0xe3, 0x13, 0x71, 0x02, 0xf4, 0x36, 0x71, // magic
    0x01, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, // BITMASK_1, 4, no header signing
    0x02, 0x00, 0x28, 0x00, // PCONTEXT, 40
    0x08, 0x83, 0xaf, 0xe1, 0x1f, 0x5d, 0xc9, 0x11, 0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14, 0xa0, 0xfa,
    0x03, 0x00, 0x00, 0x00, // epm v3.0
    0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60,
    0x02, 0x00, 0x00, 0x00, // NDR v2.0
    0x03, 0x40, 0x10, 0x00, // HEADER2 | END, 16
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, // request, reserved, drep LE
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, // call 2, context 0, opnum 3
];

#[test]
fn decodes_and_encodes_the_three_commands() {
    assert_eq!(VerificationTrailer::decode(&RPCCLIENT), Ok(full()));
    assert_eq!(full().encode(), RPCCLIENT);
    assert_eq!(full().check(&expected()), Ok(()));
}

#[test]
fn locate_strips_the_last_aligned_trailer_and_tolerates_padding() {
    let mut stub = vec![0xaa; 13];
    stub.resize(16, 0); // padded to 4
    stub.extend_from_slice(&RPCCLIENT);
    stub.extend_from_slice(&[0; 12]); // some padding after: at most 16
    let found = locate(&stub).unwrap();
    assert_eq!(found.stub_len, 16);
    assert_eq!(found.trailer, Ok(full()));
    stub.extend_from_slice(&[0; 8]); // 20 bytes after: stub data, not a trailer
    assert_eq!(locate(&stub), None);
}

#[test]
fn magic_in_the_stub_that_does_not_parse_is_stub_data() {
    // Unaligned: never looked at.
    let mut stub = vec![0; 2];
    stub.extend_from_slice(&RPCCLIENT);
    assert_eq!(locate(&stub), None);
    // Truncated, no END, wrong length of a known command.
    assert_eq!(locate(&RPCCLIENT[..RPCCLIENT.len() - 1]), None);
    let mut no_end = RPCCLIENT;
    no_end[61] = 0x00;
    assert_eq!(
        VerificationTrailer::decode(&no_end),
        Err(TrailerError::Truncated { offset: 80 })
    );
    assert_eq!(locate(&no_end), None);
    let mut short = MAGIC.to_vec();
    short.extend_from_slice(&[0x01, 0x40, 0x02, 0x00, 0, 0]);
    assert_eq!(
        VerificationTrailer::decode(&short),
        Err(TrailerError::WrongLength {
            command: BITMASK_1,
            length: 2,
            expected: 4
        })
    );
    assert_eq!(locate(&short), None);
    assert_eq!(locate(&MAGIC[..7]), None);
    assert_eq!(locate(&[]), None);
}

#[test]
fn only_the_last_1024_bytes_are_scanned() {
    // One unknown command with a long body: the magic is as far from the end as the body.
    let trailer = |body: u16| {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[0x09, 0x40]);
        bytes.extend_from_slice(&body.to_le_bytes());
        bytes.resize(bytes.len() + usize::from(body), 0);
        bytes
    };
    assert_eq!(locate(&trailer(1000)).map(|found| found.stub_len), Some(0));
    assert_eq!(locate(&trailer(1100)), None);
    assert_eq!(
        VerificationTrailer::decode(&trailer(1100)).map(|t| t.commands),
        Ok(1)
    );
}

#[test]
fn duplicates_and_unaligned_unknown_commands_are_refused() {
    let mut twice = MAGIC.to_vec();
    twice.extend_from_slice(&[0x01, 0x00, 0x04, 0x00, 0, 0, 0, 0]);
    twice.extend_from_slice(&[0x01, 0x40, 0x04, 0x00, 0, 0, 0, 0]);
    let found = locate(&twice).unwrap();
    assert_eq!(
        found.trailer,
        Err(TrailerError::Duplicate { command: BITMASK_1 })
    );
    let mut unaligned = MAGIC.to_vec();
    unaligned.extend_from_slice(&[0x09, 0x40, 0x02, 0x00, 0, 0]);
    assert_eq!(
        locate(&unaligned).unwrap().trailer,
        Err(TrailerError::Unaligned {
            command: 9,
            length: 2
        })
    );
}

#[test]
fn each_mismatch_is_named() {
    let ok = expected();
    let mut signing = full();
    signing.bitmask1 = Some((CLIENT_SUPPORT_HEADER_SIGNING, false));
    assert_eq!(signing.check(&ok), Err(Mismatch::HeaderSigning));
    let with_signing = Expected {
        client_header_signing: true,
        ..ok
    };
    assert_eq!(signing.check(&with_signing), Ok(()));
    let mut wrong = ok;
    wrong.pcontext.abstract_syntax.version = 4;
    assert_eq!(full().check(&wrong), Err(Mismatch::PContext));
    let mut wrong = ok;
    wrong.pcontext.transfer_syntax = SyntaxId::NDR64;
    assert_eq!(full().check(&wrong), Err(Mismatch::PContext));
    for change in [
        |h: &mut Header2| h.ptype = 2,
        |h: &mut Header2| h.drep = [0; 4],
        |h: &mut Header2| h.call_id += 1,
        |h: &mut Header2| h.p_cont_id += 1,
        |h: &mut Header2| h.opnum += 1,
    ] {
        let mut wrong = ok;
        change(&mut wrong.header2);
        assert_eq!(full().check(&wrong), Err(Mismatch::Header2));
    }
    let mut unknown = MAGIC.to_vec();
    unknown.extend_from_slice(&[0x07, 0xc0, 0x04, 0x00, 1, 2, 3, 4]);
    let trailer = VerificationTrailer::decode(&unknown).unwrap();
    assert_eq!(trailer.check(&ok), Err(Mismatch::MustProcess(7)));
    unknown[9] = 0x40; // without MUST_PROCESS: ignored
    assert_eq!(
        VerificationTrailer::decode(&unknown).unwrap().check(&ok),
        Ok(())
    );
}

proptest! {
    /// Whatever the bytes: no panic, and a trailer found starts with the magic, 4-aligned,
    /// within the scanned window.
    #[test]
    fn locate_is_total(stub in proptest::collection::vec(any::<u8>(), 0..1400), magic_at in 0usize..1400) {
        let mut stub = stub;
        if magic_at + MAGIC.len() <= stub.len() {
            stub[magic_at..magic_at + MAGIC.len()].copy_from_slice(&MAGIC);
        }
        if let Some(found) = locate(&stub) {
            prop_assert_eq!(found.stub_len % 4, 0);
            prop_assert!(stub[found.stub_len..].starts_with(&MAGIC));
            prop_assert!(stub.len() - found.stub_len <= MAX_SCAN + MAGIC.len() + 3);
        }
    }

    /// Any trailer of known commands survives encoding after any 4-aligned stub.
    #[test]
    fn encoded_trailers_are_located(len in 0usize..64, call_id: u32, opnum: u16, bits: u32, must: bool) {
        let mut trailer = full();
        trailer.bitmask1 = Some((bits, must));
        trailer.header2 = Some((Header2::of_request(DataRep::LITTLE_ENDIAN, call_id, 1, opnum), false));
        let mut stub = vec![0x55; len * 4];
        stub.extend_from_slice(&trailer.encode());
        let found = locate(&stub).unwrap();
        prop_assert_eq!(found.stub_len, len * 4);
        prop_assert_eq!(found.trailer, Ok(trailer));
    }
}
