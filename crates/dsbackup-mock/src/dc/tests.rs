//! Tests of the mock's behaviour, driven through the typed methods.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dsbackup_proto::iface::Interface;
use dsbackup_proto::iface::ad_backup::{
    AdBackupRequest, AdBackupResponse, BACKUP_TYPE_FULL, BACKUP_TYPE_INCREMENTAL,
    BACKUP_TYPE_LOGS_ONLY, HrRBackupCloseRequest, HrRBackupEndRequest,
    HrRBackupGetAttachmentInformationRequest, HrRBackupGetBackupLogsRequest,
    HrRBackupOpenFileRequest, HrRBackupPingRequest, HrRBackupPrepareRequest, HrRBackupReadRequest,
    HrRBackupTruncateLogsRequest, MAX_READ_SIZE,
};
use dsbackup_proto::iface::ad_restore::{
    AdRestoreRequest, AdRestoreResponse, EdbRstmapW, HrRIsNTDSOnlineRequest,
    HrRRestoreCheckLogsForBackupRequest, HrRRestoreEndRequest,
    HrRRestoreGetDatabaseLocationsRequest, HrRRestorePrepareRequest,
    HrRRestoreRegisterCompleteRequest, HrRRestoreRegisterRequest,
    HrRRestoreSetCurrentLogNumberRequest, RESTORE_TYPE_CATCHUP,
};
use dsbackup_proto::ndr::ContextHandle;
use dsbackup_proto::{AuthLevel, DataRep, ExpiryToken, Status};
use dsbackup_proto::{BftKind, NameEntry};
use sha2::{Digest, Sha256};

use super::backup::{HR_FILE_NOT_FOUND, HR_INCREMENTAL_BACKUP_DISABLED};
use super::*;
use crate::config::{DsMode, MockConfig, Privileges};
use crate::marker::RestoreState;
use crate::ntds::{log_file_name, write_checkpoint};
use crate::sample::{SampleManifest, SampleSpec, generate_sample_set};

const DC: &str = "DC1";
const DIR: &str = r"\\DC1\C$\Windows\NTDS";
const IDLE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    manifest: SampleManifest,
    dc: MockDc,
}

/// A sample set (database 300 KiB + patch, logs 1..=6, checkpoint 5) and a server over it that
/// returns at most 50 000 bytes per read.
fn fixture() -> Fixture {
    fixture_with(|b| b)
}

