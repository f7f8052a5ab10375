//! Call-level tests: the impacket vectors, round trips of every call type in both byte orders,
//! and hostile stubs.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;

use super::ad_backup::*;
use super::ad_restore::*;
use super::epm::*;
use super::mgmt::*;
use super::*;
use crate::error::EncodeError;
use crate::ndr::{ConformantVarying, ContextHandle, Full, VaryingBytes};
use crate::status::Status;
use crate::uuid::Uuid;

const LE: DataRep = DataRep::LITTLE_ENDIAN;
const BE: DataRep = DataRep::BIG_ENDIAN;

macro_rules! vector_files {
    ($($file:literal,)*) => {
        &[$(($file, include_bytes!(concat!("../../../../fixtures/ndr/", $file)))),*]
    };
}

/// Every `.bin` of `fixtures/ndr`, written by `scripts/vectors/ndr_vectors.py` (impacket).
static VECTORS: &[(&str, &[u8])] = vector_files![
    "ad_backup-0-HrRBackupPrepare-request-logs-only.bin",
    "ad_backup-0-HrRBackupPrepare-request.bin",
    "ad_backup-0-HrRBackupPrepare-response-busy-null-token.bin",
    "ad_backup-0-HrRBackupPrepare-response.bin",
    "ad_backup-1-HrRBackupEnd-request.bin",
    "ad_backup-1-HrRBackupEnd-response.bin",
    "ad_backup-2-HrRBackupGetAttachmentInformation-request.bin",
    "ad_backup-2-HrRBackupGetAttachmentInformation-response-empty.bin",
    "ad_backup-2-HrRBackupGetAttachmentInformation-response-null.bin",
    "ad_backup-2-HrRBackupGetAttachmentInformation-response-one-nul.bin",
    "ad_backup-2-HrRBackupGetAttachmentInformation-response-unknown-bft.bin",
    "ad_backup-2-HrRBackupGetAttachmentInformation-response.bin",
    "ad_backup-3-HrRBackupOpenFile-request.bin",
    "ad_backup-3-HrRBackupOpenFile-response-already-open.bin",
    "ad_backup-3-HrRBackupOpenFile-response.bin",
    "ad_backup-4-HrRBackupRead-request.bin",
    "ad_backup-4-HrRBackupRead-response-eof.bin",
    "ad_backup-4-HrRBackupRead-response-short.bin",
    "ad_backup-4-HrRBackupRead-response.bin",
    "ad_backup-5-HrRBackupClose-request.bin",
    "ad_backup-5-HrRBackupClose-response.bin",
    "ad_backup-6-HrRBackupGetBackupLogs-request.bin",
    "ad_backup-6-HrRBackupGetBackupLogs-response-empty.bin",
    "ad_backup-6-HrRBackupGetBackupLogs-response.bin",
    "ad_backup-7-HrRBackupTruncateLogs-request.bin",
    "ad_backup-7-HrRBackupTruncateLogs-response.bin",
    "ad_backup-8-HrRBackupPing-request.bin",
    "ad_backup-8-HrRBackupPing-response.bin",
    "ad_restore-0-HrRIsNTDSOnline-request.bin",
    "ad_restore-0-HrRIsNTDSOnline-response-restore-mode.bin",
    "ad_restore-0-HrRIsNTDSOnline-response.bin",
    "ad_restore-1-HrRRestorePrepare-request-restricted.bin",
    "ad_restore-1-HrRRestorePrepare-request.bin",
    "ad_restore-1-HrRRestorePrepare-response-expired.bin",
    "ad_restore-1-HrRRestorePrepare-response.bin",
    "ad_restore-2-HrRRestoreRegister-request-null-map.bin",
    "ad_restore-2-HrRRestoreRegister-request.bin",
    "ad_restore-2-HrRRestoreRegister-response.bin",
    "ad_restore-3-HrRRestoreRegisterComplete-request.bin",
    "ad_restore-3-HrRRestoreRegisterComplete-response.bin",
    "ad_restore-4-HrRRestoreGetDatabaseLocations-request.bin",
    "ad_restore-4-HrRRestoreGetDatabaseLocations-response-empty.bin",
    "ad_restore-4-HrRRestoreGetDatabaseLocations-response.bin",
    "ad_restore-5-HrRRestoreEnd-request.bin",
    "ad_restore-5-HrRRestoreEnd-response.bin",
    "ad_restore-6-HrRRestoreSetCurrentLogNumber-request.bin",
    "ad_restore-6-HrRRestoreSetCurrentLogNumber-response.bin",
    "ad_restore-7-HrRRestoreCheckLogsForBackup-request.bin",
    "ad_restore-7-HrRRestoreCheckLogsForBackup-response.bin",
    "epm-2-ept_lookup-request-object-and-interface.bin",
    "epm-2-ept_lookup-request.bin",
    "epm-2-ept_lookup-response-end.bin",
    "epm-2-ept_lookup-response.bin",
    "epm-3-ept_map-request-with-object.bin",
    "epm-3-ept_map-request.bin",
    "epm-3-ept_map-response-not-registered.bin",
    "epm-3-ept_map-response.bin",
    "epm-4-ept_lookup_handle_free-request.bin",
    "epm-4-ept_lookup_handle_free-response.bin",
    "mgmt-0-inq_if_ids-request.bin",
    "mgmt-0-inq_if_ids-response-null.bin",
    "mgmt-0-inq_if_ids-response.bin",
    "mgmt-1-inq_stats-request.bin",
    "mgmt-1-inq_stats-response.bin",
    "mgmt-2-is_server_listening-request.bin",
    "mgmt-2-is_server_listening-response.bin",
    "mgmt-3-stop_server_listening-request.bin",
    "mgmt-3-stop_server_listening-response.bin",
    "mgmt-4-inq_princ_name-request.bin",
    "mgmt-4-inq_princ_name-response.bin",
];

static MANIFEST: &str = include_str!("../../../../fixtures/ndr/vectors.json");

