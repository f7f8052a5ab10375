//! Fault injection, scriptable per test and changeable while the server runs.
//!
//! Two kinds of faults live here:
//!
//! - **Call faults**, applied by [`MockDc::dispatch_ad_backup`] and
//!   [`MockDc::dispatch_ad_restore`]: a chosen status for a chosen opnum (the operation is not
//!   performed) and a delay before the response (returned in [`Reply::delay`] for the async glue
//!   to sleep on, since the core has no clock).
//! - **Connection faults**, which the transport glue acts on (the core never sees bytes or
//!   connections): drop the connection after N calls or N bytes, corrupt the N-th response
//!   fragment, refuse binds. The glue keeps one [`ConnectionFaults`] per connection, which
//!   counts calls, bytes and fragments from the connection's start and answers what to do.
//!
//! [`MockDc::dispatch_ad_backup`]: crate::MockDc::dispatch_ad_backup
//! [`MockDc::dispatch_ad_restore`]: crate::MockDc::dispatch_ad_restore
//! [`Reply::delay`]: crate::Reply::delay

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use dsbackup_proto::Status;
use dsbackup_proto::iface::Interface;

/// A status to return instead of performing an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusFault {
    /// The status.
    pub status: Status,
    /// How many more calls get it (`None`: every call until cleared).
    pub remaining: Option<u32>,
}

/// The faults in force: plain data, also loadable from the `[faults]` table of a TOML config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultScript {
    /// Statuses by interface and opnum.
    pub statuses: HashMap<(Interface, u16), StatusFault>,
    /// Delays before the response, by interface and opnum.
    pub delays: HashMap<(Interface, u16), Duration>,
    /// Connection fault: close a connection once it has carried this many calls.
    pub drop_after_calls: Option<u64>,
    /// Connection fault: close a connection once this many bytes went out on it.
    pub drop_after_bytes: Option<u64>,
    /// Connection fault: corrupt the N-th response fragment (1-based) of a connection.
    pub corrupt_response_fragment: Option<u64>,
    /// Connection fault: answer every bind with a bind_nak.
    pub refuse_binds: bool,
}

/// A shared, internally synchronized [`FaultScript`]: clones share the script, so a test keeps
/// one and changes it while the server runs.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    script: Arc<Mutex<FaultScript>>,
}

impl Faults {
    /// Faults starting from `script`.
    pub fn new(script: FaultScript) -> Self {
        Self {
            script: Arc::new(Mutex::new(script)),
        }
    }

    /// Answers every call of `opnum` on `iface` with `status` until cleared.
    pub fn status_for_opnum(&self, iface: Interface, opnum: u16, status: Status) {
        self.lock().statuses.insert(
            (iface, opnum),
            StatusFault {
                status,
                remaining: None,
            },
        );
    }

    /// Answers the next `times` calls of `opnum` on `iface` with `status`.
    pub fn status_for_opnum_times(&self, iface: Interface, opnum: u16, status: Status, times: u32) {
        self.lock().statuses.insert(
            (iface, opnum),
            StatusFault {
                status,
                remaining: Some(times),
            },
        );
    }

    /// Delays every response of `opnum` on `iface` by `delay` (zero removes the delay).
    pub fn delay(&self, iface: Interface, opnum: u16, delay: Duration) {
        let mut script = self.lock();
        if delay.is_zero() {
            script.delays.remove(&(iface, opnum));
        } else {
            script.delays.insert((iface, opnum), delay);
        }
    }

    /// Connection fault: drop each connection after `calls` calls (`None` disables).
    pub fn drop_after_calls(&self, calls: Option<u64>) {
        self.lock().drop_after_calls = calls;
    }

    /// Connection fault: drop each connection after `bytes` bytes sent (`None` disables).
    pub fn drop_after_bytes(&self, bytes: Option<u64>) {
        self.lock().drop_after_bytes = bytes;
    }

