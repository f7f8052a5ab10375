//! The association-group table of a server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use dsbackup_proto::{Pdu, PduBody};

/// The association groups of a server. A bind naming a group joins it when the group still has
/// an association from the same client IP address (MS-RPCE's extension of the
/// `assoc_group_id` of [C706 §12.6.4.3]: a connection from another machine should not join);
/// otherwise the association gets a new group, and the association answers the bind, which
/// named a group it cannot join, with a bind_nak (as Samba and Windows do).
///
/// [C706 §12.6.4.3]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
#[derive(Debug)]
pub(super) struct Groups {
    next: AtomicU32,
    /// Live groups: the client address that made each, and how many associations it has.
    live: Arc<Mutex<HashMap<u32, (IpAddr, usize)>>>,
}

/// Membership of one association in a group; leaves it when dropped.
#[derive(Debug)]
pub(super) struct GroupMember {
    pub(super) id: u32,
    live: Arc<Mutex<HashMap<u32, (IpAddr, usize)>>>,
}

impl Groups {
    pub(super) fn new() -> Self {
        Self {
            next: AtomicU32::new(0x0001_0000),
            live: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub(super) fn join(&self, requested: Option<u32>, client: IpAddr) -> GroupMember {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let joinable = |id: &u32| live.get(id).is_some_and(|(owner, _)| *owner == client);
        let id = match requested.filter(joinable) {
            Some(id) => id,
            None => loop {
                let id = self.next.fetch_add(1, Ordering::Relaxed);
                if id != 0 && !live.contains_key(&id) {
                    break id;
                }
            },
        };
        live.entry(id).or_insert((client, 0)).1 += 1;
        GroupMember {
            id,
            live: Arc::clone(&self.live),
        }
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, count)) = live.get_mut(&self.id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                live.remove(&self.id);
            }
        }
    }
}

/// The `assoc_group_id` a bind asks to join (0, or not a bind: none).
pub(super) fn requested_group(frame: &Bytes) -> Option<u32> {
    match Pdu::decode(frame.clone()).ok()?.body {
        PduBody::Bind(bind) => Some(bind.assoc_group_id).filter(|&id| id != 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_joined_from_its_own_client_address_only_while_it_lives() {
        let groups = Groups::new();
        let here = IpAddr::from([127, 0, 0, 1]);
        let there = IpAddr::from([127, 0, 0, 2]);
        let first = groups.join(None, here);
        let second = groups.join(Some(first.id), here);
        assert_eq!(second.id, first.id);
        // Another machine, or a group nobody made: a new group.
        let stranger = groups.join(Some(first.id), there);
        assert_ne!(stranger.id, first.id);
        let made_up = groups.join(Some(0xdead_0000), here);
        assert_ne!(made_up.id, 0xdead_0000);
        let id = first.id;
        drop((first, second));
        // The group died with its last association.
        assert_ne!(groups.join(Some(id), here).id, id);
    }
}
