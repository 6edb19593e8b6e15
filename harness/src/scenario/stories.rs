//! The scripts of the scenarios: what each does to the cluster and what it records.

use super::{ms, Outcome, Script};
use crate::protocol::words::fill;
use crate::protocol::{Protocol, SplitVotes};
use crate::sim::{SimConfig, TraceEvent};
use consensus_core::{NodeId, Role};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

fn us(t: u64) -> String {
    format!("{:.1} ms", t as f64 / 1000.0)
}

/// State events of the trace after `from` µs: (t, node, role_name, era, leader, vote, commit).
fn states(tr: &[TraceEvent], from: u64) -> Vec<(u64, NodeId, String, u64, Option<NodeId>)> {
    tr.iter()
        .filter_map(|e| match e {
            TraceEvent::State {
                t,
                node,
                role_name,
                era,
                leader,
                ..
            } if *t >= from => Some((*t, *node, role_name.clone(), *era, *leader)),
            _ => None,
        })
        .collect()
}

/// Role changes after `from` µs: (t, node, protocol-neutral role, the protocol's role name).
fn roles(tr: &[TraceEvent], from: u64) -> Vec<(u64, NodeId, String, String)> {
    tr.iter()
        .filter_map(|e| match e {
            TraceEvent::State {
                t,
                node,
                role,
                role_name,
                ..
            } if *t >= from => Some((*t, *node, role.clone(), role_name.clone())),
            _ => None,
        })
        .collect()
}

/// Nodes that became leader (from another role) at or after `from` µs, with the era.
fn new_leaders(tr: &[TraceEvent], from: u64) -> Vec<(u64, NodeId, u64)> {
    let mut role: BTreeMap<NodeId, String> = BTreeMap::new();
    let mut out = Vec::new();
    for e in tr {
        if let TraceEvent::State {
            t,
            node,
            role: r,
            era,
            ..
        } = e
        {
            let was = role.insert(*node, r.clone());
            if r == "Leader" && was.as_deref() != Some("Leader") && *t >= from {
                out.push((*t, *node, *era));
            }
        }
    }
    out
}

/// Message sends after `from` µs whose type contains `name`, with receivers.
fn sends(tr: &[TraceEvent], from: u64, to: u64, name: &str) -> Vec<(NodeId, NodeId, String)> {
    tr.iter()
        .filter_map(|e| match e {
            TraceEvent::Send {
                t,
                from: f,
                to: r,
                msg,
                ..
            } if *t >= from && *t <= to && msg.contains(name) => Some((*f, *r, msg.clone())),
            _ => None,
        })
        .collect()
}

pub(super) fn election(s: &mut Script) {
    let n = s.c.size();
    let (followers, waiting) = (s.w.starting_role, s.w.election_start);
    s.note(&format!(
        "All {n} nodes start as {followers}, with no leader; {waiting}."
    ));
    let Some(leader) = s.wait_leader(5 * SEC) else {
        s.fact("leader_elected", false);
        s.say("No leader was elected within 5 s.".into());
        return;
    };
    let elected_at = s.now();
    let era = s.c.status(leader).map_or(0, |st| st.era);
    s.note(&format!(
        "n{leader} leads {} {era}; watch its heartbeats for one second.",
        s.era_word()
    ));
    let tr = s.c.trace_events().to_vec();
    let first_candidate = roles(&tr, 0)
        .into_iter()
        .find(|(_, _, role, _)| role != "Follower")
        .map(|(t, node, _, name)| (t, node, name));
    s.c.run_for(SEC);
    let still = s.c.leader();
    let tr = s.c.trace_events().to_vec();
    let changes_after: usize = roles(&tr, elected_at.as_micros() as u64 + 1)
        .iter()
        .filter(|(_, _, role, _)| role == "Candidate")
        .count();
    let beat = s.w.heartbeat_message;
    let heartbeats = sends(&tr, elected_at.as_micros() as u64, u64::MAX, beat)
        .iter()
        .filter(|(f, _, m)| *f == leader && m.split('+').any(|p| p == beat))
        .count();
    s.fact("leader_elected", true);
    s.fact("leader", leader);
    s.fact("era", era);
    s.fact("elected_at_ms", elected_at.as_secs_f64() * 1000.0);
    s.fact("leader_kept", still == Some(leader));
    s.fact("elections_after", changes_after);
    s.fact("heartbeats", heartbeats);
    if let Some(sentence) = s.w.elected {
        s.say(fill(
            sentence,
            &[
                ("leader", leader.to_string()),
                ("era", era.to_string()),
                ("at", ms(elected_at)),
            ],
        ));
    } else if let Some((t, node, role)) = first_candidate {
        s.fact("first_candidate", node);
        s.say(format!(
            "n{node} moved first ({role} at {}); n{leader} won {} {era} at {}.",
            us(t),
            s.era_word(),
            ms(elected_at)
        ));
    }
    s.say(format!(
        "n{leader} was still the leader 1 s later: {heartbeats} {} kept the others from starting an election.",
        s.w.heartbeats
    ));
}