    /// Connection fault: corrupt the `n`-th response fragment of each connection (`None`
    /// disables).
    pub fn corrupt_response_fragment(&self, n: Option<u64>) {
        self.lock().corrupt_response_fragment = n;
    }

    /// Connection fault: refuse (or accept again) every bind.
    pub fn refuse_binds(&self, refuse: bool) {
        self.lock().refuse_binds = refuse;
    }

    /// Removes every fault.
    pub fn clear(&self) {
        *self.lock() = FaultScript::default();
    }

    /// A copy of the script in force (what the transport glue reads).
    pub fn snapshot(&self) -> FaultScript {
        self.lock().clone()
    }

    /// The call faults for one call of `opnum` on `iface`: the status to answer with (counting
    /// the call against a limited status fault) and the delay.
    pub(crate) fn take_call_faults(
        &self,
        iface: Interface,
        opnum: u16,
    ) -> (Option<Status>, Duration) {
        let mut script = self.lock();
        let delay = script
            .delays
            .get(&(iface, opnum))
            .copied()
            .unwrap_or_default();
        let key = (iface, opnum);
        let status = match script.statuses.get_mut(&key) {
            None => None,
            Some(fault) => match &mut fault.remaining {
                None => Some(fault.status),
                Some(remaining) => {
                    let status = fault.status;
                    *remaining = remaining.saturating_sub(1);
                    if *remaining == 0 {
                        script.statuses.remove(&key);
                    }
                    Some(status)
                }
            },
        };
        (status, delay)
    }

    fn lock(&self) -> MutexGuard<'_, FaultScript> {
        // A panic while holding this lock cannot leave the plain-data script half-updated in a
        // way that matters: keep serving.
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The connection faults of one connection: the counters the transport glue keeps per
/// connection, reading the live [`Faults`] at every step (so a test may change them mid-way).
///
/// ```text
///  bind arrives        -> refuse_bind()        true: answer bind_nak
///  response fragment   -> response_fragment()  true: corrupt_fragment(&mut frame) first
///  about to write n B  -> allow_bytes(n)       write only that many; then close if must_close()
///  call answered       -> call_answered()      true: close the connection now
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionFaults {
    faults: Faults,
    calls: u64,
    bytes: u64,
    fragments: u64,
}

impl ConnectionFaults {
    /// Counters of a new connection.
    pub fn new(faults: Faults) -> Self {
        Self {
            faults,
            calls: 0,
            bytes: 0,
            fragments: 0,
        }
    }

    /// Whether the next bind must be refused.
    pub fn refuse_bind(&self) -> bool {
        self.faults.lock().refuse_binds
    }

    /// Counts an answered call; true when the connection must close now (`drop_after_calls`
    /// calls answered).
    pub fn call_answered(&mut self) -> bool {
        self.calls = self.calls.saturating_add(1);
        self.faults
            .lock()
            .drop_after_calls
            .is_some_and(|limit| self.calls >= limit)
    }

    /// How many of the next `len` bytes may be written (all of them, or what remains of the
    /// `drop_after_bytes` budget); counts them as written.
    pub fn allow_bytes(&mut self, len: usize) -> usize {
        let len_u64 = u64::try_from(len).unwrap_or(u64::MAX);
        let allowed = match self.faults.lock().drop_after_bytes {
            None => len_u64,
            Some(limit) => len_u64.min(limit.saturating_sub(self.bytes)),
        };
        self.bytes = self.bytes.saturating_add(allowed);
        usize::try_from(allowed).unwrap_or(len)
    }

    /// Whether the byte budget is spent: the connection must close.
    pub fn must_close(&self) -> bool {
        self.faults
            .lock()
            .drop_after_bytes
            .is_some_and(|limit| self.bytes >= limit)
    }