/// Whether `actual` (our serialization) carries the manifest's `expected` values. A status is
/// an integer in the manifest and `{value, name}` in ours.
fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(n), Value::Object(o)) if o.contains_key("name") => {
            o.get("value").and_then(Value::as_u64) == n.as_u64()
        }
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|av| matches(v, av)))
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| matches(e, a))
        }
        _ => expected == actual,
    }
}

fn decode_any(iface: &str, opnum: u16, direction: Direction, stub: &[u8]) -> DecodedStub {
    let iface: Interface = iface.parse().unwrap();
    decode_stub(iface, opnum, direction, LE, stub)
        .unwrap_or_else(|e| panic!("{iface} {opnum} {direction:?}: {e}"))
}

fn encode_with_pads(stub: &DecodedStub) -> (Vec<u8>, Vec<core::ops::Range<usize>>) {
    match stub {
        DecodedStub::AdBackupRequest(v) => v.encode_with_pads(LE),
        DecodedStub::AdBackupResponse(v) => v.encode_with_pads(LE),
        DecodedStub::AdRestoreRequest(v) => v.encode_with_pads(LE),
        DecodedStub::AdRestoreResponse(v) => v.encode_with_pads(LE),
        DecodedStub::EpmRequest(v) => v.encode_with_pads(LE),
        DecodedStub::EpmResponse(v) => v.encode_with_pads(LE),
        DecodedStub::MgmtRequest(v) => v.encode_with_pads(LE),
        DecodedStub::MgmtResponse(v) => v.encode_with_pads(LE),
    }
}

#[test]
fn impacket_vectors_decode_to_the_manifest_values_and_encode_to_the_same_bytes() {
    let manifest: Value = serde_json::from_str(MANIFEST).unwrap();
    let entries = manifest["vectors"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        VECTORS.len(),
        "manifest and fixture list disagree"
    );
    for entry in entries {
        let file = entry["file"].as_str().unwrap();
        let (_, bytes) = VECTORS.iter().find(|(f, _)| *f == file).unwrap();
        let direction = match entry["direction"].as_str().unwrap() {
            "request" => Direction::Request,
            _ => Direction::Response,
        };
        let opnum = u16::try_from(entry["opnum"].as_u64().unwrap()).unwrap();
        let decoded = decode_any(
            entry["interface"].as_str().unwrap(),
            opnum,
            direction,
            bytes,
        );

        // The enum serializes as {"CallName": {parameters}}.
        let json = serde_json::to_value(&decoded).unwrap();
        let (name, params) = json.as_object().unwrap().iter().next().unwrap();
        let iface: Interface = entry["interface"].as_str().unwrap().parse().unwrap();
        assert_eq!(iface.id().call(opnum).unwrap().name, name);
        assert!(
            matches(&entry["values"], params),
            "{file}: decoded {params:#} expected {:#}",
            entry["values"]
        );

        // Our encoding: the same bytes, except where we pad (impacket pads with 0xaa, 0xab, ...).
        let (ours, pads) = encode_with_pads(&decoded);
        assert_eq!(ours.len(), bytes.len(), "{file}: length");
        for (i, (a, b)) in ours.iter().zip(bytes.iter()).enumerate() {
            assert!(
                a == b || pads.iter().any(|p| p.contains(&i)),
                "{file}: byte {i}: ours {a:#04x}, impacket {b:#04x}"
            );
        }
    }
}

#[test]
fn every_call_of_every_interface_has_a_request_and_a_response_vector() {
    let manifest: Value = serde_json::from_str(MANIFEST).unwrap();
    let entries = manifest["vectors"].as_array().unwrap();
    for iface in Interface::ALL {
        for call in iface.id().calls {
            for direction in ["request", "response"] {
                assert!(
                    entries.iter().any(|e| e["interface"] == iface.id().name
                        && e["opnum"] == u64::from(call.opnum)
                        && e["direction"] == direction),
                    "{iface} {} {direction}",
                    call.name
                );
            }
        }
    }
}

#[test]
fn tables_follow_the_idl() {
    let names: Vec<_> = AD_BACKUP.iter().map(|c| (c.opnum, c.name)).collect();
    assert_eq!(
        names,
        [
            (0, "HrRBackupPrepare"),
            (1, "HrRBackupEnd"),
            (2, "HrRBackupGetAttachmentInformation"),
            (3, "HrRBackupOpenFile"),
            (4, "HrRBackupRead"),
            (5, "HrRBackupClose"),
            (6, "HrRBackupGetBackupLogs"),
            (7, "HrRBackupTruncateLogs"),
            (8, "HrRBackupPing"),
        ]
    );
    assert_eq!(AD_RESTORE.len(), 8);
    assert_eq!(AD_RESTORE[7].name, "HrRRestoreCheckLogsForBackup");
    assert_eq!(
        AD_RESTORE[2].request,
        [
            "hContext",
            "wszCheckpointFilePath",
            "wszLogPath",
            "rgrstmap",
            "crstmap",
            "wszBackupLogPath",
            "genLow",
            "genHigh"
        ]
    );
    assert_eq!(
        AD_BACKUP[0].response,
        ["phContext", "ppbExpiryToken", "pcbExpiryToken", "status"]
    );
    assert_eq!(
        Interface::from_uuid(Interface::AdBackup.id().uuid, 1),
        Some(Interface::AdBackup)
    );
    assert_eq!("EPM".parse(), Ok(Interface::Epm));
    assert_eq!(ad_restore::INTERFACE.annotation, "NTDS Restore Interface");
    for iface in Interface::ALL {
        for (i, call) in iface.id().calls.iter().enumerate() {
            assert_eq!(iface.id().call(call.opnum), Some(call), "{iface} {i}");
        }
    }
}

#[test]
fn every_response_ends_in_the_status() {
    for iface in [Interface::AdBackup, Interface::AdRestore, Interface::Epm] {
        for call in iface.id().calls {
            assert_eq!(
                call.response.last(),
                Some(&"status"),
                "{iface} {}",
                call.name
            );
        }
    }
}

