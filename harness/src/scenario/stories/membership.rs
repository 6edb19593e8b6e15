//! Membership changes: replacing a dead node, removing the leader, growing a cluster with
//! learners, and the single-server change bug Raft's author published in 2015.

use super::SEC;
use crate::scenario::{ms, Script};
use consensus_core::{ConfChange, Membership, NodeId, Position, ProposeError, Role};
use std::time::Duration;

/// "a learner", "an observer".
fn a(word: &str) -> String {
    let article = if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {word}")
}

fn show(m: &Option<Membership>) -> String {
    m.as_ref().map_or("none".into(), |m| m.to_string())
}

impl Script {
    /// Asks the leader for `changes` (retrying while it refuses for a reason that passes:
    /// a change in progress, an entry of its term not yet committed, a learner not caught
    /// up) and runs until the leader's configuration satisfies `done`; returns how long that
    /// took, or `None`.
    fn change(
        &mut self,
        changes: &[ConfChange],
        done: impl Fn(&Membership) -> bool,
        limit: Duration,
    ) -> Option<Duration> {
        let start = self.now();
        let deadline = start + limit;
        let mut asked = false;
        while self.now() < deadline {
            let leader = self.wait_leader(deadline.saturating_sub(self.now()))?;
            if !asked {
                match self.c.change_membership(leader, changes) {
                    Ok(_) => asked = true,
                    Err(ProposeError::Membership(_)) | Err(ProposeError::NotLeader { .. }) => {}
                    Err(e) => {
                        self.say(format!("The change was refused: {e}."));
                        return None;
                    }
                }
            }
            let settled = |c: &crate::cluster::Cluster| {
                c.leader()
                    .and_then(|l| c.membership(l))
                    .is_some_and(|m| !m.is_joint() && done(&m))
            };
            if asked && settled(&self.c) {
                return Some(self.now() - start);
            }
            self.c.run_for(Duration::from_millis(1));
        }
        None
    }

    /// Runs until `id` holds and has committed everything the leader committed at `at`.
    fn caught_up(&mut self, id: NodeId, at: Position, limit: Duration) -> bool {
        self.c
            .run_until(limit, |c| c.status(id).is_some_and(|s| s.commit >= at))
    }
}

/// A follower dies for good; a fresh node joins as a learner, catches up, is promoted, and
/// the dead node is removed. Both protocols keep serving throughout.
pub(crate) fn replace_node(s: &mut Script) {
    let spare = s.c.size() as NodeId;
    let Some(leader) = s.wait_leader(5 * SEC) else {
        return;
    };
    s.note(&format!(
        "The cluster starts as {}.",
        show(&s.c.membership(leader))
    ));
    let written = s.quietly("200 writes committed", |s| s.write_many("k", 200));
    if let Some(p) = s.put(leader, "x", "1") {
        s.wait_committed(leader, p, SEC);
    }
    s.wait_converged(2 * SEC);
    let Some(leader) = s.c.leader() else {
        return;
    };
    let dead =
        s.c.ids()
            .find(|&i| i != leader && i != spare)
            .expect("a follower");
    s.note(&format!("n{dead} dies for good (its disk is lost)."));
    s.c.crash(dead);
    s.fact("dead", dead);
    s.fact("fresh", spare);
    let commit_then = s.c.status(leader).map_or(Position::ZERO, |st| st.commit);
    s.note(&format!(
        "The operator adds n{spare}, an empty node, as {}.",
        a(s.c.protocol().def().words().learner)
    ));
    let asked = s.now();
    if s.change(
        &[ConfChange::learner(spare)],
        |m| m.contains(spare),
        5 * SEC,
    )
    .is_none()
    {
        s.say("The learner was not added.".into());
        return;
    }
    let caught = s.caught_up(spare, commit_then, 5 * SEC);
    let catch_up = s.now() - asked;
    s.fact("caught_up", caught);
    s.fact("catch_up_ms", catch_up.as_secs_f64() * 1e3);
    s.say(format!(
        "n{spare} joined as {} and {} the {} writes committed before it ({} after the request).",
        a(s.c.protocol().def().words().learner),
        if caught { "held" } else { "did NOT hold" },
        written + 1,
        ms(catch_up)
    ));
    let Some(promoted) = s.change(
        &[ConfChange::voter(spare)],
        |m| m.voters.contains(&spare),
        5 * SEC,
    ) else {
        s.say("The promotion did not go through.".into());
        return;
    };
    let Some(removed) = s.change(
        &[ConfChange::Remove { id: dead }],
        |m| !m.contains(dead),
        5 * SEC,
    ) else {
        s.say("The dead node was not removed.".into());
        return;
    };
    let Some(leader) = s.wait_leader(2 * SEC) else {
        return;
    };
    let m = s.c.membership(leader);
    s.say(format!(
        "n{spare} was promoted ({}) and n{dead} removed ({}): the configuration is {}.",
        ms(promoted),
        ms(removed),
        show(&m)
    ));
    s.fact(
        "final_voters",
        m.as_ref().map_or(Vec::new(), |m| m.voters.clone()),
    );
    // The new voter counts: another original follower dies, and writes still commit.
    let other =
        s.c.ids()
            .find(|&i| i != leader && i != spare && i != dead)
            .expect("an original follower");
    s.c.crash(other);
    let p = s.put(leader, "y", "2");
    let committed = p.is_some_and(|p| s.wait_committed(leader, p, 2 * SEC));
    s.fact("commits_with_the_new_voter", committed);
    s.say(format!(
        "With n{other} down too, the leader and n{spare} are two of three voters: a write {}.",
        if committed {
            "commits"
        } else {
            "does NOT commit"
        }
    ));
    let survived = s.value(spare, "x").as_deref() == Some("1");
    s.fact("committed_write_survived", survived);
}

