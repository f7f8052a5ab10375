//! `backup_to_dir`, `verify_dir` and `restore_from_dir` against the mock DC.

use std::time::Duration;

use dsbackup_client::{
    BackupOptions, Error, FileOutcome, NoProgress, RestoreOptions, backup_to_dir, partial_path,
    restore_from_dir, verify_dir,
};
use dsbackup_mock::{DsMode, SampleFileKind};
use dsbackup_proto::iface::Interface;

use crate::common::{BACKUP_USER, Dc, RESTORE_USER, assert_no_bindings, sha256_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_set_matches_the_servers_files_and_restores_where_the_mock_says() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("set");
    let summary = backup_to_dir(&client, &out, &BackupOptions::default(), &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(summary.end_error, None);
    assert!(out.join("manifest.json").exists());
    assert!(!partial_path(&out).exists());
    let manifest = &summary.manifest;
    // The database, the patch file and the logs from the checkpoint on, with their SHA-256.
    let checkpoint = dc.sample.checkpoint_generation;
    let expected: Vec<_> = dc
        .sample
        .files
        .iter()
        .filter(|f| match f.kind {
            SampleFileKind::Database | SampleFileKind::Patch => true,
            SampleFileKind::Log(generation) => generation >= checkpoint,
            SampleFileKind::Checkpoint => false,
        })
        .collect();
    assert_eq!(expected.len(), 4);
    assert_eq!(manifest.files.len(), expected.len());
    for file in expected {
        let entry = manifest
            .files
            .iter()
            .find(|e| e.server_name().eq_ignore_ascii_case(&file.name))
            .unwrap_or_else(|| panic!("{} is missing", file.name));
        assert_eq!(entry.sha256, hex::encode(file.sha256), "{}", file.name);
        assert_eq!(entry.size, file.size);
        assert_eq!(sha256_file(&out.join(&entry.path)), entry.sha256);
    }
    assert!(verify_dir(&out, &mut NoProgress).unwrap().is_ok());
    assert_no_bindings(&client);

    // Restore: the DC in restore mode, its UNC directory mapped onto a local one.
    let (target, options) = dc.restore_into(tmp.path());
    let client = dc.client(RESTORE_USER);
    let restored = restore_from_dir(&client, &out, &options, &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(restored.bytes, manifest.total_size());
    for entry in &manifest.files {
        let path = target.join(entry.server_name());
        assert_eq!(sha256_file(&path), entry.sha256, "{}", path.display());
    }
    let marker = dc.dc().restore_marker().unwrap();
    assert!(!marker.blocks_startup(), "{marker:?}");
    assert_no_bindings(&client);
    dc.wait_no_associations().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_that_fails_leaves_no_directory_that_looks_complete() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("set");
    // The third read of a file fails.
    dc.dc()
        .faults()
        .delay(Interface::AdBackup, 4, Duration::from_millis(5));
    let faults = dc.dc().faults().clone();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        faults.status_for_opnum(Interface::AdBackup, 4, dsbackup_client::Status::HR_ERROR);
    });
    let error = backup_to_dir(&client, &out, &BackupOptions::default(), &mut NoProgress)
        .await
        .unwrap_err();
    killer.await.unwrap();
    assert!(matches!(error, Error::Status { .. }), "{error:?}");
    assert!(!out.exists());
    assert!(!partial_path(&out).exists());
    assert_no_bindings(&client);
    dc.wait_no_associations().await;
    assert_eq!(dc.dc().active_backup(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_file_fails_the_backup_and_leaves_nothing() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("set");
    dc.dc()
        .faults()
        .delay(Interface::AdBackup, 4, Duration::from_millis(20));
    let partial = partial_path(&out);
    let backup = {
        let client = client.clone();
        let out = out.clone();
        tokio::spawn(async move {
            backup_to_dir(&client, &out, &BackupOptions::default(), &mut NoProgress).await
        })
    };
    // Wait until the database file is being written, then kill the server.
    crate::common::wait_until("the database file to be partly written", || {
        std::fs::metadata(partial.join("ntds/.ntds.dit.tmp")).is_ok_and(|m| m.len() > 0)
    })
    .await;
    dc.server.shutdown().await;
    let error = backup.await.unwrap().unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert!(!out.exists());
    assert!(!partial.exists());
    assert_no_bindings(&client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_set_is_not_restored() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("set");
    let summary = backup_to_dir(&client, &out, &BackupOptions::default(), &mut NoProgress)
        .await
        .unwrap();
    let log = summary
        .manifest
        .files
        .iter()
        .find(|f| f.path.starts_with("logs/"))
        .unwrap();
    std::fs::write(out.join(&log.path), b"damaged").unwrap();
    let report = verify_dir(&out, &mut NoProgress).unwrap();
    assert!(matches!(
        report.failures().next().map(|f| &f.outcome),
        Some(FileOutcome::SizeDiffers { .. })
    ));
    dc.dc().set_mode(DsMode::Restore);
    let client = dc.client(RESTORE_USER);
    let error = restore_from_dir(&client, &out, &RestoreOptions::default(), &mut NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Mismatch { failed: 1, .. }),
        "{error:?}"
    );
    // Nothing was sent: the server saw no restore session.
    assert!(dc.dc().restore_marker().is_none());
    assert_no_bindings(&client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_truncated_only_once_the_set_is_complete() {
    let dc = Dc::start().await;
    let client = dc.client(BACKUP_USER);
    let tmp = tempfile::tempdir().unwrap();
    let options = BackupOptions::default().truncate_logs(true);
    let out = tmp.path().join("set");
    let summary = backup_to_dir(&client, &out, &options, &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(summary.truncate_error, None);
    assert!(verify_dir(&out, &mut NoProgress).unwrap().is_ok());

    // A truncation that fails leaves a complete set and says so.
    dc.dc().faults().status_for_opnum_times(
        Interface::AdBackup,
        7,
        dsbackup_client::Status::ERROR_ACCESS_DENIED,
        1,
    );
    let out = tmp.path().join("set2");
    let summary = backup_to_dir(&client, &out, &options, &mut NoProgress)
        .await
        .unwrap();
    let error = summary.truncate_error.unwrap();
    assert!(error.contains("HrRBackupTruncateLogs"), "{error}");
    assert!(verify_dir(&out, &mut NoProgress).unwrap().is_ok());
    assert_no_bindings(&client);
}