fn fixture_with(
    configure: impl FnOnce(crate::config::MockConfigBuilder) -> crate::config::MockConfigBuilder,
) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ntds");
    let manifest = generate_sample_set(
        &root,
        &SampleSpec {
            database_size: 300 * 1024 + 5,
            log_count: 6,
            log_size: 20 * 1024,
            first_log_generation: 1,
            uncommitted_logs: 2,
            with_patch_file: true,
            patch_size: 7000,
            seed: 11,
        },
    )
    .unwrap();
    let config = configure(
        MockConfig::builder(DC, &root)
            .domain("CORP")
            .user("svc-backup", "Backup1!", Privileges::BACKUP)
            .user("restorer", "Restore1!", Privileges::RESTORE)
            .user("admin", "Admin1!", Privileges::ALL)
            .user("nobody", "Nobody1!", Privileges::NONE)
            .idle_timeout(IDLE)
            .tombstone_lifetime_days(180)
            .max_read_chunk(50_000),
    )
    .build();
    let dc = MockDc::new(config).unwrap();
    Fixture {
        _tmp: tmp,
        root,
        manifest,
        dc,
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn caller(user: &str, conn: u64) -> Caller {
    Caller::user(user, "CORP", AuthLevel::PKT_INTEGRITY, ConnectionId(conn))
}

fn backup_op() -> Caller {
    caller("svc-backup", 1)
}

fn unc(file: &str) -> String {
    format!("{DIR}\\{file}")
}

fn prepare(dc: &MockDc, who: &Caller, now: SystemTime, bt_flag: u32) -> (ContextHandle, Status) {
    let response = dc.backup_prepare(
        who,
        now,
        &HrRBackupPrepareRequest {
            grbit: 0,
            bt_flag,
            wsz_backup_annotation: "NTDS Backup Interface".into(),
            dw_client_identifier: 4242,
        },
    );
    (response.ph_context, response.status)
}

fn start(f: &Fixture, bt_flag: u32) -> ContextHandle {
    let (handle, status) = prepare(&f.dc, &backup_op(), at(0), bt_flag);
    assert_eq!(status, Status::SUCCESS);
    handle
}

fn database_list(dc: &MockDc, who: &Caller, h: ContextHandle) -> (Vec<NameEntry>, Status) {
    let r = dc.backup_get_attachment_information(
        who,
        at(1),
        &HrRBackupGetAttachmentInformationRequest { h_context: h },
    );
    (r.entries().unwrap(), r.status)
}

fn log_list(dc: &MockDc, who: &Caller, h: ContextHandle) -> (Vec<NameEntry>, Status) {
    let r = dc.backup_get_backup_logs(who, at(1), &HrRBackupGetBackupLogsRequest { h_context: h });
    (r.entries().unwrap(), r.status)
}

fn open(dc: &MockDc, who: &Caller, h: ContextHandle, name: &str) -> (i64, Status) {
    let r = dc.backup_open_file(
        who,
        at(2),
        &HrRBackupOpenFileRequest {
            h_context: h,
            wsz_attachment_name: name.into(),
            cb_read_hint_size: 65536,
        },
    );
    (r.pli_file_size, r.status)
}

fn read(dc: &MockDc, who: &Caller, h: ContextHandle, cb: u32) -> (Bytes, Status) {
    let r = dc.backup_read(
        who,
        at(3),
        &HrRBackupReadRequest {
            h_context: h,
            cb_buffer: cb,
        },
    );
    assert_eq!(r.pb_buffer.max_count, cb, "conformance is cbBuffer");
    assert_eq!(r.pcb_read as usize, r.pb_buffer.data.len());
    (r.pb_buffer.data.to_bytes(), r.status)
}

fn close(dc: &MockDc, who: &Caller, h: ContextHandle) -> Status {
    dc.backup_close(who, at(4), &HrRBackupCloseRequest { h_context: h })
        .status
}

fn end(dc: &MockDc, who: &Caller, h: ContextHandle) -> (ContextHandle, Status) {
    let r = dc.backup_end(who, at(5), &HrRBackupEndRequest { ph_context: h });
    (r.ph_context, r.status)
}

fn truncate(dc: &MockDc, who: &Caller, h: ContextHandle) -> Status {
    dc.backup_truncate_logs(who, at(6), &HrRBackupTruncateLogsRequest { h_context: h })
        .status
}

/// Opens, reads to the end (checking the size and the EOF read) and closes one file.
fn fetch(dc: &MockDc, who: &Caller, h: ContextHandle, name: &str) -> Vec<u8> {
    let (size, status) = open(dc, who, h, name);
    assert_eq!(status, Status::SUCCESS, "{name}");
    let mut out = Vec::new();
    loop {
        let (data, status) = read(dc, who, h, 65536);
        assert_eq!(status, Status::SUCCESS);
        assert!(data.len() <= 50_000, "the server's chunk limit");
        if data.is_empty() {
            break;
        }
        out.extend_from_slice(&data);
    }
    assert_eq!(out.len() as i64, size, "{name}");
    assert_eq!(close(dc, who, h), Status::SUCCESS);
    out
}

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn log_names(generations: impl IntoIterator<Item = u32>) -> Vec<NameEntry> {
    generations
        .into_iter()
        .map(|g| NameEntry::new(BftKind::LOG, unc(&log_file_name(g))))
        .collect()
}

fn logs_on_disk(root: &Path) -> Vec<u32> {
    let mut generations: Vec<u32> = fs::read_dir(root)
        .unwrap()
        .filter_map(|e| crate::ntds::parse_log_file_name(e.unwrap().file_name().to_str()?))
        .collect();
    generations.sort_unstable();
    generations
}

// ---------------------------------------------------------------- whole backups

#[test]
fn full_backup_reproduces_every_file_byte_for_byte() {
    let f = fixture();
    let who = backup_op();
    let prepared = f.dc.backup_prepare(
        &who,
        at(0),
        &HrRBackupPrepareRequest {
            grbit: 1,
            bt_flag: BACKUP_TYPE_FULL,
            wsz_backup_annotation: "NTDS Backup Interface".into(),
            dw_client_identifier: 1,
        },
    );
    assert_eq!(prepared.status, Status::SUCCESS);
    assert!(!prepared.ph_context.is_null());
    assert_eq!(prepared.pcb_expiry_token, 16);
    assert_eq!(
        prepared.expiry_token().unwrap(),
        ExpiryToken {
            tombstone_lifetime_days: 180,
            backup_time: filetime(at(0)),
        }
    );
    let h = prepared.ph_context;

    let (databases, status) = database_list(&f.dc, &who, h);
    assert_eq!(status, Status::SUCCESS);
    assert_eq!(
        databases,
        [
            NameEntry::new(BftKind::NTDS_DATABASE, unc("ntds.dit")),
            NameEntry::new(BftKind::PATCH_FILE, unc("ntds.pat")),
        ]
    );
    let (logs, status) = log_list(&f.dc, &who, h);
    assert_eq!(status, Status::SUCCESS);
    assert_eq!(logs, log_names(5..=6), "checkpoint 5 to current 6");

    for entry in databases.iter().chain(&logs) {
        let bytes = fetch(&f.dc, &who, h, &entry.name);
        let file_name = entry.name.rsplit('\\').next().unwrap();
        let expected = f.manifest.file(file_name).unwrap();
        assert_eq!(bytes.len() as u64, expected.size);
        assert_eq!(sha(&bytes), expected.sha256, "{file_name}");
    }
    assert_eq!(end(&f.dc, &who, h), (ContextHandle::NULL, Status::SUCCESS));
    assert_eq!(f.dc.active_backup(), None);
}

#[test]
fn logs_only_backup_lists_no_database_and_every_log() {
    let f = fixture();
    let who = backup_op();
    let h = start(&f, BACKUP_TYPE_LOGS_ONLY);
    let r = f.dc.backup_get_attachment_information(
        &who,
        at(1),
        &HrRBackupGetAttachmentInformationRequest { h_context: h },
    );
    assert_eq!(r.status, Status::SUCCESS);
    assert_eq!(r.ppwszz_names.as_deref(), Some(&[0u16, 0][..]), "two NULs");
    assert_eq!(r.pcwc_names, 2);
    let (logs, _) = log_list(&f.dc, &who, h);
    assert_eq!(logs, log_names(1..=6));
    for entry in &logs {
        let bytes = fetch(&f.dc, &who, h, &entry.name);
        let file_name = entry.name.rsplit('\\').next().unwrap();
        assert_eq!(sha(&bytes), f.manifest.file(file_name).unwrap().sha256);
    }
    // The database was never listed by this session: it does not open.
    assert_eq!(
        open(&f.dc, &who, h, &unc("ntds.dit")).1,
        Status::ERROR_INVALID_PARAMETER
    );
}

#[test]
fn name_lists_go_on_the_wire_as_bft_unc_nul_lists() {
    let f = fixture();
    let h = start(&f, BACKUP_TYPE_FULL);
    let r = f.dc.backup_get_backup_logs(
        &backup_op(),
        at(1),
        &HrRBackupGetBackupLogsRequest { h_context: h },
    );
    let mut expected = Vec::new();
    for g in [5, 6] {
        expected.push(0x21); // BFT_LOG
        expected.extend(unc(&log_file_name(g)).encode_utf16());
        expected.push(0);
    }
    expected.push(0);
    assert_eq!(r.ppwszz_names.as_deref(), Some(expected.as_slice()));
    assert_eq!(r.pcwc_names as usize, expected.len());
}

// ---------------------------------------------------------------- prepare

#[test]
fn a_second_backup_gets_backup_in_progress_until_the_first_ends() {
    let f = fixture();
    let h = start(&f, BACKUP_TYPE_FULL);
    let other = caller("admin", 2);
    assert_eq!(
        prepare(&f.dc, &other, at(1), BACKUP_TYPE_FULL),
        (ContextHandle::NULL, Status::HR_BACKUP_IN_PROGRESS)
    );
    assert_eq!(
        prepare(&f.dc, &backup_op(), at(1), BACKUP_TYPE_LOGS_ONLY).1,
        Status::HR_BACKUP_IN_PROGRESS,
        "same connection too"
    );
    end(&f.dc, &backup_op(), h);
    let (h2, status) = prepare(&f.dc, &other, at(2), BACKUP_TYPE_FULL);
    assert_eq!(status, Status::SUCCESS);
    assert_ne!(h2, h);
}

#[test]
fn prepare_refuses_other_backup_types_and_grbits() {
    let f = fixture();
    for (grbit, bt_flag) in [
        (0, BACKUP_TYPE_INCREMENTAL),
        (0, 0),
        (0, BACKUP_TYPE_FULL | BACKUP_TYPE_LOGS_ONLY),
        (2, BACKUP_TYPE_FULL),
    ] {
        let r = f.dc.backup_prepare(
            &backup_op(),
            at(0),
            &HrRBackupPrepareRequest {
                grbit,
                bt_flag,
                wsz_backup_annotation: String::new(),
                dw_client_identifier: 0,
            },
        );
        assert_eq!(
            r.status,
            Status::ERROR_INVALID_PARAMETER,
            "{grbit} {bt_flag}"
        );
        assert!(r.ph_context.is_null());
        assert_eq!(r.ppb_expiry_token, None);
    }
    assert_eq!(f.dc.active_backup(), None);
}

#[test]
fn backup_needs_the_privilege_the_domain_and_the_auth_level() {
    let f = fixture();
    let denied = [
        caller("restorer", 1),
        caller("nobody", 1),
        caller("stranger", 1),
        Caller::user(
            "svc-backup",
            "OTHERDOM",
            AuthLevel::PKT_INTEGRITY,
            ConnectionId(1),
        ),
        Caller::user("svc-backup", "CORP", AuthLevel::CONNECT, ConnectionId(1)),
        Caller::anonymous(ConnectionId(1)),
    ];
    for who in &denied {
        assert_eq!(
            prepare(&f.dc, who, at(0), BACKUP_TYPE_FULL),
            (ContextHandle::NULL, Status::ERROR_ACCESS_DENIED),
            "{who:?}"
        );
    }
    for who in [
        Caller::user("SVC-BACKUP", "", AuthLevel::PKT_PRIVACY, ConnectionId(1)),
        Caller::user(
            "svc-backup",
            "dc1",
            AuthLevel::PKT_INTEGRITY,
            ConnectionId(1),
        ),
    ] {
        let (h, status) = prepare(&f.dc, &who, at(0), BACKUP_TYPE_FULL);
        assert_eq!(status, Status::SUCCESS, "{who:?}");
        end(&f.dc, &who, h);
    }
    // A session's operations need the privilege too.
    let h = start(&f, BACKUP_TYPE_FULL);
    let same_conn_no_privilege = caller("nobody", 1);
    assert_eq!(
        database_list(&f.dc, &same_conn_no_privilege, h).1,
        Status::ERROR_ACCESS_DENIED
    );
}

#[test]
fn backup_is_refused_in_restore_mode() {
    let f = fixture_with(|b| b.mode(DsMode::Restore));
    assert_eq!(
        prepare(&f.dc, &backup_op(), at(0), BACKUP_TYPE_FULL).1,
        Status::ERROR_ACCESS_DENIED
    );
}

// ---------------------------------------------------------------- open, read, close

#[test]
fn names_outside_the_backup_set_get_invalid_parameter() {
    let f = fixture();
    let who = backup_op();
    let h = start(&f, BACKUP_TYPE_FULL);
    // Before any list, nothing opens.
    assert_eq!(
        open(&f.dc, &who, h, &unc("ntds.dit")).1,
        Status::ERROR_INVALID_PARAMETER
    );
    database_list(&f.dc, &who, h);
    log_list(&f.dc, &who, h);
    let tricks = [
        unc(r"..\NTDS\ntds.dit"),
        unc(r".\ntds.dit"),
        format!(r"{DIR}\sub\..\ntds.dit"),
        r"\\DC1\C$/Windows/NTDS/ntds.dit".to_owned(),
        r"//DC1/C$/Windows/NTDS/ntds.dit".to_owned(),
        r"\\DC1\D$\Windows\NTDS\ntds.dit".to_owned(),
        r"\\OTHER\C$\Windows\NTDS\ntds.dit".to_owned(),
        r"C:\Windows\NTDS\ntds.dit".to_owned(),
        "ntds.dit".to_owned(),
        f.root.join("ntds.dit").to_string_lossy().into_owned(),
        format!("{}\0", unc("ntds.dit")),
        format!("{}\0.log", unc("ntds.dit")),
        format!("{} ", unc("ntds.dit")),
        format!(" {}", unc("ntds.dit")),
        format!("{}.bak", unc("ntds.dit")),
        unc("ntds.di"),
        format!("\\{}", unc("ntds.dit")),
        format!("D{}", unc("ntds.dit")),
        format!("\u{44}{}", unc("ntds.dit")),
        unc("edb.chk"),
        unc(&log_file_name(1)),
        unc("edb.log"),
        String::new(),
        DIR.to_owned(),
        format!("{DIR}\\"),
    ];
    for name in &tricks {
        assert_eq!(
            open(&f.dc, &who, h, name),
            (0, Status::ERROR_INVALID_PARAMETER),
            "{name:?}"
        );
    }
    // The exact name opens, in any ASCII case.
    let (size, status) = open(&f.dc, &who, h, &unc("NTDS.DIT").to_lowercase());
    assert_eq!(status, Status::SUCCESS);
    assert_eq!(
        u64::try_from(size).unwrap(),
        f.manifest.file("ntds.dit").unwrap().size
    );
}

#[test]
fn a_second_open_gets_already_open() {
    let f = fixture();
    let who = backup_op();
    let h = start(&f, BACKUP_TYPE_FULL);
    database_list(&f.dc, &who, h);
    assert_eq!(open(&f.dc, &who, h, &unc("ntds.dit")).1, Status::SUCCESS);
    assert_eq!(
        open(&f.dc, &who, h, &unc("ntds.pat")),
        (0, Status::HR_ALREADY_OPEN)
    );
    assert_eq!(
        open(&f.dc, &who, h, &unc("ntds.dit")).1,
        Status::HR_ALREADY_OPEN
    );
    assert_eq!(close(&f.dc, &who, h), Status::SUCCESS);
    assert_eq!(open(&f.dc, &who, h, &unc("ntds.pat")).1, Status::SUCCESS);
}

#[test]
fn close_and_read_with_no_file_open_get_invalid_handle() {
    let f = fixture();
    let who = backup_op();
    let h = start(&f, BACKUP_TYPE_FULL);
    assert_eq!(close(&f.dc, &who, h), Status::HR_INVALID_HANDLE);
    assert_eq!(read(&f.dc, &who, h, 8192).1, Status::HR_INVALID_HANDLE);
    database_list(&f.dc, &who, h);
    open(&f.dc, &who, h, &unc("ntds.pat"));
    assert_eq!(close(&f.dc, &who, h), Status::SUCCESS);
    assert_eq!(close(&f.dc, &who, h), Status::HR_INVALID_HANDLE, "twice");
}

#[test]
fn end_of_file_is_a_read_of_zero_bytes_every_time() {
    let f = fixture();
    let who = backup_op();
    let h = start(&f, BACKUP_TYPE_FULL);
    database_list(&f.dc, &who, h);
    let (size, _) = open(&f.dc, &who, h, &unc("ntds.pat"));
    assert_eq!(size, 7000);
    let (data, status) = read(&f.dc, &who, h, 65536);
    assert_eq!((data.len(), status), (7000, Status::SUCCESS));
    for _ in 0..3 {
        let (data, status) = read(&f.dc, &who, h, 65536);
        assert_eq!((data.len(), status), (0, Status::SUCCESS));
    }
}

#[test]
fn reads_are_bounded_by_cb_buffer_the_chunk_limit_and_16_mib() {
    let f = fixture();
    let who = backup_op();
    let h = start(&f, BACKUP_TYPE_FULL);
    database_list(&f.dc, &who, h);
    open(&f.dc, &who, h, &unc("ntds.dit"));
    assert_eq!(
        read(&f.dc, &who, h, 0),
        (Bytes::new(), Status::ERROR_INVALID_PARAMETER)
    );
    assert_eq!(
        read(&f.dc, &who, h, MAX_READ_SIZE + 1),
        (Bytes::new(), Status::ERROR_INVALID_PARAMETER)
    );
    let expected = fs::read(&f.manifest.file("ntds.dit").unwrap().path).unwrap();
    let (first, _) = read(&f.dc, &who, h, 1000);
    assert_eq!(&first[..], &expected[..1000]);
    let (second, _) = read(&f.dc, &who, h, MAX_READ_SIZE);
    assert_eq!(
        second.len(),
        50_000,
        "the server returns fewer bytes than asked"
    );
    assert_eq!(
        &second[..],
        &expected[1000..51_000],
        "the refused reads moved nothing"
    );
}

#[test]
fn reads_return_the_bytes_as_they_were_at_open() {
    let f = fixture();
    let who = backup_op();
    let h = start(&f, BACKUP_TYPE_FULL);
    database_list(&f.dc, &who, h);
    log_list(&f.dc, &who, h);
    let db = f.manifest.file("ntds.dit").unwrap();
    let (size, _) = open(&f.dc, &who, h, &unc("ntds.dit"));
    // The directory changes under the open file: rewritten, then deleted.
    fs::write(&db.path, vec![0xAB; 10]).unwrap();
    let (first, _) = read(&f.dc, &who, h, 65536);
    fs::remove_file(&db.path).unwrap();
    let mut bytes = first.to_vec();
    loop {
        let (data, _) = read(&f.dc, &who, h, 65536);
        if data.is_empty() {
            break;
        }
        bytes.extend_from_slice(&data);
    }
    assert_eq!(bytes.len() as i64, size);
    assert_eq!(sha(&bytes), db.sha256);
    close(&f.dc, &who, h);
    // The snapshot is gone with the close, the session directory with the end.
    let session_dir = f.dc.state_dir().join(SESSIONS_DIR).join(h.uuid.to_string());
    assert_eq!(fs::read_dir(&session_dir).unwrap().count(), 0);
    // A listed file deleted before its open is hrFileNotFound.
    let log = f.manifest.file(&log_file_name(6)).unwrap();
    fs::remove_file(&log.path).unwrap();
    assert_eq!(
        open(&f.dc, &who, h, &unc(&log_file_name(6))),
        (0, HR_FILE_NOT_FOUND)
    );
    open(&f.dc, &who, h, &unc(&log_file_name(5)));
    end(&f.dc, &who, h);
    assert!(!session_dir.exists());
}

// ---------------------------------------------------------------- truncate

#[test]
fn truncate_after_a_full_backup_deletes_the_committed_logs_only() {
    let f = fixture();
    let who = backup_op();
    let h = start(&f, BACKUP_TYPE_FULL);
    database_list(&f.dc, &who, h);
    log_list(&f.dc, &who, h);
    // A log that appears after the lists were taken is not this session's.
    fs::write(f.root.join(log_file_name(7)), b"new").unwrap();
    assert_eq!(truncate(&f.dc, &who, h), Status::SUCCESS);
    assert_eq!(logs_on_disk(&f.root), [5, 6, 7]);
    assert_eq!(
        truncate(&f.dc, &who, h),
        Status::SUCCESS,
        "again: nothing left"
    );
    assert_eq!(logs_on_disk(&f.root), [5, 6, 7]);
}

#[test]
fn truncate_without_the_database_list_keeps_logs_the_session_did_not_back_up() {
    let f = fixture();
    let who = backup_op();
    let h = start(&f, BACKUP_TYPE_FULL);
    log_list(&f.dc, &who, h);
    assert_eq!(truncate(&f.dc, &who, h), Status::SUCCESS);
    assert_eq!(logs_on_disk(&f.root), [1, 2, 3, 4, 5, 6]);
}

#[test]
fn truncate_after_logs_only_deletes_listed_committed_logs_never_the_current() {
    let f = fixture();
    let who = backup_op();
    let h = start(&f, BACKUP_TYPE_LOGS_ONLY);
    log_list(&f.dc, &who, h);
    // The checkpoint moves past every log: it is clamped to the current one, which stays.
    write_checkpoint(&f.root, 99).unwrap();
    assert_eq!(truncate(&f.dc, &who, h), Status::SUCCESS);
    assert_eq!(logs_on_disk(&f.root), [6]);
}

#[test]
fn truncate_before_any_list_deletes_nothing() {
    let f = fixture();
    let h = start(&f, BACKUP_TYPE_LOGS_ONLY);
    assert_eq!(truncate(&f.dc, &backup_op(), h), Status::SUCCESS);
    assert_eq!(logs_on_disk(&f.root), [1, 2, 3, 4, 5, 6]);
}

// ---------------------------------------------------------------- session lifetime

#[test]
fn an_idle_session_is_ended_and_frees_the_server() {
    let f = fixture();
    let h = start(&f, BACKUP_TYPE_FULL);
    let other = caller("admin", 2);
    // Exactly the timeout is not past it.
    assert_eq!(
        prepare(&f.dc, &other, at(0) + IDLE, BACKUP_TYPE_FULL).1,
        Status::HR_BACKUP_IN_PROGRESS
    );
    assert_eq!(f.dc.expire_idle(at(0) + IDLE), []);
    assert_eq!(f.dc.expire_idle(at(1) + IDLE), [h]);
    assert_eq!(f.dc.active_backup(), None);
    assert_eq!(
        database_list(&f.dc, &backup_op(), h).1,
        Status::ERROR_INVALID_PARAMETER
    );
    assert_eq!(
        prepare(&f.dc, &other, at(2) + IDLE, BACKUP_TYPE_FULL).1,
        Status::SUCCESS
    );
}

#[test]
fn prepare_ends_an_idle_session_itself() {
    let f = fixture();
    start(&f, BACKUP_TYPE_FULL);
    let (h2, status) = prepare(&f.dc, &caller("admin", 2), at(1) + IDLE, BACKUP_TYPE_FULL);
    assert_eq!(status, Status::SUCCESS);
    assert_eq!(f.dc.active_backup(), Some(h2));
}

#[test]
fn calls_and_pings_keep_a_session_alive() {
    let f = fixture();
    let who = backup_op();
    let h = start(&f, BACKUP_TYPE_FULL);
    let ping = f.dc.backup_ping(&who, at(50), &HrRBackupPingRequest {});
    assert_eq!(ping.status, Status::SUCCESS);
    assert_eq!(f.dc.expire_idle(at(100)), []);
    // A ping from another connection does not count.
    f.dc.backup_ping(&caller("admin", 2), at(100), &HrRBackupPingRequest {});
    assert_eq!(f.dc.expire_idle(at(111)), [h]);
}

#[test]
fn rundown_and_connection_close_end_the_session() {
    let f = fixture();
    let who = backup_op();
    let h = start(&f, BACKUP_TYPE_FULL);
    database_list(&f.dc, &who, h);
    open(&f.dc, &who, h, &unc("ntds.dit"));
    assert!(f.dc.rundown(h));
    assert!(!f.dc.rundown(h), "already gone");
    assert_eq!(f.dc.active_backup(), None);
    assert_eq!(
        read(&f.dc, &who, h, 8192).1,
        Status::ERROR_INVALID_PARAMETER
    );

    let h = start(&f, BACKUP_TYPE_FULL);
    assert_eq!(f.dc.connection_closed(ConnectionId(9)), []);
    assert_eq!(f.dc.connection_closed(ConnectionId(1)), [h]);
    assert_eq!(
        prepare(&f.dc, &caller("admin", 2), at(1), BACKUP_TYPE_FULL).1,
        Status::SUCCESS
    );
}

#[test]
fn handles_of_another_connection_null_or_unknown_are_invalid_parameter() {
    let f = fixture();
    let h = start(&f, BACKUP_TYPE_FULL);
    let thief = caller("svc-backup", 2);
    assert_eq!(
        database_list(&f.dc, &thief, h).1,
        Status::ERROR_INVALID_PARAMETER
    );
    assert_eq!(
        log_list(&f.dc, &thief, h).1,
        Status::ERROR_INVALID_PARAMETER
    );
    assert_eq!(
        open(&f.dc, &thief, h, &unc("ntds.dit")).1,
        Status::ERROR_INVALID_PARAMETER
    );
    assert_eq!(
        read(&f.dc, &thief, h, 10).1,
        Status::ERROR_INVALID_PARAMETER
    );
    assert_eq!(close(&f.dc, &thief, h), Status::ERROR_INVALID_PARAMETER);
    assert_eq!(truncate(&f.dc, &thief, h), Status::ERROR_INVALID_PARAMETER);
    assert_eq!(end(&f.dc, &thief, h), (h, Status::ERROR_INVALID_PARAMETER));
    let who = backup_op();
    let forged = ContextHandle {
        attributes: 0,
        uuid: Uuid([7; 16]),
    };
    for handle in [ContextHandle::NULL, forged] {
        assert_eq!(
            database_list(&f.dc, &who, handle).1,
            Status::ERROR_INVALID_PARAMETER
        );
        assert_eq!(
            end(&f.dc, &who, handle),
            (handle, Status::ERROR_INVALID_PARAMETER)
        );
    }
    assert_eq!(
        f.dc.active_backup(),
        Some(h),
        "the session survives all that"
    );
}

#[test]
fn handles_are_deterministic_unique_and_never_null() {
    let a = fixture();
    let b = fixture();
    let mut seen = std::collections::HashSet::new();
    for i in 0..20 {
        let (ha, _) = prepare(&a.dc, &backup_op(), at(i), BACKUP_TYPE_FULL);
        let (hb, _) = prepare(&b.dc, &backup_op(), at(i), BACKUP_TYPE_FULL);
        assert_eq!(ha, hb, "same seed, same handles");
        assert!(!ha.is_null());
        assert!(seen.insert(ha));
        end(&a.dc, &backup_op(), ha);
        end(&b.dc, &backup_op(), hb);
    }
    let c = fixture_with(|b| b.handle_seed(1));
    let (hc, _) = prepare(&c.dc, &backup_op(), at(0), BACKUP_TYPE_FULL);
    assert!(!seen.contains(&hc), "another seed, other handles");
}

// ---------------------------------------------------------------- restore

fn admin(conn: u64) -> Caller {
    caller("admin", conn)
}

fn token_at(now: SystemTime, days: u32) -> ExpiryToken {
    ExpiryToken {
        tombstone_lifetime_days: days,
        backup_time: filetime(now),
    }
}

fn restore_prepare(
    dc: &MockDc,
    who: &Caller,
    now: SystemTime,
    token: Option<Bytes>,
) -> (ContextHandle, Status) {
    let r = dc.restore_prepare(
        who,
        now,
        &HrRRestorePrepareRequest {
            rt_flag: RESTORE_TYPE_CATCHUP,
            cb_expiry_token: token
                .as_ref()
                .map_or(0, |t| u32::try_from(t.len()).unwrap()),
            pb_expiry_token: token,
        },
    );
    (r.ph_context, r.status)
}

fn token_bytes(token: &ExpiryToken) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(&token.encode()))
}

