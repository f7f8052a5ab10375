//! The association table of a server: how many connections it holds, from which addresses,
//! in which phase, and which one makes room for a newcomer when the table is full.
//!
//! ```text
//!  accept ──► admit(addr) ─┬─ room (total and per address) ─────────────► Slot
//!                          ├─ full: evict the best victim, if any ──────► Slot
//!                          └─ full, no victim ──────────────────────────► refused (bind_nak)
//!  victims: unauthenticated (connected and not bound yet, or bound without a completed
//!  handshake), the one without progress (accepted, bound, a call started or answered) for
//!  the longest first; one whose security handshake began less than 3 s ago only after
//!  all the others. Never: an authenticated association, one with a call in flight or a live
//!  context handle.
//! ```
//!
//! A connection cannot be told apart from an attacker's before it authenticates, so every
//! newcomer gets a slot at the expense of the stalest unauthenticated one: a silent or
//! trickling socket, or an anonymous one that stopped calling, keeps its slot only until a
//! newcomer needs it. A client whose handshake is progressing moved from accepted to bound a
//! moment ago, so it is the last in line however many sockets an attacker opened before it,
//! and behind the fresh sockets of an attacker who reconnects as fast as he is evicted (they
//! have not begun a handshake). The phase does not rank otherwise: a client accepted a moment
//! ago that has not sent its bind yet is not worse than a socket bound a while ago and silent
//! since.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long after its bind an association in its security handshake is protected: a client
/// sends its last leg a round trip after the bind, well within this even on a loaded server
/// (the default `bind_timeout`), and one that takes longer is ranked by age again.
const ON_TIME: Duration = Duration::from_secs(3);

/// How far an association got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Phase {
    /// Accepted, not bound yet.
    Connected,
    /// Bound without authentication.
    Bound,
    /// Bound, the security handshake the bind began in progress.
    Handshaking,
    /// A peer authenticated.
    Authenticated,
}

/// What the table knows of one association.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Status {
    pub(super) phase: Phase,
    /// A call is in flight, or the association holds a context handle.
    pub(super) busy: bool,
}

#[derive(Debug)]
struct Entry {
    addr: IpAddr,
    status: Status,
    /// Since when the association is in its status (the stalest goes first).
    since: Instant,
    evict: CancellationToken,
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<u64, Entry>,
    per_address: HashMap<IpAddr, usize>,
    next_id: u64,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        if let Some(count) = self.per_address.get_mut(&entry.addr) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_address.remove(&entry.addr);
            }
        }
        Some(entry)
    }

    /// The association to evict (of `addr` only, if given): the stalest first, but one whose
    /// security handshake began less than [`ON_TIME`] ago only after all the others.
    fn victim(&self, addr: Option<IpAddr>) -> Option<u64> {
        let now = Instant::now();
        self.entries
            .iter()
            .filter(|(_, entry)| {
                entry.status.phase != Phase::Authenticated
                    && !entry.status.busy
                    && addr.is_none_or(|addr| entry.addr == addr)
            })
            .min_by_key(|&(&id, entry)| {
                let handshaking = entry.status.phase == Phase::Handshaking
                    && now.duration_since(entry.since) < ON_TIME;
                (handshaking, entry.since, id)
            })
            .map(|(&id, _)| id)
    }
}

/// Why a connection gets no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// `max_associations` held, none evictable.
    Full,
    /// `max_associations_per_address` held from this address, none evictable.
    PerAddress,
}

/// The association table.
#[derive(Debug)]
pub(super) struct Slots {
    table: Mutex<Table>,
    max: usize,
    max_per_address: usize,
}

impl Slots {
    pub(super) fn new(max: usize, max_per_address: usize) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            max: max.max(1),
            max_per_address: max_per_address.max(1),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a connection from `addr`, evicting an idle unauthenticated association when
    /// the table (or the address's share) is full.
    pub(super) fn admit(self: &Arc<Self>, addr: IpAddr) -> Result<Slot, Refused> {
        let mut table = self.table();
        if table.per_address.get(&addr).copied().unwrap_or(0) >= self.max_per_address {
            let victim = table.victim(Some(addr)).ok_or(Refused::PerAddress)?;
            evict(&mut table, victim);
        }
        if table.entries.len() >= self.max {
            let victim = table.victim(None).ok_or(Refused::Full)?;
            evict(&mut table, victim);
        }
        let id = table.next_id;
        table.next_id += 1;
        let evict = CancellationToken::new();
        table.entries.insert(
            id,
            Entry {
                addr,
                status: Status {
                    phase: Phase::Connected,
                    busy: false,
                },
                since: Instant::now(),
                evict: evict.clone(),
            },
        );
        *table.per_address.entry(addr).or_insert(0) += 1;
        Ok(Slot {
            id,
            slots: Arc::clone(self),
            evicted: evict,
            status: Status {
                phase: Phase::Connected,
                busy: false,
            },
        })
    }