/// The leader removes itself. Raft: it commits the new configuration, hands over with
/// TimeoutNow and steps down; ZAB: it commits the reconfig, steps down, and the others elect.
pub(crate) fn remove_leader(s: &mut Script) {
    let Some(old) = s.wait_leader(5 * SEC) else {
        return;
    };
    if let Some(p) = s.put(old, "x", "1") {
        s.wait_committed(old, p, SEC);
    }
    s.wait_converged(2 * SEC);
    let Some(old) = s.c.leader() else {
        return;
    };
    s.note(&format!(
        "The operator asks the leader n{old} to remove itself."
    ));
    let asked = s.now();
    if let Err(e) =
        s.c.change_membership(old, &[ConfChange::Remove { id: old }])
    {
        s.say(format!("n{old} refused: {e}."));
        return;
    }
    // Unavailable until a new leader commits a write.
    let mut new = None;
    let mut wrote = None;
    while s.now() < asked + 10 * SEC {
        if let Some(l) = s.c.leader().filter(|&l| l != old) {
            if new != Some(l) {
                new = Some(l);
                wrote = s.put(l, "y", "2");
            }
            if let Some(p) = wrote {
                if s.c.status(l).is_some_and(|st| st.commit >= p) {
                    break;
                }
            }
        }
        s.c.run_for(Duration::from_millis(1));
    }
    let gap = s.now() - asked;
    let Some(new) = new else {
        s.say("No new leader within 10 s.".into());
        return;
    };
    s.fact("old_leader", old);
    s.fact("new_leader", new);
    s.fact("unavailable_ms", gap.as_secs_f64() * 1e3);
    let m = s.c.membership(new);
    s.fact(
        "old_leader_removed",
        m.as_ref().is_some_and(|m| !m.contains(old)),
    );
    s.say(format!(
        "{} after the request, n{new} led and committed a write; the configuration is {}.",
        ms(gap),
        show(&m)
    ));
    let era = s.c.status(old).map_or(0, |st| st.era);
    s.c.run_for(2 * SEC);
    let quiet =
        s.c.status(old)
            .is_some_and(|st| st.role != Role::Leader && st.era == era);
    s.fact("removed_node_stays_quiet", quiet);
    s.say(format!(
        "n{old} {} (it no longer votes).",
        if quiet {
            "stays out of elections"
        } else {
            "still campaigns"
        }
    ));
    let survived = s.value(new, "x").as_deref() == Some("1");
    s.fact("committed_write_survived", survived);
}