fn register_request(h: ContextHandle, gen_low: u32, gen_high: u32) -> HrRRestoreRegisterRequest {
    HrRRestoreRegisterRequest {
        h_context: h,
        wsz_checkpoint_file_path: r"C:\Windows\NTDS".into(),
        wsz_log_path: r"C:\Windows\NTDS".into(),
        rgrstmap: Some(vec![EdbRstmapW {
            wsz_database_name: Some(r"C:\Windows\NTDS\ntds.dit".into()),
            wsz_new_database_name: Some(r"C:\Windows\NTDS\ntds.dit".into()),
        }]),
        crstmap: 1,
        wsz_backup_log_path: r"C:\restore\logs".into(),
        gen_low,
        gen_high,
    }
}

fn register(dc: &MockDc, who: &Caller, request: &HrRRestoreRegisterRequest) -> Status {
    dc.restore_register(who, at(10), request).status
}

fn complete(dc: &MockDc, who: &Caller, h: ContextHandle, hr: Status) -> Status {
    dc.restore_register_complete(
        who,
        at(11),
        &HrRRestoreRegisterCompleteRequest {
            h_context: h,
            hr_restore_state: hr,
        },
    )
    .status
}

fn online(dc: &MockDc) -> i32 {
    let r = dc.is_ntds_online(&admin(1), at(0), &HrRIsNTDSOnlineRequest {});
    assert_eq!(r.status, Status::SUCCESS);
    r.pf_online
}

