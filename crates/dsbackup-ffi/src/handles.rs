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

/// A buffer handed to C.
#[derive(Debug)]
pub(crate) enum Buffer {
    Bytes(Vec<u8>),
    Units(Vec<u16>),
}

/// What the table keeps of a buffer handed out: its length and element type. The buffer
/// itself is owned by C until `DsBackupFree`.
#[derive(Clone, Copy, Debug)]
enum Handed {
    Bytes(usize),
    Units(usize),
}

/// The table's key for a buffer at `address`: the address with its bits flipped, so that no
/// word of the library's memory points at a buffer C holds. A buffer the caller never frees is
/// then unreachable, and a leak checker (LeakSanitizer, Valgrind) reports it as the caller's
/// leak.
fn key(address: usize) -> usize {
    !address
}

fn buffers() -> MutexGuard<'static, HashMap<usize, Handed>> {
    static BUFFERS: OnceLock<Mutex<HashMap<usize, Handed>>> = OnceLock::new();
    BUFFERS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Hands `buffer` (not empty) to C: the pointer `DsBackupFree` takes back.
pub(crate) fn hand_out(buffer: Buffer) -> *mut c_void {
    let (pointer, handed) = match buffer {
        Buffer::Bytes(bytes) => {
            let len = bytes.len();
            let raw: *mut [u8] = Box::into_raw(bytes.into_boxed_slice());
            (raw.cast::<c_void>(), Handed::Bytes(len))
        }
        Buffer::Units(units) => {
            let len = units.len();
            let raw: *mut [u16] = Box::into_raw(units.into_boxed_slice());
            (raw.cast::<c_void>(), Handed::Units(len))
        }
    };
    buffers().insert(key(pointer.expose_provenance()), handed);
    pointer
}

/// `DsBackupFree`: frees the buffer at `pointer` if the library handed it out; anything else
/// (NULL, a pointer already freed, a pointer of the caller's own) is left alone.
pub(crate) fn free(pointer: *mut c_void) {
    let Some(handed) = buffers().remove(&key(pointer.addr())) else {
        return;
    };
    let raw = std::ptr::with_exposed_provenance_mut::<c_void>(pointer.addr());
    match handed {
        Handed::Bytes(len) => {
            let slice = std::ptr::slice_from_raw_parts_mut(raw.cast::<u8>(), len);
            // SAFETY: `hand_out` made this pointer with `Box::into_raw` of a `[u8]` of `len`
            // elements and exposed its provenance; the table entry, removed just now under the
            // lock, proves it was not freed since.
            drop(unsafe { Box::from_raw(slice) });
        }
        Handed::Units(len) => {
            let slice = std::ptr::slice_from_raw_parts_mut(raw.cast::<u16>(), len);
            // SAFETY: as above, for a `[u16]`.
            drop(unsafe { Box::from_raw(slice) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_freed_once_and_other_pointers_are_left_alone() {
        let pointer = hand_out(Buffer::Units(vec![0x44, 0, 0]));
        assert!(buffers().contains_key(&key(pointer.addr())));
        let mut own = 5_u8;
        free(std::ptr::from_mut(&mut own).cast());
        free(std::ptr::null_mut());
        free(pointer);
        assert!(!buffers().contains_key(&key(pointer.addr())));
        free(pointer);
        assert_eq!(own, 5);
    }
}