/// Three voters become five: two learners join and catch up, then both are promoted in one
/// change. Raft passes through a joint configuration (both majorities) and leaves it on its
/// own; ZAB proposes the new configuration as one transaction, counted by both majorities
/// until it commits.
pub(crate) fn grow_3_to_5(s: &mut Script) {
    let Some(leader) = s.wait_leader(5 * SEC) else {
        return;
    };
    s.quietly("50 writes committed", |s| s.write_many("k", 50));
    s.wait_converged(2 * SEC);
    s.note(&format!(
        "The cluster is {}.",
        show(&s.c.membership(leader))
    ));
    let Some(added) = s.change(
        &[ConfChange::learner(4), ConfChange::learner(5)],
        |m| m.learners.len() == 2,
        5 * SEC,
    ) else {
        s.say("The learners were not added.".into());
        return;
    };
    let Some(leader) = s.c.leader() else {
        return;
    };
    let commit = s.c.status(leader).map_or(Position::ZERO, |st| st.commit);
    let caught = s.caught_up(4, commit, 5 * SEC) && s.caught_up(5, commit, 5 * SEC);
    s.say(format!(
        "n4 and n5 joined as {}s ({}) and {} the log.",
        s.c.protocol().def().words().learner,
        ms(added),
        if caught {
            "caught up with"
        } else {
            "did NOT catch up with"
        }
    ));
    let Some(leader) = s.c.leader() else {
        return;
    };
    s.note("The operator promotes n4 and n5 together.");
    let start = s.now();
    // (the leader may not have heard the learners' last answers yet: it refuses until then)
    let mut asked =
        s.c.change_membership(leader, &[ConfChange::voter(4), ConfChange::voter(5)]);
    while let Err(ProposeError::Membership(_)) = asked {
        if s.now() > start + SEC {
            break;
        }
        s.c.run_for(Duration::from_millis(1));
        asked =
            s.c.change_membership(leader, &[ConfChange::voter(4), ConfChange::voter(5)]);
    }
    if let Err(e) = asked {
        s.say(format!("The promotion was refused: {e}."));
        return;
    }
    let mut joint_seen = None;
    let done = s.c.step_until(5 * SEC, |c| {
        c.leader()
            .and_then(|l| c.membership(l))
            .is_some_and(|m| !m.is_joint() && m.voters.len() == 5)
    });
    // Whether the leader ever acted on a joint configuration: read back from the trace of
    // its configuration entries.
    for e in s.c.durable_entries(leader) {
        if let consensus_core::Payload::Config(m) = &e.payload {
            if m.is_joint() {
                joint_seen = Some(m.clone());
            }
        }
    }
    let took = s.now() - start;
    s.fact("promoted", done);
    s.fact("joint_configuration", joint_seen.is_some());
    s.fact("promote_ms", took.as_secs_f64() * 1e3);
    match &joint_seen {
        Some(j) => s.say(format!(
            "Two voters at once: the leader first logged the joint configuration {j}, which needs a majority of both, and once it committed logged the new one alone ({} in all).",
            ms(took)
        )),
        None => s.say(format!(
            "One reconfig transaction: until it committed, every quorum needed a majority of the old voters and of the new ones ({}).",
            ms(took)
        )),
    }
    let Some(leader) = s.wait_leader(2 * SEC) else {
        return;
    };
    let m = s.c.membership(leader);
    s.fact("voters", m.as_ref().map_or(0, |m| m.voters.len()));
    let majority = m.as_ref().map_or(0, |m| m.quorum().incoming().size());
    s.fact("majority", majority);
    s.say(format!(
        "The configuration is {}: {majority} of 5 make a majority, so two nodes may fail.",
        show(&m)
    ));
}