fn locations(dc: &MockDc, who: &Caller, h: ContextHandle) -> (Vec<NameEntry>, Status) {
    let r = dc.restore_get_database_locations(
        who,
        at(1),
        &HrRRestoreGetDatabaseLocationsRequest { h_context: h },
    );
    (r.entries().unwrap(), r.status)
}

fn expected_locations() -> Vec<NameEntry> {
    vec![
        NameEntry::new(BftKind::NTDS_DATABASE, unc("ntds.dit")),
        NameEntry::new(BftKind::LOG_DIR, DIR),
        NameEntry::new(BftKind::CHECKPOINT_DIR, DIR),
    ]
}

#[test]
fn is_ntds_online_reports_the_mode_to_privileged_callers() {
    let f = fixture();
    assert_eq!(online(&f.dc), 1);
    let r =
        f.dc.is_ntds_online(&backup_op(), at(0), &HrRIsNTDSOnlineRequest {});
    assert_eq!((r.pf_online, r.status), (1, Status::SUCCESS));
    f.dc.set_mode(DsMode::Restore);
    assert_eq!(online(&f.dc), 0);
    for who in [caller("nobody", 1), Caller::anonymous(ConnectionId(1))] {
        let r = f.dc.is_ntds_online(&who, at(0), &HrRIsNTDSOnlineRequest {});
        assert_eq!(r.status, Status::ERROR_ACCESS_DENIED);
    }
}

