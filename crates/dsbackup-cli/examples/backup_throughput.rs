//! Backup throughput over loopback at each auth level and fragment size, held to what bounds
//! it: the crypto primitives timed in the same run (before and after the backups, the faster
//! time kept), and a plain TCP receive into the backup's own file sink (SHA-256, write, fsync)
//! of the same bytes measured alternately with it; with each side's CPU time and peak RSS.
//! Prints one JSON document (read by `cargo xtask bench`).
//!
//! ```sh
//! cargo run --release -p dsbackup-cli --example backup_throughput -- [SIZE_MIB] [DIR] [LEVELS] [FRAGS]
//! ```
//!
//! - SIZE_MIB: the database size (default 1024); DIR (default: a temporary directory) holds
//!   the generated set and the backups;
//! - LEVELS: a comma-separated subset of `none,connect,integrity,privacy,krb-privacy` (default
//!   all five; `privacy` is NTLM's, `krb-privacy` Kerberos packet privacy with an aes256 key,
//!   the ticket issued here under the key the mock serves with);
//! - FRAGS: the fragment sizes the client offers, comma-separated (default `5840,65535`;
//!   5840 is what Windows servers negotiate).
//!
//! The mock DC runs in a child process (this program, started with `--serve`), so that each
//! side's CPU time (`/proc/PID/stat`) and peak RSS (`VmHWM`, reset before each level) are its
//! own. Each row is the fastest of `BENCH_RUNS` (default 3) backups of the set with
//! `backup_to_dir`, timed over the database file only (from its open to its fsync and close:
//! the mock's snapshot copy at open, which a DC's database engine does not make, is left out);
//! the baseline runs between them, so that both see the same machine. At none and connect the
//! reads alone also run against plain TCP copies (the zero-copy path's ratio).
//! Each side runs on a tokio runtime of two worker threads (the client's writer thread and the
//! caller's own thread besides); `BENCH_CLIENT_WORKERS` and `BENCH_SERVER_WORKERS` set other
//! counts (client and mock share the machine's cores: on two cores, one worker each ran
//! integrity and privacy up to 10 % faster in side-by-side runs, within the machine's noise).
//! `BENCH_READ_SIZE` and `BENCH_IN_FLIGHT` override the client's read size and reads in flight;
//! `BENCH_PRIMITIVES=0` leaves out the timing of the primitives (for a run under
//! `valgrind --tool=callgrind --trace-children=yes`, whose instruction counts do not depend on
//! the machine's load).

#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::indexing_slicing,
    reason = "a benchmark binary: prints its result and stops at the first failure"
)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use dsbackup_client::{
    AuthLevel, BackupDirWriter, BackupOptions, BackupType, BftKind, Client, ClientConfig,
    Credentials, Endpoint, Progress, Tickets,
};
use dsbackup_krb::{
    AcceptorConfig, Credential, EncType, Grant, KerberosTime, Key, KeytabEntry, PrincipalName,
    ServiceKeys,
};
use dsbackup_mock::serve::{MockServer, ServeOptions};
use dsbackup_mock::{MockConfig, MockDc, Privileges, SampleSpec};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const USER: &str = "bench";
const PASSWORD: &str = "bench-Passw0rd";
const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;
/// Clock ticks per second of `/proc/PID/stat` (USER_HZ: 100 on every Linux ABI).
const USER_HZ: f64 = 100.0;
/// The realm and service principal of `krb-privacy`.
const REALM: &str = "BENCH.EXAMPLE";
const SPN: &str = "host/dc1.bench.example";

/// The mock's service key for `krb-privacy` (both processes make the same).
fn service_key() -> Key {
    Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x42; 32]).unwrap()
}

/// A ticket for the bench user to the mock, valid for a day, as a KDC would issue it.
fn ticket() -> Credential {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .cast_signed();
    let grant = Grant {
        crealm: REALM.into(),
        client: PrincipalName::user(USER),
        srealm: REALM.into(),
        server: PrincipalName::service(SPN),
        session_key: Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x24; 32]).unwrap(),
        authtime: KerberosTime(now - 60),
        endtime: KerberosTime(now + 86_400),
        flags: 0,
    };
    Credential::issue(grant, &service_key(), Some(1), &[3; 16])
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        return serve(Path::new(&args[1]), args[2].parse().unwrap());
    }
    let size_mib: u64 = args.first().map_or(1024, |s| s.parse().unwrap());
    let temp = tempfile::tempdir().unwrap();
    let base = args
        .get(1)
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| temp.path().to_owned(), Into::into);
    let levels = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "none,connect,integrity,privacy,krb-privacy".to_owned());
    let frags = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| "5840,65535".to_owned());
    let runs = std::env::var("BENCH_RUNS").map_or(3, |r| r.parse().unwrap());
    // BENCH_PRIMITIVES=0 skips timing the primitives (under valgrind, where it takes long).
    let time_primitives = !std::env::var("BENCH_PRIMITIVES").is_ok_and(|v| v == "0");
    let before = time_primitives.then(primitives);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::env::var("BENCH_CLIENT_WORKERS").map_or(2, |w| w.parse().unwrap()))
        .enable_all()
        .build()
        .unwrap();
    let rows = runtime.block_on(run(size_mib, &base, &levels, &frags, runs));
    // Timed again after the rows, each primitive's faster time kept: a moment of noise on the
    // machine makes a primitive look slower and its bound easier to meet, never harder.
    let primitives = before.map_or(serde_json::Value::Null, |before| {
        fastest(&before, &primitives())
    });
    let bytes = size_mib << 20;
    let result = serde_json::json!({
        "bench": "backup_throughput",
        "bytes": bytes,
        "runs": runs,
        "primitives": primitives,
        "rows": rows,
    });
    println!("{result}");
}

