//! The blocking facade (a whole backup without an async runtime of the caller's), and the
//! keep-alive that holds a session over a pause longer than the server's idle limit: the
//! facade's own, and the async API's `BackupSession::keep_alive_during`.

use std::time::Duration;

use dsbackup_client::blocking::Client;
use dsbackup_client::{AuthLevel, BackupType, ClientConfig, Credentials, Endpoint, Error};

use crate::common::{BACKUP_USER, Dc, PASSWORD, small_spec};

fn blocking_client(dc: &Dc) -> Client {
    Client::new(
        ClientConfig::new("127.0.0.1")
            .credentials(Credentials::from_password(BACKUP_USER, "CORP", PASSWORD))
            .endpoint(Endpoint::Mapper {
                port: dc.server.local_addr().port(),
            }),
    )
    .unwrap()
}

/// A mock DC whose sessions die after 2 s without a call, on a runtime of the test's own.
fn idle_dc() -> (tokio::runtime::Runtime, Dc) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dc = runtime.block_on(Dc::start_configured(
        &small_spec(),
        AuthLevel::PKT_INTEGRITY,
        |builder| builder.idle_timeout(Duration::from_secs(2)),
    ));
    (runtime, dc)
}

#[test]
fn a_blocking_backup_reads_every_byte_of_every_file() {
    let (_runtime, dc) = idle_dc();
    let client = blocking_client(&dc);
    let mut session = client.backup_prepare(BackupType::Full).unwrap();
    assert!(!session.expiry_token().is_empty());
    let mut files = session.database_names().unwrap();
    files.extend(session.backup_logs().unwrap());
    // Not a multiple of the client's read size: reads are cut and joined as the caller asks.
    let mut buffer = vec![0; 40_000];
    for entry in &files {
        let size = session.open_file(&entry.name).unwrap();
        assert!(matches!(session.database_names(), Err(Error::Misuse(_))));
        let mut data = Vec::new();
        loop {
            let n = session.read(&mut buffer).unwrap();
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buffer[..n]);
        }
        assert_eq!(data.len() as u64, size);
        let name = entry.name.rsplit('\\').next().unwrap();
        use sha2::Digest as _;
        assert_eq!(hex::encode(sha2::Sha256::digest(&data)), dc.sha256(name));
        session.close_file().unwrap();
    }
    assert!(matches!(session.close_file(), Err(Error::Misuse(_))));
    session.end().unwrap();
    assert_eq!(dc.dc().active_backup(), None);
}

#[test]
fn the_keep_alive_holds_a_session_over_a_pause_longer_than_the_idle_limit() {
    let (_runtime, dc) = idle_dc();
    let client = blocking_client(&dc).keep_alive(Duration::from_millis(200));
    let mut session = client.backup_prepare(BackupType::Full).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        dc.dc().active_backup().is_some(),
        "the server kept the session"
    );
    session.database_names().unwrap();
    session.end().unwrap();

    // Without pings in the pause, the server ends the session.
    let client = blocking_client(&dc).keep_alive(Duration::from_secs(3600));
    let mut session = client.backup_prepare(BackupType::Full).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    assert!(session.database_names().is_err());
    let _ = session.end();
}

/// The async API's keep-alive: the caller's pause runs inside `keep_alive_during`, which pings
/// while it waits.
#[tokio::test]
async fn an_async_pause_inside_keep_alive_during_outlives_the_idle_limit() {
    let dc = Dc::start_configured(&small_spec(), AuthLevel::PKT_INTEGRITY, |builder| {
        builder.idle_timeout(Duration::from_secs(2))
    })
    .await;
    let client = dc.client(BACKUP_USER);
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    let pause = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "rewound"
    };
    let output = session
        .keep_alive_during(Duration::from_millis(200), pause)
        .await
        .unwrap();
    assert_eq!(output, "rewound");
    assert!(
        dc.dc().active_backup().is_some(),
        "the server kept the session"
    );
    session.database_names().await.unwrap();
    session.end().await.unwrap();

    // The same pause outside it: the server ends the session.
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(session.database_names().await.is_err());
    let _ = session.end().await;
}