#[test]
fn hr_rbackup_prepare_request_bytes() {
    let request = AdBackupRequest::HrRBackupPrepare(HrRBackupPrepareRequest {
        grbit: 0,
        bt_flag: BACKUP_TYPE_FULL,
        wsz_backup_annotation: "NTDS".into(),
        dw_client_identifier: 7,
    });
    #[rustfmt::skip]
    let expected = [
        0x00, 0x00, 0x00, 0x00, // grbit 0
        0x01, 0x00, 0x00, 0x00, // btFlag BACKUP_TYPE_FULL
        0x05, 0x00, 0x00, 0x00, // wszBackupAnnotation: max_count 5
        0x00, 0x00, 0x00, 0x00, //   offset 0
        0x05, 0x00, 0x00, 0x00, //   actual_count 5
        b'N', 0, b'T', 0, b'D', 0, b'S', 0, 0, 0, // "NTDS" NUL
        0x00, 0x00, // pad to 4
        0x07, 0x00, 0x00, 0x00, // dwClientIdentifier 7
    ];
    assert_eq!(request.encode(LE).unwrap(), expected);
    assert_eq!(AdBackupRequest::decode(0, LE, &expected).unwrap(), request);
    assert_eq!(request.opnum(), 0);
}

#[test]
fn hr_rbackup_read_response_bytes_and_request_check() {
    let response = HrRBackupReadResponse::new(8, Bytes::from_static(b"abc"), Status::SUCCESS);
    #[rustfmt::skip]
    let expected = [
        0x08, 0x00, 0x00, 0x00, // pbBuffer: max_count = cbBuffer 8
        0x00, 0x00, 0x00, 0x00, //   offset 0
        0x03, 0x00, 0x00, 0x00, //   actual_count 3
        b'a', b'b', b'c', 0x00, //   bytes, pad to 4
        0x03, 0x00, 0x00, 0x00, // pcbRead 3
        0x00, 0x00, 0x00, 0x00, // status hrNone
    ];
    let encoded = AdBackupResponse::HrRBackupRead(response.clone())
        .encode(LE)
        .unwrap();
    assert_eq!(encoded, expected);
    let request = HrRBackupReadRequest {
        h_context: ContextHandle::NULL,
        cb_buffer: 8,
    };
    response.check_request(&request).unwrap();
    let bigger = HrRBackupReadRequest {
        cb_buffer: 2,
        ..request
    };
    assert!(matches!(
        response.check_request(&bigger),
        Err(NdrError::CountMismatch {
            field: "cbBuffer",
            ..
        })
    ));
}

#[test]
fn decode_stub_serializes_idl_names() {
    let stub = AdBackupRequest::HrRBackupOpenFile(HrRBackupOpenFileRequest {
        h_context: ContextHandle::NULL,
        wsz_attachment_name: r"\\dc1\x".into(),
        cb_read_hint_size: 4096,
    })
    .encode(BE)
    .unwrap();
    let decoded = decode_stub(Interface::AdBackup, 3, Direction::Request, BE, &stub).unwrap();
    let json = serde_json::to_value(&decoded).unwrap();
    assert_eq!(json["HrRBackupOpenFile"]["wszAttachmentName"], r"\\dc1\x");
    assert_eq!(json["HrRBackupOpenFile"]["cbReadHintSize"], 4096);
    assert!(json["HrRBackupOpenFile"]["hContext"].is_object());
}

// Hostile stubs at call level: each a typed error.

#[test]
fn hostile_read_response_actual_count_above_max_count() {
    #[rustfmt::skip]
    let stub = [
        0x02, 0x00, 0x00, 0x00, // max_count 2
        0x00, 0x00, 0x00, 0x00, // offset 0
        0x03, 0x00, 0x00, 0x00, // actual_count 3 > 2
        b'a', b'b', b'c', 0x00,
        0x03, 0x00, 0x00, 0x00, // pcbRead
        0x00, 0x00, 0x00, 0x00, // status
    ];
    assert_eq!(
        AdBackupResponse::decode(4, LE, &stub),
        Err(NdrError::ActualCountAboveMax {
            what: "conformant varying byte array",
            actual_count: 3,
            max_count: 2
        })
    );
}

#[test]
fn hostile_read_response_pcb_read_disagrees_with_the_array() {
    let mut stub = AdBackupResponse::HrRBackupRead(HrRBackupReadResponse::new(
        8,
        Bytes::from_static(b"abcd"),
        Status::SUCCESS,
    ))
    .encode(LE)
    .unwrap();
    stub[16] = 5; // pcbRead 5, array 4
    assert_eq!(
        AdBackupResponse::decode(4, LE, &stub),
        Err(NdrError::CountMismatch {
            what: "HrRBackupRead response",
            field: "pcbRead",
            count: 5,
            array_count: 4
        })
    );
}

