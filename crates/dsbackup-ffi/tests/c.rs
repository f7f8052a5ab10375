//! The library from C: `examples/c/ntbackup.c` backs up a mock DC through the C API alone and
//! its files hash as the server's do; `tests/c/contract.c` checks the handle contract and the
//! documented error paths. Both are built with the system's `cc -Wall -Wextra -Werror` and run
//! under AddressSanitizer (with LeakSanitizer: any leak fails the run) and UBSan.

#![cfg(test)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dsbackup_client::AuthLevel;
use dsbackup_mock::serve::{MockServer, ServeOptions};
use dsbackup_mock::{MockConfig, MockDc, Privileges, SampleManifest, SampleSpec};

const USER: &str = "svc-backup";
const NOBODY: &str = "guest";
const PASSWORD: &str = "Passw0rd!";

struct Dc {
    server: MockServer,
    sample: SampleManifest,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn start_dc() -> Dc {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ntds");
    std::fs::create_dir(&root).unwrap();
    let spec = SampleSpec {
        // Not a multiple of any read size.
        database_size: 3 * 1024 * 1024 + 5,
        log_count: 3,
        log_size: 256 * 1024,
        with_patch_file: true,
        patch_size: 8192,
        ..SampleSpec::default()
    };
    let sample = dsbackup_mock::generate_sample_set(&root, &spec).unwrap();
    let config = MockConfig::builder("DC1", &root)
        .domain("CORP")
        .user(USER, PASSWORD, Privileges::BACKUP)
        .user(NOBODY, PASSWORD, Privileges::NONE)
        .state_dir(dir.path().join("state"))
        .min_auth_level(AuthLevel::PKT_INTEGRITY)
        .build();
    let server = runtime
        .block_on(MockServer::start(
            MockDc::new(config).unwrap(),
            &ServeOptions::loopback(),
        ))
        .unwrap();
    Dc {
        server,
        sample,
        _runtime: runtime,
        _dir: dir,
    }
}

/// Where cargo put `libntdsbcli.so` for this test (beside the test binary).
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().to_owned();
    assert!(
        dir.join("libntdsbcli.so").exists(),
        "no libntdsbcli.so in {}",
        dir.display()
    );
    dir
}

/// Builds `source` with the system C compiler, sanitizers on, against the library.
fn build(source: &Path, out: &Path) {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = library_dir();
    let output = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".to_owned()))
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1"])
        .args(["-fsanitize=address,undefined", "-fno-omit-frame-pointer"])
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg("-o")
        .arg(out)
        .arg(source)
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lntdsbcli", "-pthread"])
        .output()
        .expect("the system C compiler `cc` runs");
    assert_success("cc", &output);
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs a built program against `dc`, sanitizers reporting every error and leak.
fn run(dc: &Dc, program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env(
            "NTDSBCLI_EPM_PORT",
            dc.server.local_addr().port().to_string(),
        )
        .env("NTBACKUP_USER", USER)
        .env("NTBACKUP_DOMAIN", "CORP")
        .env("NTBACKUP_PASSWORD", PASSWORD)
        .env("NTBACKUP_NOBODY", NOBODY)
        .env(
            "ASAN_OPTIONS",
            "detect_leaks=1:abort_on_error=0:exitcode=99",
        )
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        .output()
        .unwrap()
}

#[test]
fn ntbackup_c_backs_up_the_mock_dc_and_its_files_hash_as_the_servers() {
    let dc = start_dc();
    let temp = tempfile::tempdir().unwrap();
    let program = temp.path().join("ntbackup");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/c/ntbackup.c");
    build(&source, &program);
    let out = temp.path().join("set");
    std::fs::create_dir(&out).unwrap();
    let output = run(&dc, &program, &["\\\\127.0.0.1", out.to_str().unwrap()]);
    assert_success("ntbackup", &output);

    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut written: Vec<&str> = stdout
        .lines()
        .map(|line| line.rsplit(' ').next().unwrap())
        .collect();
    written.sort_unstable();
    // The database, the patch file, and the logs from the checkpoint's generation on.
    let logs = (dc.sample.checkpoint_generation..=dc.sample.current_generation)
        .map(|generation| format!("edb{generation:05x}.log"));
    let mut served: Vec<String> = ["ntds.dit".to_owned(), "ntds.pat".to_owned()]
        .into_iter()
        .chain(logs)
        .collect();
    served.sort_unstable();
    assert_eq!(written, served, "{stdout}");
    for name in written {
        let file = dc.sample.file(name).unwrap();
        let sha256 = dsbackup_mock::sample::sha256_file(&out.join(name)).unwrap();
        assert_eq!(sha256, file.sha256, "{name}");
    }
    let token = std::fs::read(out.join("expiry-token.bin")).unwrap();
    assert!(!token.is_empty());
    // The program ended its session.
    assert_eq!(
        dc.server.dc().active_backup(),
        None,
        "DsBackupEnd ended the session"
    );
}

#[test]
fn contract_c_passes_every_check() {
    let dc = start_dc();
    let temp = tempfile::tempdir().unwrap();
    let program = temp.path().join("contract");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/contract.c");
    build(&source, &program);
    let output = run(&dc, &program, &["127.0.0.1"]);
    assert_success("contract", &output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("every check passed"));
}
