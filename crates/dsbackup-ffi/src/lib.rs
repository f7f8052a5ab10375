//! `libntdsbcli`: the `ntdsbcli` C API of Windows (`DsBackupPrepare` .. `DsBackupEnd`,
//! `DsRestore*`, `DsIsNTDSOnline`, `DsSetAuthIdentity`, `DsSetCurrentBackupLog`) for C programs
//! on Linux, built on [`dsbackup_client`]'s blocking API.
//!
//! The headers are `include/ntdsbcli.h` and `include/ntdsbmsg.h` (the `hr*` statuses, generated
//! from `spec/ntdsbmsg.tsv`); `cargo xtask install --prefix DIR` puts them, `libntdsbcli.so`,
//! `libntdsbcli.a` and `ntdsbcli.pc` under `DIR`. The crate's README says how each function
//! behaves and which `HRESULT` each failure returns ([`hresult`]).
//!
//! Every function takes its pointers as Windows' library does, and checks what can be checked:
//! a NULL pointer, a handle that is not live (handles are numbers looked up in a
//! table, never dereferenced), a buffer size outside the documented rule. Every entry point
//! catches panics (`E_UNEXPECTED`) and may be called from any thread.
//!
//! Linux has no process security context to fall back on: without `DsSetAuthIdentity` the
//! calls bind without authentication. The endpoint comes from the environment, read at each
//! `*Prepare`, `DsIsNTDSOnline` and `DsSetCurrentBackupLog`: `NTDSBCLI_EPM_PORT` (the endpoint
//! mapper's port, 135 by default) or `NTDSBCLI_PORT` (a fixed port for both interfaces), and
//! `NTDSBCLI_AUTH_LEVEL` (`connect`, `integrity` or `privacy`, the default).

mod handles;
pub mod hresult;
mod text;

use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, PoisonError};

use dsbackup_client::blocking::Client;
use dsbackup_client::{AuthLevel, BackupType, ClientConfig, Credentials, Endpoint, Registration};
use dsbackup_proto::Status;
use dsbackup_proto::iface::ad_backup::{
    BACKUP_TYPE_FULL, BACKUP_TYPE_INCREMENTAL, BACKUP_TYPE_LOGS_ONLY,
};

use crate::handles::{Buffer, Kind, Session};
use crate::hresult::{Hresult, codes, from_error, from_status};
use crate::text::{Chars, Narrow, Wide};

/// `HBC`: a backup or restore context handle.
pub type Hbc = *mut c_void;

/// `EDB_RSTMAPA` / `EDB_RSTMAPW`: one database's old and new path for `DsRestoreRegister`.
#[repr(C)]
#[derive(Debug)]
pub struct EdbRstmap<C> {
    /// `szDatabaseName`: the path the database was backed up from.
    pub database_name: *const C,
    /// `szNewDatabaseName`: where it was restored to.
    pub new_database_name: *const C,
}

/// Whether `size` follows the documented rule for read buffers: a multiple of 8 KiB, at
/// least 24 KiB (a buffer larger than one read of the protocol is filled by several).
pub const fn is_valid_read_size(size: u32) -> bool {
    size >= 24 * 1024 && size.is_multiple_of(8 * 1024)
}

/// `DsSetAuthIdentity`'s credentials: process-wide, as in Windows' library.
static IDENTITY: Mutex<Option<Credentials>> = Mutex::new(None);

/// Runs an entry point: its error as the `HRESULT`, a panic as `E_UNEXPECTED`.
fn guard(body: impl FnOnce() -> Result<(), Hresult>) -> Hresult {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => codes::S_OK,
        Ok(Err(code)) => code,
        Err(_) => codes::E_UNEXPECTED,
    }
}

/// Writes `value` to the caller's `out`, which was checked not to be NULL.
///
/// # Safety
/// `out` is NULL or valid for a write of a `T`, aligned.
unsafe fn put<T>(out: *mut T, value: T) -> Result<(), Hresult> {
    if out.is_null() {
        return Err(codes::ERROR_INVALID_PARAMETER);
    }
    // SAFETY: not NULL; valid and aligned as the caller guarantees.
    unsafe { out.write(value) };
    Ok(())
}

