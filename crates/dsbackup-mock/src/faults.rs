//! Fault injection, scriptable per test and changeable while the server runs.
//!
//! Two kinds of faults live here:
//!
//! - **Call faults**, applied by [`MockDc::dispatch_ad_backup`] and
//!   [`MockDc::dispatch_ad_restore`]: a chosen status for a chosen opnum (the operation is not
//!   performed) and a delay before the response (returned in [`Reply::delay`] for the async glue
//!   to sleep on, since the core has no clock).
//! - **Connection faults**, which are data for the transport glue to read and act on (the core
//!   never sees bytes or connections): drop the connection after N calls or N bytes, corrupt the
//!   N-th response fragment, refuse binds. The glue counts calls, bytes and fragments *per
//!   connection*, from the connection's start.
//!
//! [`MockDc::dispatch_ad_backup`]: crate::MockDc::dispatch_ad_backup
//! [`MockDc::dispatch_ad_restore`]: crate::MockDc::dispatch_ad_restore
//! [`Reply::delay`]: crate::Reply::delay

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use dsbackup_proto::Interface;
use dsbackup_proto::Status;

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

#[cfg(test)]
mod tests {
    use super::*;

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