#[test]
fn hostile_read_response_with_a_count_of_u32_max() {
    let mut stub = vec![0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
    stub.extend([0; 10]);
    assert!(matches!(
        AdBackupResponse::decode(4, LE, &stub),
        Err(NdrError::CountTooLarge {
            count: u32::MAX,
            available: 10,
            ..
        })
    ));
}

#[test]
fn hostile_name_list_count_disagrees_with_its_conformance() {
    #[rustfmt::skip]
    let stub = [
        0x00, 0x00, 0x02, 0x00, // ppwszzNames referent
        0x02, 0x00, 0x00, 0x00, // max_count 2
        0x00, 0x00, 0x00, 0x00, // two NULs
        0x03, 0x00, 0x00, 0x00, // pcwcNames 3
        0x00, 0x00, 0x00, 0x00, // status
    ];
    assert_eq!(
        AdBackupResponse::decode(2, LE, &stub),
        Err(NdrError::CountMismatch {
            what: "HrRBackupGetAttachmentInformation response",
            field: "pcwcNames",
            count: 3,
            array_count: 2
        })
    );
}

#[test]
fn hostile_trailing_bytes_after_the_status() {
    let stub = [0, 0, 0, 0, 0xAA];
    assert_eq!(
        AdBackupResponse::decode(5, LE, &stub),
        Err(NdrError::TrailingBytes {
            what: "HrRBackupClose response",
            count: 1
        })
    );
    assert_eq!(
        AdBackupRequest::decode(8, LE, &[0]),
        Err(NdrError::TrailingBytes {
            what: "HrRBackupPing request",
            count: 1
        })
    );
}

#[test]
fn hostile_unknown_opnum() {
    assert_eq!(
        AdBackupRequest::decode(9, LE, &[]),
        Err(NdrError::UnknownOpnum {
            interface: "ad_backup",
            opnum: 9
        })
    );
    assert!(matches!(
        decode_stub(Interface::Epm, 0, Direction::Request, LE, &[]),
        Err(NdrError::UnknownOpnum { .. })
    ));
}

#[test]
fn hostile_annotation_offset_not_zero() {
    let mut stub =
        AdRestoreRequest::HrRRestoreCheckLogsForBackup(HrRRestoreCheckLogsForBackupRequest {
            wsz_backup_annotation: "x".into(),
        })
        .encode(LE)
        .unwrap();
    stub[4] = 1;
    assert!(matches!(
        AdRestoreRequest::decode(7, LE, &stub),
        Err(NdrError::NonZeroOffset { offset: 1, .. })
    ));
}

#[test]
fn hostile_ept_map_towers_repeat_a_full_pointer_referent() {
    let tower = Twr::from_tower(&Tower::ncacn_ip_tcp(Interface::AdBackup.id(), 1, [0; 4])).unwrap();
    let response = EptMapResponse {
        entry_handle: ContextHandle::NULL,
        num_towers: 2,
        towers: ConformantVarying {
            max_count: 2,
            items: vec![Full(Some(tower.clone())), Full(Some(tower))],
        },
        status: Status::SUCCESS,
    };
    let mut stub = EpmResponse::EptMap(response).encode(LE).unwrap();
    // entry_handle (20) num_towers (4) max_count offset actual (12): referents at 36 and 40.
    assert_eq!(stub[36..40], [0x00, 0x00, 0x02, 0x00]);
    stub[40..44].copy_from_slice(&[0x00, 0x00, 0x02, 0x00]);
    assert_eq!(
        EpmResponse::decode(3, LE, &stub),
        Err(NdrError::RepeatedReferent {
            what: "full pointer",
            referent_id: 0x0002_0000
        })
    );
}

#[test]
fn hostile_tower_length_disagrees_with_its_conformance() {
    let request = EptMapRequest {
        object: Full(None),
        map_tower: Full(Some(Twr {
            tower_octet_string: Bytes::from_static(&[1, 0, 1, 0, 7, 0, 0]),
        })),
        entry_handle: ContextHandle::NULL,
        max_towers: 1,
    };
    let mut stub = EpmRequest::EptMap(request).encode(LE).unwrap();
    // object null (4), map_tower referent (4), max_count (4), tower_length at 12.
    stub[12] = 6;
    assert!(matches!(
        EpmRequest::decode(3, LE, &stub),
        Err(NdrError::CountMismatch {
            field: "tower_length",
            ..
        })
    ));
}

#[test]
fn encoders_refuse_inconsistent_counts() {
    let response = HrRBackupPrepareResponse {
        ph_context: ContextHandle::NULL,
        ppb_expiry_token: Some(Bytes::from_static(&[0; 16])),
        pcb_expiry_token: 15,
        status: Status::SUCCESS,
    };
    assert!(matches!(
        AdBackupResponse::HrRBackupPrepare(response).encode(LE),
        Err(EncodeError::Inconsistent {
            field: "pcbExpiryToken",
            ..
        })
    ));
    let too_long = HrRBackupReadResponse {
        pb_buffer: VaryingBytes {
            max_count: 1,
            data: Bytes::from_static(b"ab").into(),
        },
        pcb_read: 2,
        status: Status::SUCCESS,
    };
    assert!(
        AdBackupResponse::HrRBackupRead(too_long)
            .encode(LE)
            .is_err()
    );
}

// Round trips of every call type, for arbitrary values, in both byte orders.

fn text() -> impl Strategy<Value = String> {
    vec(any::<char>().prop_filter("no NUL", |c| *c != '\0'), 0..12).prop_map(String::from_iter)
}

fn latin1(max: usize) -> impl Strategy<Value = String> {
    vec(1u8..=255, 0..max).prop_map(|b| b.into_iter().map(char::from).collect())
}

fn handle() -> impl Strategy<Value = ContextHandle> {
    (any::<u32>(), any::<[u8; 16]>()).prop_map(|(attributes, uuid)| ContextHandle {
        attributes,
        uuid: Uuid(uuid),
    })
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<[u8; 16]>().prop_map(Uuid)
}

fn status() -> impl Strategy<Value = Status> {
    any::<u32>().prop_map(Status)
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn names() -> impl Strategy<Value = (Option<Vec<u16>>, u32)> {
    proptest::option::of(vec(any::<u16>(), 0..24)).prop_map(|units| {
        let count = units
            .as_ref()
            .map_or(0, |u| u32::try_from(u.len()).unwrap());
        (units, count)
    })
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn twr() -> impl Strategy<Value = Full<Twr>> {
    proptest::option::of(bytes(40).prop_map(|t| Twr {
        tower_octet_string: t,
    }))
    .prop_map(Full)
}

fn if_id() -> impl Strategy<Value = RpcIfId> {
    (uuid(), any::<u16>(), any::<u16>()).prop_map(|(uuid, vers_major, vers_minor)| RpcIfId {
        uuid,
        vers_major,
        vers_minor,
    })
}

fn ad_backup_request() -> impl Strategy<Value = AdBackupRequest> {
    use AdBackupRequest as R;
    prop_oneof![
        (any::<u32>(), any::<u32>(), text(), any::<u32>()).prop_map(|(a, b, c, d)| {
            R::HrRBackupPrepare(HrRBackupPrepareRequest {
                grbit: a,
                bt_flag: b,
                wsz_backup_annotation: c,
                dw_client_identifier: d,
            })
        }),
        handle().prop_map(|h| R::HrRBackupEnd(HrRBackupEndRequest { ph_context: h })),
        handle().prop_map(|h| R::HrRBackupGetAttachmentInformation(
            HrRBackupGetAttachmentInformationRequest { h_context: h }
        )),
        (handle(), text(), any::<u32>()).prop_map(|(h, n, c)| R::HrRBackupOpenFile(
            HrRBackupOpenFileRequest {
                h_context: h,
                wsz_attachment_name: n,
                cb_read_hint_size: c
            }
        )),
        (handle(), any::<u32>()).prop_map(|(h, c)| R::HrRBackupRead(HrRBackupReadRequest {
            h_context: h,
            cb_buffer: c
        })),
        handle().prop_map(|h| R::HrRBackupClose(HrRBackupCloseRequest { h_context: h })),
        handle().prop_map(
            |h| R::HrRBackupGetBackupLogs(HrRBackupGetBackupLogsRequest { h_context: h })
        ),
        handle()
            .prop_map(|h| R::HrRBackupTruncateLogs(HrRBackupTruncateLogsRequest { h_context: h })),
        Just(R::HrRBackupPing(HrRBackupPingRequest {})),
    ]
}

fn ad_backup_response() -> impl Strategy<Value = AdBackupResponse> {
    use AdBackupResponse as R;
    prop_oneof![
        (handle(), proptest::option::of(bytes(20)), status()).prop_map(|(h, t, s)| {
            R::HrRBackupPrepare(HrRBackupPrepareResponse {
                ph_context: h,
                pcb_expiry_token: t.as_ref().map_or(0, |t| u32::try_from(t.len()).unwrap()),
                ppb_expiry_token: t,
                status: s,
            })
        }),
        (handle(), status()).prop_map(|(h, s)| R::HrRBackupEnd(HrRBackupEndResponse {
            ph_context: h,
            status: s
        })),
        (names(), status()).prop_map(|((n, c), s)| R::HrRBackupGetAttachmentInformation(
            HrRBackupGetAttachmentInformationResponse {
                ppwszz_names: n,
                pcwc_names: c,
                status: s
            }
        )),
        (any::<i64>(), status()).prop_map(|(l, s)| R::HrRBackupOpenFile(
            HrRBackupOpenFileResponse {
                pli_file_size: l,
                status: s
            }
        )),
        (bytes(100), 0u32..1000, status()).prop_map(|(d, extra, s)| {
            let max = u32::try_from(d.len()).unwrap() + extra;
            R::HrRBackupRead(HrRBackupReadResponse::new(max, d, s))
        }),
        status().prop_map(|s| R::HrRBackupClose(HrRBackupCloseResponse { status: s })),
        (names(), status()).prop_map(|((n, c), s)| R::HrRBackupGetBackupLogs(
            HrRBackupGetBackupLogsResponse {
                ppwszz_names: n,
                pcwc_names: c,
                status: s
            }
        )),
        status()
            .prop_map(|s| R::HrRBackupTruncateLogs(HrRBackupTruncateLogsResponse { status: s })),
        status().prop_map(|s| R::HrRBackupPing(HrRBackupPingResponse { status: s })),
    ]
}

fn ad_restore_request() -> impl Strategy<Value = AdRestoreRequest> {
    use AdRestoreRequest as R;
    let rstmap = proptest::option::of(vec(
        (opt_text(), opt_text()).prop_map(|(a, b)| EdbRstmapW {
            wsz_database_name: a,
            wsz_new_database_name: b,
        }),
        0..4,
    ));
    prop_oneof![
        Just(R::HrRIsNTDSOnline(HrRIsNTDSOnlineRequest {})),
        (any::<u32>(), proptest::option::of(bytes(20)), any::<u32>()).prop_map(|(f, t, c)| {
            R::HrRRestorePrepare(HrRRestorePrepareRequest {
                rt_flag: f,
                cb_expiry_token: t.as_ref().map_or(c, |t| u32::try_from(t.len()).unwrap()),
                pb_expiry_token: t,
            })
        }),
        (
            handle(),
            text(),
            text(),
            rstmap,
            any::<u32>(),
            text(),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(|(h, cp, lp, map, c, blp, lo, hi)| {
                R::HrRRestoreRegister(HrRRestoreRegisterRequest {
                    h_context: h,
                    wsz_checkpoint_file_path: cp,
                    wsz_log_path: lp,
                    crstmap: map.as_ref().map_or(c, |m| u32::try_from(m.len()).unwrap()),
                    rgrstmap: map,
                    wsz_backup_log_path: blp,
                    gen_low: lo,
                    gen_high: hi,
                })
            }),
        (handle(), status()).prop_map(|(h, s)| R::HrRRestoreRegisterComplete(
            HrRRestoreRegisterCompleteRequest {
                h_context: h,
                hr_restore_state: s
            }
        )),
        handle().prop_map(|h| R::HrRRestoreGetDatabaseLocations(
            HrRRestoreGetDatabaseLocationsRequest { h_context: h }
        )),
        handle().prop_map(|h| R::HrRRestoreEnd(HrRRestoreEndRequest { ph_context: h })),
        any::<u32>().prop_map(|c| R::HrRRestoreSetCurrentLogNumber(
            HrRRestoreSetCurrentLogNumberRequest { dw_current_log: c }
        )),
        text().prop_map(
            |a| R::HrRRestoreCheckLogsForBackup(HrRRestoreCheckLogsForBackupRequest {
                wsz_backup_annotation: a
            })
        ),
    ]
}

fn ad_restore_response() -> impl Strategy<Value = AdRestoreResponse> {
    use AdRestoreResponse as R;
    prop_oneof![
        (any::<i32>(), status()).prop_map(|(o, s)| R::HrRIsNTDSOnline(HrRIsNTDSOnlineResponse {
            pf_online: o,
            status: s
        })),
        (handle(), status()).prop_map(|(h, s)| R::HrRRestorePrepare(HrRRestorePrepareResponse {
            ph_context: h,
            status: s
        })),
        status().prop_map(|s| R::HrRRestoreRegister(HrRRestoreRegisterResponse { status: s })),
        status().prop_map(
            |s| R::HrRRestoreRegisterComplete(HrRRestoreRegisterCompleteResponse { status: s })
        ),
        (names(), status()).prop_map(|((n, c), s)| R::HrRRestoreGetDatabaseLocations(
            HrRRestoreGetDatabaseLocationsResponse {
                ppwszz_locations: n,
                pcwc_locations: c,
                status: s
            }
        )),
        (handle(), status()).prop_map(|(h, s)| R::HrRRestoreEnd(HrRRestoreEndResponse {
            ph_context: h,
            status: s
        })),
        status().prop_map(|s| R::HrRRestoreSetCurrentLogNumber(
            HrRRestoreSetCurrentLogNumberResponse { status: s }
        )),
        status().prop_map(|s| R::HrRRestoreCheckLogsForBackup(
            HrRRestoreCheckLogsForBackupResponse { status: s }
        )),
    ]
}

fn epm_request() -> impl Strategy<Value = EpmRequest> {
    use EpmRequest as R;
    prop_oneof![
        (
            any::<u32>(),
            proptest::option::of(uuid()),
            proptest::option::of(if_id()),
            any::<u32>(),
            handle(),
            any::<u32>()
        )
            .prop_map(|(q, o, i, v, h, m)| R::EptLookup(EptLookupRequest {
                inquiry_type: q,
                object: Full(o),
                interface_id: Full(i),
                vers_option: v,
                entry_handle: h,
                max_ents: m,
            })),
        (proptest::option::of(uuid()), twr(), handle(), any::<u32>()).prop_map(|(o, t, h, m)| {
            R::EptMap(EptMapRequest {
                object: Full(o),
                map_tower: t,
                entry_handle: h,
                max_towers: m,
            })
        }),
        handle()
            .prop_map(|h| R::EptLookupHandleFree(EptLookupHandleFreeRequest { entry_handle: h })),
    ]
}

fn epm_response() -> impl Strategy<Value = EpmResponse> {
    use EpmResponse as R;
    let entry = (uuid(), twr(), latin1(63)).prop_map(|(object, tower, annotation)| EptEntry {
        object,
        tower,
        annotation,
    });
    prop_oneof![
        (handle(), vec(entry, 0..4), 0u32..3, status()).prop_map(|(h, items, extra, s)| {
            let n = u32::try_from(items.len()).unwrap();
            R::EptLookup(EptLookupResponse {
                entry_handle: h,
                num_ents: n,
                entries: ConformantVarying {
                    max_count: n + extra,
                    items,
                },
                status: s,
            })
        }),
        (handle(), vec(twr(), 0..4), 0u32..3, status()).prop_map(|(h, items, extra, s)| {
            let n = u32::try_from(items.len()).unwrap();
            R::EptMap(EptMapResponse {
                entry_handle: h,
                num_towers: n,
                towers: ConformantVarying {
                    max_count: n + extra,
                    items,
                },
                status: s,
            })
        }),
        (handle(), status()).prop_map(|(h, s)| R::EptLookupHandleFree(
            EptLookupHandleFreeResponse {
                entry_handle: h,
                status: s
            }
        )),
    ]
}

fn mgmt_request() -> impl Strategy<Value = MgmtRequest> {
    use MgmtRequest as R;
    prop_oneof![
        Just(R::InqIfIds(InqIfIdsRequest {})),
        any::<u32>().prop_map(|c| R::InqStats(InqStatsRequest { count: c })),
        Just(R::IsServerListening(IsServerListeningRequest {})),
        Just(R::StopServerListening(StopServerListeningRequest {})),
        (any::<u32>(), any::<u32>()).prop_map(|(a, s)| R::InqPrincName(InqPrincNameRequest {
            authn_proto: a,
            princ_name_size: s
        })),
    ]
}

fn mgmt_response() -> impl Strategy<Value = MgmtResponse> {
    use MgmtResponse as R;
    let vector = proptest::option::of(
        vec(proptest::option::of(if_id()).prop_map(Full), 0..5)
            .prop_map(|if_id| RpcIfIdVector { if_id }),
    );
    prop_oneof![
        (vector, status()).prop_map(|(v, s)| R::InqIfIds(InqIfIdsResponse {
            if_id_vector: Full(v),
            status: s
        })),
        (vec(any::<u32>(), 0..6), status()).prop_map(|(st, s)| R::InqStats(InqStatsResponse {
            count: u32::try_from(st.len()).unwrap(),
            statistics: st,
            status: s
        })),
        (status(), any::<u32>()).prop_map(|(s, r)| R::IsServerListening(
            IsServerListeningResponse {
                status: s,
                result: r
            }
        )),
        status().prop_map(|s| R::StopServerListening(StopServerListeningResponse { status: s })),
        (latin1(30), 0u32..10, status()).prop_map(|(t, extra, s)| {
            let max = u32::try_from(t.chars().count()).unwrap() + 1 + extra;
            R::InqPrincName(InqPrincNameResponse {
                princ_name: CharString {
                    max_count: max,
                    text: t,
                },
                status: s,
            })
        }),
    ]
}

fn drep() -> impl Strategy<Value = DataRep> {
    prop_oneof![Just(LE), Just(BE)]
}

macro_rules! round_trip {
    ($test:ident, $strategy:expr, $ty:ty) => {
        proptest! {
            #[test]
            fn $test(value in $strategy, drep in drep()) {
                let stub = value.encode(drep).unwrap();
                let decoded = <$ty>::decode(value.opnum(), drep, &stub).unwrap();
                prop_assert_eq!(&decoded, &value);
                prop_assert_eq!(decoded.encode(drep).unwrap(), stub);
            }
        }
    };
}

round_trip!(
    ad_backup_requests_round_trip,
    ad_backup_request(),
    AdBackupRequest
);
round_trip!(
    ad_backup_responses_round_trip,
    ad_backup_response(),
    AdBackupResponse
);
round_trip!(
    ad_restore_requests_round_trip,
    ad_restore_request(),
    AdRestoreRequest
);
round_trip!(
    ad_restore_responses_round_trip,
    ad_restore_response(),
    AdRestoreResponse
);
round_trip!(epm_requests_round_trip, epm_request(), EpmRequest);
round_trip!(epm_responses_round_trip, epm_response(), EpmResponse);
round_trip!(mgmt_requests_round_trip, mgmt_request(), MgmtRequest);
round_trip!(mgmt_responses_round_trip, mgmt_response(), MgmtResponse);

proptest! {
    #[test]
    fn fuzz_oracles_never_panic_on_arbitrary_bytes(data in vec(any::<u8>(), 0..200)) {
        fuzzing::decode_ad_backup(&data);
        fuzzing::decode_ad_restore(&data);
        fuzzing::decode_epm(&data);
        fuzzing::decode_mgmt(&data);
    }
}

#[test]
fn name_list_and_token_helpers() {
    let entries = vec![
        crate::names::NameEntry::new(crate::names::BftKind::LOG_DIR, r"C:\Windows\NTDS"),
        crate::names::NameEntry::new(crate::names::BftKind::CHECKPOINT_DIR, r"C:\Windows\NTDS"),
    ];
    let response = HrRRestoreGetDatabaseLocationsResponse::new(&entries, Status::SUCCESS);
    assert_eq!(response.pcwc_locations, 2 * (1 + 15 + 1) + 1);
    let stub = AdRestoreResponse::HrRRestoreGetDatabaseLocations(response)
        .encode(BE)
        .unwrap();
    let AdRestoreResponse::HrRRestoreGetDatabaseLocations(decoded) =
        AdRestoreResponse::decode(4, BE, &stub).unwrap()
    else {
        panic!("wrong variant");
    };
    assert_eq!(decoded.entries().unwrap(), entries);
    let empty = HrRBackupGetBackupLogsResponse::new(&[], Status::SUCCESS);
    assert_eq!(empty.ppwszz_names, Some(vec![0, 0]));
    assert_eq!(
        HrRBackupGetAttachmentInformationResponse::default()
            .entries()
            .unwrap(),
        vec![]
    );

    let token = crate::token::ExpiryToken {
        tombstone_lifetime_days: 180,
        backup_time: 0x01DA_0000_0000_0000,
    };
    let prepare = HrRBackupPrepareResponse::new(ContextHandle::NULL, &token);
    assert_eq!(prepare.expiry_token().unwrap(), token);
    let request = HrRRestorePrepareRequest::new(0, Some(&token));
    assert_eq!(request.cb_expiry_token, 16);
    assert_eq!(HrRRestorePrepareRequest::new(0, None).pb_expiry_token, None);
}

/// The little-endian stub of a successful read of `data` for a 64 KiB request.
fn read_stub(data: &Bytes) -> Bytes {
    let response = HrRBackupReadResponse::new(65536, data.clone(), Status::SUCCESS);
    Bytes::from(
        AdBackupResponse::HrRBackupRead(response)
            .encode(LE)
            .unwrap(),
    )
}

#[test]
fn shared_decoding_slices_the_read_data_without_copying() {
    let data = Bytes::from(vec![0x5A; 4096]);
    let stub = read_stub(&data);
    let AdBackupResponse::HrRBackupRead(read) =
        AdBackupResponse::decode_shared(4, LE, &stub).unwrap()
    else {
        panic!("wrong variant");
    };
    assert_eq!(read.pb_buffer.data.to_bytes(), data);
    let start = read.pb_buffer.data.to_bytes().as_ptr() as usize;
    assert_eq!(start, stub.as_ptr() as usize + 12, "a slice of the stub");
    let mut padded = stub.to_vec();
    padded.push(0);
    assert!(matches!(
        AdBackupResponse::decode_shared(4, LE, &Bytes::from(padded)),
        Err(NdrError::TrailingBytes { count: 1, .. })
    ));
}

/// Cuts `bytes` into a chain at the given points (as fragments would).
fn cut(bytes: &Bytes, cuts: &[usize]) -> crate::chain::Chain {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut chain = crate::chain::Chain::new();
    let mut at = 0;
    for point in points.into_iter().chain([bytes.len()]) {
        chain.push(bytes.slice(at..point));
        at = point;
    }
    chain
}

proptest! {
    /// `decode_chain` is `decode_shared` for opnum 4, whatever the fragments: the same value
    /// for a good stub, the same error for a bad one (cut short, lengthened, counts changed).
    #[test]
    fn a_read_response_decodes_from_fragments_as_from_one_buffer(
        data in vec(any::<u8>(), 0..300),
        extra in 0_u32..40,
        status in any::<u32>(),
        big_endian in any::<bool>(),
        cuts in vec(any::<usize>(), 0..8),
        damage in prop_oneof![
            Just(None),
            (any::<usize>(), any::<u8>()).prop_map(Some),
        ],
        resize in prop_oneof![Just(0_isize), -20_isize..20],
    ) {
        let drep = if big_endian { BE } else { LE };
        let cb_buffer = u32::try_from(data.len()).unwrap() + extra;
        let response = HrRBackupReadResponse::new(cb_buffer, Bytes::from(data), Status(status));
        let mut stub = AdBackupResponse::HrRBackupRead(response).encode(drep).unwrap();
        if let Some((at, byte)) = damage {
            let at = at % stub.len();
            stub[at] = byte;
        }
        let len = usize::try_from(isize::try_from(stub.len()).unwrap() + resize).unwrap_or(0);
        stub.resize(len, 0xEE);
        let stub = Bytes::from(stub);
        let whole = AdBackupResponse::decode_shared(4, drep, &stub);
        let pieces = HrRBackupReadResponse::decode_chain(drep, cut(&stub, &cuts))
            .map(AdBackupResponse::HrRBackupRead);
        prop_assert_eq!(pieces, whole);
    }
}

#[test]
fn a_read_response_from_fragments_keeps_its_data_in_the_fragments() {
    let data = Bytes::from(vec![0x5A; 10_000]);
    let stub = read_stub(&data);
    // Fragments of 4000 bytes: the data spans three of them.
    let read = HrRBackupReadResponse::decode_chain(LE, cut(&stub, &[4000, 8000])).unwrap();
    assert_eq!(read.pb_buffer.data.to_bytes(), data);
    let segments: Vec<&Bytes> = read.pb_buffer.data.segments().collect();
    assert_eq!(segments.len(), 3);
    assert_eq!(segments[0].as_ptr() as usize, stub.as_ptr() as usize + 12);
    assert_eq!(segments[1].as_ptr() as usize, stub.as_ptr() as usize + 4000);
    assert_eq!(read.pcb_read, 10_000);
}

#[test]
fn every_vector_truncated_or_with_a_byte_flipped_is_handled_by_the_oracles() {
    let manifest: Value = serde_json::from_str(MANIFEST).unwrap();
    for entry in manifest["vectors"].as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        let (_, bytes) = VECTORS.iter().find(|(f, _)| *f == file).unwrap();
        if bytes.len() > 2048 {
            continue;
        }
        let opnum = u8::try_from(entry["opnum"].as_u64().unwrap()).unwrap();
        let selector = opnum
            | if entry["direction"] == "response" {
                0x20
            } else {
                0
            };
        let oracle = match entry["interface"].as_str().unwrap() {
            "ad_backup" => fuzzing::decode_ad_backup,
            "ad_restore" => fuzzing::decode_ad_restore,
            "epm" => fuzzing::decode_epm,
            _ => fuzzing::decode_mgmt,
        };
        let mut input = vec![selector];
        input.extend_from_slice(bytes);
        for len in 1..input.len() {
            oracle(&input[..len]);
        }
        for i in 1..input.len() {
            let mut mutated = input.clone();
            mutated[i] ^= 0xFF;
            oracle(&mutated);
        }
    }
}

// Stubs a real peer wrote: Samba 4.17 answering impacket and rpcclient (see PROVENANCE.md).

static SAMBA_LOOKUP_REQUEST: &[u8] =
    include_bytes!("../../../../fixtures/ndr/samba-epm-2-ept_lookup-request.bin");
static SAMBA_LOOKUP_RESPONSE: &[u8] =
    include_bytes!("../../../../fixtures/ndr/samba-epm-2-ept_lookup-response.bin");
static SAMBA_MAP_REQUEST: &[u8] =
    include_bytes!("../../../../fixtures/ndr/samba-epm-3-ept_map-request.bin");
static SAMBA_MAP_RESPONSE: &[u8] =
    include_bytes!("../../../../fixtures/ndr/samba-epm-3-ept_map-response.bin");

fn assert_round_trips(stub: &DecodedStub, opnum: u16, direction: Direction) {
    let encoded = stub.encode(LE).unwrap();
    assert_eq!(
        &decode_stub(Interface::Epm, opnum, direction, LE, &encoded).unwrap(),
        stub
    );
}

#[test]
fn samba_ept_lookup_exchange_decodes() {
    let request = decode_stub(
        Interface::Epm,
        2,
        Direction::Request,
        LE,
        SAMBA_LOOKUP_REQUEST,
    )
    .unwrap();
    let DecodedStub::EpmRequest(EpmRequest::EptLookup(lookup)) = &request else {
        panic!("wrong variant");
    };
    assert_eq!(lookup.max_ents, 500);
    assert_eq!(lookup.object, Full(None));
    assert!(lookup.entry_handle.is_null());
    assert_round_trips(&request, 2, Direction::Request);

    let response = decode_stub(
        Interface::Epm,
        2,
        Direction::Response,
        LE,
        SAMBA_LOOKUP_RESPONSE,
    )
    .unwrap();
    let DecodedStub::EpmResponse(EpmResponse::EptLookup(answer)) = &response else {
        panic!("wrong variant");
    };
    assert_eq!(answer.num_ents, 53);
    assert_eq!(answer.entries.max_count, 500);
    let towers: Vec<Tower> = answer
        .entries
        .items
        .iter()
        .map(|e| e.tower.0.as_ref().unwrap().tower().unwrap())
        .collect();
    assert!(towers.iter().all(|t| t.interface().is_some()));
    assert!(towers.iter().any(|t| t.tcp_port() == Some(135)));
    assert_round_trips(&response, 2, Direction::Response);
}

#[test]
fn samba_ept_map_exchange_decodes() {
    let request =
        decode_stub(Interface::Epm, 3, Direction::Request, LE, SAMBA_MAP_REQUEST).unwrap();
    let DecodedStub::EpmRequest(EpmRequest::EptMap(map)) = &request else {
        panic!("wrong variant");
    };
    let tower = map.map_tower.0.as_ref().unwrap().tower().unwrap();
    let samr = Uuid::from_str_const("12345778-1234-abcd-ef00-0123456789ac");
    assert_eq!(tower.interface(), Some((samr, 1, 0)));
    assert_round_trips(&request, 3, Direction::Request);

    let response = decode_stub(
        Interface::Epm,
        3,
        Direction::Response,
        LE,
        SAMBA_MAP_RESPONSE,
    )
    .unwrap();
    let DecodedStub::EpmResponse(EpmResponse::EptMap(answer)) = &response else {
        panic!("wrong variant");
    };
    assert_eq!(answer.num_towers, 1);
    assert_eq!(answer.status, Status::SUCCESS);
    let tower = answer.towers.items[0].0.as_ref().unwrap().tower().unwrap();
    assert_eq!(tower.tcp_port(), Some(49154));
    assert_eq!(
        tower.ip_address(),
        Some([0, 0, 0, 0]),
        "Samba reports 0.0.0.0"
    );
    assert_round_trips(&response, 3, Direction::Response);
}
