use super::*;

const LE: DataRep = DataRep::LITTLE_ENDIAN;
const BE: DataRep = DataRep::BIG_ENDIAN;

#[test]
fn primitives_align_from_the_start_of_the_stub() {
    for (drep, expected) in [
        (
            LE,
            [
                0xAB, // u8
                0x00, // pad to 2
                0x34, 0x12, // u16 0x1234
                0x78, 0x56, 0x34, 0x12, // u32 0x12345678 (already 4-aligned)
                0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // hyper (8-aligned)
            ],
        ),
        (
            BE,
            [
                0xAB, 0x00, 0x12, 0x34, 0x12, 0x34, 0x56, 0x78, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                0x07, 0x08,
            ],
        ),
    ] {
        let mut w = NdrWriter::new(drep);
        w.u8(0xAB);
        w.u16(0x1234);
        w.u32(0x1234_5678);
        w.u64(0x0102_0304_0506_0708);
        assert_eq!(w.into_vec(), expected);

        let mut r = NdrReader::new(drep, &expected);
        assert_eq!(r.u8("a").unwrap(), 0xAB);
        assert_eq!(r.u16("b").unwrap(), 0x1234);
        assert_eq!(r.u32("c").unwrap(), 0x1234_5678);
        assert_eq!(r.u64("d").unwrap(), 0x0102_0304_0506_0708);
        r.finish("test").unwrap();
    }
}

#[test]
fn hyper_after_a_long_pads_to_eight() {
    let mut w = NdrWriter::new(LE);
    w.u32(1);
    w.i64(-2);
    assert_eq!(
        w.into_vec(),
        [
            0x01, 0x00, 0x00, 0x00, // long 1
            0x00, 0x00, 0x00, 0x00, // pad to 8
            0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // hyper -2
        ]
    );
}

#[test]
fn enum_is_a_short_and_boolean_an_octet() {
    let mut w = NdrWriter::new(BE);
    w.boolean(true);
    w.enum16(7);
    assert_eq!(w.into_vec(), [0x01, 0x00, 0x00, 0x07]);
    let mut r = NdrReader::new(BE, &[0x02, 0x00, 0x00, 0x07]);
    assert!(r.boolean("flag").unwrap(), "any non-zero octet is true");
    assert_eq!(r.enum16("kind").unwrap(), 7);
}

#[test]
fn wide_string_layout() {
    let bytes = encode_stub(&String::from("ab"), LE).unwrap();
    assert_eq!(
        bytes,
        [
            0x03, 0x00, 0x00, 0x00, // max_count 3
            0x00, 0x00, 0x00, 0x00, // offset 0
            0x03, 0x00, 0x00, 0x00, // actual_count 3
            0x61, 0x00, 0x62, 0x00, 0x00, 0x00, // "ab" NUL
        ]
    );
    assert_eq!(decode_stub::<String>(LE, &bytes, "s").unwrap(), "ab");
    let be = encode_stub(&String::from("ab"), BE).unwrap();
    assert_eq!(&be[12..], [0x00, 0x61, 0x00, 0x62, 0x00, 0x00]);
    assert_eq!(decode_stub::<String>(BE, &be, "s").unwrap(), "ab");
}

#[test]
fn wide_string_with_max_count_above_actual_count_decodes() {
    let bytes = [
        0x08, 0x00, 0x00, 0x00, // max_count 8
        0x00, 0x00, 0x00, 0x00, // offset 0
        0x02, 0x00, 0x00, 0x00, // actual_count 2
        0x78, 0x00, 0x00, 0x00, // "x" NUL
    ];
    assert_eq!(decode_stub::<String>(LE, &bytes, "s").unwrap(), "x");
}

#[test]
fn unique_pointer_to_conformant_array_of_structs_defers_embedded_pointees() {
    #[derive(Debug, Default, PartialEq)]
    struct Pair(Option<String>, Option<String>);
    impl Ndr for Pair {
        const MIN_LEN: usize = 8;
        fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
            self.0.encode_scalars(w)?;
            self.1.encode_scalars(w)
        }
        fn encode_buffers(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
            self.0.encode_buffers(w)?;
            self.1.encode_buffers(w)
        }
        fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
            Ok(Self(Ndr::decode_scalars(r)?, Ndr::decode_scalars(r)?))
        }
        fn decode_buffers(&mut self, r: &mut NdrReader<'_>) -> Result<(), NdrError> {
            self.0.decode_buffers(r)?;
            self.1.decode_buffers(r)
        }
    }
    let value = Some(vec![
        Pair(Some("a".into()), None),
        Pair(None, Some("b".into())),
    ]);
    let bytes = encode_stub(&value, LE).unwrap();
    #[rustfmt::skip]
    let expected = [
        0x00, 0x00, 0x02, 0x00, // referent id of the array
        0x02, 0x00, 0x00, 0x00, // max_count 2
        0x04, 0x00, 0x02, 0x00, // [0].0 referent id
        0x00, 0x00, 0x00, 0x00, // [0].1 null
        0x00, 0x00, 0x00, 0x00, // [1].0 null
        0x08, 0x00, 0x02, 0x00, // [1].1 referent id
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, // *[0].0 header
        0x61, 0x00, 0x00, 0x00, // "a" NUL
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, // *[1].1 header
        0x62, 0x00, 0x00, 0x00, // "b" NUL
    ];
    assert_eq!(bytes, expected);
    assert_eq!(
        decode_stub::<Option<Vec<Pair>>>(LE, &bytes, "t").unwrap(),
        value
    );
}