#[test]
fn a_restore_without_token_is_restricted_to_database_locations() {
    let f = fixture();
    let who = admin(1);
    let (h, status) = restore_prepare(&f.dc, &who, at(0), None);
    assert_eq!(status, Status::SUCCESS, "allowed while online");
    assert!(!h.is_null());
    assert_eq!(
        locations(&f.dc, &who, h),
        (expected_locations(), Status::SUCCESS)
    );
    assert_eq!(
        register(&f.dc, &who, &register_request(h, 1, 6)),
        Status::HR_MISSING_EXPIRY_TOKEN
    );
    assert_eq!(
        complete(&f.dc, &who, h, Status::SUCCESS),
        Status::HR_MISSING_EXPIRY_TOKEN
    );
    let r =
        f.dc.restore_end(&who, at(2), &HrRRestoreEndRequest { ph_context: h });
    assert_eq!(
        (r.ph_context, r.status),
        (ContextHandle::NULL, Status::SUCCESS)
    );
    let r =
        f.dc.restore_end(&who, at(2), &HrRRestoreEndRequest { ph_context: h });
    assert_eq!(
        (r.ph_context, r.status),
        (h, Status::ERROR_INVALID_PARAMETER)
    );
    assert_eq!(f.dc.restore_marker(), None);
}

#[test]
fn a_restore_with_token_is_refused_while_online() {
    let f = fixture();
    let token = token_bytes(&token_at(at(0), 180));
    assert_eq!(
        restore_prepare(&f.dc, &admin(1), at(1), token),
        (ContextHandle::NULL, Status::ERROR_ACCESS_DENIED)
    );
}

#[test]
fn restore_needs_the_restore_privilege_and_a_known_rt_flag() {
    let f = fixture_with(|b| b.mode(DsMode::Restore));
    for who in [
        backup_op(),
        caller("nobody", 1),
        Caller::anonymous(ConnectionId(1)),
    ] {
        assert_eq!(
            restore_prepare(&f.dc, &who, at(0), None).1,
            Status::ERROR_ACCESS_DENIED,
            "{who:?}"
        );
    }
    assert_eq!(
        restore_prepare(&f.dc, &caller("restorer", 1), at(0), None).1,
        Status::SUCCESS
    );
    for rt_flag in [1, 2, 3, 8] {
        let r = f.dc.restore_prepare(
            &admin(1),
            at(0),
            &HrRRestorePrepareRequest::new(rt_flag, None),
        );
        assert_eq!(r.status, Status::ERROR_INVALID_PARAMETER, "{rt_flag}");
    }
    let r =
        f.dc.restore_prepare(&admin(1), at(0), &HrRRestorePrepareRequest::new(0, None));
    assert_eq!(r.status, Status::SUCCESS);
}

#[test]
fn tokens_of_unknown_format_are_refused() {
    let f = fixture_with(|b| b.mode(DsMode::Restore));
    let good = token_at(at(0), 180).encode();
    let mut version2 = good;
    version2[0] = 2;
    for bytes in [
        &good[..15],
        &[good.as_slice(), &[0]].concat()[..],
        &version2[..],
        &[][..],
    ] {
        assert_eq!(
            restore_prepare(&f.dc, &admin(1), at(1), Some(Bytes::copy_from_slice(bytes))),
            (ContextHandle::NULL, Status::HR_UNKNOWN_EXPIRY_TOKEN_FORMAT),
            "{bytes:02x?}"
        );
    }
    // A 1 MiB token, and a good token whose cbExpiryToken disagrees with its bytes.
    let huge = Bytes::from(vec![1_u8; 1 << 20]);
    assert_eq!(
        restore_prepare(&f.dc, &admin(1), at(1), Some(huge)),
        (ContextHandle::NULL, Status::HR_UNKNOWN_EXPIRY_TOKEN_FORMAT)
    );
    let lying = f.dc.restore_prepare(
        &admin(1),
        at(1),
        &HrRRestorePrepareRequest {
            rt_flag: 0,
            cb_expiry_token: 1 << 20,
            pb_expiry_token: Some(Bytes::copy_from_slice(&good)),
        },
    );
    assert_eq!(lying.status, Status::HR_UNKNOWN_EXPIRY_TOKEN_FORMAT);
}

#[test]
fn tokens_older_than_the_tombstone_lifetime_are_refused() {
    let f = fixture_with(|b| b.mode(DsMode::Restore));
    let token = token_bytes(&token_at(at(0), 1));
    assert_eq!(
        restore_prepare(&f.dc, &admin(1), at(0) + DAY, token.clone()).1,
        Status::SUCCESS,
        "exactly the lifetime is not past it"
    );
    assert_eq!(
        restore_prepare(&f.dc, &admin(1), at(1) + DAY, token),
        (ContextHandle::NULL, Status::HR_CONTENTS_EXPIRED)
    );
}

#[test]
fn a_backup_token_restores_on_the_same_server() {
    let f = fixture();
    let prepared = f.dc.backup_prepare(
        &backup_op(),
        at(0),
        &HrRBackupPrepareRequest {
            grbit: 0,
            bt_flag: BACKUP_TYPE_FULL,
            wsz_backup_annotation: String::new(),
            dw_client_identifier: 0,
        },
    );
    end(&f.dc, &backup_op(), prepared.ph_context);
    f.dc.set_mode(DsMode::Restore);
    let token = prepared.ppb_expiry_token;
    assert_eq!(
        restore_prepare(&f.dc, &admin(1), at(100) + 179 * DAY, token.clone()).1,
        Status::SUCCESS
    );
    assert_eq!(
        restore_prepare(&f.dc, &admin(1), at(1) + 180 * DAY, token).1,
        Status::HR_CONTENTS_EXPIRED
    );
}

