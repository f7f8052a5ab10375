//! Backup throughput over loopback at each auth level, beside a plain TCP copy of the same
//! bytes measured in the same run, and the peak RSS; prints one JSON document (read by
//! `cargo xtask bench`).
//!
//! ```sh
//! cargo run --release -p dsbackup-cli --example backup_throughput -- [SIZE_MIB] [DIR] [LEVELS]
//! ```
//!
//! LEVELS: a comma-separated subset of `none,integrity,privacy` (default all three).
//!
//! Each transfer runs five times and the fastest run counts; a level's reads alternate with
//! plain copies, and its ratio is against the fastest of those. SIZE_MIB defaults to 1024;
//! DIR (default: a temporary directory) holds the generated set and the backups. Per level it
//! times the reads of the database file (pipelined `HrRBackupRead` calls and the close: the
//! data path; the mock's snapshot copy at open is not timed) and a whole `backup_to_dir` (with
//! the snapshot, hashing, writing and fsync).

#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::indexing_slicing,
    reason = "a benchmark binary: prints its result and stops at the first failure"
)]

use std::path::Path;
use std::time::Instant;

use dsbackup_client::{
    AuthLevel, BackupOptions, BackupType, Client, ClientConfig, Credentials, Endpoint, NoProgress,
};
use dsbackup_mock::serve::{MockServer, ServeOptions};
use dsbackup_mock::{MockConfig, MockDc, Privileges, SampleSpec};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const USER: &str = "bench";
const PASSWORD: &str = "bench-Passw0rd";
const MIB: f64 = 1024.0 * 1024.0;
/// Each transfer runs this many times and the fastest counts (the machine is shared: the
/// fastest run is the one least disturbed).
const RUNS: usize = 5;

fn main() {
    let mut args = std::env::args().skip(1);
    let size_mib: u64 = args.next().map_or(1024, |s| s.parse().unwrap());
    let temp = tempfile::tempdir().unwrap();
    let base = args
        .next()
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| temp.path().to_owned(), Into::into);
    let levels = args
        .next()
        .unwrap_or_else(|| "none,integrity,privacy".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(size_mib, &base, &levels));
}

async fn run(size_mib: u64, base: &Path, wanted: &str) {
    let root = base.join("ntds");
    let spec = SampleSpec {
        database_size: size_mib << 20,
        log_count: 1,
        log_size: 64 * 1024,
        ..SampleSpec::default()
    };
    dsbackup_mock::generate_sample_set(&root, &spec).unwrap();
    let database = root.join("ntds.dit");
    let bytes = std::fs::metadata(&database).unwrap().len();
    let mut plain = f64::MAX;
    let config = MockConfig::builder("DC1", &root)
        .user(USER, PASSWORD, Privileges::BACKUP)
        .min_auth_level(AuthLevel::NONE)
        .max_read_chunk(16 << 20)
        .build();
    let mut options = ServeOptions::loopback();
    options.danger_anonymous_user = Some(USER.to_owned());
    let server = MockServer::start(MockDc::new(config).unwrap(), &options)
        .await
        .unwrap();
    let mut levels = Vec::new();
    for (name, level) in [
        ("none", AuthLevel::NONE),
        ("integrity", AuthLevel::PKT_INTEGRITY),
        ("privacy", AuthLevel::PKT_PRIVACY),
    ] {
        if !wanted.split(',').any(|w| w == name) {
            continue;
        }
        let client = client(&server, level);
        // The plain copy runs between this level's reads, so that both see the same machine
        // (a shared machine's load comes and goes): the ratio compares neighbours.
        let mut level_plain = f64::MAX;
        let mut read = f64::MAX;
        for _ in 0..RUNS {
            level_plain = level_plain.min(plain_tcp_copy(&database).await);
            read = read.min(read_database(&client, bytes).await);
        }
        plain = plain.min(level_plain);
        // `BENCH_READ_ONLY=1` skips the whole-backup timing (to profile the read path).
        let backup = if std::env::var_os("BENCH_READ_ONLY").is_some() {
            f64::NAN
        } else {
            let out = base.join(format!("backup-{name}"));
            let started = Instant::now();
            dsbackup_client::backup_to_dir(
                &client,
                &out,
                &BackupOptions::default(),
                &mut NoProgress,
            )
            .await
            .unwrap();
            std::fs::remove_dir_all(&out).unwrap();
            started.elapsed().as_secs_f64()
        };
        levels.push(serde_json::json!({
            "auth": name,
            "read_mib_s": bytes as f64 / MIB / read,
            "plain_tcp_mib_s": bytes as f64 / MIB / level_plain,
            "read_ratio_to_plain_tcp": level_plain / read,
            "backup_to_dir_mib_s": bytes as f64 / MIB / backup,
        }));
    }
    server.shutdown().await;
    let result = serde_json::json!({
        "bench": "backup_throughput",
        "bytes": bytes,
        "plain_tcp_mib_s": bytes as f64 / MIB / plain,
        "levels": levels,
        "peak_rss_mib": peak_rss_kib().map(|kib| kib as f64 / 1024.0),
    });
    println!("{result}");
}

/// A client at `level` with the default read size and reads in flight (the environment
/// variables `BENCH_READ_SIZE` and `BENCH_IN_FLIGHT` override them, to explore).
fn client(server: &MockServer, level: AuthLevel) -> Client {
    let mut config = ClientConfig::new("127.0.0.1")
        .auth_level(level)
        .endpoint(Endpoint::Port(server.local_addr().port()));
    if level != AuthLevel::NONE {
        config = config.credentials(Credentials::from_password(USER, "", PASSWORD));
    }
    if let Ok(size) = std::env::var("BENCH_READ_SIZE") {
        config.read_size = size.parse().unwrap();
    }
    if let Ok(depth) = std::env::var("BENCH_IN_FLIGHT") {
        config.reads_in_flight = depth.parse().unwrap();
    }
    Client::new(config).unwrap()
}

/// Seconds to read the database file through the session: the pipelined reads and the close.
/// The open is not timed: the mock copies the file to a snapshot there (a DC's database engine
/// does not).
async fn read_database(client: &Client, expected: u64) -> f64 {
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    let name = session.database_names().await.unwrap()[0].name.clone();
    let mut reader = session.open_file(&name).await.unwrap();
    let started = Instant::now();
    let mut total = 0_u64;
    while let Some(chunk) = reader.next_chunk().await.unwrap() {
        total += chunk.len() as u64;
    }
    reader.close().await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(total, expected);
    session.end().await.unwrap();
    seconds
}

/// Seconds to send the file's bytes over a loopback TCP connection and receive them.
async fn plain_tcp_copy(path: &Path) -> f64 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let path = path.to_owned();
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut file = tokio::fs::File::open(path).await.unwrap();
        let mut buf = vec![0_u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            socket.write_all(&buf[..n]).await.unwrap();
        }
        socket.shutdown().await.unwrap();
    });
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = vec![0_u8; 1 << 20];
    while socket.read(&mut buf).await.unwrap() > 0 {}
    sender.await.unwrap();
    started.elapsed().as_secs_f64()
}

/// The process's peak resident set size (VmHWM), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
