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
