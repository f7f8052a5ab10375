//! A full backup into a directory, verified: `cargo run -p dsbackup-client --example
//! backup_to_dir -- OUT` (the server and credentials from the environment, see `common`).
//!
//! The directory appears only once complete: database, logs, patch file, expiry token and a
//! manifest with every file's SHA-256.

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;

use dsbackup_client::{BackupOptions, NoProgress, backup_to_dir, verify_dir};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).ok_or("usage: backup_to_dir OUT")?);
    let client = common::client()?;
    let summary = backup_to_dir(&client, &out, &BackupOptions::default(), &mut NoProgress).await?;
    let report = verify_dir(&out, &mut NoProgress)?.into_result()?;
    eprintln!(
        "{} files, {} bytes, verified: {}",
        summary.manifest.files.len(),
        summary.bytes,
        report.manifest.files.len()
    );
    Ok(())
}