/// The blocking client for `server` with the identity and the endpoint settings of now.
fn client(server: &str) -> Result<Client, Hresult> {
    let server = text::server_name(server)?;
    let credentials = IDENTITY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let env = |name: &str| std::env::var(name).ok();
    let level = match (&credentials, env("NTDSBCLI_AUTH_LEVEL").as_deref()) {
        (None, _) => AuthLevel::NONE,
        (Some(_), None | Some("privacy")) => AuthLevel::PKT_PRIVACY,
        (Some(_), Some("integrity")) => AuthLevel::PKT_INTEGRITY,
        (Some(_), Some("connect")) => AuthLevel::CONNECT,
        (Some(_), Some(_)) => return Err(codes::ERROR_INVALID_PARAMETER),
    };
    let port = |name: &str| -> Result<Option<u16>, Hresult> {
        env(name)
            .map(|port| port.parse().map_err(|_| codes::ERROR_INVALID_PARAMETER))
            .transpose()
    };
    let endpoint = match (port("NTDSBCLI_PORT")?, port("NTDSBCLI_EPM_PORT")?) {
        (Some(port), _) => Endpoint::Port(port),
        (None, Some(port)) => Endpoint::Mapper { port },
        (None, None) => Endpoint::default(),
    };
    let mut config = ClientConfig::new(server)
        .auth_level(level)
        .endpoint(endpoint);
    config.credentials = credentials;
    Client::new(config).map_err(|error| from_error(&error))
}

/// Runs `call` on the backup session of `hbc`.
fn with_backup<T>(
    hbc: Hbc,
    call: impl FnOnce(&mut dsbackup_client::blocking::BackupSession) -> Result<T, Hresult>,
) -> Result<T, Hresult> {
    let slot = handles::get(hbc, &[Kind::Backup])?;
    let mut session = slot.lock();
    match session.as_mut() {
        Some(Session::Backup(session)) => call(session),
        _ => Err(codes::ERROR_INVALID_PARAMETER),
    }
}

/// Runs `call` on the restore session of `hbc`.
fn with_restore<T>(
    hbc: Hbc,
    call: impl FnOnce(&dsbackup_client::blocking::RestoreSession) -> Result<T, Hresult>,
) -> Result<T, Hresult> {
    let slot = handles::get(hbc, &[Kind::Restore])?;
    let session = slot.lock();
    match session.as_ref() {
        Some(Session::Restore(session)) => call(session),
        _ => Err(codes::ERROR_INVALID_PARAMETER),
    }
}

fn hr<T>(result: Result<T, dsbackup_client::Error>) -> Result<T, Hresult> {
    result.map_err(|error| from_error(&error))
}

/// Hands a list to C through `out` and its size in bytes through `size`.
///
/// # Safety
/// `out` and `size` are NULL or valid for writes.
unsafe fn put_list<C: Chars>(
    entries: &[dsbackup_client::NameEntry],
    out: *mut *mut C::Unit,
    size: *mut u32,
) -> Result<(), Hresult> {
    let buffer = C::list(entries)?;
    let bytes = text::byte_size(&buffer)?;
    let pointer = handles::hand_out(buffer).cast::<C::Unit>();
    // SAFETY: as this function's caller guarantees. On failure the buffer stays in the table
    // (a DsBackupFree of nothing the caller got); it is small.
    unsafe { put(out, pointer)? };
    // SAFETY: as this function's caller guarantees.
    unsafe { put(size, bytes) }
}

// ---------------------------------------------------------------------------------------------
// The functions, generic over the width; the exported A and W forms below call them.

/// # Safety
/// As `DsIsNTDSOnline`'s documentation requires of its arguments.
unsafe fn is_ntds_online<C: Chars>(server: *const C::Unit, online: *mut i32) -> Hresult {
    guard(|| {
        if online.is_null() {
            return Err(codes::ERROR_INVALID_PARAMETER);
        }
        // SAFETY: the caller passes a string or NULL.
        let server = unsafe { C::string(server)? };
        let result = hr(client(&server)?.is_ntds_online())?;
        // SAFETY: checked not NULL; the caller passes a writable BOOL.
        unsafe { put(online, i32::from(result)) }
    })
}

