//! The table of live `HBC` handles and of the buffers the library handed out.
//!
//! An `HBC` is a number, never a pointer to anything: the functions look it up here, so a NULL,
//! garbage or ended handle is an unknown number and gets `ERROR_INVALID_PARAMETER`, never a
//! dereference. Numbers are not reused within a process. Buffers are kept here until
//! `DsBackupFree`, which frees only what it finds.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use dsbackup_client::blocking::{BackupSession, RestoreSession};

use crate::hresult::{Hresult, codes};

/// What a handle is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// From `DsBackupPrepare`.
    Backup,
    /// From `DsRestorePrepare`.
    Restore,
}

/// The session behind a live handle.
#[derive(Debug)]
pub(crate) enum Session {
    Backup(BackupSession),
    Restore(RestoreSession),
}

/// One live handle: its kind, and its session until the handle is ended.
#[derive(Debug)]
pub(crate) struct Slot {
    kind: Kind,
    session: Mutex<Option<Session>>,
}

impl Slot {
    /// The session, locked for one call (calls on one handle run one at a time).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Option<Session>> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where handle numbers start (so that small integers are never handles) and how they step.
const FIRST_HANDLE: usize = 0x5db0_0010;
const HANDLE_STEP: usize = 0x10;

static NEXT_HANDLE: AtomicUsize = AtomicUsize::new(FIRST_HANDLE);

fn table() -> MutexGuard<'static, HashMap<usize, Arc<Slot>>> {
    static TABLE: OnceLock<Mutex<HashMap<usize, Arc<Slot>>>> = OnceLock::new();
    TABLE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Registers `session`; its new handle.
pub(crate) fn insert(session: Session) -> *mut c_void {
    let kind = match session {
        Session::Backup(_) => Kind::Backup,
        Session::Restore(_) => Kind::Restore,
    };
    let id = NEXT_HANDLE.fetch_add(HANDLE_STEP, Ordering::Relaxed);
    table().insert(
        id,
        Arc::new(Slot {
            kind,
            session: Mutex::new(Some(session)),
        }),
    );
    std::ptr::without_provenance_mut(id)
}

/// The live handle `hbc` if it is of one of `kinds`.
pub(crate) fn get(hbc: *mut c_void, kinds: &[Kind]) -> Result<Arc<Slot>, Hresult> {
    let slot = table()
        .get(&hbc.addr())
        .cloned()
        .ok_or(codes::ERROR_INVALID_PARAMETER)?;
    if kinds.contains(&slot.kind) {
        Ok(slot)
    } else {
        Err(codes::ERROR_INVALID_PARAMETER)
    }
}

/// Retires the handle `hbc` if it is of `kind`: it is unknown from now on, whatever its
/// session's end returns; its session, unless another thread took it first.
pub(crate) fn remove(hbc: *mut c_void, kind: Kind) -> Result<Session, Hresult> {
    let slot = {
        let mut table = table();
        match table.get(&hbc.addr()) {
            Some(slot) if slot.kind == kind => table.remove(&hbc.addr()),
            _ => None,
        }
    };
    let slot = slot.ok_or(codes::ERROR_INVALID_PARAMETER)?;
    // A call on this handle still running on another thread finishes first.
    let session = slot.lock().take();
    session.ok_or(codes::ERROR_INVALID_PARAMETER)
}

/// A buffer handed to C: its bytes stay where they are until [`free`].
#[derive(Debug)]
pub(crate) enum Buffer {
    Bytes(Vec<u8>),
    Units(Vec<u16>),
}

impl Buffer {
    fn as_mut_ptr(&mut self) -> *mut c_void {
        match self {
            Self::Bytes(bytes) => bytes.as_mut_ptr().cast(),
            Self::Units(units) => units.as_mut_ptr().cast(),
        }
    }
}

fn buffers() -> MutexGuard<'static, HashMap<usize, Buffer>> {
    static BUFFERS: OnceLock<Mutex<HashMap<usize, Buffer>>> = OnceLock::new();
    BUFFERS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Hands `buffer` (not empty) to C: the pointer `DsBackupFree` takes back.
pub(crate) fn hand_out(mut buffer: Buffer) -> *mut c_void {
    let pointer = buffer.as_mut_ptr();
    // Moving the Vec into the map does not move its heap block.
    buffers().insert(pointer.addr(), buffer);
    pointer
}

/// `DsBackupFree`: frees the buffer at `pointer` if the library handed it out; anything else
/// (NULL, a pointer already freed, a pointer of the caller's own) is left alone.
pub(crate) fn free(pointer: *mut c_void) {
    let buffer = buffers().remove(&pointer.addr());
    drop(buffer);
}
