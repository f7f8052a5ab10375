//! One file of the backup set streamed into any `AsyncWrite` (here stdout, e.g. piped into
//! `zstd` or an object store's uploader): `cargo run -p dsbackup-client --example stream_file
//! > ntds.dit`.
//!
//! `FileReader` is an `AsyncRead`: `tokio::io::copy` moves the bytes while several
//! `HrRBackupRead` calls are in flight.

#[path = "common/mod.rs"]
mod common;

use dsbackup_client::{BackupType, BftKind};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = common::client()?;
    let mut session = client.backup_prepare(BackupType::Full).await?;
    let result = async {
        let names = session.database_names().await?;
        let entry = names
            .iter()
            .find(|entry| entry.kind == BftKind::NTDS_DATABASE)
            .ok_or("the server lists no database")?;
        let mut reader = session.open_file(&entry.name).await?;
        let size = reader.size();
        let copied = tokio::io::copy(&mut reader, &mut tokio::io::stdout()).await?;
        reader.close().await?;
        eprintln!("{}: {copied} of {size} bytes", entry.name);
        Ok::<_, Box<dyn std::error::Error>>(())
    }
    .await;
    // DsBackupEnd, after a failure too: every binding is closed.
    session.end().await?;
    result
}
