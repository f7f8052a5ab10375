//! Lays out a sample NTDS directory and prints its manifest.
//!
//! `cargo run --release -p dsbackup-mock --example generate -- DIR DATABASE_MIB [LOGS] [SEED]`

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use dsbackup_mock::SampleSpec;
use dsbackup_mock::hex;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: generate DIR DATABASE_MIB [LOGS] [SEED]";
    let dir = PathBuf::from(args.next().ok_or(usage)?);
    let database_mib: u64 = args.next().ok_or(usage)?.parse()?;
    let log_count: u32 = args.next().map_or(Ok(8), |a| a.parse())?;
    let seed: u64 = args.next().map_or(Ok(0), |a| a.parse())?;
    let spec = SampleSpec {
        database_size: database_mib * 1024 * 1024,
        log_count,
        with_patch_file: true,
        seed,
        ..SampleSpec::default()
    };
    let started = Instant::now();
    let manifest = dsbackup_mock::generate_sample_set(&dir, &spec)?;
    let elapsed = started.elapsed();
    let total: u64 = manifest.files.iter().map(|f| f.size).sum();
    let mut out = std::io::stdout().lock();
    for file in &manifest.files {
        writeln!(
            out,
            "{}  {:>12}  {}",
            hex(&file.sha256),
            file.size,
            file.name
        )?;
    }
    writeln!(
        out,
        "{total} bytes in {:.2} s ({:.0} MiB/s); checkpoint {}, current {}",
        elapsed.as_secs_f64(),
        total as f64 / 1024.0 / 1024.0 / elapsed.as_secs_f64().max(1e-9),
        manifest.checkpoint_generation,
        manifest.current_generation
    )?;
    Ok(())
}