/// The single-server change bug (Ongaro, raft-dev, 2015): two single-server changes made by
/// leaders of different terms, neither seeing the other's, leave two configurations whose
/// majorities do not overlap. Raft without the fix elects two leaders at once and loses an
/// acknowledged write; with the fix (a leader changes nothing before it commits an entry of
/// its own term) the second change waits and nothing is lost. ZAB, under the same schedule,
/// counts a proposed configuration with both majorities: neither change commits.
pub(crate) fn single_server_bug(s: &mut Script) {
    let spare = s.c.size() as NodeId;
    let Some(a) = s.wait_leader(5 * SEC) else {
        return;
    };
    if let Some(p) = s.put(a, "x", "1") {
        s.wait_committed(a, p, SEC);
    }
    s.wait_converged(2 * SEC);
    let Some(a) = s.c.leader() else {
        return;
    };
    let others: Vec<NodeId> = s.c.ids().filter(|&i| i != a && i != spare).collect();
    s.note(&format!(
        "n{a} (leading {}) and n{spare} are cut off from {}.",
        show(&s.c.membership(a)),
        others
            .iter()
            .map(|i| format!("n{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    s.c.partition(&[vec![a, spare], others.clone()]);
    match s.c.change_membership(a, &[ConfChange::voter(spare)]) {
        Ok(_) => s.say(format!(
            "Change 1: n{a} adds n{spare} as a voter; only n{spare} gets the entry, so it does not commit."
        )),
        Err(e) => {
            s.say(format!("n{a} refused change 1: {e}."));
            return;
        }
    }
    s.c.run_for(Duration::from_millis(50));
    // The others elect a leader of their own. Under Raft, the first node to grant its vote
    // (x) is cut off from the candidate's later messages, so it holds none of the new term's
    // entries; ZAB needs every other to synchronize first, so x is cut off after that.
    let raft = s.c.protocol().name() == "raft";
    let (l2, x) = if raft {
        let mut voted = None;
        s.c.step_until(5 * SEC, |c| {
            others.iter().any(|&n| {
                c.status(n).is_some_and(|st| {
                    st.vote.is_some_and(|v| v != n && others.contains(&v)) && st.era >= 2
                })
            })
        });
        for &n in &others {
            if let Some(st) = s.c.status(n) {
                if let Some(v) = st.vote.filter(|&v| v != n && others.contains(&v)) {
                    voted = Some((v, n));
                    break;
                }
            }
        }
        let Some((cand, x)) = voted else {
            s.say("Nobody among the others voted.".into());
            return;
        };
        s.c.block_one_way(cand, x);
        if !s.c.step_until(2 * SEC, |c| {
            c.status(cand).is_some_and(|st| st.role == Role::Leader)
        }) {
            s.say(format!("n{cand} did not win."));
            return;
        }
        (cand, x)
    } else {
        let Some(l2) = s.wait_new_leader(a, 10 * SEC) else {
            s.say("The others elected nobody.".into());
            return;
        };
        s.wait_converged(SEC);
        let x = others.iter().copied().find(|&n| n != l2).expect("another");
        let y = others
            .iter()
            .copied()
            .find(|&n| n != l2 && n != x)
            .expect("a third");
        s.c.partition(&[vec![a, spare], vec![l2, y], vec![x]]);
        (l2, x)
    };
    let y = others
        .iter()
        .copied()
        .find(|&n| n != l2 && n != x)
        .expect("a third");
    s.fact("second_leader", l2);
    s.note(&format!(
        "n{l2} leads the others; n{x} {} but hears nothing more from it.",
        if raft { "voted for it" } else { "followed it" }
    ));
    // Change 2, at once.
    let refused = match s.c.change_membership(l2, &[ConfChange::Remove { id: x }]) {
        Ok(_) if raft => {
            s.say(format!(
                "Change 2: n{l2} removes n{x} at once, before it committed anything in its {}: in force on append, {{n{a}, n{l2}, n{y}}} needs only n{l2} and n{y}.",
                s.era_word()
            ));
            false
        }
        Ok(_) => {
            s.say(format!(
                "Change 2: n{l2} proposes removing n{x}; until that commits, every quorum needs a majority of the four voters it started with as well as of {{n{a}, n{l2}, n{y}}}."
            ));
            false
        }
        Err(e) => {
            s.say(format!("Change 2: n{l2} refuses to remove n{x} yet: {e}."));
            true
        }
    };
    s.fact("second_change_refused", refused);
    let y_pos = s.put(l2, "y", "2");
    let y_acked = y_pos.is_some_and(|p| s.wait_committed(l2, p, SEC));
    s.fact("write_acknowledged_by_second_leader", y_acked);
    s.say(format!(
        "A client writes y=2 at n{l2}: {}.",
        if y_acked {
            "committed and acknowledged"
        } else {
            "it does not commit"
        }
    ));
    // The first side regains a majority of its own configuration.
    s.note(&format!(
        "n{a}, n{x} and n{spare} can talk again; n{l2} and n{y} are on their own."
    ));
    s.c.partition(&[vec![l2, y], vec![a, x, spare]]);
    let side = [a, x, spare];
    let third = s.c.run_until(3 * SEC, |c| {
        side.iter()
            .any(|&n| c.status(n).is_some_and(|st| st.role == Role::Leader))
    });
    let l3 = side
        .iter()
        .copied()
        .find(|&n| s.c.status(n).is_some_and(|st| st.role == Role::Leader));
    let both = third && s.c.status(l2).is_some_and(|st| st.role == Role::Leader) && l3.is_some();
    s.fact("two_leaders_at_once", both);
    match l3 {
        Some(l3) => {
            let z = s.put(l3, "z", "3");
            let z_acked = z.is_some_and(|p| s.wait_committed(l3, p, SEC));
            s.say(format!(
                "n{l3} wins with n{a}, n{x} and n{spare}: three of the five voters of change 1's configuration{}; z=3 {}.",
                if both {
                    format!(", while n{l2} still leads with n{y}, two of the three of change 2's: two leaders at once")
                } else {
                    String::new()
                },
                if z_acked { "commits there" } else { "does not commit" }
            ));
        }
        None => s.say(format!(
            "Nobody on n{a}'s side can lead: no majority of the configuration it counts in."
        )),
    }
    s.note("The partition heals.");
    s.c.heal();
    s.wait_converged(5 * SEC);
    let Some(last) = s.wait_leader(5 * SEC) else {
        return;
    };
    let lost = y_acked && s.value(last, "y").as_deref() != Some("2");
    s.fact("acknowledged_write_lost", lost);
    let violations = !s.c.violations().is_empty();
    s.fact("violation_reported", violations);
    s.say(if lost {
        format!(
            "After healing, n{last} leads and y=2, acknowledged by n{l2}, is GONE: the committed entries of n{l2}'s {} were overwritten{}.",
            s.era_word(),
            if violations { " (the cores report a truncation below their commit point)" } else { "" }
        )
    } else {
        format!(
            "After healing, n{last} leads and nothing acknowledged was lost (y=2 {}).",
            if y_acked { "is there" } else { "was never acknowledged" }
        )
    });
}
