//! Every client API call against the mock DC, with its error cases.

use dsbackup_client::{AuthLevel, BackupType, BftKind, Error, Status};
use dsbackup_mock::DsMode;
use dsbackup_mock::serve::ServeOptions;
use dsbackup_proto::iface::Interface;
use tokio::io::AsyncReadExt as _;

use crate::common::{
    BACKUP_USER, Dc, NOBODY, PASSWORD, RESTORE_USER, assert_no_bindings, sha256, small_spec,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_backup_through_the_api_matches_the_sample_set() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    assert_eq!(session.expiry_token().len(), 16);
    assert_eq!(
        session
            .decoded_expiry_token()
            .map(|t| t.tombstone_lifetime_days),
        Some(180)
    );
    let databases = session.database_names().await.unwrap();
    let kinds: Vec<BftKind> = databases.iter().map(|d| d.kind).collect();
    assert_eq!(kinds, [BftKind::NTDS_DATABASE, BftKind::PATCH_FILE]);
    assert_eq!(databases[0].name, r"\\DC1\C$\Windows\NTDS\ntds.dit");
    let mut reader = session.open_file(&databases[0].name).await.unwrap();
    assert_eq!(reader.size(), 3 * 1024 * 1024 + 5);
    let data = reader.read_to_vec().await.unwrap();
    assert_eq!(sha256(&data), dc.sha256("ntds.dit"));
    reader.close().await.unwrap();

    let logs = session.backup_logs().await.unwrap();
    // The logs from the checkpoint's generation on.
    let names: Vec<&str> = logs
        .iter()
        .map(|l| dsbackup_client::server_file_name(&l.name))
        .collect();
    assert_eq!(names, ["edb00002.log", "edb00003.log"]);
    assert!(logs.iter().all(|l| l.kind == BftKind::LOG), "{logs:?}");
    for entry in databases.iter().skip(1).chain(&logs) {
        let mut reader = session.open_file(&entry.name).await.unwrap();
        // The AsyncRead adapter delivers the same bytes.
        let mut data = Vec::new();
        reader.read_to_end(&mut data).await.unwrap();
        let name = dsbackup_client::server_file_name(&entry.name);
        assert_eq!(sha256(&data), dc.sha256(name), "{name}");
        reader.close().await.unwrap();
    }
    let locations = session.database_locations().await.unwrap();
    assert_eq!(session.open_bindings(), 2);
    assert!(locations.iter().any(|l| l.kind == BftKind::LOG_DIR));
    session.truncate_logs().await.unwrap();
    session.end().await.unwrap();
    assert_no_bindings(&client);
    dc.wait_no_associations().await;
    assert_eq!(dc.dc().active_backup(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_set_log_and_check_logs() {
    let dc = Dc::start().await;
    let client = dc.client(RESTORE_USER);
    assert!(client.is_ntds_online().await.unwrap());
    client.set_current_backup_log(0x42).await.unwrap();
    assert_eq!(dc.dc().current_log_number(), Some(0x42));
    assert!(
        client
            .check_logs_for_backup(dsbackup_client::BACKUP_ANNOTATION)
            .await
            .unwrap()
    );
    dc.dc().set_mode(DsMode::Restore);
    assert!(!client.is_ntds_online().await.unwrap());
    assert_no_bindings(&client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_statuses_come_back_as_typed_errors_naming_the_code() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();

    // One backup at a time.
    let second = client.backup_prepare(BackupType::Full).await.unwrap_err();
    assert_eq!(
        second.status(),
        Some(Status::HR_BACKUP_IN_PROGRESS),
        "{second}"
    );
    assert!(
        second.to_string().contains("hrBackupInProgress"),
        "{second}"
    );
    // A status is the server's answer: neither the caller's misuse nor a broken protocol.
    assert!(!second.is_misuse() && !second.is_peer_fault(), "{second:?}");

    // A name that is not in the set.
    let error = session
        .open_file(r"\\DC1\C$\Windows\win.ini")
        .await
        .unwrap_err();
    assert_eq!(
        error.status(),
        Some(Status::ERROR_INVALID_PARAMETER),
        "{error}"
    );
    assert!(error.to_string().contains("HrRBackupOpenFile"), "{error}");

    // A failed read: the reader reports the status and is failed afterwards.
    let name = session.database_names().await.unwrap()[0].name.clone();
    dc.dc()
        .faults()
        .status_for_opnum(Interface::AdBackup, 4, Status::ERROR_NOT_ENOUGH_MEMORY);
    let mut reader = session.open_file(&name).await.unwrap();
    let error = reader.next_chunk().await.unwrap_err();
    assert_eq!(
        error.status(),
        Some(Status::ERROR_NOT_ENOUGH_MEMORY),
        "{error}"
    );
    let again = reader.next_chunk().await.unwrap_err();
    assert!(matches!(again, Error::Misuse(_)), "{again:?}");
    assert!(again.is_misuse() && !again.is_peer_fault(), "{again:?}");
    drop(reader);
    dc.dc().faults().clear();
    session.end().await.unwrap();

    // No backup privilege.
    let error = dc
        .client(NOBODY)
        .backup_prepare(BackupType::Full)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(Status::ERROR_ACCESS_DENIED), "{error}");

    // Restores are refused while the directory service is online.
    let error = dc
        .client(RESTORE_USER)
        .restore_prepare(0, Some(&[1; 16]))
        .await
        .unwrap_err();
    assert!(error.status().is_some(), "{error}");
    assert_no_bindings(&client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_as_an_authentication_error() {
    let dc = Dc::start().await;
    let client = dc.client_with(BACKUP_USER, "wrong", AuthLevel::PKT_PRIVACY);
    let error = client.backup_prepare(BackupType::Full).await.unwrap_err();
    assert!(error.is_auth_failure(), "{error:?}");
    assert!(
        error.to_string().contains("authentication failed"),
        "{error}"
    );
    assert_no_bindings(&client);
    let _ = PASSWORD;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_under_the_servers_minimum_is_refused() {
    let dc = Dc::start().await;
    let client = dc.client_with(BACKUP_USER, PASSWORD, AuthLevel::NONE);
    let error = client.backup_prepare(BackupType::Full).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Authentication { .. } | Error::Transport { .. } | Error::Status { .. }
        ),
        "{error:?}"
    );
    assert_no_bindings(&client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_sessions_register_where_the_locations_say() {
    let dc = Dc::start().await;
    let backup_client = dc.client(BACKUP_USER);
    let session = backup_client
        .backup_prepare(BackupType::Full)
        .await
        .unwrap();
    let token = session.expiry_token().to_vec();
    session.end().await.unwrap();

    dc.dc().set_mode(DsMode::Restore);
    let client = dc.client(RESTORE_USER);
    // A restricted session (no token) only gets locations.
    let restricted = client.restore_prepare(0, None).await.unwrap();
    let locations = restricted.database_locations().await.unwrap();
    assert_eq!(locations.len(), 3);
    let error = restricted
        .register(&dsbackup_client::Registration::default())
        .await
        .unwrap_err();
    assert_eq!(
        error.status(),
        Some(Status::HR_MISSING_EXPIRY_TOKEN),
        "{error}"
    );
    restricted.end().await.unwrap();

    // A token that is not 16 bytes.
    let error = client
        .restore_prepare(0, Some(&[1, 2, 3]))
        .await
        .unwrap_err();
    assert_eq!(
        error.status(),
        Some(Status::HR_UNKNOWN_EXPIRY_TOKEN_FORMAT),
        "{error}"
    );

    let session = client.restore_prepare(0, Some(&token)).await.unwrap();
    let locations = session.database_locations().await.unwrap();
    let dir = |kind| {
        locations
            .iter()
            .find(|l| l.kind == kind)
            .unwrap()
            .name
            .clone()
    };
    let registration = dsbackup_client::Registration {
        checkpoint_file_path: dir(BftKind::CHECKPOINT_DIR),
        log_path: dir(BftKind::LOG_DIR),
        rstmap: vec![(
            r"\\DC1\C$\Windows\NTDS\ntds.dit".to_owned(),
            dir(BftKind::NTDS_DATABASE),
        )],
        backup_log_path: dir(BftKind::LOG_DIR),
        gen_low: 1,
        gen_high: 3,
    };
    session.register(&registration).await.unwrap();
    session.register_complete(Status::SUCCESS).await.unwrap();
    session.end().await.unwrap();
    let marker = dc.dc().restore_marker().unwrap();
    assert!(!marker.blocks_startup(), "{marker:?}");
    assert_no_bindings(&client);
    assert_no_bindings(&backup_client);
    dc.wait_no_associations().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_reports_the_status_the_server_answers() {
    let dc = Dc::start().await;
    let faults = dc.dc().faults();
    let client = dc.client(RESTORE_USER);

    faults.status_for_opnum_times(Interface::AdRestore, 7, Status::HR_LOG_FILE_NOT_FOUND, 1);
    assert!(!client.check_logs_for_backup("x").await.unwrap());
    faults.status_for_opnum_times(Interface::AdRestore, 0, Status::ERROR_ACCESS_DENIED, 1);
    let error = client.is_ntds_online().await.unwrap_err();
    assert_eq!(error.status(), Some(Status::ERROR_ACCESS_DENIED), "{error}");
    assert!(error.to_string().contains("HrRIsNTDSOnline"), "{error}");
    faults.status_for_opnum_times(Interface::AdRestore, 6, Status::ERROR_INVALID_PARAMETER, 1);
    let error = client.set_current_backup_log(1).await.unwrap_err();
    assert_eq!(
        error.status(),
        Some(Status::ERROR_INVALID_PARAMETER),
        "{error}"
    );

    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    faults.status_for_opnum_times(Interface::AdBackup, 2, Status::ERROR_NOT_ENOUGH_MEMORY, 1);
    let error = session.database_names().await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("HrRBackupGetAttachmentInformation"),
        "{error}"
    );
    faults.status_for_opnum_times(Interface::AdBackup, 6, Status::HR_LOG_FILE_NOT_FOUND, 1);
    let error = session.backup_logs().await.unwrap_err();
    assert_eq!(
        error.status(),
        Some(Status::HR_LOG_FILE_NOT_FOUND),
        "{error}"
    );
    faults.status_for_opnum_times(Interface::AdBackup, 7, Status::ERROR_ACCESS_DENIED, 1);
    let error = session.truncate_logs().await.unwrap_err();
    assert!(
        error.to_string().contains("HrRBackupTruncateLogs"),
        "{error}"
    );
    faults.status_for_opnum_times(Interface::AdRestore, 4, Status::ERROR_INVALID_PARAMETER, 1);
    let error = session.database_locations().await.unwrap_err();
    assert!(
        error.to_string().contains("HrRRestoreGetDatabaseLocations"),
        "{error}"
    );
    // Only listed names open.
    let name = session.database_names().await.unwrap()[0].name.clone();
    let reader = session.open_file(&name).await.unwrap();
    faults.status_for_opnum_times(Interface::AdBackup, 5, Status::HR_INVALID_HANDLE, 1);
    let error = reader.close().await.unwrap_err();
    assert_eq!(error.status(), Some(Status::HR_INVALID_HANDLE), "{error}");
    faults.status_for_opnum_times(Interface::AdBackup, 1, Status::ERROR_INVALID_PARAMETER, 1);
    let error = session.end().await.unwrap_err();
    assert!(error.to_string().contains("HrRBackupEnd"), "{error}");
    // A failed HrRBackupEnd still closes every binding.
    assert_no_bindings(&client);

    // An expired token.
    dc.dc().set_mode(DsMode::Restore);
    let old = dsbackup_client::ExpiryToken {
        tombstone_lifetime_days: 1,
        backup_time: 1,
    };
    let error = client
        .restore_prepare(0, Some(&old.encode()))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(Status::HR_CONTENTS_EXPIRED), "{error}");
    assert_no_bindings(&client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_read_adapter_serves_small_buffers_in_order() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    let name = session.database_names().await.unwrap()[0].name.clone();
    let mut reader = session.open_file(&name).await.unwrap();
    let mut data = Vec::new();
    let mut buf = [0_u8; 1000];
    loop {
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    assert_eq!(u64::try_from(data.len()).unwrap(), reader.size());
    assert_eq!(sha256(&data), dc.sha256("ntds.dit"));
    // At the end of the file, reads keep returning 0.
    assert_eq!(reader.read(&mut buf).await.unwrap(), 0);
    reader.close().await.unwrap();
    session.end().await.unwrap();
    assert_no_bindings(&client);
}

/// `next_block` gives one read at a time, its bytes still cut as the fragments brought them,
/// and `next_chunk` one of those pieces; both give the file's bytes in order, unprotected and
/// sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_are_whole_reads_in_the_pieces_the_fragments_brought() {
    // The minimum at none: unauthenticated callers act as the backup user.
    let mut serve = ServeOptions::loopback();
    serve.danger_anonymous_user = Some(BACKUP_USER.to_owned());
    let dc = Dc::start_served(&small_spec(), AuthLevel::NONE, |b| b, &serve).await;
    for level in [AuthLevel::NONE, AuthLevel::PKT_PRIVACY] {
        let client = dc.client_with(BACKUP_USER, PASSWORD, level);
        let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
        let name = session.database_names().await.unwrap()[0].name.clone();
        let mut reader = session.open_file(&name).await.unwrap();
        let size = usize::try_from(reader.size()).unwrap();
        let mut data = Vec::new();
        let mut blocks = 0;
        while let Some(block) = reader.next_block().await.unwrap() {
            let left = size - data.len();
            // The client asks for 256 KiB per read (tests/common.rs).
            assert_eq!(
                block.len(),
                left.min(256 * 1024),
                "{level:?} block {blocks}"
            );
            // A full read comes in fragments of at most 65535 bytes (the client's and the
            // mock's default): at least 4 pieces, none empty.
            if block.len() == 256 * 1024 {
                assert!(block.segments().len() >= 4, "{level:?}");
            }
            for segment in block.segments() {
                assert!(!segment.is_empty() && segment.len() < 65535);
                data.extend_from_slice(segment);
            }
            blocks += 1;
        }
        assert_eq!(blocks, size.div_ceil(256 * 1024));
        assert_eq!(sha256(&data), dc.sha256("ntds.dit"));
        reader.close().await.unwrap();
        // next_chunk hands the same bytes out piece by piece.
        let mut reader = session.open_file(&name).await.unwrap();
        let mut again = Vec::new();
        while let Some(piece) = reader.next_chunk().await.unwrap() {
            assert!(piece.len() < 65535);
            again.extend_from_slice(&piece);
        }
        assert!(again == data, "{level:?}: next_chunk gave other bytes");
        reader.close().await.unwrap();
        session.end().await.unwrap();
        assert_no_bindings(&client);
    }
}