#[test]
fn register_checks_generations_paths_and_the_map_count() {
    let f = fixture_with(|b| b.mode(DsMode::Restore));
    let who = admin(1);
    let (h, _) = restore_prepare(&f.dc, &who, at(0), token_bytes(&token_at(at(0), 180)));
    let mut bad = vec![
        register_request(h, 5, 4),
        register_request(h, 0, 0x10_0000),
        register_request(h, 0x10_0000, 0x10_0000),
    ];
    let mut r = register_request(h, 1, 2);
    r.crstmap = 2;
    bad.push(r);
    let mut r = register_request(h, 1, 2);
    r.rgrstmap = None;
    bad.push(r);
    for field in 0..3 {
        let mut r = register_request(h, 1, 2);
        match field {
            0 => r.wsz_checkpoint_file_path.clear(),
            1 => r.wsz_log_path.clear(),
            _ => r.wsz_backup_log_path.clear(),
        }
        bad.push(r);
    }
    for request in &bad {
        assert_eq!(
            register(&f.dc, &who, request),
            Status::ERROR_INVALID_PARAMETER,
            "{request:?}"
        );
    }
    assert_eq!(f.dc.restore_marker(), None);
    let mut no_map = register_request(h, 0, 0xF_FFFF);
    no_map.rgrstmap = None;
    no_map.crstmap = 0;
    assert_eq!(
        register(&f.dc, &who, &no_map),
        Status::SUCCESS,
        "the full range"
    );
    assert_eq!(
        register(&f.dc, &caller("restorer", 2), &register_request(h, 1, 2)),
        Status::ERROR_INVALID_PARAMETER,
        "another connection's handle"
    );
}

#[test]
fn complete_needs_a_registration_in_this_session() {
    let f = fixture_with(|b| b.mode(DsMode::Restore));
    let who = admin(1);
    let (h, _) = restore_prepare(&f.dc, &who, at(0), token_bytes(&token_at(at(0), 180)));
    assert_eq!(
        complete(&f.dc, &who, h, Status::SUCCESS),
        Status::ERROR_INVALID_PARAMETER
    );
}

#[test]
fn the_restore_marker_outlives_the_server() {
    let f = fixture();
    f.dc.set_mode(DsMode::Restore);
    let who = admin(1);
    let (h, _) = restore_prepare(&f.dc, &who, at(0), token_bytes(&token_at(at(0), 180)));
    assert_eq!(
        locations(&f.dc, &who, h),
        (expected_locations(), Status::SUCCESS)
    );
    assert_eq!(
        register(&f.dc, &who, &register_request(h, 3, 6)),
        Status::SUCCESS
    );
    let marker = f.dc.restore_marker().unwrap();
    assert_eq!(marker.state, RestoreState::Registered);
    assert_eq!((marker.gen_low, marker.gen_high), (3, 6));
    assert_eq!(marker.backup_log_path, r"C:\restore\logs");
    assert_eq!(marker.mappings.len(), 1);
    assert_eq!(marker.registered_at, filetime(at(10)));

    // A new server on the same directory, configured online, sees the pending restore and
    // stays in restore mode.
    let again = MockDc::new(f.dc.config().clone()).unwrap();
    assert_eq!(again.restore_marker(), Some(marker));
    assert_eq!(online(&again), 0);

    // Completed with a failure: the directory still cannot start.
    assert_eq!(complete(&f.dc, &who, h, Status::HR_ERROR), Status::SUCCESS);
    let again = MockDc::new(f.dc.config().clone()).unwrap();
    assert_eq!(
        again.restore_marker().unwrap().state,
        RestoreState::Completed {
            hr_restore_state: Status::HR_ERROR.0
        }
    );
    assert_eq!(online(&again), 0);

    // Completed successfully: the next start is online.
    assert_eq!(complete(&f.dc, &who, h, Status::SUCCESS), Status::SUCCESS);
    let again = MockDc::new(f.dc.config().clone()).unwrap();
    assert_eq!(
        again.restore_marker().unwrap().state,
        RestoreState::Completed {
            hr_restore_state: 0
        }
    );
    assert_eq!(online(&again), 1);
}

#[test]
fn a_pending_restore_of_a_live_session_blocks_other_registrations() {
    let f = fixture_with(|b| b.mode(DsMode::Restore));
    let token = token_bytes(&token_at(at(0), 180));
    let (a, _) = restore_prepare(&f.dc, &admin(1), at(0), token.clone());
    let (b, _) = restore_prepare(&f.dc, &admin(2), at(0), token);
    assert_eq!(
        register(&f.dc, &admin(1), &register_request(a, 1, 2)),
        Status::SUCCESS
    );
    assert_eq!(
        register(&f.dc, &admin(2), &register_request(b, 1, 2)),
        Status::HR_RESTORE_IN_PROGRESS
    );
    assert_eq!(
        register(&f.dc, &admin(1), &register_request(a, 1, 3)),
        Status::SUCCESS,
        "again"
    );
    assert_eq!(f.dc.connection_closed(ConnectionId(1)), [a]);
    assert_eq!(
        register(&f.dc, &admin(2), &register_request(b, 4, 5)),
        Status::SUCCESS
    );
    assert_eq!(f.dc.restore_marker().unwrap().gen_low, 4);
}

#[test]
fn restore_sessions_expire_and_run_down() {
    let f = fixture();
    let (h, _) = restore_prepare(&f.dc, &admin(1), at(0), None);
    assert_eq!(f.dc.active_restores(), [h]);
    assert_eq!(f.dc.expire_idle(at(1) + IDLE), [h]);
    assert_eq!(
        locations(&f.dc, &admin(1), h).1,
        Status::ERROR_INVALID_PARAMETER
    );
    let (h, _) = restore_prepare(&f.dc, &admin(1), at(0), None);
    assert!(f.dc.rundown(h));
    assert_eq!(f.dc.active_restores(), []);
}

#[test]
fn database_locations_also_answer_the_backup_session() {
    let f = fixture();
    let h = start(&f, BACKUP_TYPE_FULL);
    // The client asks on its own ad_restore association: another connection.
    assert_eq!(
        locations(&f.dc, &caller("svc-backup", 7), h),
        (expected_locations(), Status::SUCCESS)
    );
    assert_eq!(
        locations(&f.dc, &caller("restorer", 7), h).1,
        Status::ERROR_ACCESS_DENIED
    );
    assert_eq!(
        locations(&f.dc, &caller("svc-backup", 7), ContextHandle::NULL).1,
        Status::ERROR_INVALID_PARAMETER
    );
}

#[test]
fn set_current_log_number_disables_logs_only_backups_until_a_full_one() {
    let f = fixture();
    let set = |who: &Caller, n: u32| {
        f.dc.restore_set_current_log_number(
            who,
            at(0),
            &HrRRestoreSetCurrentLogNumberRequest { dw_current_log: n },
        )
        .status
    };
    assert_eq!(set(&backup_op(), 7), Status::ERROR_ACCESS_DENIED);
    assert_eq!(set(&admin(1), 0x10_0000), Status::ERROR_INVALID_PARAMETER);
    assert_eq!(set(&admin(1), 0xF_FFFF), Status::SUCCESS);
    assert_eq!(set(&admin(1), 0xFFFF_FFFF), Status::SUCCESS);
    assert_eq!(f.dc.current_log_number(), Some(0xFFFF_FFFF));
    assert_eq!(
        prepare(&f.dc, &backup_op(), at(0), BACKUP_TYPE_LOGS_ONLY).1,
        HR_INCREMENTAL_BACKUP_DISABLED
    );
    let h = start(&f, BACKUP_TYPE_FULL);
    end(&f.dc, &backup_op(), h);
    assert_eq!(
        prepare(&f.dc, &backup_op(), at(1), BACKUP_TYPE_LOGS_ONLY).1,
        Status::SUCCESS
    );
}

