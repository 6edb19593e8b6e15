//! An old leader's lone uncommitted proposal is rolled back by the next era.

use super::{sends, SEC};
use crate::protocol::words::fill;
use crate::scenario::Script;
use crate::sim::TraceEvent;
use consensus_core::NodeId;
use std::collections::BTreeMap;
use std::time::Duration;

pub(crate) fn stale_proposal(s: &mut Script) {
    let Some(old) = s.wait_leader(5 * SEC) else {
        return;
    };
    if let Some(p) = s.put(old, "w", "before") {
        s.wait_committed(old, p, SEC);
    }
    s.c.run_for(Duration::from_millis(100));
    s.note(&format!(
        "The leader n{old} is cut off, logs a proposal x=stale alone, and crashes."
    ));
    s.c.disconnect(old);
    let stale = s.put(old, "x", "stale");
    s.c.run_for(Duration::from_millis(20));
    let logged = stale.is_some_and(|p| s.c.durable_entries(old).iter().any(|e| e.pos == p));
    s.c.crash(old);
    s.c.connect(old);
    let new = s.wait_new_leader(old, 10 * SEC);
    let Some(new) = new else {
        return;
    };
    let fresh = s.put(new, "x", "fresh");
    if let Some(p) = fresh {
        s.wait_committed(new, p, 2 * SEC);
    }
    s.note(&format!("n{old} restarts and rejoins."));
    let t0 = s.now().as_micros() as u64;
    s.c.restart(old);
    let converged = s.wait_converged(10 * SEC);
    let t1 = s.now().as_micros() as u64;
    let tr = s.c.trace_events().to_vec();
    let truncated = tr.iter().any(|e| {
        matches!(e, TraceEvent::Truncate { t, node, .. } | TraceEvent::Snapshot { t, node, .. }
            if *t >= t0 && *node == old)
    });
    let still_there = stale.is_some_and(|p| s.c.durable_entries(old).iter().any(|e| e.pos == p));
    let everywhere =
        s.c.ids()
            .all(|id| s.value(id, "x").as_deref() == Some("fresh"));
    // Figure 8: a Raft leader advances its commit point only onto entries of its own term.
    let mut leader_commits_own_era = true;
    let mut last: BTreeMap<NodeId, [u64; 2]> = BTreeMap::new();
    for e in &tr {
        if let TraceEvent::State {
            node,
            role,
            era,
            commit,
            ..
        } = e
        {
            let prev = last.insert(*node, *commit);
            if role == "Leader" && prev.is_some_and(|p| p < *commit) && commit[0] != *era {
                leader_commits_own_era = false;
            }
        }
    }
    let st = s.w.stale;
    let sync = st
        .repair
        .iter()
        .copied()
        .find(|m| sends(&tr, t0, t1, m).iter().any(|(_, r, _)| *r == old))
        .unwrap_or(st.otherwise)
        .to_string();
    s.fact("stale_logged", logged);
    s.fact("stale_rolled_back", logged && !still_there);
    s.fact("rollback_seen", truncated);
    s.fact("fresh_everywhere", everywhere);
    s.fact("converged", converged);
    s.fact("sync", sync.clone());
    s.fact("leader_commits_only_its_own_era", leader_commits_own_era);
    s.say(format!(
        "n{old} had x=stale{} in its log, on no other node; n{new} led the next {} and committed x=fresh.",
        stale.map(|p| format!(" at {p}")).unwrap_or_default(),
        s.era_word()
    ));
    s.say(fill(
        st.sentence,
        &[
            ("old", old.to_string()),
            ("sync", sync),
            (
                "result",
                (if still_there {
                    st.results.1
                } else {
                    st.results.0
                })
                .to_string(),
            ),
            ("own_era", leader_commits_own_era.to_string()),
        ],
    ));
}