/// # Safety
/// As `DsBackupPrepare`'s documentation requires of its arguments.
unsafe fn backup_prepare<C: Chars>(
    server: *const C::Unit,
    _grbit: u32,
    bt_flag: u32,
    token: *mut *mut c_void,
    token_size: *mut u32,
    phbc: *mut Hbc,
) -> Hresult {
    guard(|| {
        if phbc.is_null() {
            return Err(codes::ERROR_INVALID_PARAMETER);
        }
        if token.is_null() || token_size.is_null() {
            return Err(from_status(Status::HR_INVALID_PARAM));
        }
        let backup_type = match bt_flag {
            BACKUP_TYPE_FULL => BackupType::Full,
            // Not supported by Windows' server; the mock DC serves it (its extension).
            BACKUP_TYPE_LOGS_ONLY => BackupType::LogsOnly,
            BACKUP_TYPE_INCREMENTAL => return Err(codes::ERROR_INVALID_PARAMETER),
            _ => return Err(codes::ERROR_INVALID_PARAMETER),
        };
        // SAFETY: the caller passes a string or NULL.
        let server = unsafe { C::string(server)? };
        let session = hr(client(&server)?.backup_prepare(backup_type))?;
        let token_bytes = session.expiry_token().to_vec();
        let token_len = u32::try_from(token_bytes.len()).map_err(|_| codes::E_FAIL)?;
        let token_pointer = if token_bytes.is_empty() {
            std::ptr::null_mut()
        } else {
            handles::hand_out(Buffer::Bytes(token_bytes))
        };
        let handle = handles::insert(Session::Backup(session));
        // SAFETY: the three were checked not NULL; the caller passes writable locations.
        unsafe {
            put(token, token_pointer)?;
        }
        // SAFETY: as above.
        unsafe {
            put(token_size, token_len)?;
        }
        // SAFETY: as above.
        unsafe { put(phbc, handle) }
    })
}

/// # Safety
/// As the documentation of `DsBackupGetDatabaseNames` / `DsBackupGetBackupLogs` /
/// `DsRestoreGetDatabaseLocations` requires of their arguments.
unsafe fn list<C: Chars>(hbc: Hbc, which: List, out: *mut *mut C::Unit, size: *mut u32) -> Hresult {
    guard(|| {
        if out.is_null() || size.is_null() {
            return Err(codes::ERROR_INVALID_PARAMETER);
        }
        let entries = match which {
            List::DatabaseNames => with_backup(hbc, |s| hr(s.database_names()))?,
            List::BackupLogs => with_backup(hbc, |s| hr(s.backup_logs()))?,
            List::Locations => {
                let slot = handles::get(hbc, &[Kind::Backup, Kind::Restore])?;
                let mut session = slot.lock();
                match session.as_mut() {
                    Some(Session::Backup(s)) => hr(s.database_locations())?,
                    Some(Session::Restore(s)) => hr(s.database_locations())?,
                    None => return Err(codes::ERROR_INVALID_PARAMETER),
                }
            }
        };
        // SAFETY: both checked not NULL; the caller passes writable locations.
        unsafe { put_list::<C>(&entries, out, size) }
    })
}

/// Which list [`list`] returns.
#[derive(Clone, Copy, Debug)]
enum List {
    DatabaseNames,
    BackupLogs,
    Locations,
}

/// # Safety
/// As `DsBackupOpenFile`'s documentation requires of its arguments.
unsafe fn open_file<C: Chars>(
    hbc: Hbc,
    name: *const C::Unit,
    read_hint: u32,
    size: *mut i64,
) -> Hresult {
    guard(|| {
        if size.is_null() || !is_valid_read_size(read_hint) {
            return Err(codes::ERROR_INVALID_PARAMETER);
        }
        // SAFETY: the caller passes a string or NULL.
        let name = unsafe { C::string(name)? };
        let name = text::attachment_name(&name);
        let file_size = with_backup(hbc, |s| {
            if s.is_file_open() {
                return Err(from_status(Status::HR_ALREADY_OPEN));
            }
            hr(s.open_file(name))
        })?;
        let file_size = i64::try_from(file_size).map_err(|_| codes::RPC_S_PROTOCOL_ERROR)?;
        // SAFETY: checked not NULL; the caller passes a writable LARGE_INTEGER.
        unsafe { put(size, file_size) }
    })
}