    /// Associations held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table().entries.len()
    }
}

fn evict(table: &mut Table, id: u64) {
    if let Some(entry) = table.remove(id) {
        tracing::debug!(addr = %entry.addr, phase = ?entry.status.phase, "association evicted to make room");
        entry.evict.cancel();
    }
}

/// One association's place in the table; freed when dropped.
#[derive(Debug)]
pub(super) struct Slot {
    id: u64,
    slots: Arc<Slots>,
    evicted: CancellationToken,
    status: Status,
}

impl Slot {
    /// Records the association's status (the table is touched only when it changes).
    pub(super) fn set(&mut self, status: Status) {
        if status == self.status {
            return;
        }
        self.status = status;
        let mut table = self.slots.table();
        if let Some(entry) = table.entries.get_mut(&self.id) {
            entry.status = status;
            entry.since = Instant::now();
        }
    }

    /// Resolves when the association was evicted to make room for another.
    pub(super) fn evicted(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.evicted.cancelled()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.table().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const THERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn status(phase: Phase, busy: bool) -> Status {
        Status { phase, busy }
    }

    #[tokio::test(start_paused = true)]
    async fn the_stalest_go_first_a_handshake_on_time_last_and_never_the_authenticated() {
        let ms = Duration::from_millis;
        let slots = Arc::new(Slots::new(4, 4));
        let mut authenticated = slots.admit(HERE).unwrap();
        authenticated.set(status(Phase::Authenticated, false));
        // Bound long ago and silent since; a socket silent for two seconds.
        let mut bound = slots.admit(HERE).unwrap();
        bound.set(status(Phase::Bound, false));
        tokio::time::advance(ms(5000)).await;
        let silent = slots.admit(HERE).unwrap();
        tokio::time::advance(ms(2000)).await;
        // A client that just connected; another whose handshake just began.
        let connecting = slots.admit(HERE).unwrap();
        tokio::time::advance(ms(200)).await;
        // Full: the stalest makes room, whatever its phase.
        let mut handshaking = slots.admit(THERE).unwrap();
        assert!(bound.evicted.is_cancelled() && !silent.evicted.is_cancelled());
        handshaking.set(status(Phase::Handshaking, false));
        tokio::time::advance(ms(200)).await;
        let first = slots.admit(THERE).unwrap();
        assert!(silent.evicted.is_cancelled());
        // A handshake under way goes after every other, however young the attacker's newest
        // sockets; the others by age.
        tokio::time::advance(ms(200)).await;
        let mut second = slots.admit(THERE).unwrap();
        assert!(connecting.evicted.is_cancelled() && !handshaking.evicted.is_cancelled());
        tokio::time::advance(ms(200)).await;
        let mut third = slots.admit(THERE).unwrap();
        assert!(first.evicted.is_cancelled() && !handshaking.evicted.is_cancelled());
        // A handshake that stops progressing is stale in turn, and the stalest.
        tokio::time::advance(ON_TIME).await;
        let mut fourth = slots.admit(THERE).unwrap();
        assert!(handshaking.evicted.is_cancelled());
        assert!(!second.evicted.is_cancelled() && !third.evicted.is_cancelled());
        // A call in flight protects an unauthenticated association; the authenticated one is
        // never evicted: with only those left, a newcomer is refused.
        second.set(status(Phase::Bound, true));
        third.set(status(Phase::Authenticated, false));
        fourth.set(status(Phase::Connected, true));
        assert_eq!(slots.len(), 4);
        assert_eq!(slots.admit(THERE).unwrap_err(), Refused::Full);
        assert!(!authenticated.evicted.is_cancelled());
        // Dropped slots free their place.
        drop(fourth);
        assert!(slots.admit(THERE).is_ok());
    }

    #[test]
    fn an_address_past_its_share_evicts_its_own_idle_or_is_refused() {
        let slots = Arc::new(Slots::new(10, 2));
        let first = slots.admit(HERE).unwrap();
        let mut second = slots.admit(HERE).unwrap();
        let elsewhere = slots.admit(THERE).unwrap();
        // Full for HERE: its own oldest unbound connection makes room, not THERE's.
        let third = slots.admit(HERE).unwrap();
        assert!(first.evicted.is_cancelled() && !second.evicted.is_cancelled());
        assert!(!elsewhere.evicted.is_cancelled());
        second.set(status(Phase::Authenticated, false));
        drop(third);
        let mut fourth = slots.admit(HERE).unwrap();
        fourth.set(status(Phase::Authenticated, false));
        assert_eq!(slots.admit(HERE).unwrap_err(), Refused::PerAddress);
        assert!(slots.admit(THERE).is_ok());
    }
}