#[test]
fn context_handle_swaps_attributes_and_uuid_fields_by_drep() {
    let handle = ContextHandle {
        attributes: 1,
        uuid: Uuid::from_str_const("00112233-4455-6677-8899-aabbccddeeff"),
    };
    let le = encode_stub(&handle, LE).unwrap();
    assert_eq!(
        le,
        [
            0x01, 0x00, 0x00, 0x00, // attributes
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, // time fields, little-endian
            0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, // clock_seq and node
        ]
    );
    let be = encode_stub(&handle, BE).unwrap();
    assert_eq!(&be[..4], [0, 0, 0, 1]);
    assert_eq!(&be[4..], handle.uuid.0);
    assert_eq!(decode_stub::<ContextHandle>(BE, &be, "h").unwrap(), handle);
    assert!(ContextHandle::NULL.is_null());
    assert!(!handle.is_null());
}

#[test]
fn varying_char_string_is_latin1_with_nul() {
    let mut w = NdrWriter::new(LE);
    encode_char_variance(&mut w, "é", 64, "annotation").unwrap();
    let stub = w.into_vec();
    assert_eq!(
        stub,
        [0, 0, 0, 0, 2, 0, 0, 0, 0xE9, 0x00] // offset 0, actual_count 2, 'é', NUL
    );
    let mut r = NdrReader::new(LE, &stub);
    assert_eq!(decode_char_variance(&mut r, 64, "annotation").unwrap(), "é");
    let mut w = NdrWriter::new(LE);
    assert!(matches!(
        encode_char_variance(&mut w, "€", 64, "annotation"),
        Err(EncodeError::Inconsistent { .. })
    ));
    let long = "x".repeat(64);
    assert!(matches!(
        encode_char_variance(&mut w, &long, 64, "annotation"),
        Err(EncodeError::TooLong {
            value: 65,
            max: 64,
            ..
        })
    ));
}

// Hostile stubs: each must give a typed error, never a panic or a large allocation.

#[test]
fn hostile_count_beyond_the_data() {
    let stub = [100, 0, 0, 0, 1, 2, 3, 4];
    assert_eq!(
        decode_stub::<Vec<u16>>(LE, &stub, "t"),
        Err(NdrError::CountTooLarge {
            what: "conformant array",
            count: 100,
            element_size: 2,
            available: 4,
        })
    );
}

#[test]
fn hostile_count_of_u32_max_with_ten_bytes_behind() {
    let mut stub = vec![0xFF; 4];
    stub.extend([0; 10]);
    for result in [
        decode_stub::<Vec<u32>>(LE, &stub, "t").map(drop),
        decode_stub::<Bytes>(LE, &stub, "t").map(drop),
        decode_stub::<Vec<ContextHandle>>(LE, &stub, "t").map(drop),
    ] {
        assert!(
            matches!(
                result,
                Err(NdrError::CountTooLarge {
                    count: u32::MAX,
                    available: 10,
                    ..
                })
            ),
            "{result:?}"
        );
    }
    // The same count as a string's actual_count.
    let stub = [
        0xFF, 0xFF, 0xFF, 0xFF, // max_count
        0x00, 0x00, 0x00, 0x00, // offset
        0xFF, 0xFF, 0xFF, 0xFF, // actual_count
        0x61, 0x00, // one unit
    ];
    assert!(matches!(
        decode_stub::<String>(LE, &stub, "s"),
        Err(NdrError::CountTooLarge {
            count: u32::MAX,
            available: 2,
            ..
        })
    ));
}

#[test]
fn hostile_string_offset_not_zero() {
    let stub = [2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0];
    assert_eq!(
        decode_stub::<String>(LE, &stub, "s"),
        Err(NdrError::NonZeroOffset {
            what: "[string] wchar_t",
            offset: 1
        })
    );
}

#[test]
fn hostile_string_actual_count_above_max_count() {
    let stub = [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0x61, 0, 0, 0];
    assert_eq!(
        decode_stub::<String>(LE, &stub, "s"),
        Err(NdrError::ActualCountAboveMax {
            what: "[string] wchar_t",
            actual_count: 2,
            max_count: 1
        })
    );
}

