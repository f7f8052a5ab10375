//! `DsBackupEnd` retires the handle and closes every binding even when the server refuses
//! `HrRBackupEnd` or is gone, and a response altered on the way is `SEC_E_MESSAGE_ALTERED`:
//! the C functions called from Rust against a mock DC.
//! (One test: the endpoint is set in the process's environment.)

#![cfg(test)]

use std::ffi::{CString, c_void};
use std::ptr;

use dsbackup_client::AuthLevel;
use dsbackup_mock::serve::{MockServer, ServeOptions};
use dsbackup_mock::{MockConfig, MockDc, Privileges, SampleSpec};
use dsbackup_proto::Status;
use dsbackup_proto::iface::Interface;
use ntdsbcli::hresult::codes;

const FULL: u32 = 1;

fn start(runtime: &tokio::runtime::Runtime, dir: &std::path::Path) -> MockServer {
    let root = dir.join("ntds");
    std::fs::create_dir_all(&root).unwrap();
    let spec = SampleSpec {
        database_size: 1024 * 1024,
        log_count: 2,
        log_size: 64 * 1024,
        ..SampleSpec::default()
    };
    dsbackup_mock::generate_sample_set(&root, &spec).unwrap();
    let config = MockConfig::builder("DC1", &root)
        .domain("CORP")
        .user("svc-backup", "Passw0rd!", Privileges::BACKUP)
        .state_dir(dir.join("state"))
        .min_auth_level(AuthLevel::PKT_INTEGRITY)
        .build();
    runtime
        .block_on(MockServer::start(
            MockDc::new(config).unwrap(),
            &ServeOptions::loopback(),
        ))
        .unwrap()
}

fn prepare(server: &CString) -> (i32, *mut c_void) {
    let mut token = ptr::null_mut();
    let mut size = 0_u32;
    let mut hbc = ptr::null_mut();
    // SAFETY: a C string and three writable locations.
    let hr = unsafe {
        ntdsbcli::DsBackupPrepareA(server.as_ptr(), 0, FULL, &mut token, &mut size, &mut hbc)
    };
    ntdsbcli::DsBackupFree(token);
    (hr, hbc)
}

#[test]
fn end_retires_the_handle_when_the_server_is_gone() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = start(&runtime, dir.path());
    // SAFETY: no other thread of this test binary reads the environment now.
    unsafe {
        std::env::set_var("NTDSBCLI_EPM_PORT", server.local_addr().port().to_string());
    }
    let user = CString::new("svc-backup").unwrap();
    let domain = CString::new("CORP").unwrap();
    let password = CString::new("Passw0rd!").unwrap();
    // SAFETY: three C strings.
    let hr =
        unsafe { ntdsbcli::DsSetAuthIdentityA(user.as_ptr(), domain.as_ptr(), password.as_ptr()) };
    assert_eq!(hr, codes::S_OK);
    let name = CString::new(r"\\127.0.0.1").unwrap();

    // The server answers HrRBackupEnd with a failure: the status comes back as it came, the
    // handle is retired all the same, and the server sees every connection of it closed.
    let (hr, hbc) = prepare(&name);
    assert_eq!(hr, codes::S_OK);
    assert!(server.snapshot().associations > 0);
    server.dc().faults().status_for_opnum_times(
        Interface::AdBackup,
        1,
        Status::ERROR_NOT_ENOUGH_MEMORY,
        1,
    );
    assert_eq!(ntdsbcli::DsBackupEnd(hbc), codes::ERROR_NOT_ENOUGH_MEMORY);
    assert_eq!(ntdsbcli::DsBackupEnd(hbc), codes::ERROR_INVALID_PARAMETER);
    let closed = (0..1000).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        server.snapshot().associations == 0 && server.dc().active_backup().is_none()
    });
    assert!(
        closed,
        "connections left open after DsBackupEnd: {:?}",
        server.snapshot()
    );

    let (hr, hbc) = prepare(&name);
    assert_eq!(hr, codes::S_OK);
    runtime.block_on(server.shutdown());
    let hr = ntdsbcli::DsBackupEnd(hbc);
    assert_ne!(
        hr,
        codes::S_OK,
        "HrRBackupEnd cannot succeed without a server"
    );
    assert_eq!(hr, codes::RPC_S_CALL_FAILED);
    assert_eq!(ntdsbcli::DsBackupEnd(hbc), codes::ERROR_INVALID_PARAMETER);
    assert_eq!(
        ntdsbcli::DsBackupTruncateLogs(hbc),
        codes::ERROR_INVALID_PARAMETER
    );

    // No server at all now: preparing cannot connect.
    let (hr, hbc) = prepare(&name);
    assert_eq!(hr.cast_unsigned(), 0xC7FF_0007, "hrCouldNotConnect");
    assert!(hbc.is_null());
}