/// # Safety
/// As `DsSetCurrentBackupLog`'s documentation requires of its arguments.
unsafe fn set_current_backup_log<C: Chars>(server: *const C::Unit, log: u32) -> Hresult {
    guard(|| {
        // SAFETY: the caller passes a string or NULL.
        let server = unsafe { C::string(server)? };
        hr(client(&server)?.set_current_backup_log(log))
    })
}

/// # Safety
/// As `DsSetAuthIdentity`'s documentation requires of its arguments.
unsafe fn set_auth_identity<C: Chars>(
    user: *const C::Unit,
    domain: *const C::Unit,
    password: *const C::Unit,
) -> Hresult {
    guard(|| {
        let credentials = if user.is_null() {
            None
        } else {
            // SAFETY: the caller passes strings or NULL (NULL domain and password: empty).
            let (user, domain, password) = unsafe {
                (
                    C::string(user)?,
                    optional::<C>(domain)?,
                    optional::<C>(password)?,
                )
            };
            Some(Credentials::from_password(&user, &domain, &password))
        };
        *IDENTITY.lock().unwrap_or_else(PoisonError::into_inner) = credentials;
        Ok(())
    })
}

/// A string that may be NULL (then empty).
///
/// # Safety
/// As [`Chars::string`].
unsafe fn optional<C: Chars>(text: *const C::Unit) -> Result<String, Hresult> {
    if text.is_null() {
        Ok(String::new())
    } else {
        // SAFETY: as this function's caller guarantees.
        unsafe { C::string(text) }
    }
}

/// # Safety
/// As `DsRestorePrepare`'s documentation requires of its arguments.
unsafe fn restore_prepare<C: Chars>(
    server: *const C::Unit,
    rt_flag: u32,
    token: *const c_void,
    token_size: u32,
    phbc: *mut Hbc,
) -> Hresult {
    guard(|| {
        if phbc.is_null() || (token.is_null() && token_size != 0) {
            return Err(codes::ERROR_INVALID_PARAMETER);
        }
        // SAFETY: the caller passes a string or NULL.
        let server = unsafe { C::string(server)? };
        let token = if token.is_null() {
            None
        } else {
            let len = usize::try_from(token_size).map_err(|_| codes::ERROR_INVALID_PARAMETER)?;
            // SAFETY: not NULL; the caller passes `token_size` readable bytes.
            Some(unsafe { std::slice::from_raw_parts(token.cast::<u8>(), len) })
        };
        let session = hr(client(&server)?.restore_prepare(rt_flag, token))?;
        let handle = handles::insert(Session::Restore(session));
        // SAFETY: checked not NULL; the caller passes a writable HBC.
        unsafe { put(phbc, handle) }
    })
}

/// # Safety
/// As `DsRestoreRegister`'s documentation requires of its arguments.
#[expect(clippy::too_many_arguments, reason = "the C function's parameters")]
unsafe fn restore_register<C: Chars>(
    hbc: Hbc,
    checkpoint_path: *const C::Unit,
    log_path: *const C::Unit,
    rstmap: *const EdbRstmap<C::Unit>,
    count: i32,
    backup_log_path: *const C::Unit,
    gen_low: u32,
    gen_high: u32,
) -> Hresult {
    guard(|| {
        let count = usize::try_from(count).map_err(|_| codes::ERROR_INVALID_PARAMETER)?;
        if count > 0 && rstmap.is_null() {
            return Err(codes::ERROR_INVALID_PARAMETER);
        }
        let mut pairs = Vec::new();
        for index in 0..count {
            // SAFETY: not NULL; the caller passes `count` entries.
            let entry = unsafe { &*rstmap.add(index) };
            // SAFETY: each entry holds two strings (or NULLs, refused).
            let pair = unsafe {
                (
                    C::string(entry.database_name)?,
                    C::string(entry.new_database_name)?,
                )
            };
            pairs.push(pair);
        }
        // SAFETY: the caller passes strings or NULL (refused: the documentation requires them).
        let (checkpoint_file_path, log_path, backup_log_path) = unsafe {
            (
                C::string(checkpoint_path)?,
                C::string(log_path)?,
                C::string(backup_log_path)?,
            )
        };
        let registration = Registration {
            checkpoint_file_path,
            log_path,
            rstmap: pairs,
            backup_log_path,
            gen_low,
            gen_high,
        };
        with_restore(hbc, |s| hr(s.register(&registration)))
    })
}

