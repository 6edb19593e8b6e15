//! An operator moves the leader on purpose: Raft hands over with TimeoutNow to the node asked
//! for; ZAB, like ZooKeeper, has no transfer, so the leader is stopped and an election picks
//! the successor.

use super::SEC;
use crate::scenario::ms;
use crate::scenario::Script;
use consensus_core::{ProposeError, Role};
use std::time::Duration;

pub(crate) fn leader_transfer(s: &mut Script) {
    let Some(old) = s.wait_leader(5 * SEC) else {
        return;
    };
    if let Some(p) = s.put(old, "x", "1") {
        s.wait_committed(old, p, SEC);
    }
    s.wait_converged(2 * SEC);
    let Some(target) = s.c.ids().filter(|&i| i != old).min() else {
        return;
    };
    s.note(&format!(
        "An operator asks the leader n{old} to hand leadership to n{target}."
    ));
    let asked_at = s.now();
    let new = match s.c.transfer_leadership(old, target) {
        Ok(()) => {
            s.fact("transfer_supported", true);
            s.c.run_until(2 * SEC, |c| {
                c.status(target).is_some_and(|st| st.role == Role::Leader)
            });
            let leads = s.c.status(target).is_some_and(|st| st.role == Role::Leader);
            let gap = s.now() - asked_at;
            s.say(format!(
                "n{target} {} {} after the request ({} {}): n{old} stopped taking writes, made sure n{target}'s log matched its own, then sent it TimeoutNow; n{target} campaigned at once, without a pre-vote, and the others granted its TransferVote although they still heard n{old}.",
                if leads { "was leading" } else { "was NOT leading" },
                ms(gap),
                s.era_word(),
                s.c.status(target).map_or(0, |st| st.era)
            ));
            s.fact("handover_ms", gap.as_secs_f64() * 1000.0);
            leads.then_some(target)
        }
        Err(ProposeError::Unsupported) => {
            s.fact("transfer_supported", false);
            s.say(format!(
                "{} has no leadership transfer, as ZooKeeper has none: to move the leader, the operator stops n{old}, and the election picks the successor, not the operator.",
                s.c.protocol().name().to_uppercase()
            ));
            s.c.crash(old);
            let new = s.wait_new_leader(old, 10 * SEC);
            let gap = s.now() - asked_at;
            match new {
                Some(n) => s.say(format!(
                    "n{n} was leading {} after n{old} stopped ({} {}){}.",
                    ms(gap),
                    s.era_word(),
                    s.c.status(n).map_or(0, |st| st.era),
                    if n == target {
                        String::new()
                    } else {
                        format!(", not n{target}")
                    }
                )),
                None => s.say("No new leader within 10 s.".into()),
            }
            s.fact("handover_ms", gap.as_secs_f64() * 1000.0);
            new
        }
        Err(e) => {
            s.say(format!("n{old} refused: {e}."));
            None
        }
    };
    s.fact("old_leader", old);
    s.fact("asked_for", target);
    s.fact("new_leader", new.map_or(0, |n| n));
    s.fact("chosen_node_leads", new == Some(target));
    let Some(new) = new else {
        return;
    };
    s.c.run_for(Duration::from_millis(200));
    let survived = s.value(new, "x").as_deref() == Some("1");
    s.fact("committed_write_survived", survived);
    s.say(format!(
        "The write x=1 committed before the move {} on n{new}.",
        if survived { "is there" } else { "is MISSING" }
    ));
}
