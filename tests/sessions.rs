//! `DsBackupEnd` in every state a session can be in: afterwards the client's registry counts
//! no open binding and the server has seen every association go.

use std::time::Duration;

use dsbackup_client::{BackupType, Error, Status};
use dsbackup_proto::iface::Interface;

use crate::common::{BACKUP_USER, Dc, assert_no_bindings, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_after_success_closes_both_bindings() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    session.database_locations().await.unwrap();
    assert_eq!(client.registry().metrics().snapshot().bindings, 2);
    session.end().await.unwrap();
    assert_no_bindings(&client);
    dc.wait_no_associations().await;
    assert_eq!(dc.dc().active_backup(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_after_a_failed_read() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    let name = session.database_names().await.unwrap()[0].name.clone();
    dc.dc()
        .faults()
        .status_for_opnum(Interface::AdBackup, 4, Status::HR_ERROR);
    let mut reader = session.open_file(&name).await.unwrap();
    assert!(reader.read_to_vec().await.is_err());
    drop(reader);
    dc.dc().faults().clear();
    session.end().await.unwrap();
    assert_no_bindings(&client);
    dc.wait_no_associations().await;
    assert_eq!(dc.dc().active_backup(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_with_a_file_still_open_and_reads_in_flight() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    let name = session.database_names().await.unwrap()[0].name.clone();
    let mut reader = session.open_file(&name).await.unwrap();
    // One block taken, the next reads in flight: then the reader is dropped unclosed.
    assert!(reader.next_chunk().await.unwrap().is_some());
    drop(reader);
    session.end().await.unwrap();
    assert_no_bindings(&client);
    dc.wait_no_associations().await;
    assert_eq!(dc.dc().active_backup(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_dropped_unclosed_does_not_block_the_next_file() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    let name = session.database_names().await.unwrap()[0].name.clone();
    let mut reader = session.open_file(&name).await.unwrap();
    assert!(reader.next_chunk().await.unwrap().is_some());
    drop(reader);
    let logs = session.backup_logs().await.unwrap();
    let mut reader = session.open_file(&logs[0].name).await.unwrap();
    assert_eq!(
        u64::try_from(reader.read_to_vec().await.unwrap().len()).unwrap(),
        reader.size()
    );
    reader.close().await.unwrap();
    session.end().await.unwrap();
    assert_no_bindings(&client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_after_the_server_died_mid_file() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    session.database_locations().await.unwrap();
    let name = session.database_names().await.unwrap()[0].name.clone();
    // Slow reads, so that the server goes while the file is being read.
    dc.dc()
        .faults()
        .delay(Interface::AdBackup, 4, Duration::from_millis(50));
    let mut reader = session.open_file(&name).await.unwrap();
    assert!(reader.next_chunk().await.unwrap().is_some());
    dc.server.shutdown().await;
    let error = reader.read_to_vec().await.unwrap_err();
    assert!(
        matches!(error, Error::Transport { .. }),
        "a dead server is a transport error: {error:?}"
    );
    drop(reader);
    let ended = session.end().await;
    assert!(ended.is_err(), "HrRBackupEnd cannot reach a dead server");
    assert_no_bindings(&client);
    dc.wait_no_associations().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_on_a_session_whose_server_is_gone() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let session = client.backup_prepare(BackupType::Full).await.unwrap();
    dc.server.shutdown().await;
    let error = session.end().await.unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_no_bindings(&client);
    dc.wait_no_associations().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_dropped_without_end_is_run_down() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    session.database_locations().await.unwrap();
    assert!(dc.dc().active_backup().is_some());
    drop(session);
    wait_until("the client's bindings to close", || {
        client.registry().metrics().snapshot().associations == 0
    })
    .await;
    assert_no_bindings(&client);
    dc.wait_no_associations().await;
    wait_until("the server to run the session down", || {
        dc.dc().active_backup().is_none()
    })
    .await;
    // The server takes a new backup at once.
    let session = client.backup_prepare(BackupType::Full).await.unwrap();
    session.end().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_is_ended_by_the_server_and_end_still_closes_everything() {
    let dc = Dc::start_configured(
        &crate::common::small_spec(),
        dsbackup_client::AuthLevel::PKT_INTEGRITY,
        |builder| builder.idle_timeout(Duration::from_secs(1)),
    )
    .await;
    let client = dc.client(BACKUP_USER);
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    wait_until("the server to end the idle session", || {
        dc.dc().active_backup().is_none()
    })
    .await;
    let error = session.database_names().await.unwrap_err();
    assert!(matches!(error, Error::Status { .. }), "{error:?}");
    // The server ended it: HrRBackupEnd fails, the bindings close all the same.
    assert!(session.end().await.is_err());
    assert_no_bindings(&client);
    dc.wait_no_associations().await;
}
