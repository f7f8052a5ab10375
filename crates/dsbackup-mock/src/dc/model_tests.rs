//! Random call sequences against a small model: the server never panics, every status is one
//! the operation documents, at most one backup session lives, and every byte read is the
//! file's byte at that offset as it was when opened.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dsbackup_proto::iface::ad_backup::{
    HrRBackupCloseRequest, HrRBackupEndRequest, HrRBackupGetAttachmentInformationRequest,
    HrRBackupGetBackupLogsRequest, HrRBackupOpenFileRequest, HrRBackupPingRequest,
    HrRBackupPrepareRequest, HrRBackupReadRequest, HrRBackupTruncateLogsRequest,
};
use dsbackup_proto::iface::ad_restore::{HrRRestoreEndRequest, HrRRestorePrepareRequest};
use dsbackup_proto::ndr::ContextHandle;
use dsbackup_proto::{AuthLevel, Status};
use proptest::prelude::*;

use super::backup::HR_FILE_NOT_FOUND;
use super::{Caller, ConnectionId, MockDc};
use crate::config::{MockConfig, Privileges};
use crate::sample::{SampleSpec, generate_sample_set};

#[derive(Clone, Debug)]
enum Op {
    Prepare {
        conn: u64,
        bt_flag: u32,
    },
    End {
        conn: u64,
        which: usize,
    },
    ListDatabase {
        conn: u64,
        which: usize,
    },
    ListLogs {
        conn: u64,
        which: usize,
    },
    Open {
        conn: u64,
        which: usize,
        name: usize,
    },
    Read {
        conn: u64,
        which: usize,
        cb: u32,
    },
    Close {
        conn: u64,
        which: usize,
    },
    Truncate {
        conn: u64,
        which: usize,
    },
    Ping {
        conn: u64,
    },
    Rundown {
        which: usize,
    },
    ConnectionClosed {
        conn: u64,
    },
    ExpireIdle,
    RestorePrepare {
        conn: u64,
    },
    RestoreEnd {
        conn: u64,
        which: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    // Biased towards the latest handle on connection 1, so whole open/read runs happen often.
    let conn = || prop_oneof![3 => Just(1u64), 1 => Just(2u64)];
    let which = || prop_oneof![4 => Just(0usize), 1 => 1usize..4];
    let bt_flag = prop_oneof![4 => 1u32..3, 1 => 0u32..5];
    let cb = prop_oneof![1 => Just(0u32), 8 => 1u32..70_000, 1 => Just(u32::MAX)];
    prop_oneof![
        2 => (conn(), bt_flag).prop_map(|(conn, bt_flag)| Op::Prepare { conn, bt_flag }),
        1 => (conn(), which()).prop_map(|(conn, which)| Op::End { conn, which }),
        2 => (conn(), which()).prop_map(|(conn, which)| Op::ListDatabase { conn, which }),
        2 => (conn(), which()).prop_map(|(conn, which)| Op::ListLogs { conn, which }),
        4 => (conn(), which(), 0usize..8)
            .prop_map(|(conn, which, name)| Op::Open { conn, which, name }),
        10 => (conn(), which(), cb).prop_map(|(conn, which, cb)| Op::Read { conn, which, cb }),
        2 => (conn(), which()).prop_map(|(conn, which)| Op::Close { conn, which }),
        1 => (conn(), which()).prop_map(|(conn, which)| Op::Truncate { conn, which }),
        1 => conn().prop_map(|conn| Op::Ping { conn }),
        1 => which().prop_map(|which| Op::Rundown { which }),
        1 => conn().prop_map(|conn| Op::ConnectionClosed { conn }),
        1 => Just(Op::ExpireIdle),
        1 => conn().prop_map(|conn| Op::RestorePrepare { conn }),
        1 => (conn(), which()).prop_map(|(conn, which)| Op::RestoreEnd { conn, which }),
    ]
}

/// Names a client might send: the set's, and tricks.
const NAMES: [&str; 8] = [
    r"\\DC1\C$\Windows\NTDS\ntds.dit",
    r"\\DC1\C$\Windows\NTDS\ntds.pat",
    r"\\DC1\C$\Windows\NTDS\edb00001.log",
    r"\\DC1\C$\Windows\NTDS\edb00003.log",
    r"\\DC1\C$\Windows\NTDS\edb00004.log",
    r"\\DC1\C$\Windows\NTDS\..\NTDS\ntds.dit",
    r"\\DC1\C$\Windows\NTDS\edb.chk",
    "ntds.dit",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_call_sequences_keep_the_invariants(
        ops in proptest::collection::vec((op(), 0u64..40), 1..80),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("ntds");
        let manifest = generate_sample_set(&root, &SampleSpec {
            database_size: 150_000,
            log_count: 4,
            log_size: 10_000,
            uncommitted_logs: 2,
            with_patch_file: true,
            patch_size: 3000,
            ..SampleSpec::default()
        }).unwrap();
        let originals: HashMap<String, Vec<u8>> = manifest
            .files
            .iter()
            .map(|f| (f.name.to_ascii_lowercase(), std::fs::read(&f.path).unwrap()))
            .collect();
        let dc = MockDc::new(
            MockConfig::builder("DC1", &root)
                .user("admin", "pw", Privileges::ALL)
                .idle_timeout(Duration::from_secs(60))
                .max_read_chunk(40_000)
                .build(),
        ).unwrap();
        let who = |conn| Caller::user("admin", "", AuthLevel::PKT_PRIVACY, ConnectionId(conn));
        let mut handles = vec![ContextHandle::NULL];
        let pick = |handles: &[ContextHandle], which: usize| {
            handles.get(handles.len().saturating_sub(1 + which)).copied().unwrap_or_default()
        };
        // The model: the open file (content, next offset) of the live backup session.
        let mut open: Option<(Vec<u8>, usize)> = None;
        let mut clock = 0u64;
        for (op, step) in ops {
            clock += step;
            let now: SystemTime = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + clock);
            let before = dc.active_backup();
            match op {
                Op::Prepare { conn, bt_flag } => {
                    let r = dc.backup_prepare(&who(conn), now, &HrRBackupPrepareRequest {
                        grbit: 0, bt_flag, ..HrRBackupPrepareRequest::default()
                    });
                    prop_assert!([
                        Status::SUCCESS, Status::ERROR_INVALID_PARAMETER,
                        Status::HR_BACKUP_IN_PROGRESS,
                    ].contains(&r.status), "{:?}", r.status);
                    if r.status == Status::SUCCESS {
                        prop_assert!(!handles.contains(&r.ph_context), "handles are fresh");
                        prop_assert_eq!(dc.active_backup(), Some(r.ph_context));
                        handles.push(r.ph_context);
                        open = None;
                    } else {
                        prop_assert!(r.ph_context.is_null());
                    }
                }
                Op::End { conn, which } => {
                    let h = pick(&handles, which);
                    let r = dc.backup_end(&who(conn), now, &HrRBackupEndRequest { ph_context: h });
                    if r.status == Status::SUCCESS {
                        prop_assert!(r.ph_context.is_null());
                        prop_assert_eq!(before, Some(h));
                        prop_assert_eq!(dc.active_backup(), None);
                    } else {
                        prop_assert_eq!(r.status, Status::ERROR_INVALID_PARAMETER);
                        prop_assert_eq!(r.ph_context, h);
                    }
                }
                Op::ListDatabase { conn, which } => {
                    let h = pick(&handles, which);
                    let r = dc.backup_get_attachment_information(
                        &who(conn), now, &HrRBackupGetAttachmentInformationRequest { h_context: h });
                    prop_assert!([Status::SUCCESS, Status::ERROR_INVALID_PARAMETER].contains(&r.status));
                }
                Op::ListLogs { conn, which } => {
                    let h = pick(&handles, which);
                    let r = dc.backup_get_backup_logs(
                        &who(conn), now, &HrRBackupGetBackupLogsRequest { h_context: h });
                    prop_assert!([Status::SUCCESS, Status::ERROR_INVALID_PARAMETER].contains(&r.status));
                }
                Op::Open { conn, which, name } => {
                    let h = pick(&handles, which);
                    let name = NAMES[name];
                    let r = dc.backup_open_file(&who(conn), now, &HrRBackupOpenFileRequest {
                        h_context: h, wsz_attachment_name: name.into(), cb_read_hint_size: 0,
                    });
                    prop_assert!([
                        Status::SUCCESS, Status::ERROR_INVALID_PARAMETER, Status::HR_ALREADY_OPEN,
                        HR_FILE_NOT_FOUND,
                    ].contains(&r.status), "{:?}", r.status);
                    if r.status == Status::SUCCESS {
                        prop_assert!(!name.contains(".."), "a trick opened");
                        let file = name.rsplit('\\').next().unwrap().to_ascii_lowercase();
                        let content = originals[&file].clone();
                        prop_assert_eq!(r.pli_file_size, content.len() as i64);
                        open = Some((content, 0));
                    }
                }
                Op::Read { conn, which, cb } => {
                    let h = pick(&handles, which);
                    let r = dc.backup_read(&who(conn), now, &HrRBackupReadRequest {
                        h_context: h, cb_buffer: cb,
                    });
                    prop_assert!([
                        Status::SUCCESS, Status::ERROR_INVALID_PARAMETER, Status::HR_INVALID_HANDLE,
                    ].contains(&r.status), "{:?}", r.status);
                    prop_assert_eq!(r.pb_buffer.max_count, cb);
                    if r.status == Status::SUCCESS {
                        let Some((content, position)) = open.as_mut() else {
                            return Err(TestCaseError::fail("a read succeeded with nothing open"));
                        };
                        let data = &r.pb_buffer.data;
                        prop_assert!(data.len() <= cb.min(40_000) as usize);
                        prop_assert_eq!(&data.to_bytes()[..], &content[*position..*position + data.len()]);
                        prop_assert!(!data.is_empty() || *position == content.len(), "0 bytes only at EOF");
                        *position += data.len();
                    } else {
                        prop_assert!(r.pb_buffer.data.is_empty());
                    }
                }
                Op::Close { conn, which } => {
                    let h = pick(&handles, which);
                    let r = dc.backup_close(&who(conn), now, &HrRBackupCloseRequest { h_context: h });
                    prop_assert!([
                        Status::SUCCESS, Status::ERROR_INVALID_PARAMETER, Status::HR_INVALID_HANDLE,
                    ].contains(&r.status));
                    if r.status == Status::SUCCESS {
                        prop_assert!(open.take().is_some());
                    }
                }
                Op::Truncate { conn, which } => {
                    let h = pick(&handles, which);
                    let r = dc.backup_truncate_logs(
                        &who(conn), now, &HrRBackupTruncateLogsRequest { h_context: h });
                    prop_assert!([Status::SUCCESS, Status::ERROR_INVALID_PARAMETER].contains(&r.status));
                    prop_assert!(root.join("edb00004.log").exists(), "the current log stays");
                }
                Op::Ping { conn } => {
                    let r = dc.backup_ping(&who(conn), now, &HrRBackupPingRequest {});
                    prop_assert_eq!(r.status, Status::SUCCESS);
                }
                Op::Rundown { which } => {
                    dc.rundown(pick(&handles, which));
                }
                Op::ConnectionClosed { conn } => {
                    dc.connection_closed(ConnectionId(conn));
                }
                Op::ExpireIdle => {
                    dc.expire_idle(now);
                }
                Op::RestorePrepare { conn } => {
                    let r = dc.restore_prepare(&who(conn), now, &HrRRestorePrepareRequest::new(0, None));
                    prop_assert_eq!(r.status, Status::SUCCESS);
                    prop_assert!(!handles.contains(&r.ph_context));
                    handles.push(r.ph_context);
                }
                Op::RestoreEnd { conn, which } => {
                    let h = pick(&handles, which);
                    let r = dc.restore_end(&who(conn), now, &HrRRestoreEndRequest { ph_context: h });
                    prop_assert!([Status::SUCCESS, Status::ERROR_INVALID_PARAMETER].contains(&r.status));
                }
            }
            if dc.active_backup() != before && dc.active_backup().is_none() {
                open = None;
            }
        }
    }
}
