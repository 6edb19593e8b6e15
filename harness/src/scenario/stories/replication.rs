//! One client write, message by message, from proposal to commit on every node.

use super::{us, SEC};
use crate::scenario::ms;
use crate::scenario::Script;
use crate::sim::TraceEvent;
use consensus_core::NodeId;
use std::time::Duration;

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

pub(crate) fn replication(s: &mut Script) {
    let Some(leader) = s.wait_leader(5 * SEC) else {
        return;
    };
    let ids: Vec<NodeId> = s.c.ids().collect();
    s.quietly("the followers join the leader; then heartbeats only", |s| {
        s.c.run_until(3 * SEC, |c| {
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
    let done = s.c.run_until(SEC, |c| {
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
    let applied_value = s.value(leader, "x").unwrap_or_default();
    s.fact("applied_value", applied_value);
    s.fact("leader_commit_ms", (leader_commit - t0) as f64 / 1000.0);
    let told = end - Duration::from_micros(leader_commit);
    s.fact("followers_told_ms", told.as_secs_f64() * 1000.0);
    s.say(format!(
        "n{leader} logged x=1 at {pos}, sent it, and committed it once a majority (itself included) had it durably, {} after the request: {}. Then it applied it and answered the client.",
        us(leader_commit - t0),
        tally(&to_commit)
    ));
    s.say(format!(
        "The followers learned of the commit {} later through {}: {}.",
        ms(told),
        s.w.commit_notice,
        tally(&after)
    ));
}
