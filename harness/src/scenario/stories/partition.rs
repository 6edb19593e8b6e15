//! A minority leader and a majority side each take a write; only the majority commits.

use super::SEC;
use crate::scenario::Script;
use consensus_core::NodeId;
use std::time::Duration;

pub(crate) fn partition(s: &mut Script) {
    let Some(old) = s.wait_leader(5 * SEC) else {
        return;
    };
    let ids: Vec<NodeId> = s.c.ids().collect();
    let buddy = *ids.iter().find(|&&i| i != old).expect("5 nodes");
    let majority: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|&i| i != old && i != buddy)
        .collect();
    s.c.run_for(Duration::from_millis(100));
    s.note(&format!(
        "The network splits: {{n{old}, n{buddy}}} | {{{}}}; the old leader n{old} is in the minority.",
        majority.iter().map(|n| format!("n{n}")).collect::<Vec<_>>().join(", ")
    ));
    s.c.partition(&[vec![old, buddy], majority.clone()]);
    let minority_pos = s.put(old, "x", "minority");
    s.fact("minority_accepted", minority_pos.is_some());
    let new = s.wait_new_leader(old, 10 * SEC);
    let Some(new) = new else {
        s.fact("majority_leader", false);
        return;
    };
    s.fact("majority_leader", new);
    let maj_pos = s.put(new, "x", "majority");
    let maj_ok = maj_pos.is_some_and(|p| s.wait_committed(new, p, 2 * SEC));
    s.c.run_for(Duration::from_millis(300));
    let minority_committed = minority_pos.is_some_and(|p| {
        s.c.status(old).is_some_and(|st| st.commit >= p)
            && s.c.durable_entries(old).iter().any(|e| e.pos == p)
    });
    s.fact("majority_committed", maj_ok);
    s.fact("minority_committed", minority_committed);
    s.note("The partition heals.");
    s.c.heal();
    let converged = s.wait_converged(5 * SEC);
    let everywhere = ids
        .iter()
        .all(|&id| s.value(id, "x").as_deref() == Some("majority"));
    let rolled_back =
        minority_pos.is_some_and(|p| !s.c.durable_entries(old).iter().any(|e| e.pos == p));
    s.fact("converged", converged);
    s.fact("majority_value_everywhere", everywhere);
    s.fact("minority_entry_rolled_back", rolled_back);
    s.say(format!(
        "n{old} accepted x=minority{} but could not reach a majority, so it never committed it.",
        minority_pos.map(|p| format!(" at {p}")).unwrap_or_default()
    ));
    s.say(format!(
        "The majority elected n{new} and committed x=majority{}.",
        maj_pos.map(|p| format!(" at {p}")).unwrap_or_default()
    ));
    s.say(format!(
        "After healing, n{old}'s uncommitted entry {}; every node reads x=majority: {everywhere}.",
        if rolled_back {
            "was rolled back"
        } else {
            "is STILL THERE"
        }
    ));
}