#[test]
fn check_logs_for_backup_finds_a_missing_log() {
    let f = fixture();
    let check = || {
        f.dc.restore_check_logs_for_backup(
            &backup_op(),
            at(0),
            &HrRRestoreCheckLogsForBackupRequest {
                wsz_backup_annotation: "NTDS Backup Interface".into(),
            },
        )
        .status
    };
    assert_eq!(check(), Status::SUCCESS);
    fs::remove_file(f.root.join(log_file_name(1))).unwrap();
    assert_eq!(check(), Status::SUCCESS, "a committed log is not needed");
    fs::remove_file(f.root.join(log_file_name(5))).unwrap();
    assert_eq!(check(), Status::HR_LOG_FILE_NOT_FOUND);
    let r = f.dc.restore_check_logs_for_backup(
        &caller("nobody", 1),
        at(0),
        &HrRRestoreCheckLogsForBackupRequest {
            wsz_backup_annotation: String::new(),
        },
    );
    assert_eq!(r.status, Status::ERROR_ACCESS_DENIED);
}

// ---------------------------------------------------------------- dispatch and faults

#[test]
fn dispatch_serves_a_whole_backup_through_the_request_enums() {
    let f = fixture();
    let who = backup_op();
    let call = |request: AdBackupRequest| f.dc.dispatch_ad_backup(&who, at(0), &request).response;
    let AdBackupResponse::HrRBackupPrepare(prepared) =
        call(AdBackupRequest::HrRBackupPrepare(HrRBackupPrepareRequest {
            grbit: 0,
            bt_flag: BACKUP_TYPE_FULL,
            wsz_backup_annotation: String::new(),
            dw_client_identifier: 0,
        }))
    else {
        panic!("wrong response variant");
    };
    let h = prepared.ph_context;
    let AdBackupResponse::HrRBackupGetAttachmentInformation(list) =
        call(AdBackupRequest::HrRBackupGetAttachmentInformation(
            HrRBackupGetAttachmentInformationRequest { h_context: h },
        ))
    else {
        panic!("wrong response variant");
    };
    let mut got = BTreeMap::new();
    for entry in list.entries().unwrap() {
        let response = call(AdBackupRequest::HrRBackupOpenFile(
            HrRBackupOpenFileRequest {
                h_context: h,
                wsz_attachment_name: entry.name.clone(),
                cb_read_hint_size: 0,
            },
        ));
        assert_eq!(response.opnum(), 3);
        let mut bytes = Vec::new();
        loop {
            let AdBackupResponse::HrRBackupRead(r) =
                call(AdBackupRequest::HrRBackupRead(HrRBackupReadRequest {
                    h_context: h,
                    cb_buffer: 1 << 20,
                }))
            else {
                panic!("wrong response variant");
            };
            if r.pb_buffer.data.is_empty() {
                break;
            }
            bytes.extend_from_slice(&r.pb_buffer.data.to_bytes());
        }
        call(AdBackupRequest::HrRBackupClose(HrRBackupCloseRequest {
            h_context: h,
        }));
        got.insert(entry.name, sha(&bytes));
    }
    assert_eq!(
        got[&unc("ntds.dit")],
        f.manifest.file("ntds.dit").unwrap().sha256
    );
    assert_eq!(
        got[&unc("ntds.pat")],
        f.manifest.file("ntds.pat").unwrap().sha256
    );
    let response = call(AdBackupRequest::HrRBackupPing(HrRBackupPingRequest {}));
    assert_eq!(response.opnum(), 8);
    let AdBackupResponse::HrRBackupEnd(ended) =
        call(AdBackupRequest::HrRBackupEnd(HrRBackupEndRequest {
            ph_context: h,
        }))
    else {
        panic!("wrong response variant");
    };
    assert!(ended.ph_context.is_null());
}

#[test]
fn a_scripted_status_replaces_the_operation() {
    let f = fixture();
    let who = backup_op();
    let h = start(&f, BACKUP_TYPE_FULL);
    database_list(&f.dc, &who, h);
    f.dc.faults()
        .status_for_opnum_times(Interface::AdBackup, 3, Status::HR_ERROR, 1);
    let open_request = AdBackupRequest::HrRBackupOpenFile(HrRBackupOpenFileRequest {
        h_context: h,
        wsz_attachment_name: unc("ntds.dit"),
        cb_read_hint_size: 0,
    });
    let reply = f.dc.dispatch_ad_backup(&who, at(1), &open_request);
    let AdBackupResponse::HrRBackupOpenFile(r) = reply.response else {
        panic!("wrong response variant");
    };
    assert_eq!((r.pli_file_size, r.status), (0, Status::HR_ERROR));
    assert_eq!(
        close(&f.dc, &who, h),
        Status::HR_INVALID_HANDLE,
        "nothing was opened"
    );
    // The fault ran out: the next open works.
    let AdBackupResponse::HrRBackupOpenFile(r) =
        f.dc.dispatch_ad_backup(&who, at(1), &open_request).response
    else {
        panic!("wrong response variant");
    };
    assert_eq!(r.status, Status::SUCCESS);

    // A read fault keeps the conformance of the request.
    f.dc.faults()
        .status_for_opnum(Interface::AdBackup, 4, Status::ERROR_NOT_ENOUGH_MEMORY);
    let AdBackupResponse::HrRBackupRead(r) =
        f.dc.dispatch_ad_backup(
            &who,
            at(1),
            &AdBackupRequest::HrRBackupRead(HrRBackupReadRequest {
                h_context: h,
                cb_buffer: 4096,
            }),
        )
        .response
    else {
        panic!("wrong response variant");
    };
    assert_eq!(r.status, Status::ERROR_NOT_ENOUGH_MEMORY);
    assert_eq!((r.pb_buffer.max_count, r.pcb_read), (4096, 0));
}

#[test]
fn scripted_delays_and_restore_faults_come_back_with_the_reply() {
    let f = fixture();
    f.dc.faults()
        .delay(Interface::AdRestore, 0, Duration::from_millis(250));
    f.dc.faults()
        .status_for_opnum(Interface::AdRestore, 1, Status::HR_RESTORE_IN_PROGRESS);
    let reply = f.dc.dispatch_ad_restore(
        &admin(1),
        at(0),
        &AdRestoreRequest::HrRIsNTDSOnline(HrRIsNTDSOnlineRequest {}),
    );
    assert_eq!(reply.delay, Duration::from_millis(250));
    let AdRestoreResponse::HrRIsNTDSOnline(r) = reply.response else {
        panic!("wrong response variant");
    };
    assert_eq!((r.pf_online, r.status), (1, Status::SUCCESS));
    let reply = f.dc.dispatch_ad_restore(
        &admin(1),
        at(0),
        &AdRestoreRequest::HrRRestorePrepare(HrRRestorePrepareRequest::new(0, None)),
    );
    assert_eq!(reply.delay, Duration::ZERO);
    let AdRestoreResponse::HrRRestorePrepare(r) = reply.response else {
        panic!("wrong response variant");
    };
    assert_eq!(
        (r.ph_context, r.status),
        (ContextHandle::NULL, Status::HR_RESTORE_IN_PROGRESS)
    );
    assert_eq!(f.dc.active_restores(), [], "the operation did not run");
}

#[test]
fn config_faults_are_in_force_from_the_start() {
    let mut script = crate::faults::FaultScript {
        refuse_binds: true,
        ..crate::faults::FaultScript::default()
    };
    script.statuses.insert(
        (Interface::AdBackup, 0),
        crate::faults::StatusFault {
            status: Status::RPC_S_SERVER_TOO_BUSY,
            remaining: None,
        },
    );
    let f = fixture_with(move |b| b.faults(script));
    assert!(f.dc.faults().snapshot().refuse_binds);
    let reply = f.dc.dispatch_ad_backup(
        &backup_op(),
        at(0),
        &AdBackupRequest::HrRBackupPrepare(HrRBackupPrepareRequest::default()),
    );
    let AdBackupResponse::HrRBackupPrepare(r) = reply.response else {
        panic!("wrong response variant");
    };
    assert_eq!(r.status, Status::RPC_S_SERVER_TOO_BUSY);
}