#[test]
fn hostile_string_without_nul() {
    let stub = [2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0x61, 0, 0x62, 0];
    assert_eq!(
        decode_stub::<String>(LE, &stub, "s"),
        Err(NdrError::MissingNul {
            what: "[string] wchar_t"
        })
    );
    let empty = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        decode_stub::<String>(LE, &empty, "s"),
        Err(NdrError::MissingNul {
            what: "[string] wchar_t"
        })
    );
}

#[test]
fn hostile_string_with_a_nul_inside() {
    let stub = [3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0x61, 0, 0, 0, 0, 0];
    assert!(matches!(
        decode_stub::<String>(LE, &stub, "s"),
        Err(NdrError::EmbeddedNul { .. })
    ));
}

#[test]
fn hostile_utf16_with_an_odd_byte_count() {
    // actual_count 2 needs 4 bytes of units; 3 are there.
    let stub = [2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0x61, 0, 0];
    assert!(matches!(
        decode_stub::<String>(LE, &stub, "s"),
        Err(NdrError::CountTooLarge {
            count: 2,
            element_size: 2,
            available: 3,
            ..
        })
    ));
}

#[test]
fn hostile_unpaired_surrogate() {
    let stub = [2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0x00, 0xD8, 0, 0];
    assert!(matches!(
        decode_stub::<String>(LE, &stub, "s"),
        Err(NdrError::InvalidUtf16 { .. })
    ));
}

#[test]
fn hostile_null_referent_for_a_ref_pointer() {
    let mut r = NdrReader::new(LE, &[0, 0, 0, 0]);
    assert_eq!(
        r.referent(PointerKind::Ref, "embedded ref"),
        Err(NdrError::NullRefPointer {
            what: "embedded ref"
        })
    );
    let mut r = NdrReader::new(LE, &[4, 0, 2, 0]);
    assert_eq!(r.referent(PointerKind::Ref, "embedded ref"), Ok(true));
}

#[test]
fn hostile_full_pointer_referring_back_to_an_earlier_referent() {
    // Two full pointers to u32 with the same referent id: an alias (and, for a self-referencing
    // type, a cycle). Refused at the second id, before anything is followed.
    let stub = [
        0x02, 0x00, 0x00, 0x00, // max_count 2
        0x00, 0x00, 0x02, 0x00, // [0] referent 0x20000
        0x00, 0x00, 0x02, 0x00, // [1] referent 0x20000 again
        0x07, 0x00, 0x00, 0x00, // *[0]
    ];
    assert_eq!(
        decode_stub::<Vec<Full<u32>>>(LE, &stub, "t"),
        Err(NdrError::RepeatedReferent {
            what: "full pointer",
            referent_id: 0x0002_0000
        })
    );
    // Unique pointers are not tracked: the same bytes with distinct ids decode.
    let ok = [2, 0, 0, 0, 0, 0, 2, 0, 4, 0, 2, 0, 7, 0, 0, 0, 8, 0, 0, 0];
    assert_eq!(
        decode_stub::<Vec<Full<u32>>>(LE, &ok, "t").unwrap(),
        vec![Full(Some(7)), Full(Some(8))]
    );
}

#[test]
fn hostile_trailing_bytes_after_the_last_parameter() {
    assert_eq!(
        decode_stub::<u32>(LE, &[1, 0, 0, 0, 0], "call"),
        Err(NdrError::TrailingBytes {
            what: "call",
            count: 1
        })
    );
}

#[test]
fn hostile_truncated_alignment_and_primitives() {
    let mut r = NdrReader::new(LE, &[1, 2]);
    r.u8("a").unwrap();
    assert!(matches!(r.u32("b"), Err(NdrError::Truncated { .. })));
    assert!(matches!(
        decode_stub::<u64>(LE, &[0; 7], "t"),
        Err(NdrError::Truncated {
            needed: 8,
            available: 7,
            ..
        })
    ));
}

#[test]
fn range_checks() {
    let mut r = NdrReader::new(LE, &[0xF5, 0x01, 0, 0, 0xF4, 0x01, 0, 0]);
    assert_eq!(
        r.u32_in_range("max_ents", 0, 500),
        Err(NdrError::OutOfRange {
            what: "max_ents",
            value: 501,
            min: 0,
            max: 500
        })
    );
    assert_eq!(r.u32_in_range("max_ents", 0, 500), Ok(500));
}

#[test]
fn encoder_refuses_strings_with_nul_and_lengths_beyond_u32() {
    let mut w = NdrWriter::new(LE);
    assert!(matches!(
        encode_wstring(&mut w, "a\0b", "s"),
        Err(EncodeError::Inconsistent { .. })
    ));
    assert!(matches!(
        w.count(usize::MAX, "array"),
        Err(EncodeError::TooLong { .. })
    ));
}

#[test]
fn decode_errors_convert_to_decode_error() {
    let error: crate::error::DecodeError = NdrError::TrailingBytes {
        what: "call",
        count: 3,
    }
    .into();
    assert_eq!(
        error,
        crate::error::DecodeError::TrailingBytes {
            what: "call",
            count: 3
        }
    );
}
