//! The cap on connections that have not logged in yet, per source address and in total
//! (OpenSSH's `PerSourceMaxStartups` and `MaxStartups`).
//!
//! Each unauthenticated connection holds a [`PendingSlot`] from the moment it is accepted
//! until it logs in, closes or runs out of time; a connection that finds no free slot is
//! closed before the SSH banner. Without the cap, idle TCP connections that never send a
//! byte (slowloris) each hold a task and a descriptor for the whole login deadline, and a
//! few thousand of them fill the gateway. The decision is a counter under a lock, never a
//! database query, so the accept loop cannot be slowed by the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Why a connection was not given a pending slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// Its source address already has `max_pending_per_source` connections logging in.
    Source,
    /// `max_pending` connections are logging in, all sources together.
    Total,
}

impl Full {
    /// The word the log uses for it.
    pub fn describe(self) -> &'static str {
        match self {
            Full::Source => "per-source",
            Full::Total => "total",
        }
    }
}

/// The pending connections of this node, counted per source address.
#[derive(Clone)]
pub(crate) struct PendingLimits {
    counts: Arc<Mutex<Counts>>,
    per_source: usize,
    total: usize,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// One unauthenticated connection's place under the cap; dropping it frees the place.
pub(crate) struct PendingSlot {
    counts: Arc<Mutex<Counts>>,
    source: IpAddr,
}

/// The counts, even if a thread panicked while holding the lock: every change under it
/// is a single increment or decrement, so they are never left half-updated.
fn lock(counts: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PendingLimits {
    pub fn new(per_source: u32, total: u32) -> PendingLimits {
        PendingLimits { counts: Arc::default(), per_source: per_source as usize, total: total as usize }
    }

    /// A slot for a connection from `source`, or which cap is reached. IPv4 addresses
    /// mapped into IPv6 count as the IPv4 address they are.
    pub fn admit(&self, source: IpAddr) -> Result<PendingSlot, Full> {
        let source = source.to_canonical();
        let mut counts = lock(&self.counts);
        if counts.total >= self.total {
            return Err(Full::Total);
        }
        let of_source = counts.by_source.entry(source).or_insert(0);
        if *of_source >= self.per_source {
            return Err(Full::Source);
        }
        *of_source += 1;
        counts.total += 1;
        Ok(PendingSlot { counts: self.counts.clone(), source })
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_source.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn caps_per_source_and_in_total_and_frees_on_drop() {
        let limits = PendingLimits::new(2, 3);
        let a1 = limits.admit(ip(1)).unwrap();
        let _a2 = limits.admit(ip(1)).unwrap();
        assert_eq!(limits.admit(ip(1)).err(), Some(Full::Source));
        let _b1 = limits.admit(ip(2)).unwrap();
        assert_eq!(limits.admit(ip(3)).err(), Some(Full::Total));
        drop(a1);
        let _b2 = limits.admit(ip(2)).unwrap();
        assert_eq!(limits.admit(ip(3)).err(), Some(Full::Total));
    }

    #[test]
    fn a_refused_source_leaves_no_entry_behind() {
        let limits = PendingLimits::new(1, 1);
        let slot = limits.admit(ip(1)).unwrap();
        assert_eq!(limits.admit(ip(2)).err(), Some(Full::Total));
        drop(slot);
        assert!(lock(&limits.counts).by_source.is_empty());
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        let limits = PendingLimits::new(1, 10);
        let _slot = limits.admit(ip(1)).unwrap();
        let mapped = IpAddr::from(std::net::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(limits.admit(mapped).err(), Some(Full::Source));
    }
}