#[test]
fn auth_level_below_the_minimum_is_refused_everywhere() {
    let f = fixture();
    assert!(!f.dc.accepts_auth_level(AuthLevel::CONNECT));
    assert!(f.dc.accepts_auth_level(AuthLevel::PKT_INTEGRITY));
    let weak = Caller::user("admin", "CORP", AuthLevel::CONNECT, ConnectionId(1));
    let ping = f.dc.backup_ping(&weak, at(0), &HrRBackupPingRequest {});
    assert_eq!(ping.status, Status::ERROR_ACCESS_DENIED);
    let r =
        f.dc.is_ntds_online(&weak, at(0), &HrRIsNTDSOnlineRequest {});
    assert_eq!(r.status, Status::ERROR_ACCESS_DENIED);
    assert_eq!(
        restore_prepare(&f.dc, &weak, at(0), None).1,
        Status::ERROR_ACCESS_DENIED
    );
    let admin_hash = Some(crate::config::nt_hash("Admin1!"));
    assert_eq!(f.dc.nt_hash("ADMIN", "corp"), admin_hash);
    assert_eq!(f.dc.nt_hash("admin", ""), admin_hash);
    assert_eq!(f.dc.nt_hash("admin", "DC1"), admin_hash);
    assert_eq!(f.dc.nt_hash("admin", "OTHER"), None);
    assert_eq!(f.dc.nt_hash("ghost", "CORP"), None);
}

#[test]
fn a_new_server_clears_stale_snapshots() {
    let f = fixture();
    let who = backup_op();
    let h = start(&f, BACKUP_TYPE_FULL);
    database_list(&f.dc, &who, h);
    open(&f.dc, &who, h, &unc("ntds.dit"));
    let sessions = f.dc.state_dir().join(SESSIONS_DIR);
    assert_eq!(fs::read_dir(&sessions).unwrap().count(), 1);
    let _again = MockDc::new(f.dc.config().clone()).unwrap();
    assert_eq!(fs::read_dir(&sessions).unwrap().count(), 0);
}

#[test]
fn filetime_counts_from_1601() {
    assert_eq!(filetime(UNIX_EPOCH), 116_444_736_000_000_000);
    assert_eq!(
        filetime(UNIX_EPOCH + Duration::from_secs(1)),
        116_444_736_010_000_000
    );
    assert_eq!(
        filetime(UNIX_EPOCH - Duration::from_secs(11_644_473_600)),
        0
    );
    assert_eq!(
        filetime(UNIX_EPOCH - Duration::from_secs(11_644_473_601)),
        0
    );
}

#[test]
fn mock_dc_refuses_a_missing_root() {
    let tmp = tempfile::tempdir().unwrap();
    let config = MockConfig::new(DC, tmp.path().join("absent"));
    assert!(matches!(MockDc::new(config), Err(MockError::Root { .. })));
}

// ---------------------------------------------------------------- stubs

/// Sends `request` through `serve_stub` as a peer would (encoded in `orders.request`) and
/// decodes the answer in the byte order its header would declare (`orders.reply`).
fn over_the_wire(
    dc: &MockDc,
    who: &Caller,
    orders: ByteOrders,
    request: &AdBackupRequest,
) -> AdBackupResponse {
    let stub = request.encode(orders.request).unwrap();
    let reply = dc
        .serve_stub(
            who,
            at(0),
            Interface::AdBackup,
            request.opnum(),
            orders,
            &stub,
        )
        .unwrap();
    AdBackupResponse::decode(request.opnum(), orders.reply, &reply.response.to_bytes()).unwrap()
}

#[test]
fn serve_stub_runs_a_backup_in_either_byte_order() {
    let (le, be) = (DataRep::LITTLE_ENDIAN, DataRep::BIG_ENDIAN);
    // A big-endian caller answered little-endian (as a server answers in its own order) and
    // every other pairing: the handle, names and data survive each.
    for orders in [(le, le), (be, le), (be, be), (le, be)] {
        let drep = ByteOrders::new(orders.0, orders.1);
        let f = fixture();
        let who = backup_op();
        let AdBackupResponse::HrRBackupPrepare(prepared) = over_the_wire(
            &f.dc,
            &who,
            drep,
            &AdBackupRequest::HrRBackupPrepare(HrRBackupPrepareRequest {
                grbit: 0,
                bt_flag: BACKUP_TYPE_FULL,
                wsz_backup_annotation: "NTDS Backup Interface".into(),
                dw_client_identifier: 1,
            }),
        ) else {
            panic!("wrong response variant");
        };
        let h = prepared.ph_context;
        assert_eq!(
            f.dc.active_backup(),
            Some(h),
            "the handle survives the byte order"
        );
        let AdBackupResponse::HrRBackupGetAttachmentInformation(list) = over_the_wire(
            &f.dc,
            &who,
            drep,
            &AdBackupRequest::HrRBackupGetAttachmentInformation(
                HrRBackupGetAttachmentInformationRequest { h_context: h },
            ),
        ) else {
            panic!("wrong response variant");
        };
        let entries = list.entries().unwrap();
        assert_eq!(
            entries[0],
            NameEntry::new(BftKind::NTDS_DATABASE, unc("ntds.dit"))
        );
        over_the_wire(
            &f.dc,
            &who,
            drep,
            &AdBackupRequest::HrRBackupOpenFile(HrRBackupOpenFileRequest {
                h_context: h,
                wsz_attachment_name: entries[0].name.clone(),
                cb_read_hint_size: 65536,
            }),
        );
        let mut bytes = Vec::new();
        loop {
            let request = HrRBackupReadRequest {
                h_context: h,
                cb_buffer: 65536,
            };
            let AdBackupResponse::HrRBackupRead(r) = over_the_wire(
                &f.dc,
                &who,
                drep,
                &AdBackupRequest::HrRBackupRead(request.clone()),
            ) else {
                panic!("wrong response variant");
            };
            r.check_request(&request).unwrap();
            if r.pb_buffer.data.is_empty() {
                break;
            }
            bytes.extend_from_slice(&r.pb_buffer.data.to_bytes());
        }
        assert_eq!(sha(&bytes), f.manifest.file("ntds.dit").unwrap().sha256);
    }
}

#[test]
fn serve_stub_reports_what_must_become_a_fault() {
    let f = fixture();
    let who = backup_op();
    let drep = ByteOrders::both(DataRep::LITTLE_ENDIAN);
    assert!(matches!(
        f.dc.serve_stub(&who, at(0), Interface::AdBackup, 9, drep, &[]),
        Err(ServeError::UnknownOpnum {
            iface: Interface::AdBackup,
            opnum: 9
        })
    ));
    assert!(matches!(
        f.dc.serve_stub(&who, at(0), Interface::AdRestore, 8, drep, &[]),
        Err(ServeError::UnknownOpnum {
            iface: Interface::AdRestore,
            opnum: 8
        })
    ));
    assert!(matches!(
        f.dc.serve_stub(&who, at(0), Interface::AdBackup, 3, drep, &[0; 7]),
        Err(ServeError::BadStub(_))
    ));
    assert!(
        matches!(
            f.dc.serve_stub(&who, at(0), Interface::AdBackup, 8, drep, &[0]),
            Err(ServeError::BadStub(_)),
        ),
        "trailing bytes"
    );
    assert!(matches!(
        f.dc.serve_stub(&who, at(0), Interface::Epm, 3, drep, &[]),
        Err(ServeError::NotServed(Interface::Epm))
    ));
    // A restore call answers in its own stub format.
    let reply =
        f.dc.serve_stub(&admin(1), at(0), Interface::AdRestore, 0, drep, &[])
            .unwrap();
    assert_eq!(
        reply.response.to_vec(),
        [
            0x01, 0x00, 0x00, 0x00, // pfOnline TRUE
            0x00, 0x00, 0x00, 0x00, // status hrNone
        ]
    );
    // Asked big-endian, it answers in the order the response header will declare.
    for (reply_drep, expected) in [
        (DataRep::LITTLE_ENDIAN, [1, 0, 0, 0, 0, 0, 0, 0]),
        (DataRep::BIG_ENDIAN, [0, 0, 0, 1, 0, 0, 0, 0]),
    ] {
        let orders = ByteOrders::new(DataRep::BIG_ENDIAN, reply_drep);
        let reply =
            f.dc.serve_stub(&admin(1), at(0), Interface::AdRestore, 0, orders, &[])
                .unwrap();
        assert_eq!(reply.response.to_vec(), expected, "{reply_drep:?}");
    }
}