/// The mock DC side: generates the set under `base`, serves it on loopback, prints its port,
/// and stops when its standard input closes.
fn serve(base: &Path, size_mib: u64) {
    let root = base.join("ntds");
    let spec = SampleSpec {
        database_size: size_mib << 20,
        log_count: 1,
        log_size: 64 * 1024,
        ..SampleSpec::default()
    };
    dsbackup_mock::generate_sample_set(&root, &spec).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::env::var("BENCH_SERVER_WORKERS").map_or(2, |w| w.parse().unwrap()))
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = MockConfig::builder("DC1", &root)
            .user(USER, PASSWORD, Privileges::BACKUP)
            .min_auth_level(AuthLevel::NONE)
            .max_read_chunk(16 << 20)
            .build();
        let mut options = ServeOptions::loopback();
        options.danger_anonymous_user = Some(USER.to_owned());
        let entry = KeytabEntry {
            realm: REALM.into(),
            principal: PrincipalName::service(SPN),
            kvno: 1,
            key: service_key(),
        };
        options.kerberos = Some(AcceptorConfig::new(ServiceKeys::new(vec![entry], None)));
        let server = MockServer::start(MockDc::new(config).unwrap(), &options)
            .await
            .unwrap();
        println!("port {}", server.local_addr().port());
        std::io::stdout().flush().unwrap();
        tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new()))
            .await
            .unwrap()
            .unwrap();
        server.shutdown().await;
    });
}

/// The mock DC in a child process.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(base: &Path, size_mib: u64) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("--serve")
            .arg(base)
            .arg(size_mib.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().strip_prefix("port ").unwrap().parse().unwrap();
        Self { child, port }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        self.child.wait().unwrap();
    }
}

async fn run(
    size_mib: u64,
    base: &Path,
    wanted: &str,
    frags: &str,
    runs: usize,
) -> Vec<serde_json::Value> {
    let server = Server::start(base, size_mib);
    let database = base.join("ntds").join("ntds.dit");
    let bytes = std::fs::metadata(&database).unwrap().len();
    let mut rows = Vec::new();
    for frag in frags.split(',').map(|f| f.parse::<u16>().unwrap()) {
        for (name, level) in [
            ("none", AuthLevel::NONE),
            ("connect", AuthLevel::CONNECT),
            ("integrity", AuthLevel::PKT_INTEGRITY),
            ("privacy", AuthLevel::PKT_PRIVACY),
            ("krb-privacy", AuthLevel::PKT_PRIVACY),
        ] {
            if !wanted.split(',').any(|w| w == name) {
                continue;
            }
            let client = client(server.port, level, frag, name == "krb-privacy");
            reset_peak_rss("self");
            reset_peak_rss(&server.pid().to_string());
            let mut best: Option<Timed> = None;
            let mut baseline = f64::MAX;
            let mut read = f64::MAX;
            let mut plain = f64::MAX;
            for run in 0..runs {
                let out = base.join(format!("backup-{name}-{frag}-{run}"));
                baseline = baseline.min(receive_hash_write(&database, &out).await);
                let timed = backup(&client, &out, server.pid()).await;
                if best.as_ref().is_none_or(|b| timed.seconds < b.seconds) {
                    best = Some(timed);
                }
                if matches!(name, "none" | "connect") {
                    plain = plain.min(plain_tcp_copy(&database).await);
                    read = read.min(read_database(&client, bytes).await);
                }
            }
            let best = best.unwrap();
            let per_gib = |cpu: f64| cpu / (bytes as f64 / GIB);
            let mut row = serde_json::json!({
                "frag": frag,
                "auth": name,
                "backup_mib_s": bytes as f64 / MIB / best.seconds,
                "baseline_mib_s": bytes as f64 / MIB / baseline,
                "client_cpu_s_per_gib": per_gib(best.client_cpu),
                "server_cpu_s_per_gib": per_gib(best.server_cpu),
                "client_peak_rss_mib": peak_rss_kib("self").map(|kib| kib as f64 / 1024.0),
                "server_peak_rss_mib":
                    peak_rss_kib(&server.pid().to_string()).map(|kib| kib as f64 / 1024.0),
            });
            if read < f64::MAX {
                row["read_mib_s"] = (bytes as f64 / MIB / read).into();
                row["plain_tcp_mib_s"] = (bytes as f64 / MIB / plain).into();
                row["read_ratio_to_plain_tcp"] = (plain / read).into();
            }
            rows.push(row);
        }
    }
    server.stop();
    rows
}

