//! The soak driver of `cargo xtask soak`: backups against an in-process mock DC, one fault per
//! cycle, and after each cycle a check that nothing leaked and that no set reported good
//! differs from the source.
//!
//! ```sh
//! cargo run --release -p dsbackup-cli --example soak -- --cycles N --cli target/release/dsbackup
//! ```
//!
//! The faults, in turn:
//!
//! | fault | how | what must follow |
//! | --- | --- | --- |
//! | `drop` | the mock closes the connection after k calls | the backup fails, or succeeds with the source's bytes |
//! | `stall` | the mock sleeps 3 s before a read; the client's call timeout is 1 s | the backup fails |
//! | `corrupt` | the mock alters its n-th response fragment after sealing | the backup fails (the seal check), or succeeds with the source's bytes |
//! | `kill-client` | a `dsbackup backup` process, SIGKILLed mid-read | no set at `--out` |
//! | `kill-server` | the server's runtime, and so every socket and task of it, dropped mid-read; a new server on the same port | the backup fails |
//! | `half-open` | a raw socket sends half a fragment and shuts its write side, beside a normal backup | the backup succeeds with the source's bytes; the server closes the half-open socket |
//! | `signal` | a `dsbackup backup` process sent SIGINT, SIGTERM or SIGHUP mid-read | it ends its session, removes its partial set and exits 130, 143 or 129; no set at `--out` |
//!
//! The CLI faults strike while the database is being read (each read delayed 40 ms); a CLI that
//! finished before its signal arrived (a loaded machine) counts as a good set, and is checked as
//! one.
//!
//! After every cycle, within 10 s: the server has no association, no call and no task beyond
//! its listeners; the client's registry has no binding, association, task or call; the mock
//! holds no backup session (it ran the session down); this process has the file descriptors it
//! had after the warm-up backup (`/proc/self/fd`; client and server both live here). Any set
//! at `--out` must verify and match the source file by file. Prints a summary per fault, one
//! JSON document on the last line (a cycle's time includes the wait until everything is
//! released), and exits 1 on the first broken property (with what broke).

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    reason = "a soak driver: prints its report and stops at the first broken property"
)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dsbackup_client::{
    AuthLevel, BackupOptions, Client, ClientConfig, Credentials, Endpoint, Manifest, NoProgress,
};
use dsbackup_mock::serve::{MockServer, ServeOptions};
use dsbackup_mock::{MockConfig, MockDc, Privileges, SampleManifest, SampleSpec};
use dsbackup_proto::iface::Interface;
use dsbackup_transport::Snapshot;

const USER: &str = "soak";
const PASSWORD: &str = "soak-Passw0rd!";
/// `HrRBackupRead`.
const READ: u16 = 4;
/// How long a cycle's resources may take to be released.
const SETTLE: Duration = Duration::from_secs(10);
const FAULTS: [&str; 7] = [
    "drop",
    "stall",
    "corrupt",
    "kill-client",
    "kill-server",
    "half-open",
    "signal",
];

