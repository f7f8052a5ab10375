//! Fault injection over the wire: each fault of the mock's script, seen through the real
//! client as a typed error; the session's `end()` still closes everything.

use std::time::Duration;

use dsbackup_client::{AuthLevel, BackupType, Client, Endpoint, Error, Status};
use dsbackup_proto::iface::Interface;
use dsbackup_proto::{ProtocolError, SecurityError};
use dsbackup_transport::TransportError;

use crate::common::{BACKUP_USER, Dc, assert_no_bindings, wait_until};

/// Opens the database file of a fresh session and runs `fault` before reading it; returns
/// the read's error, after ending the session (faults cleared) and checking that nothing is
/// left open on either side.
async fn read_database_with(dc: &Dc, client: &Client, fault: impl FnOnce(&Dc)) -> Error {
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    let name = session.database_names().await.unwrap()[0].name.clone();
    let mut reader = session.open_file(&name).await.unwrap();
    fault(dc);
    let error = reader.read_to_vec().await.unwrap_err();
    drop(reader);
    dc.dc().faults().clear();
    // HrRBackupEnd may not reach the session any more: the bindings close all the same.
    let _ = session.end().await;
    assert_no_bindings(client);
    dc.wait_no_associations().await;
    wait_until("the server to end or run down the session", || {
        dc.dc().active_backup().is_none()
    })
    .await;
    error
}

fn is_connection_lost(error: &Error) -> bool {
    matches!(
        error,
        Error::Transport {
            source: TransportError::Closed | TransportError::Io(_),
            ..
        }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_after_n_calls_mid_file() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    // Prepare, GetAttachmentInfo and OpenFile went by: two reads are answered, then the
    // connection closes, 512 KiB into a 3 MiB file.
    let error = read_database_with(&dc, &client, |dc| {
        dc.dc().faults().drop_after_calls(Some(5));
    })
    .await;
    assert!(is_connection_lost(&error), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_after_n_bytes_mid_file() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let error = read_database_with(&dc, &client, |dc| {
        dc.dc().faults().drop_after_bytes(Some(1024 * 1024 + 7));
    })
    .await;
    assert!(is_connection_lost(&error), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_response_fragment_fails_the_signature_check() {
    let dc = Dc::start().await;
    for level in [AuthLevel::PKT_INTEGRITY, AuthLevel::PKT_PRIVACY] {
        let client = dc.client_with(BACKUP_USER, crate::common::PASSWORD, level);
        // Three responses went by on the ad_backup connection: the 6th fragment is inside
        // the first or second read.
        let error = read_database_with(&dc, &client, |dc| {
            dc.dc().faults().corrupt_response_fragment(Some(6));
        })
        .await;
        // The logon succeeded: a signature that fails afterwards is altered traffic, not
        // refused credentials.
        let Error::Integrity { source, .. } = &error else {
            panic!("{level:?}: {error:?}");
        };
        assert!(
            matches!(
                source,
                TransportError::Protocol(ProtocolError::Security(SecurityError::BadSignature))
            ),
            "{level:?}: {error:?}"
        );
        assert!(error.is_integrity_failure() && !error.is_auth_failure());
        assert!(
            error
                .to_string()
                .contains("the traffic was altered or corrupted"),
            "{error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_binds_are_a_bind_rejection() {
    let dc = Dc::start().await;
    dc.dc().faults().refuse_binds(true);
    let mut config = dsbackup_client::ClientConfig::new("127.0.0.1")
        .auth_level(AuthLevel::PKT_PRIVACY)
        .endpoint(Endpoint::Port(dc.server.local_addr().port()))
        .credentials(dsbackup_client::Credentials::from_password(
            BACKUP_USER,
            "CORP",
            crate::common::PASSWORD,
        ));
    config.call_timeout = Duration::from_secs(20);
    let client = Client::new(config).unwrap();
    let error = client.backup_prepare(BackupType::Full).await.unwrap_err();
    let source = match &error {
        Error::Transport { source, .. } | Error::Authentication { source, .. } => source,
        other => panic!("{other:?}"),
    };
    assert!(
        matches!(source, TransportError::BindRejected(_)),
        "{error:?}"
    );
    assert_no_bindings(&client);
    // Binds are accepted again once the fault is cleared.
    dc.dc().faults().clear();
    client
        .backup_prepare(BackupType::Full)
        .await
        .unwrap()
        .end()
        .await
        .unwrap();
    assert_no_bindings(&client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_past_the_call_deadline_times_out() {
    let dc = Dc::start().await;
    let mut config = dsbackup_client::ClientConfig::new("127.0.0.1")
        .auth_level(AuthLevel::PKT_PRIVACY)
        .endpoint(Endpoint::Mapper {
            port: dc.server.local_addr().port(),
        })
        .credentials(dsbackup_client::Credentials::from_password(
            BACKUP_USER,
            "CORP",
            crate::common::PASSWORD,
        ));
    config.call_timeout = Duration::from_millis(300);
    let client = Client::new(config).unwrap();
    dc.dc()
        .faults()
        .delay(Interface::AdBackup, 0, Duration::from_secs(3));
    let error = client.backup_prepare(BackupType::Full).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Transport {
                source: TransportError::TimedOut,
                ..
            }
        ),
        "{error:?}"
    );
    assert_no_bindings(&client);
    dc.dc().faults().clear();
    // The session prepared late is run down with its association.
    dc.wait_no_associations().await;
    wait_until("the late session to be run down", || {
        dc.dc().active_backup().is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_for_an_opnum_is_that_exact_status() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    // HrRBackupGetBackupLogs.
    dc.dc()
        .faults()
        .status_for_opnum(Interface::AdBackup, 6, Status::HR_LOG_FILE_NOT_FOUND);
    let error = session.backup_logs().await.unwrap_err();
    assert_eq!(
        error.status(),
        Some(Status::HR_LOG_FILE_NOT_FOUND),
        "{error:?}"
    );
    assert!(matches!(error, Error::Status { .. }), "{error:?}");
    dc.dc().faults().clear();
    let logs = session.backup_logs().await.unwrap();
    assert!(!logs.is_empty());
    session.end().await.unwrap();
    assert_no_bindings(&client);
}