    /// Counts a response fragment about to go out; true when it is the one to corrupt
    /// (`corrupt_response_fragment`, 1-based).
    pub fn response_fragment(&mut self) -> bool {
        self.fragments = self.fragments.saturating_add(1);
        self.faults.lock().corrupt_response_fragment == Some(self.fragments)
    }
}

/// Corrupts a fragment the way the fault means: inverts the middle byte of its stub, so the
/// frame still frames and parses but its content is wrong (a peer checking signatures sees a
/// bad signature; one that does not, bad data).
///
/// ```text
///  request / response:  header (16) | alloc_hint, p_cont_id, ... (8) | stub | pad | sec_trailer (8) | auth_value
///                                                                      ^ middle byte inverted
/// ```
///
/// Other PDUs, or a fragment whose lengths do not add up, get the middle byte after the common
/// header inverted instead (the last byte for a fragment of 16 bytes or fewer).
pub fn corrupt_fragment(fragment: &mut [u8]) {
    const HEADER: usize = 16;
    let index = stub_range(fragment)
        .filter(|stub| !stub.is_empty())
        .map(|stub| stub.start + stub.len() / 2)
        .unwrap_or(match fragment.len() {
            0 => return,
            len if len <= HEADER => len - 1,
            len => HEADER + (len - HEADER) / 2,
        });
    if let Some(byte) = fragment.get_mut(index) {
        *byte = !*byte;
    }
}

/// The stub of a request or response fragment ([C706 §12.6.4.9, §12.6.4.10]): after the 24
/// bytes of headers, before the auth padding, the sec_trailer and the auth_value
/// (`auth_length` bytes).
///
/// [C706 §12.6.4.9, §12.6.4.10]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
fn stub_range(fragment: &[u8]) -> Option<Range<usize>> {
    const STUB_START: usize = 16 /* common header */ + 8 /* alloc_hint, p_cont_id, opnum */;
    const REQUEST: u8 = 0;
    const RESPONSE: u8 = 2;
    let ptype = *fragment.get(2)?;
    if ptype != REQUEST && ptype != RESPONSE {
        return None;
    }
    let little_endian = fragment.get(4)? & 0x10 != 0;
    let u16_at = |at: usize| -> Option<usize> {
        let bytes = [*fragment.get(at)?, *fragment.get(at + 1)?];
        Some(usize::from(if little_endian {
            u16::from_le_bytes(bytes)
        } else {
            u16::from_be_bytes(bytes)
        }))
    };
    let frag_length = u16_at(8)?.min(fragment.len());
    let auth_length = u16_at(10)?;
    let trailer = if auth_length > 0 {
        auth_length.checked_add(8 /* sec_trailer */)?
    } else {
        0
    };
    let mut end = frag_length.checked_sub(trailer)?;
    if auth_length > 0 {
        // sec_trailer: auth_type, auth_level, auth_pad_length, ...
        end = end.checked_sub(usize::from(*fragment.get(end.checked_add(2)?)?))?;
    }
    (STUB_START <= end).then_some(STUB_START..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_faults_count_calls_bytes_and_fragments() {
        let faults = Faults::default();
        let mut conn = ConnectionFaults::new(faults.clone());
        assert!(!conn.refuse_bind());
        assert!(!conn.call_answered());
        assert_eq!(conn.allow_bytes(1000), 1000);
        assert!(!conn.must_close());
        assert!(!conn.response_fragment());

        faults.refuse_binds(true);
        faults.drop_after_calls(Some(3));
        faults.drop_after_bytes(Some(1500));
        faults.corrupt_response_fragment(Some(3));
        assert!(
            conn.refuse_bind(),
            "live: a change applies to open connections"
        );
        assert!(!conn.call_answered(), "call 2");
        assert!(conn.call_answered(), "call 3: close");
        assert_eq!(conn.allow_bytes(400), 400);
        assert!(!conn.must_close());
        assert_eq!(
            conn.allow_bytes(400),
            100,
            "the budget ends inside the frame"
        );
        assert!(conn.must_close());
        assert_eq!(conn.allow_bytes(10), 0);
        assert!(!conn.response_fragment(), "fragment 2");
        assert!(conn.response_fragment(), "fragment 3");
        assert!(!conn.response_fragment(), "only once");

        let fresh = ConnectionFaults::new(faults);
        assert_eq!(fresh.calls, 0, "counters are per connection");
    }

    #[test]
    fn corruption_inverts_the_middle_of_the_stub() {
        let mut response = vec![
            0x05, 0x00, 0x02, 0x03, // rpc_vers 5.0, PTYPE response, first and last fragment
            0x10, 0x00, 0x00, 0x00, // packed_drep: little-endian
            0x3C, 0x00, 0x10, 0x00, // frag_length 60, auth_length 16
            0x01, 0x00, 0x00, 0x00, // call_id 1
            0x06, 0x00, 0x00, 0x00, // alloc_hint 6
            0x00, 0x00, 0x00, 0x00, // p_cont_id 0, cancel_count 0, reserved
            0xA0, 0xA1, 0xA2, 0xA3, // stub (6 bytes)
            0xA4, 0xA5, 0x00, 0x00, // ... and 2 bytes of auth padding
            0x0A, 0x06, 0x02, 0x00, // sec_trailer: auth_type 10, level 6, pad 2, reserved
            0x00, 0x00, 0x00, 0x00, // auth_context_id 0
        ];
        response.extend([0x55; 16]); // auth_value
        let mut corrupted = response.clone();
        corrupt_fragment(&mut corrupted);
        let changed: Vec<usize> = (0..response.len())
            .filter(|&i| response[i] != corrupted[i])
            .collect();
        assert_eq!(changed, [27], "the middle of the stub 24..30");
        assert_eq!(corrupted[27], !0xA3);

        // A big-endian request without auth: the stub runs to the end.
        let mut request = vec![
            0x05, 0x00, 0x00, 0x03, // request
            0x00, 0x00, 0x00, 0x00, // packed_drep: big-endian
            0x00, 0x1C, 0x00, 0x00, // frag_length 28, auth_length 0
            0x00, 0x00, 0x00, 0x07, // call_id 7
            0x00, 0x00, 0x00, 0x04, // alloc_hint 4
            0x00, 0x00, 0x00, 0x08, // p_cont_id 0, opnum 8
            0x01, 0x02, 0x03, 0x04, // stub
        ];
        corrupt_fragment(&mut request);
        assert_eq!(&request[24..], &[0x01, 0x02, !0x03, 0x04]);

        // Another PDU: the middle of the body.
        let mut bind_ack = [0u8; 24];
        bind_ack[2] = 12;
        corrupt_fragment(&mut bind_ack);
        assert_eq!(bind_ack[20], 0xFF);
        let mut short = [1u8, 2, 3];
        corrupt_fragment(&mut short);
        assert_eq!(short, [1, 2, !3]);
        corrupt_fragment(&mut []);
    }

    #[test]
    fn limited_status_faults_run_out() {
        let faults = Faults::default();
        faults.status_for_opnum_times(Interface::AdBackup, 3, Status::HR_ERROR, 2);
        assert_eq!(
            faults.take_call_faults(Interface::AdBackup, 3).0,
            Some(Status::HR_ERROR)
        );
        assert_eq!(faults.take_call_faults(Interface::AdBackup, 4).0, None);
        assert_eq!(
            faults.take_call_faults(Interface::AdBackup, 3).0,
            Some(Status::HR_ERROR)
        );
        assert_eq!(faults.take_call_faults(Interface::AdBackup, 3).0, None);
    }

    #[test]
    fn clones_share_the_script() {
        let faults = Faults::default();
        let glue = faults.clone();
        faults.refuse_binds(true);
        faults.drop_after_calls(Some(3));
        faults.delay(Interface::AdRestore, 0, Duration::from_millis(5));
        let seen = glue.snapshot();
        assert!(seen.refuse_binds);
        assert_eq!(seen.drop_after_calls, Some(3));
        assert_eq!(
            glue.take_call_faults(Interface::AdRestore, 0).1,
            Duration::from_millis(5)
        );
        faults.clear();
        assert_eq!(glue.snapshot(), FaultScript::default());
    }
}