fn main() {
    let mut cycles = 100_u64;
    let mut cli = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cycles" => {
                cycles = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--cycles N")
            }
            "--cli" => cli = args.next().map(PathBuf::from),
            other => panic!("unknown argument {other}; usage: soak --cycles N --cli PATH"),
        }
    }
    let cli = cli.expect("--cli PATH: the dsbackup binary");
    let mut soak = Soak::new(cli);
    let started = Instant::now();
    let mut stats: BTreeMap<&str, FaultStats> = BTreeMap::new();
    for cycle in 0..cycles {
        let fault = FAULTS[usize::try_from(cycle).unwrap() % FAULTS.len()];
        let began = Instant::now();
        let outcome = soak
            .cycle(fault, cycle / FAULTS.len() as u64)
            .and_then(|good| soak.settled().map(|()| good));
        match outcome {
            Ok(good) => stats.entry(fault).or_default().add(good, began.elapsed()),
            Err(broken) => {
                eprintln!("cycle {cycle} ({fault}): {broken}");
                report(&stats, cycle, started.elapsed(), Some(&broken));
                std::process::exit(1);
            }
        }
        if (cycle + 1) % 500 == 0 {
            eprintln!(
                "{} cycles, {:.0} s",
                cycle + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    report(&stats, cycles, started.elapsed(), None);
}

#[derive(Default)]
struct FaultStats {
    cycles: u64,
    good_sets: u64,
    total: Duration,
    longest: Duration,
}

impl FaultStats {
    fn add(&mut self, good: bool, took: Duration) {
        self.cycles += 1;
        self.good_sets += u64::from(good);
        self.total += took;
        self.longest = self.longest.max(took);
    }
}

fn report(stats: &BTreeMap<&str, FaultStats>, cycles: u64, took: Duration, broken: Option<&str>) {
    println!("fault        cycles  good sets  mean s  max s");
    let mut faults = Vec::new();
    for (fault, s) in stats {
        let mean = s.total.as_secs_f64() / s.cycles.max(1) as f64;
        println!(
            "{fault:<12} {:>6}  {:>9}  {mean:>6.2}  {:>5.2}",
            s.cycles,
            s.good_sets,
            s.longest.as_secs_f64()
        );
        faults.push(serde_json::json!({
            "fault": fault, "cycles": s.cycles, "good_sets": s.good_sets,
            "mean_secs": mean, "max_secs": s.longest.as_secs_f64(),
        }));
    }
    let json = serde_json::json!({
        "soak": { "cycles": cycles, "secs": took.as_secs_f64(), "broken": broken, "faults": faults }
    });
    println!("{json}");
    std::io::stdout().flush().ok();
}

/// The server and what every cycle compares with.
struct Soak {
    cli: PathBuf,
    temp: tempfile::TempDir,
    root: PathBuf,
    source: SampleManifest,
    client_rt: tokio::runtime::Runtime,
    server: Option<(tokio::runtime::Runtime, MockServer)>,
    /// The server's tasks when idle (its listeners).
    idle_tasks: usize,
    port: u16,
    /// Open file descriptors after the warm-up backup.
    fds: usize,
    /// The files (UNC paths) of the warm-up set, which every good set must have.
    files: Vec<String>,
    /// The metrics of the last in-process client.
    client_metrics: Option<dsbackup_transport::Metrics>,
}

type Result<T> = std::result::Result<T, String>;

impl Soak {
    fn new(cli: PathBuf) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("ntds");
        let spec = SampleSpec {
            database_size: 1 << 20,
            log_count: 3,
            log_size: 64 * 1024,
            ..SampleSpec::default()
        };
        let source = dsbackup_mock::generate_sample_set(&root, &spec).unwrap();
        let client_rt = runtime();
        let mut soak = Self {
            cli,
            temp,
            root,
            source,
            client_rt,
            server: None,
            idle_tasks: 0,
            port: 0,
            fds: 0,
            files: Vec::new(),
            client_metrics: None,
        };
        soak.start_server();
        // A warm-up backup opens what stays open (the runtimes' pools); then count.
        let config = soak.config();
        soak.in_process_backup(&config).expect("the warm-up backup");
        soak.check_set().expect("the warm-up set");
        soak.files = Manifest::read(&soak.out())
            .unwrap()
            .files
            .into_iter()
            .map(|f| f.unc)
            .collect();
        std::fs::remove_dir_all(soak.out()).unwrap();
        soak.settled().unwrap();
        soak.fds = open_fds();
        soak
    }

    fn start_server(&mut self) {
        let rt = runtime();
        let config = MockConfig::builder("DC1", &self.root)
            .user(USER, PASSWORD, Privileges::BACKUP)
            .state_dir(self.temp.path().join("state"))
            .max_read_chunk(64 * 1024)
            .build();
        let mut options = ServeOptions::loopback();
        options.listen = SocketAddr::from(([127, 0, 0, 1], self.port));
        let server = rt
            .block_on(MockServer::start(MockDc::new(config).unwrap(), &options))
            .unwrap();
        self.port = server.local_addr().port();
        self.idle_tasks = server.snapshot().tasks;
        self.server = Some((rt, server));
    }

    /// Drops the server's runtime: every task and socket of the server goes at once, as when
    /// its process is killed.
    fn kill_server(&mut self) {
        if let Some((rt, server)) = self.server.take() {
            drop(server);
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }

    fn server(&self) -> &MockServer {
        &self.server.as_ref().unwrap().1
    }

    fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new("127.0.0.1")
            .credentials(Credentials::from_password(USER, "", PASSWORD))
            .auth_level(AuthLevel::PKT_PRIVACY)
            .endpoint(Endpoint::Port(self.port));
        config.read_size = Some(64 * 1024);
        config
    }

    fn out(&self) -> PathBuf {
        self.temp.path().join("set")
    }

    /// One cycle of `fault`; `round` varies where the fault strikes. Returns whether a good set
    /// came out (and was checked against the source).
    fn cycle(&mut self, fault: &str, round: u64) -> Result<bool> {
        let faults = self.server().dc().faults().clone();
        faults.clear();
        let result = match fault {
            "drop" => {
                faults.drop_after_calls(Some(2 + round % 40));
                let config = self.config();
                Ok(self.in_process_backup(&config).unwrap_or(false))
            }
            "stall" => {
                faults.delay(Interface::AdBackup, READ, Duration::from_secs(3));
                let mut config = self.config();
                config.call_timeout = Duration::from_secs(1);
                match self.in_process_backup(&config) {
                    Ok(_) => {
                        Err("a backup whose reads stall past the call timeout succeeded".into())
                    }
                    Err(_) => Ok(false),
                }
            }
            "corrupt" => {
                faults.corrupt_response_fragment(Some(1 + round % 60));
                let config = self.config();
                Ok(self.in_process_backup(&config).unwrap_or(false))
            }
            "kill-client" => {
                faults.delay(Interface::AdBackup, READ, Duration::from_millis(40));
                let child = self.spawn_cli()?;
                self.wait_until_reading()?;
                std::thread::sleep(Duration::from_millis(round % 5 * 20));
                let status = kill(child, "KILL")?;
                if status.success() {
                    // It finished before the signal (a loaded machine): its set is checked.
                    return Ok(true);
                }
                if status.signal() != Some(9) {
                    return Err(format!("the client killed by SIGKILL ended with {status}"));
                }
                // A killed process removes nothing: its partial set is left for the next
                // backup to replace; what matters is that no set appears at --out.
                self.no_set()?;
                std::fs::remove_dir_all(self.partial()).ok();
                Ok(false)
            }
            "kill-server" => {
                faults.delay(Interface::AdBackup, READ, Duration::from_millis(40));
                let client = Client::new(self.config()).map_err(|e| e.to_string())?;
                self.client_metrics = Some(client.registry().metrics().clone());
                let out = self.out();
                let backup = self.client_rt.spawn(async move {
                    dsbackup_client::backup_to_dir(
                        &client,
                        &out,
                        &BackupOptions::default(),
                        &mut NoProgress,
                    )
                    .await
                    .map(|_| ())
                });
                self.wait_until_reading()?;
                std::thread::sleep(Duration::from_millis(round % 5 * 20));
                self.kill_server();
                let result = self.client_rt.block_on(backup).map_err(|e| e.to_string())?;
                self.start_server();
                match result {
                    Ok(()) => Err("a backup whose server was killed mid-read succeeded".into()),
                    Err(_) => self.no_set().map(|()| false),
                }
            }
            "half-open" => {
                let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
                let mut socket = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
                // The first 10 bytes of a bind's common header (frag_length 72): half a
                // fragment, then no more to send.
                socket
                    .write_all(&[5, 0, 11, 3, 0x10, 0, 0, 0, 72, 0])
                    .map_err(|e| e.to_string())?;
                socket
                    .shutdown(std::net::Shutdown::Write)
                    .map_err(|e| e.to_string())?;
                let config = self.config();
                self.in_process_backup(&config)
                    .map_err(|e| format!("a backup beside a half-open socket failed: {e}"))?;
                socket
                    .set_read_timeout(Some(SETTLE))
                    .map_err(|e| e.to_string())?;
                let mut rest = Vec::new();
                std::io::Read::read_to_end(&mut socket, &mut rest)
                    .map_err(|e| format!("the server did not close a half-open socket: {e}"))?;
                Ok(true)
            }
            "signal" => {
                faults.delay(Interface::AdBackup, READ, Duration::from_millis(40));
                let (signal, graceful) = [("INT", 130), ("TERM", 143), ("HUP", 129)]
                    [usize::try_from(round % 3).unwrap()];
                let child = self.spawn_cli()?;
                self.wait_until_reading()?;
                let status = kill(child, signal)?;
                if status.success() {
                    // It finished before the signal (a loaded machine): its set is checked.
                    return Ok(true);
                }
                if status.code() != Some(graceful) {
                    return Err(format!(
                        "SIG{signal}: the client ended with {status}, not exit {graceful}"
                    ));
                }
                if self.partial().exists() {
                    return Err(format!("SIG{signal}: exit {graceful} left the partial set"));
                }
                self.no_set().map(|()| false)
            }
            other => Err(format!("no fault `{other}`")),
        };
        if let Some((_, server)) = &self.server {
            server.dc().faults().clear();
        }
        let good = result?;
        if good {
            self.check_set()?;
        } else {
            self.no_set()?;
        }
        std::fs::remove_dir_all(self.out()).ok();
        Ok(good)
    }

    /// A backup by the client library, in this process: whether it succeeded, or its error.
    fn in_process_backup(&mut self, config: &ClientConfig) -> std::result::Result<bool, String> {
        let client = Client::new(config.clone()).map_err(|e| e.to_string())?;
        self.client_metrics = Some(client.registry().metrics().clone());
        let out = self.out();
        self.client_rt
            .block_on(async move {
                dsbackup_client::backup_to_dir(
                    &client,
                    &out,
                    &BackupOptions::default(),
                    &mut NoProgress,
                )
                .await
            })
            .map(|_| true)
            .map_err(|e| e.to_string())
    }

    fn partial(&self) -> PathBuf {
        self.temp.path().join("set.partial")
    }

    fn spawn_cli(&self) -> Result<Child> {
        Command::new(&self.cli)
            .args(["backup", "--server", "127.0.0.1", "--epm-port"])
            .arg(self.port.to_string())
            .args(["--user", USER, "--read-size", "65536", "--out"])
            .arg(self.out())
            .env("DSBACKUP_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.cli.display()))
    }

    /// Waits until the database is being written into the partial set.
    fn wait_until_reading(&self) -> Result<()> {
        let file = self.partial().join("ntds/.ntds.dit.tmp");
        let deadline = Instant::now() + SETTLE;
        while !std::fs::metadata(&file).is_ok_and(|m| m.len() > 0) {
            if Instant::now() > deadline {
                return Err("the backup never started writing the database".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    fn no_set(&self) -> Result<()> {
        if self.out().join("manifest.json").exists() || self.out().exists() {
            return Err("a failed backup left a set at --out".into());
        }
        Ok(())
    }

    /// The set at --out verifies, has the files of the warm-up set, and each of its files is the
    /// source file of the same name.
    fn check_set(&self) -> Result<()> {
        let out = self.out();
        dsbackup_client::verify_dir(&out, &mut NoProgress)
            .and_then(dsbackup_client::VerifyReport::into_result)
            .map_err(|e| format!("a set reported good does not verify: {e}"))?;
        let manifest = Manifest::read(&out).map_err(|e| e.to_string())?;
        let files: Vec<&String> = manifest.files.iter().map(|f| &f.unc).collect();
        if !self.files.is_empty() && files.iter().copied().ne(self.files.iter()) {
            return Err(format!(
                "a set reported good has the files {files:?}, the first set {:?}",
                self.files
            ));
        }
        for file in &manifest.files {
            let source = self.source.file(file.server_name()).ok_or_else(|| {
                format!("a set reported good has {}, not in the source", file.unc)
            })?;
            let on_disk = dsbackup_client::hash_file(&out.join(&file.path), &mut NoProgress)
                .map_err(|e| e.to_string())?;
            if on_disk.1 != hex::encode(source.sha256) || file.sha256 != on_disk.1 {
                return Err(format!(
                    "a set reported good differs from the source in {}",
                    file.path
                ));
            }
        }
        Ok(())
    }

    /// Within [`SETTLE`]: no association, call or extra task on the server, nothing open in
    /// the last client's registry, no backup session in the mock, the warm-up's descriptors.
    fn settled(&self) -> Result<()> {
        let deadline = Instant::now() + SETTLE;
        loop {
            let server = self.server().snapshot();
            let client = self
                .client_metrics
                .as_ref()
                .map(dsbackup_transport::Metrics::snapshot);
            let session = self.server().dc().active_backup();
            let fds = open_fds();
            let server_idle =
                server.associations == 0 && server.calls == 0 && server.tasks == self.idle_tasks;
            let client_idle = client.is_none_or(|c: Snapshot| c.is_idle());
            let fds_back = self.fds == 0 || fds <= self.fds;
            if server_idle && client_idle && session.is_none() && fds_back {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "still open after {SETTLE:?}: server {server:?} (idle: {} tasks), client {client:?}, \
                     backup session {session:?}, {fds} file descriptors (baseline {})",
                    self.idle_tasks, self.fds
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Sends `signal` to `child` (with kill(1), to keep this driver free of libc) and waits.
fn kill(mut child: Child, signal: &str) -> Result<std::process::ExitStatus> {
    let sent = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    if !sent.success() {
        // It may have finished already: then its status says so.
        eprintln!("kill -s {signal}: {sent}");
    }
    child.wait().map_err(|e| e.to_string())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}