// ---------------------------------------------------------------------------------------------
// The exported functions.

/// `DsIsNTDSOnlineA`.
///
/// # Safety
/// `server` is a NUL-terminated string or NULL; `online` a writable `BOOL` or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsIsNTDSOnlineA(server: *const c_char, online: *mut i32) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { is_ntds_online::<Narrow>(server, online) }
}

/// `DsIsNTDSOnlineW`.
///
/// # Safety
/// As [`DsIsNTDSOnlineA`], with a UTF-16 string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsIsNTDSOnlineW(server: *const u16, online: *mut i32) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { is_ntds_online::<Wide>(server, online) }
}

/// `DsBackupPrepareA`.
///
/// # Safety
/// `server` a NUL-terminated string or NULL; the three out-pointers writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsBackupPrepareA(
    server: *const c_char,
    grbit: u32,
    bt_flag: u32,
    token: *mut *mut c_void,
    token_size: *mut u32,
    phbc: *mut Hbc,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { backup_prepare::<Narrow>(server, grbit, bt_flag, token, token_size, phbc) }
}

/// `DsBackupPrepareW`.
///
/// # Safety
/// As [`DsBackupPrepareA`], with a UTF-16 string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsBackupPrepareW(
    server: *const u16,
    grbit: u32,
    bt_flag: u32,
    token: *mut *mut c_void,
    token_size: *mut u32,
    phbc: *mut Hbc,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { backup_prepare::<Wide>(server, grbit, bt_flag, token, token_size, phbc) }
}

/// `DsBackupGetDatabaseNamesA`.
///
/// # Safety
/// `names` and `size` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsBackupGetDatabaseNamesA(
    hbc: Hbc,
    names: *mut *mut c_char,
    size: *mut u32,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { list::<Narrow>(hbc, List::DatabaseNames, names, size) }
}

/// `DsBackupGetDatabaseNamesW`.
///
/// # Safety
/// As [`DsBackupGetDatabaseNamesA`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsBackupGetDatabaseNamesW(
    hbc: Hbc,
    names: *mut *mut u16,
    size: *mut u32,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { list::<Wide>(hbc, List::DatabaseNames, names, size) }
}

/// `DsBackupOpenFileA`.
///
/// # Safety
/// `name` a NUL-terminated string or NULL; `size` a writable `LARGE_INTEGER` or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsBackupOpenFileA(
    hbc: Hbc,
    name: *const c_char,
    read_hint: u32,
    size: *mut i64,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { open_file::<Narrow>(hbc, name, read_hint, size) }
}

/// `DsBackupOpenFileW`.
///
/// # Safety
/// As [`DsBackupOpenFileA`], with a UTF-16 string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsBackupOpenFileW(
    hbc: Hbc,
    name: *const u16,
    read_hint: u32,
    size: *mut i64,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { open_file::<Wide>(hbc, name, read_hint, size) }
}

