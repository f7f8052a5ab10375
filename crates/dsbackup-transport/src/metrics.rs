//! Counts of what is open, so that tests (and operators) can see that nothing leaked.
//!
//! Every open binding, association and task holds a gauge that decrements its count when
//! dropped, whatever path (success, error, cancellation, panic) the owner took.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Shared counters of one client registry or one server.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    bindings: AtomicUsize,
    associations: AtomicUsize,
    tasks: AtomicUsize,
    calls: AtomicUsize,
    calls_total: AtomicU64,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    reassembly_bytes: AtomicUsize,
    send_queued: AtomicUsize,
    send_queue_peak: AtomicUsize,
}

/// A reading of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Open bindings (client).
    pub bindings: usize,
    /// Open associations (TCP connections with their state machine).
    pub associations: usize,
    /// Running tasks (drivers, writers, connection handlers, call handlers).
    pub tasks: usize,
    /// Calls in flight.
    pub calls: usize,
    /// Calls started since the start.
    pub calls_total: u64,
    /// Fragments received.
    pub frames_in: u64,
    /// Fragments sent.
    pub frames_out: u64,
    /// Request bytes a server holds in reassembly now, across its associations.
    pub reassembly_bytes: usize,
    /// Bytes of answers a server holds now (cut and unwritten, or not cut yet), across its
    /// connections (see `ServerOptions::send_budget`).
    pub send_queued: usize,
    /// The most bytes of answers one server connection held at once (see
    /// `Limits::max_send_queue`).
    pub send_queue_peak: usize,
}

impl Snapshot {
    /// Whether no binding, association, task or call is open.
    pub fn is_idle(&self) -> bool {
        self.bindings == 0 && self.associations == 0 && self.tasks == 0 && self.calls == 0
    }
}

/// What a [`Gauge`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Binding,
    Association,
    Task,
    Call,
}

/// One open thing; decrements its count when dropped.
#[derive(Debug)]
pub(crate) struct Gauge {
    counters: Arc<Counters>,
    kind: Kind,
}

impl Metrics {
    /// Fresh counters, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current counts.
    pub fn snapshot(&self) -> Snapshot {
        let c = &self.counters;
        Snapshot {
            bindings: c.bindings.load(Ordering::Acquire),
            associations: c.associations.load(Ordering::Acquire),
            tasks: c.tasks.load(Ordering::Acquire),
            calls: c.calls.load(Ordering::Acquire),
            calls_total: c.calls_total.load(Ordering::Relaxed),
            frames_in: c.frames_in.load(Ordering::Relaxed),
            frames_out: c.frames_out.load(Ordering::Relaxed),
            reassembly_bytes: c.reassembly_bytes.load(Ordering::Acquire),
            send_queued: c.send_queued.load(Ordering::Acquire),
            send_queue_peak: c.send_queue_peak.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn gauge(&self, kind: Kind) -> Gauge {
        self.counter(kind).fetch_add(1, Ordering::AcqRel);
        if kind == Kind::Call {
            self.counters.calls_total.fetch_add(1, Ordering::Relaxed);
        }
        Gauge {
            counters: Arc::clone(&self.counters),
            kind,
        }
    }

    pub(crate) fn frame_in(&self) {
        self.counters.frames_in.fetch_add(1, Ordering::Relaxed);
    }

    /// The server's request bytes in reassembly, across associations.
    pub(crate) fn reassembly_bytes(&self) -> &AtomicUsize {
        &self.counters.reassembly_bytes
    }

    /// Bytes of answers queued across a server's connections.
    pub(crate) fn send_queued(&self) -> &AtomicUsize {
        &self.counters.send_queued
    }

    /// A connection's answers queued: keeps the largest seen.
    pub(crate) fn send_queue(&self, bytes: usize) {
        self.counters
            .send_queue_peak
            .fetch_max(bytes, Ordering::Relaxed);
    }

    pub(crate) fn frame_out(&self) {
        self.counters.frames_out.fetch_add(1, Ordering::Relaxed);
    }

    fn counter(&self, kind: Kind) -> &AtomicUsize {
        counter(&self.counters, kind)
    }
}

fn counter(counters: &Counters, kind: Kind) -> &AtomicUsize {
    match kind {
        Kind::Binding => &counters.bindings,
        Kind::Association => &counters.associations,
        Kind::Task => &counters.tasks,
        Kind::Call => &counters.calls,
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        counter(&self.counters, self.kind).fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_count_up_and_back_down() {
        let metrics = Metrics::new();
        let binding = metrics.gauge(Kind::Binding);
        let tasks = [metrics.gauge(Kind::Task), metrics.gauge(Kind::Task)];
        let call = metrics.gauge(Kind::Call);
        let snapshot = metrics.snapshot();
        assert_eq!(
            (snapshot.bindings, snapshot.tasks, snapshot.calls),
            (1, 2, 1)
        );
        assert!(!snapshot.is_idle());
        drop((binding, tasks, call));
        let snapshot = metrics.snapshot();
        assert!(snapshot.is_idle());
        assert_eq!(snapshot.calls_total, 1);
    }
}
