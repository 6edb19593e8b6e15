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

#[cfg(test)]
mod tests {
    use super::*;

    fn z(e: u32, c: u32) -> Zxid {
        Zxid::new(e, c)
    }

    /// Epoch 1 proposals 1..=6, then epoch 3 proposals 1..=4, each 100 bytes.
    fn log() -> Vec<(Zxid, usize)> {
        (1..=6)
            .map(|c| (z(1, c), 100))
            .chain((1..=4).map(|c| (z(3, c), 100)))
            .collect()
    }

    fn history(log: &[(Zxid, usize)], window: usize) -> History<'_> {
        History {
            committed: log,
            log_start: Zxid::default(),
            snapshot_bytes: None,
            window,
            snapshot_size_factor: 0.33,
            last_processed: log.last().map(|e| e.0).unwrap_or_default(),
        }
    }

    #[test]
    fn a_current_follower_gets_an_empty_diff() {
        let l = log();
        assert_eq!(
            choose(&history(&l, 500), z(3, 4)),
            SyncPlan::Diff { after: z(3, 4) }
        );
    }

    #[test]
    fn a_follower_inside_the_window_gets_a_diff_from_its_zxid() {
        let l = log();
        assert_eq!(
            choose(&history(&l, 500), z(1, 4)),
            SyncPlan::Diff { after: z(1, 4) }
        );
        assert_eq!(
            choose(&history(&l, 5), z(3, 1)),
            SyncPlan::Diff { after: z(3, 1) }
        );
    }

    #[test]
    fn a_follower_with_proposals_past_the_leaders_gets_trunc_to_the_leaders_last() {
        let l = log();
        assert_eq!(
            choose(&history(&l, 500), z(3, 7)),
            SyncPlan::Trunc { to: z(3, 4) }
        );
    }

    #[test]
    fn a_divergent_proposal_of_the_same_epoch_gets_trunc_then_diff() {
        // The follower logged (3, 3) from an epoch-3 leader whose (3, 3) never committed; the
        // leader's history skips from (3, 2) to (3, 4) in this constructed log.
        let l: Vec<(Zxid, usize)> = vec![(z(3, 1), 1), (z(3, 2), 1), (z(3, 4), 1)];
        assert_eq!(
            choose(&history(&l, 500), z(3, 3)),
            SyncPlan::TruncDiff { to: z(3, 2) }
        );
    }

    #[test]
    fn a_divergent_proposal_from_an_older_epoch_gets_a_snapshot() {
        // ZOOKEEPER-1154's old leader logged (1, 7) alone and died; the new history moves on
        // to epoch 3. A TRUNC cannot cross the epoch boundary: SNAP.
        let l = log();
        assert_eq!(choose(&history(&l, 500), z(1, 7)), SyncPlan::Snap);
    }

    #[test]
    fn an_epoch_marker_gets_a_diff() {
        let l = log();
        assert_eq!(
            choose(&history(&l, 500), z(2, 0)),
            SyncPlan::Diff { after: z(2, 0) }
        );
        // Past everything the leader has: still a DIFF (an empty one), never a TRUNC.
        assert_eq!(
            choose(&history(&l, 500), z(4, 0)),
            SyncPlan::Diff { after: z(4, 0) }
        );
    }

    #[test]
    fn an_empty_follower_gets_everything_from_the_log_when_there_is_no_snapshot() {
        let l = log();
        assert_eq!(
            choose(&history(&l, 3), Zxid::default()),
            SyncPlan::Diff {
                after: Zxid::default()
            }
        );
    }

    #[test]
    fn older_than_the_window_uses_the_log_if_small_next_to_the_snapshot() {
        let l = log();
        let mut h = history(&l, 2);
        h.snapshot_bytes = Some(10_000);
        // 8 proposals * 100 bytes = 800 <= 3300: the on-disk log serves it.
        assert_eq!(choose(&h, z(1, 2)), SyncPlan::Diff { after: z(1, 2) });
        h.snapshot_bytes = Some(1_000);
        // 800 > 330: a snapshot is cheaper.
        assert_eq!(choose(&h, z(1, 2)), SyncPlan::Snap);
    }

    #[test]
    fn older_than_the_leaders_log_gets_a_snapshot() {
        let l: Vec<(Zxid, usize)> = (5..=9).map(|c| (z(2, c), 10)).collect();
        let h = History {
            log_start: z(2, 4),
            snapshot_bytes: Some(1_000_000),
            ..history(&l, 500)
        };
        assert_eq!(choose(&h, z(2, 1)), SyncPlan::Snap);
        // Exactly at the snapshot's end: a DIFF of the whole log.
        assert_eq!(choose(&h, z(2, 4)), SyncPlan::Diff { after: z(2, 4) });
    }
}