/// `DsBackupRead`: fills the buffer with the next bytes of the open file;
/// `ERROR_HANDLE_EOF` (and 0 bytes) once every byte came.
///
/// # Safety
/// `buffer` writable for `size` bytes or NULL; `read` a writable `DWORD` or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsBackupRead(
    hbc: Hbc,
    buffer: *mut c_void,
    size: u32,
    read: *mut u32,
) -> Hresult {
    guard(|| {
        if buffer.is_null() || read.is_null() || !is_valid_read_size(size) {
            return Err(codes::ERROR_INVALID_PARAMETER);
        }
        let len = usize::try_from(size).map_err(|_| codes::ERROR_INVALID_PARAMETER)?;
        // SAFETY: checked not NULL; the caller passes `size` writable bytes. They may be
        // uninitialized: zeroing them first makes them valid `u8`s for the slice below.
        let buf = unsafe {
            buffer.write_bytes(0, len);
            std::slice::from_raw_parts_mut(buffer.cast::<u8>(), len)
        };
        let n = with_backup(hbc, |s| {
            if !s.is_file_open() {
                return Err(codes::ERROR_INVALID_PARAMETER);
            }
            hr(s.read(buf))
        })?;
        let n = u32::try_from(n).map_err(|_| codes::E_UNEXPECTED)?;
        // SAFETY: checked not NULL; the caller passes a writable DWORD.
        unsafe { put(read, n)? };
        if n == 0 {
            Err(codes::ERROR_HANDLE_EOF)
        } else {
            Ok(())
        }
    })
}

/// `DsBackupClose`: closes the open file (`hrInvalidHandle` when none is).
#[unsafe(no_mangle)]
pub extern "C" fn DsBackupClose(hbc: Hbc) -> Hresult {
    guard(|| {
        with_backup(hbc, |s| {
            if !s.is_file_open() {
                return Err(from_status(Status::HR_INVALID_HANDLE));
            }
            hr(s.close_file())
        })
    })
}

/// `DsBackupGetBackupLogsA`.
///
/// # Safety
/// `names` and `size` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsBackupGetBackupLogsA(
    hbc: Hbc,
    names: *mut *mut c_char,
    size: *mut u32,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { list::<Narrow>(hbc, List::BackupLogs, names, size) }
}

/// `DsBackupGetBackupLogsW`.
///
/// # Safety
/// As [`DsBackupGetBackupLogsA`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsBackupGetBackupLogsW(
    hbc: Hbc,
    names: *mut *mut u16,
    size: *mut u32,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { list::<Wide>(hbc, List::BackupLogs, names, size) }
}

/// `DsBackupTruncateLogs`.
#[unsafe(no_mangle)]
pub extern "C" fn DsBackupTruncateLogs(hbc: Hbc) -> Hresult {
    guard(|| with_backup(hbc, |s| hr(s.truncate_logs())))
}

/// `DsBackupEnd`: ends the backup; the handle is retired and every binding it opened closed,
/// whatever the server answers.
#[unsafe(no_mangle)]
pub extern "C" fn DsBackupEnd(hbc: Hbc) -> Hresult {
    guard(|| match handles::remove(hbc, Kind::Backup)? {
        Session::Backup(session) => hr(session.end()),
        Session::Restore(_) => Err(codes::ERROR_INVALID_PARAMETER),
    })
}

/// `DsBackupFree`: frees a buffer the library returned (expiry token, name lists). Any other
/// pointer, NULL included, is left alone.
#[unsafe(no_mangle)]
pub extern "C" fn DsBackupFree(buffer: *mut c_void) {
    let _ = guard(|| {
        handles::free(buffer);
        Ok(())
    });
}

/// `DsSetCurrentBackupLogA`.
///
/// # Safety
/// `server` a NUL-terminated string or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsSetCurrentBackupLogA(server: *const c_char, log: u32) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { set_current_backup_log::<Narrow>(server, log) }
}

/// `DsSetCurrentBackupLogW`.
///
/// # Safety
/// As [`DsSetCurrentBackupLogA`], with a UTF-16 string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsSetCurrentBackupLogW(server: *const u16, log: u32) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { set_current_backup_log::<Wide>(server, log) }
}

/// `DsSetAuthIdentityA`: the credentials of every later call of the process (a NULL user
/// goes back to binding without authentication).
///
/// # Safety
/// Each argument a NUL-terminated string or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsSetAuthIdentityA(
    user: *const c_char,
    domain: *const c_char,
    password: *const c_char,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { set_auth_identity::<Narrow>(user, domain, password) }
}

/// `DsSetAuthIdentityW`.
///
/// # Safety
/// As [`DsSetAuthIdentityA`], with UTF-16 strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsSetAuthIdentityW(
    user: *const u16,
    domain: *const u16,
    password: *const u16,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { set_auth_identity::<Wide>(user, domain, password) }
}