/// A client at `level` offering fragments of `frag` bytes (with Kerberos when `kerberos`,
/// else NTLM), with the default read size and reads in flight unless `BENCH_READ_SIZE` and
/// `BENCH_IN_FLIGHT` say otherwise.
fn client(port: u16, level: AuthLevel, frag: u16, kerberos: bool) -> Client {
    let mut config = ClientConfig::new("127.0.0.1")
        .auth_level(level)
        .endpoint(Endpoint::Port(port));
    config.max_frag = frag;
    if kerberos {
        config = config.kerberos(Tickets::fixed(ticket()));
    } else if level != AuthLevel::NONE {
        config = config.credentials(Credentials::from_password(USER, "", PASSWORD));
    }
    if let Ok(size) = std::env::var("BENCH_READ_SIZE") {
        config.read_size = Some(size.parse().unwrap());
    }
    if let Ok(depth) = std::env::var("BENCH_IN_FLIGHT") {
        config.reads_in_flight = Some(depth.parse().unwrap());
    }
    Client::new(config).unwrap()
}

/// One backup's database file: wall seconds and each side's CPU seconds.
struct Timed {
    seconds: f64,
    client_cpu: f64,
    server_cpu: f64,
}

/// Times the database file of a `backup_to_dir`: from the moment it is open (the progress
/// report's `start_file`) to the moment it is fsynced and closed (`finish_file`).
struct DatabaseTimer {
    server_pid: String,
    started: Option<(Instant, f64, f64)>,
    timed: Option<Timed>,
}

impl Progress for DatabaseTimer {
    fn start_file(&mut self, name: &str, _size: u64) {
        if name.ends_with(".dit") {
            self.started = Some((
                Instant::now(),
                cpu_seconds("self"),
                cpu_seconds(&self.server_pid),
            ));
        }
    }

    fn advance(&mut self, _bytes: u64) {}

    fn finish_file(&mut self) {
        if let Some((started, client, server)) = self.started.take() {
            self.timed = Some(Timed {
                seconds: started.elapsed().as_secs_f64(),
                client_cpu: cpu_seconds("self") - client,
                server_cpu: cpu_seconds(&self.server_pid) - server,
            });
        }
    }
}

async fn backup(client: &Client, out: &Path, server_pid: u32) -> Timed {
    let mut timer = DatabaseTimer {
        server_pid: server_pid.to_string(),
        started: None,
        timed: None,
    };
    dsbackup_client::backup_to_dir(client, out, &BackupOptions::default(), &mut timer)
        .await
        .unwrap();
    std::fs::remove_dir_all(out).unwrap();
    timer.timed.expect("the set has a database file")
}

/// The baseline: one thread receives the file's bytes over loopback TCP and hands them to the
/// backup's own file sink (SHA-256, write, fsync), as a backup does without RPC; seconds.
async fn receive_hash_write(path: &Path, out: &Path) -> f64 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sender = tokio::spawn(send_file(listener, path.to_owned()));
    let out = out.with_extension("baseline");
    let started = Instant::now();
    let receiver = tokio::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        // Dropped uncommitted at the end: the directory goes with it.
        let mut dir = BackupDirWriter::create(&out).unwrap();
        let mut sink = dir
            .create_file(BftKind::NTDS_DATABASE, r"C:\Windows\NTDS\ntds.dit")
            .unwrap();
        let mut buf = vec![0_u8; 256 << 10];
        loop {
            let n = socket.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            sink.write(&buf[..n]).unwrap();
        }
        std::hint::black_box(sink.finish().unwrap());
    });
    receiver.await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    sender.await.unwrap();
    seconds
}

/// Sends the file's bytes to the first connection `listener` takes.
async fn send_file(listener: tokio::net::TcpListener, path: PathBuf) {
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
    let started = Instant::now();
    let sender = tokio::spawn(send_file(listener, path.to_owned()));
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = vec![0_u8; 1 << 20];
    while socket.read(&mut buf).await.unwrap() > 0 {}
    sender.await.unwrap();
    started.elapsed().as_secs_f64()
}