pub(super) fn leader_crash(s: &mut Script) {
    let Some(old) = s.wait_leader(5 * SEC) else {
        return;
    };
    let pos = s.put(old, "x", "1");
    if let Some(p) = pos {
        s.wait_committed(old, p, SEC);
    }
    s.c.run_for(Duration::from_millis(100));
    s.note(&format!("The leader n{old} crashes."));
    let crashed_at = s.now();
    s.c.crash(old);
    let new = s.wait_new_leader(old, 10 * SEC);
    let Some(new) = new else {
        s.fact("new_leader", false);
        s.say("No new leader within 10 s.".into());
        return;
    };
    let gap = s.now() - crashed_at;
    s.c.run_for(Duration::from_millis(200));
    let survived = s.value(new, "x").as_deref() == Some("1");
    s.fact("old_leader", old);
    s.fact("new_leader", new);
    s.fact("no_leader_ms", gap.as_secs_f64() * 1000.0);
    s.fact("committed_write_survived", survived);
    s.say(format!(
        "n{old} crashed at {}; n{new} was leading {} later ({} {}).",
        ms(crashed_at),
        ms(gap),
        s.era_word(),
        s.c.status(new).map_or(0, |st| st.era)
    ));
    s.say(format!(
        "The write x=1 committed before the crash {} on the new leader.",
        if survived { "is there" } else { "is MISSING" }
    ));
}

