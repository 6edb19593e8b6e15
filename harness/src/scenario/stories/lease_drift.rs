//! A leader cut off from the others, whose clock runs slow while theirs run fast, is asked
//! for a lease read after they elected another leader and committed a newer value.

use super::stale_read::read_at;
use super::SEC;
use crate::scenario::Script;
use consensus_core::ReadLevel;
use std::time::Duration;

pub(crate) fn lease_drift(s: &mut Script) {
    let Some(old) = s.wait_leader(5 * SEC) else {
        return;
    };
    if let Some(p) = s.put(old, "x", "1") {
        s.wait_committed(old, p, SEC);
    }
    s.c.run_for(Duration::from_millis(100));
    let ids: Vec<_> = s.c.ids().collect();
    s.note(&format!(
        "Clocks drift far apart: n{old}'s runs at half speed, the others' at 1.5x. A lease read at n{old} starts its lease."
    ));
    for &id in &ids {
        s.c.set_clock_rate(id, if id == old { 0.5 } else { 1.5 });
    }
    let first = read_at(s, old, ReadLevel::Lease, "x", Duration::from_millis(50));
    let others: Vec<_> = ids.iter().copied().filter(|&i| i != old).collect();
    s.note(&format!("n{old} is cut off from the others."));
    s.c.partition(&[vec![old], others]);
    let Some(new) = s.wait_new_leader(old, 2 * SEC) else {
        s.fact("new_leader", false);
        return;
    };
    let committed = s
        .put(new, "x", "2")
        .is_some_and(|p| s.wait_committed(new, p, SEC));
    let at = s.now();
    s.note(&format!(
        "n{new} leads and has committed x=2; a client asks the old leader n{old} for a lease read."
    ));
    let stale = read_at(s, old, ReadLevel::Lease, "x", Duration::from_millis(5));
    let show = |v: &Option<Option<String>>| match v {
        Some(Some(v)) => format!("x={v}"),
        Some(None) => "no x".into(),
        None => "no answer".into(),
    };
    s.fact("first_lease_read", show(&first));
    s.fact("new_leader", new);
    s.fact("new_value_committed", committed);
    s.fact("old_leader_answered", show(&stale));
    s.fact("stale", stale == Some(Some("1".into())));
    s.fact("asked_at_ms", at.as_secs_f64() * 1000.0);
    s.say(format!(
        "n{new} committed x=2, yet n{old} answered the lease read with {}: {}.",
        show(&stale),
        s.w.lease_read
    ));
    s.say(
        "A linearizability check rejects that answer: x=2 was acknowledged before the read began."
            .into(),
    );
}
