//! 32 clients at once against one mock DC: one backs up, the others are told
//! `hrBackupInProgress` and are served in turn, each retrying once the previous one ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dsbackup_client::server_file_name;
use dsbackup_client::{AuthLevel, BackupType, Client, Status};
use dsbackup_mock::SampleSpec;

use crate::common::{BACKUP_USER, Dc, assert_no_bindings, sha256};

const CLIENTS: usize = 32;

fn tiny_spec() -> SampleSpec {
    SampleSpec {
        database_size: 96 * 1024 + 3,
        log_count: 2,
        log_size: 16 * 1024,
        with_patch_file: false,
        ..SampleSpec::default()
    }
}

/// A whole backup in one session: every file, checked against the sample set's SHA-256s;
/// returns how many files were read.
async fn back_up(dc: &Dc, client: &Client, mut session: dsbackup_client::BackupSession) -> usize {
    let mut files = session.database_names().await.unwrap();
    files.extend(session.backup_logs().await.unwrap());
    for entry in &files {
        let mut reader = session.open_file(&entry.name).await.unwrap();
        let data = reader.read_to_vec().await.unwrap();
        reader.close().await.unwrap();
        assert_eq!(
            sha256(&data),
            dc.sha256(server_file_name(&entry.name)),
            "{}",
            entry.name
        );
    }
    session.end().await.unwrap();
    assert_no_bindings(client);
    files.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_clients_are_served_in_turn() {
    let dc = Arc::new(Dc::start_with(&tiny_spec(), AuthLevel::PKT_INTEGRITY).await);
    // The first client holds the backup while the 31 others connect.
    let first = dc.client(BACKUP_USER);
    let held = first.backup_prepare(BackupType::Full).await.unwrap();
    let refused_once = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 1..CLIENTS {
        let dc = Arc::clone(&dc);
        let refused_once = Arc::clone(&refused_once);
        tasks.push(tokio::spawn(async move {
            let client = dc.client(BACKUP_USER);
            let mut refused = 0_u32;
            // Bounded: each wait is short, and 31 small backups take far fewer turns.
            for _ in 0..6000 {
                match client.backup_prepare(BackupType::Full).await {
                    Ok(session) => {
                        let files = back_up(&dc, &client, session).await;
                        return (refused, files);
                    }
                    Err(error) => {
                        assert_eq!(
                            error.status(),
                            Some(Status::HR_BACKUP_IN_PROGRESS),
                            "{error:?}"
                        );
                        assert_no_bindings(&client);
                        refused += 1;
                        if refused == 1 {
                            refused_once.fetch_add(1, Ordering::SeqCst);
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            panic!("never got a turn");
        }));
    }
    // Every other client has been refused at least once before the first one goes on.
    crate::common::wait_until("31 refusals", || {
        refused_once.load(Ordering::SeqCst) == CLIENTS - 1
    })
    .await;
    assert!(tasks.iter().all(|task| !task.is_finished()));
    let files = back_up(&dc, &first, held).await;
    let mut served = 1;
    for task in tasks {
        let (refused, task_files) = task.await.unwrap();
        assert!(
            refused >= 1,
            "a client got in while the first held the backup"
        );
        assert_eq!(task_files, files);
        served += 1;
    }
    assert_eq!(served, CLIENTS);
    dc.wait_no_associations().await;
    assert_eq!(dc.dc().active_backup(), None);
}