/// Where candidates can split the votes, finds from `seed` on a run whose first election
/// splits them; where votes converge, one run that shows it.
pub(super) fn split_vote(protocol: Protocol, base: SimConfig, label: String) -> Outcome {
    let title = "split-vote";
    let (candidate_role, timeout) = match protocol.words().split_votes {
        SplitVotes::Split {
            candidate_role,
            timeout,
        } => (candidate_role, timeout),
        SplitVotes::Converge(why) => {
            return votes_converge(protocol, base, label, why);
        }
    };
    // A narrow timeout range makes simultaneous timeouts common; search for one.
    let mut last = None;
    for seed in base.seed..base.seed + 400 {
        let mut cfg = SimConfig {
            seed,
            ..base.clone()
        };
        cfg.knobs.election_timeout = Some(timeout);
        let mut s = Script::new(protocol, cfg, &format!("{title}: {label}"));
        s.note(&format!(
            "Timeouts are drawn from a narrow range ({}-{} ms) so that two nodes may time out together.",
            timeout.0.as_millis(),
            timeout.1.as_millis()
        ));
        let leader = s.wait_leader(10 * SEC);
        let tr = s.c.trace_events().to_vec();
        // Terms in which someone stood as Candidate, and whether anyone won them.
        let mut candidates: BTreeMap<u64, BTreeSet<NodeId>> = BTreeMap::new();
        let mut won: BTreeSet<u64> = BTreeSet::new();
        for (_, node, role, era, _) in states(&tr, 0) {
            if role == candidate_role {
                candidates.entry(era).or_default().insert(node);
            }
            if role == "Leader" {
                won.insert(era);
            }
        }
        let split = candidates
            .iter()
            .find(|(era, who)| who.len() >= 2 && !won.contains(era))
            .map(|(era, who)| (*era, who.clone()));
        let found = split.is_some() && leader.is_some();
        s.fact("split", split.is_some());
        if let Some((era, who)) = &split {
            let win_era = leader.and_then(|l| s.c.status(l)).map_or(0, |st| st.era);
            s.fact("split_term", *era);
            s.fact("split_candidates", who.len());
            s.fact("resolved_term", win_era);
            s.fact("leader", leader.unwrap_or(0));
            s.say(format!(
                "In term {era}, {} stood at once and split the votes: nobody reached a majority.",
                who.iter()
                    .map(|n| format!("n{n}"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ));
            s.say(format!(
                "Each drew a new random timeout; n{} timed out first in term {win_era} and won.",
                leader.unwrap_or(0)
            ));
            s.say(format!(
                "Found searching seeds from {}: seed {seed}.",
                base.seed
            ));
        }
        let out = s.finish(title, label.clone(), seed);
        if found {
            return out;
        }
        last = Some(out);
    }
    last.expect("at least one seed ran")
}

/// One run of an election whose votes converge without a second round.
fn votes_converge(protocol: Protocol, base: SimConfig, label: String, why: &str) -> Outcome {
    let title = "split-vote";
    let mut s = Script::new(protocol, base.clone(), &format!("{title}: {label}"));
    s.note("Every server starts LOOKING and votes for itself: five different votes at once.");
    let leader = s.wait_leader(5 * SEC);
    let tr = s.c.trace_events().to_vec();
    let votes: BTreeSet<NodeId> = tr
        .iter()
        .filter_map(|e| match e {
            TraceEvent::State { vote: Some(v), .. } => Some(*v),
            _ => None,
        })
        .collect();
    let max_id = s.c.ids().max().unwrap_or(0);
    s.fact("initial_votes", votes.len());
    s.fact("leader", leader.unwrap_or(0));
    s.fact("leader_is_best_vote", leader == Some(max_id));
    s.fact("rounds", 1);
    s.say(format!(
        "The servers cast {} different votes, yet no second round was needed: {}.",
        votes.len(),
        fill(why, &[("leader", leader.unwrap_or(0).to_string())])
    ));
    s.finish(title, label, base.seed)
}

/// "A ×2, B ×2" in order of first appearance.
fn tally(names: &[String]) -> String {
    let mut order: Vec<(String, usize)> = Vec::new();
    for n in names {
        match order.iter_mut().find(|(m, _)| m == n) {
            Some((_, c)) => *c += 1,
            None => order.push((n.clone(), 1)),
        }
    }
    order
        .into_iter()
        .map(|(n, c)| if c > 1 { format!("{n} x{c}") } else { n })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn replication(s: &mut Script) {
    let Some(leader) = s.wait_leader(5 * SEC) else {
        return;
    };
    let ids: Vec<NodeId> = s.c.ids().collect();
    s.quietly("the followers join the leader; then heartbeats only", |s| {
        let deadline = s.now() + 3 * SEC;
        s.c.run_until(deadline, |c| {
            ids.iter().all(|&id| {
                c.status(id).is_some_and(|st| {
                    st.leader == Some(leader)
                        && st.last == c.status(leader).map_or(st.last, |l| l.last)
                })
            })
        });
        s.c.run_for(Duration::from_millis(200))
    });
    s.note(&format!("A client sends put x=1 to the leader n{leader}."));
    let start = s.now();
    let Some(pos) = s.put(leader, "x", "1") else {
        return;
    };
    let deadline = s.now() + SEC;
    let done = s.c.run_until(deadline, |c| {
        ids.iter()
            .all(|&id| c.status(id).is_some_and(|st| st.commit >= pos))
    });
    let end = s.now();
    s.c.run_for(Duration::from_millis(5));
    let tr = s.c.trace_events().to_vec();
    let (t0, t1) = (start.as_micros() as u64, end.as_micros() as u64);
    let p = [pos.era, pos.seq];
    let leader_commit = tr
        .iter()
        .find_map(|e| match e {
            TraceEvent::State {
                t, node, commit, ..
            } if *node == leader && *t >= t0 && *commit >= p => Some(*t),
            _ => None,
        })
        .unwrap_or(t1);
    let relevant = |from: u64, to: u64| -> Vec<String> {
        tr.iter()
            .filter_map(|e| match e {
                TraceEvent::Send { t, msg, fields, .. }
                    if *t >= from && *t <= to && (s.w.carries_write)(msg, fields, p) =>
                {
                    Some(msg.clone())
                }
                _ => None,
            })
            .collect()
    };
    let to_commit = relevant(t0, leader_commit.saturating_sub(1));
    let after: Vec<String> = relevant(leader_commit, t1)
        .into_iter()
        .filter(|m| s.w.commit_message.is_none_or(|only| m == only))
        .collect();
    s.fact("committed_everywhere", done);
    s.fact("position", format!("{pos}"));
    s.fact("messages_to_commit", to_commit.len());
    s.fact("messages_to_tell_followers", after.len());
    s.fact("message_types", [to_commit.clone(), after.clone()].concat());
    s.fact("applied_value", s.value(leader, "x").unwrap_or_default());
    s.fact("leader_commit_ms", (leader_commit - t0) as f64 / 1000.0);
    s.say(format!(
        "n{leader} logged x=1 at {pos}, sent it, and committed it once a majority (itself included) had it durably, {} after the request: {}. Then it applied it and answered the client.",
        us(leader_commit - t0),
        tally(&to_commit)
    ));
    s.say(format!(
        "The followers learned of the commit {} later through {}: {}.",
        ms(end - Duration::from_micros(leader_commit)),
        s.w.commit_notice,
        tally(&after)
    ));
}

pub(super) fn partition(s: &mut Script) {
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

pub(super) fn lagging_follower(s: &mut Script) {
    let Some(leader) = s.wait_leader(5 * SEC) else {
        return;
    };
    let lag = s.c.ids().find(|&i| i != leader).expect("a follower");
    for (phase, writes) in [("short", 40usize), ("long", 400)] {
        let Some(leader) = s.wait_leader(5 * SEC) else {
            return;
        };
        s.note(&format!(
            "n{lag} is cut off while the leader commits {writes} writes."
        ));
        s.c.disconnect(lag);
        let done = s.quietly(&format!("{writes} writes commit without n{lag}"), |s| {
            s.write_many(&format!("{phase}-"), writes)
        });
        s.fact(&format!("{phase}_writes"), done);
        if phase == "short" {
            s.note(&format!(
                "Meanwhile the leader n{leader} crashes and restarts: the next leader knows nothing of n{lag}'s log."
            ));
            s.c.crash(leader);
            s.wait_new_leader(leader, 5 * SEC);
            s.c.restart(leader);
        }
        s.c.run_for(Duration::from_millis(500));
        s.note(&format!("n{lag} is reconnected and catches up."));
        let from = s.c.now().as_micros() as u64;
        s.c.connect(lag);
        let caught = s.wait_converged(10 * SEC);
        let to = s.c.now().as_micros() as u64;
        let tr = s.c.trace_events().to_vec();
        let to_lag = |name: &str| {
            sends(&tr, from, to, name)
                .iter()
                .filter(|(_, r, _)| *r == lag)
                .count()
        };
        let cu = s.w.catch_up;
        let (mechanism, why) = cu
            .mechanisms
            .iter()
            .copied()
            .find(|(m, _)| to_lag(m) > 0)
            .unwrap_or(cu.otherwise);
        let rejections = tr
            .iter()
            .filter(|e| {
                matches!(e, TraceEvent::Send { t, from: f, msg, fields, .. }
                    if *t >= from && *t <= to && *f == lag && (cu.is_rejection)(msg, fields))
            })
            .count();
        s.fact(&format!("{phase}_caught_up"), caught);
        s.fact(&format!("{phase}_mechanism"), mechanism);
        s.fact(&format!("{phase}_rejections"), rejections);
        let why = if mechanism == cu.otherwise.0 && rejections > 0 {
            cu.after_rejections
        } else {
            why
        };
        let how = fill(
            why,
            &[
                ("lag", lag.to_string()),
                ("rejections", rejections.to_string()),
            ],
        );
        s.say(format!(
            "After missing {done} writes, n{lag} {}: {how}.",
            if caught {
                "caught up"
            } else {
                "did NOT catch up"
            }
        ));
    }
}

pub(super) fn disruptive_rejoin(s: &mut Script) {
    let Some(leader) = s.wait_leader(5 * SEC) else {
        return;
    };
    s.c.run_for(Duration::from_millis(200));
    let lone = s.c.ids().find(|&i| i != leader).expect("5 nodes");
    let era_before = s.c.status(leader).map_or(0, |st| st.era);
    s.note(&format!(
        "n{lone} is cut off from everyone for two seconds."
    ));
    s.c.disconnect(lone);
    s.quietly(&format!("n{lone} is alone"), |s| s.c.run_for(2 * SEC));
    let lone_era = s.c.status(lone).map_or(0, |st| st.era);
    let lone_role = s.c.status(lone).map(|st| st.role_name).unwrap_or("?");
    s.note(&format!("n{lone} rejoins."));
    let t0 = s.now();
    s.c.connect(lone);
    let deadline = s.now() + 10 * SEC;
    s.c.run_until(deadline, |c| {
        c.leader()
            .is_some_and(|l| c.status(lone).is_some_and(|st| st.leader == Some(l)))
    });
    let rejoin = s.now() - t0;
    s.c.run_for(SEC);
    let tr = s.c.trace_events().to_vec();
    let t0us = t0.as_micros() as u64;
    let leaders_after = new_leaders(&tr, t0us);
    let stepped_down = roles(&tr, t0us)
        .iter()
        .any(|(_, n, role, _)| *n == leader && role != "Leader");
    let now_leader = s.c.leader();
    let era_after = now_leader
        .and_then(|l| s.c.status(l))
        .map_or(0, |st| st.era);
    let disrupted = stepped_down || now_leader != Some(leader) || era_after != era_before;
    s.fact("leader_before", leader);
    s.fact("era_before", era_before);
    s.fact("isolated_era", lone_era);
    s.fact("leader_after", now_leader.unwrap_or(0));
    s.fact("era_after", era_after);
    s.fact("leader_disrupted", disrupted);
    s.fact("rejoin_ms", rejoin.as_secs_f64() * 1000.0);
    s.fact("new_elections_after_rejoin", leaders_after.len());
    s.fact(
        "rejoined_follows",
        s.c.status(lone).and_then(|st| st.leader) == now_leader && now_leader.is_some(),
    );
    let word = s.era_word();
    s.say(format!(
        "While alone, n{lone} was {lone_role} in {word} {lone_era} (the cluster was in {word} {era_before})."
    ));
    s.say(if disrupted {
        format!(
            "On rejoining it disrupted the cluster: n{leader} stepped down and n{} leads {word} {era_after}.",
            now_leader.unwrap_or(0)
        )
    } else {
        format!(
            "On rejoining it caused no election: n{leader} still leads {word} {era_before}, and n{lone} follows it ({} after it rejoined{}).",
            ms(rejoin),
            s.w.rejoin_aside
        )
    });
}

pub(super) fn even_cluster(s: &mut Script) {
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

pub(super) fn stale_proposal(s: &mut Script) {
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
