//! Four nodes split two and two: no side has a quorum.

use super::{new_leaders, SEC};
use crate::scenario::Script;
use consensus_core::{NodeId, Role};
use std::time::Duration;

pub(crate) fn even_cluster(s: &mut Script) {
    let Some(leader) = s.wait_leader(5 * SEC) else {
        return;
    };
    s.note("Four nodes: a majority is three, so a 2 | 2 split leaves no side with a quorum.");
    s.c.run_for(Duration::from_millis(100));
    let ids: Vec<NodeId> = s.c.ids().collect();
    let other = *ids.iter().find(|&&i| i != leader).expect("4 nodes");
    let side_a = vec![leader, other];
    let side_b: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|i| !side_a.contains(i))
        .collect();
    s.note(&format!(
        "The network splits {{n{leader}, n{other}}} | {{n{}, n{}}}.",
        side_b[0], side_b[1]
    ));
    let t0 = s.now().as_micros() as u64;
    s.c.partition(&[side_a, side_b]);
    let write = s.put(leader, "x", "split");
    s.quietly("both halves try to elect a leader and fail", |s| {
        s.c.run_for(3 * SEC)
    });
    let tr = s.c.trace_events().to_vec();
    let new_leaders = new_leaders(&tr, t0).len();
    let leader_at_end = ids.iter().any(|&i| s.role(i) == Some(Role::Leader));
    let write_committed =
        write.is_some_and(|p| s.c.status(leader).is_some_and(|st| st.commit >= p));
    s.fact("new_leaders_during_split", new_leaders);
    s.fact("leader_at_end_of_split", leader_at_end);
    s.fact("write_during_split_committed", write_committed);
    s.note("The partition heals.");
    s.c.heal();
    let after = s.wait_leader(5 * SEC);
    s.fact("leader_after_heal", after.unwrap_or(0));
    s.say(format!(
        "During 3 s of a 2 | 2 split, {new_leaders} new leader(s) were elected and at the end {} led; the write sent to n{leader} {}.",
        if leader_at_end { "someone" } else { "nobody" },
        if write_committed { "committed" } else { "did not commit" }
    ));
    s.say(format!(
        "Once healed, n{} leads: with four nodes the cluster tolerates one failure, no more than with three.",
        after.unwrap_or(0)
    ));
}