/// `DsRestorePrepareA`.
///
/// # Safety
/// `server` a NUL-terminated string or NULL; `token` readable for `token_size` bytes or
/// NULL; `phbc` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsRestorePrepareA(
    server: *const c_char,
    rt_flag: u32,
    token: *const c_void,
    token_size: u32,
    phbc: *mut Hbc,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { restore_prepare::<Narrow>(server, rt_flag, token, token_size, phbc) }
}

/// `DsRestorePrepareW`.
///
/// # Safety
/// As [`DsRestorePrepareA`], with a UTF-16 string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsRestorePrepareW(
    server: *const u16,
    rt_flag: u32,
    token: *const c_void,
    token_size: u32,
    phbc: *mut Hbc,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { restore_prepare::<Wide>(server, rt_flag, token, token_size, phbc) }
}

/// `DsRestoreGetDatabaseLocationsA` (with a restore or a backup handle).
///
/// # Safety
/// `names` and `size` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsRestoreGetDatabaseLocationsA(
    hbc: Hbc,
    names: *mut *mut c_char,
    size: *mut u32,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { list::<Narrow>(hbc, List::Locations, names, size) }
}

/// `DsRestoreGetDatabaseLocationsW`.
///
/// # Safety
/// As [`DsRestoreGetDatabaseLocationsA`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsRestoreGetDatabaseLocationsW(
    hbc: Hbc,
    names: *mut *mut u16,
    size: *mut u32,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe { list::<Wide>(hbc, List::Locations, names, size) }
}

/// `DsRestoreRegisterA`.
///
/// # Safety
/// The strings NUL-terminated or NULL; `rstmap` readable for `count` entries (each two
/// strings) or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsRestoreRegisterA(
    hbc: Hbc,
    checkpoint_path: *const c_char,
    log_path: *const c_char,
    rstmap: *const EdbRstmap<c_char>,
    count: i32,
    backup_log_path: *const c_char,
    gen_low: u32,
    gen_high: u32,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe {
        restore_register::<Narrow>(
            hbc,
            checkpoint_path,
            log_path,
            rstmap,
            count,
            backup_log_path,
            gen_low,
            gen_high,
        )
    }
}

/// `DsRestoreRegisterW`.
///
/// # Safety
/// As [`DsRestoreRegisterA`], with UTF-16 strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DsRestoreRegisterW(
    hbc: Hbc,
    checkpoint_path: *const u16,
    log_path: *const u16,
    rstmap: *const EdbRstmap<u16>,
    count: i32,
    backup_log_path: *const u16,
    gen_low: u32,
    gen_high: u32,
) -> Hresult {
    // SAFETY: forwarded as received.
    unsafe {
        restore_register::<Wide>(
            hbc,
            checkpoint_path,
            log_path,
            rstmap,
            count,
            backup_log_path,
            gen_low,
            gen_high,
        )
    }
}

/// `DsRestoreRegisterComplete`: the outcome of the restore (`S_OK` or the failure).
#[unsafe(no_mangle)]
pub extern "C" fn DsRestoreRegisterComplete(hbc: Hbc, restore_state: Hresult) -> Hresult {
    let outcome = Status(u32::from_ne_bytes(restore_state.to_ne_bytes()));
    guard(|| with_restore(hbc, |s| hr(s.register_complete(outcome))))
}

/// `DsRestoreEnd`: ends the restore; the handle is retired and its binding closed, whatever
/// the server answers.
#[unsafe(no_mangle)]
pub extern "C" fn DsRestoreEnd(hbc: Hbc) -> Hresult {
    guard(|| match handles::remove(hbc, Kind::Restore)? {
        Session::Restore(session) => hr(session.end()),
        Session::Backup(_) => Err(codes::ERROR_INVALID_PARAMETER),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_an_entry_point_is_e_unexpected_not_an_unwind_into_c() {
        let hr = guard(|| panic!("a broken invariant"));
        assert_eq!(hr, codes::E_UNEXPECTED);
        assert_eq!(
            guard(|| Err(codes::ERROR_HANDLE_EOF)),
            codes::ERROR_HANDLE_EOF
        );
        assert_eq!(guard(|| Ok(())), codes::S_OK);
    }
}
