//! Synchronization: how a leader brings one follower's log in line with its own
//! (`LearnerHandler.syncFollower` and `queueCommittedProposals`).
//!
//! Given the follower's last logged zxid, the leader sends a DIFF (the committed proposals the
//! follower lacks), a TRUNC (the follower holds proposals the leader never committed), a TRUNC
//! followed by a DIFF, or a SNAP (its snapshot, then the proposals after it).

use crate::zxid::Zxid;

/// The leader's committed history, as synchronization sees it.
#[derive(Clone, Debug)]
pub struct History<'a> {
    /// Zxid and encoded size of each committed proposal the leader's log still holds, in order.
    pub committed: &'a [(Zxid, usize)],
    /// The zxid the log starts after: the leader's snapshot's last zxid, or zero.
    pub log_start: Zxid,
    /// Size of the leader's snapshot in bytes (`None` without one).
    pub snapshot_bytes: Option<usize>,
    /// How many of the newest committed proposals the leader keeps in memory (`commitLogCount`).
    pub window: usize,
    /// The on-disk log serves a follower older than the window only while what it would send
    /// stays under this fraction of the snapshot's size (`snapshotSizeFactor`).
    pub snapshot_size_factor: f64,
    /// The last zxid the leader committed and applied (`lastProcessedZxid`).
    pub last_processed: Zxid,
}

/// How the leader will synchronize one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPlan {
    /// Send the committed proposals after `after` (none if the follower is current).
    Diff {
        /// The follower's last zxid, which the leader's history contains.
        after: Zxid,
    },
    /// The follower holds proposals past everything the leader committed: drop them.
    Trunc {
        /// Where the follower's log must end.
        to: Zxid,
    },
    /// The follower's last proposal is not in the leader's history: drop back to the leader's
    /// previous proposal, then send the proposals after it.
    TruncDiff {
        /// Where the follower's log must end before the DIFF.
        to: Zxid,
    },
    /// Send the leader's snapshot and the proposals after it.
    Snap,
}

/// Chooses how to synchronize a follower whose last logged zxid is `peer_last`.
pub fn choose(h: &History, peer_last: Zxid) -> SyncPlan {
    let p = peer_last;
    if p == h.last_processed {
        return SyncPlan::Diff { after: p };
    }
    let new_epoch = p.is_epoch_marker();
    let window = &h.committed[h.committed.len().saturating_sub(h.window)..];
    if let (Some(&(min, _)), Some(&(max, _))) = (window.first(), window.last()) {
        if p > max && !new_epoch {
            return SyncPlan::Trunc { to: max };
        }
        if p >= min && p <= max {
            return from_history(window, min, p).unwrap_or(SyncPlan::Snap);
        }
    }
    // Older than the in-memory window: the on-disk log, if it reaches back far enough and what
    // it would send is small next to the snapshot.
    if p >= h.log_start {
        let bytes: usize = h
            .committed
            .iter()
            .filter(|(z, _)| *z > p)
            .map(|(_, b)| b)
            .sum();
        let limit = h
            .snapshot_bytes
            .map_or(f64::INFINITY, |s| s as f64 * h.snapshot_size_factor);
        if (bytes as f64) <= limit {
            return from_history(h.committed, h.log_start, p).unwrap_or(SyncPlan::Snap);
        }
    }
    SyncPlan::Snap
}

/// Walks `entries` (which follow `before`) to where `p` sits: found means DIFF; an epoch marker
/// means DIFF from there; a divergent proposal of the same epoch as the leader's next one means
/// TRUNC to the previous proposal; across epochs a TRUNC is impossible (`None`: SNAP).
fn from_history(entries: &[(Zxid, usize)], before: Zxid, p: Zxid) -> Option<SyncPlan> {
    if p == before {
        return Some(SyncPlan::Diff { after: p });
    }
    let mut prev = before;
    for &(z, _) in entries {
        if z < p {
            prev = z;
            continue;
        }
        if z == p || p.is_epoch_marker() {
            return Some(SyncPlan::Diff { after: p });
        }
        // z > p: the follower logged a proposal the leader never saw (it may have led).
        if z.epoch() != p.epoch() {
            return None;
        }
        return Some(SyncPlan::TruncDiff { to: prev });
    }
    // Every entry is older than p: only an epoch marker past them is a plain DIFF.
    p.is_epoch_marker().then_some(SyncPlan::Diff { after: p })
}

mod exchange;

#[cfg(test)]
mod tests;
