//! A backup set put back on a DC in restore mode: `cargo run -p dsbackup-client --example
//! restore -- DIR 'SERVER_PREFIX=LOCAL_DIR'...` (the server and credentials from the
//! environment, see `common`).
//!
//! Each rule maps where the DC keeps its files (a UNC prefix such as `\\DC1\C$`) to where that
//! is mounted here; the set is verified first, copied, then registered. Files already at a
//! target are never replaced by this example.

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;

use dsbackup_client::{NoProgress, PathMap, RestoreOptions, restore_from_dir};
use dsbackup_proto::iface::ad_restore::RESTORE_TYPE_CATCHUP;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: restore DIR RULE...")?);
    let mut map = PathMap::new();
    for rule in args {
        map = map.parse_rule(&rule)?;
    }
    let client = common::client()?;
    // A file already at a target stops the restore before anything is copied (no
    // `.overwrite(true)`).
    let options = RestoreOptions::new(map).rt_flag(RESTORE_TYPE_CATCHUP);
    let summary = restore_from_dir(&client, &dir, &options, &mut NoProgress).await?;
    eprintln!("restored {} files", summary.plan.copies.len());
    Ok(())
}