/// Nanoseconds per byte of each primitive of the data path, as the code we run computes it
/// (the fastest of several passes over a cache-resident 64 KiB buffer): RC4 is the NTLM
/// crate's own (`dsbackup_ntlm::rc4`), `rc4_crate` the `rc4` crate it is tested against;
/// `aes256_cts_hmac_sha1` Kerberos's encryption of a 64 KiB message (AES-256-CTS and
/// HMAC-SHA1-96 together, `Key::encrypt`).
fn primitives() -> serde_json::Value {
    use hmac::{KeyInit as _, Mac as _};
    use rc4::StreamCipher as _;

    const BUF: usize = 64 << 10;
    const PASSES: usize = 512;
    let mut data = vec![0x5a_u8; BUF];
    let time = |f: &mut dyn FnMut()| {
        (0..5)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..PASSES {
                    f();
                }
                started.elapsed().as_secs_f64() * 1e9 / (BUF * PASSES) as f64
            })
            .fold(f64::MAX, f64::min)
    };
    let mut ours = dsbackup_ntlm::rc4::Rc4::new(&[7; 16]);
    let rc4 = time(&mut || ours.apply(&mut data));
    let mut cipher = <rc4::Rc4 as rc4::KeyInit>::new_from_slice(&[7; 16]).unwrap();
    let rc4_crate = time(&mut || cipher.apply_keystream(&mut data));
    let md5 = time(&mut || {
        std::hint::black_box(md5::Md5::digest(&data));
    });
    let hmac_md5 = time(&mut || {
        let mut mac = hmac::Hmac::<md5::Md5>::new_from_slice(&[7; 16]).unwrap();
        mac.update(&data);
        std::hint::black_box(mac.finalize());
    });
    let sha256 = time(&mut || {
        std::hint::black_box(Sha256::digest(&data));
    });
    let key = Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[7; 32]).unwrap();
    let aes = time(&mut || {
        std::hint::black_box(key.encrypt(24, &[1; 16], &data));
    });
    // As the sessions run them: one 64 KiB fragment sealed (RC4 and HMAC-MD5 stitched), and
    // eight 8 KiB fragments signed or sealed as one batch (HMAC-MD5 eight at a time).
    let flags = {
        use dsbackup_ntlm::NegotiateFlags as F;
        F::NEGOTIATE_EXTENDED_SESSIONSECURITY
            | F::NEGOTIATE_128
            | F::NEGOTIATE_KEY_EXCH
            | F::NEGOTIATE_SIGN
            | F::NEGOTIATE_SEAL
    };
    let mut session = dsbackup_ntlm::SessionSecurity::new(
        &dsbackup_ntlm::Key::new([7; 16]),
        flags,
        dsbackup_ntlm::Role::Initiator,
    )
    .unwrap();
    let seal_one = time(&mut || {
        std::hint::black_box(session.seal_range(&mut data, 24..BUF - 8).unwrap());
    });
    let mut signatures = [[0_u8; 16]; 8];
    let mut batch = |seal: bool| {
        let mut fragments: Vec<dsbackup_proto::ProtectedFragment<'_>> = data
            .chunks_mut(BUF / 8)
            .zip(&mut signatures)
            .map(|(pdu, signature)| dsbackup_proto::ProtectedFragment {
                stub: 24..pdu.len() - 8,
                pdu,
                signature,
            })
            .collect();
        if seal {
            session.seal_batch(&mut fragments).unwrap();
        } else {
            session.sign_batch(&mut fragments).unwrap();
        }
    };
    let sign_batch = time(&mut || batch(false));
    let seal_batch = time(&mut || batch(true));
    serde_json::json!({"rc4": rc4, "rc4_crate": rc4_crate, "md5": md5, "hmac_md5": hmac_md5,
        "sha256": sha256, "aes256_cts_hmac_sha1": aes, "ntlm_seal_one": seal_one,
        "ntlm_sign_batch8": sign_batch, "ntlm_seal_batch8": seal_batch})
}

/// Each primitive's smaller nanoseconds per byte of two timings (the JSON objects of
/// [`primitives`]).
fn fastest(a: &serde_json::Value, b: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (key, value) in a.as_object().into_iter().flatten() {
        let ns = value.as_f64().unwrap();
        let other = b.get(key).and_then(serde_json::Value::as_f64).unwrap_or(ns);
        out.insert(key.clone(), ns.min(other).into());
    }
    out.into()
}

/// `/proc/PID/stat`'s user plus system time, in seconds (every thread, `self` or a PID).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (which may hold spaces) start at `state` (field 3):
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / USER_HZ
}

/// Resets a process's peak RSS to its current RSS (`/proc/PID/clear_refs`, Linux 4.0).
fn reset_peak_rss(pid: &str) {
    // Best effort: without it the peak covers the whole run so far.
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// A process's peak resident set size (VmHWM), in KiB.
fn peak_rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
