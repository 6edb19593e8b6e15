//! Turns a scenario's trace into one line per step: time, node, what it did and why.

use super::Outcome;
use crate::sim::TraceEvent;
use consensus_core::NodeId;
use std::collections::BTreeMap;

#[derive(Clone, Default)]
struct Seen {
    role: String,
    era: u64,
    leader: Option<NodeId>,
    vote: Option<NodeId>,
    commit: [u64; 2],
}

impl Seen {
    fn of(
        role: &str,
        era: u64,
        leader: Option<NodeId>,
        vote: Option<NodeId>,
        commit: [u64; 2],
    ) -> Seen {
        Seen {
            role: role.to_string(),
            era,
            leader,
            vote,
            commit,
        }
    }
}

fn line(t: u64, who: &str, text: &str) -> (u64, String) {
    (t, format!("{:>9.1} ms  {who:<4} {text}", t as f64 / 1000.0))
}

/// The story of a run, one line per step.
pub fn narrate(o: &Outcome) -> Vec<String> {
    narrate_events(o.protocol.words(), &o.trace, &quiet_of(&o.trace))
        .into_iter()
        .map(|(_, l)| l)
        .collect()
}

/// The quiet stretches a trace records (its `quiet` events).
pub fn quiet_of(events: &[TraceEvent]) -> Vec<(u64, u64, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Quiet { t, from, text } => Some((*from, *t, text.clone())),
            _ => None,
        })
        .collect()
}

/// The story of a trace, one (time in µs, line) per step; the routine steps inside `quiet`
/// stretches are summed up by the stretch's line.
pub fn narrate_events(
    words: &crate::protocol::Words,
    events: &[TraceEvent],
    quiet: &[(u64, u64, String)],
) -> Vec<(u64, String)> {
    let (era_word, interesting, brief) = (words.era, words.interesting, words.brief);
    let mut out: Vec<(u64, String)> = Vec::new();
    let mut seen: BTreeMap<NodeId, Seen> = BTreeMap::new();
    let mut quiet_told = vec![false; quiet.len()];
    let mut i = 0;
    while i < events.len() {
        let e = &events[i];
        i += 1;
        let t = e.time();
        if matches!(e, TraceEvent::Detail { .. } | TraceEvent::Quiet { .. }) {
            continue;
        }
        let always = matches!(
            e,
            TraceEvent::Note { .. }
                | TraceEvent::Crash { .. }
                | TraceEvent::Restart { .. }
                | TraceEvent::Partition { .. }
                | TraceEvent::Heal { .. }
                | TraceEvent::Disconnect { .. }
                | TraceEvent::Connect { .. }
        );
        if !always {
            if let Some(k) = quiet.iter().position(|(a, b, _)| t > *a && t < *b) {
                if let TraceEvent::State {
                    node,
                    role_name,
                    era,
                    leader,
                    vote,
                    commit,
                    ..
                } = e
                {
                    // Keep the bookkeeping, without the lines.
                    seen.insert(*node, Seen::of(role_name, *era, *leader, *vote, *commit));
                }
                if !quiet_told[k] {
                    quiet_told[k] = true;
                    out.push(line(t, "", &format!("... {}", quiet[k].2)));
                }
                continue;
            }
        }
        match e {
            TraceEvent::Meta { .. }
            | TraceEvent::Recv { .. }
            | TraceEvent::Drop { .. }
            | TraceEvent::Timer { .. }
            | TraceEvent::Detail { .. }
            | TraceEvent::Quiet { .. } => {}
            TraceEvent::Note { text, .. } => out.push(line(t, "", &format!("-- {text}"))),
            TraceEvent::Crash { node, .. } => out.push(line(t, &format!("n{node}"), "CRASHES")),
            TraceEvent::Restart { node, .. } => {
                seen.remove(node);
                out.push(line(t, &format!("n{node}"), "restarts from its disk"))
            }
            TraceEvent::Partition { groups, .. } => {
                let g: Vec<String> = groups
                    .iter()
                    .map(|g| {
                        g.iter()
                            .map(|n| format!("n{n}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect();
                out.push(line(t, "net", &format!("partition: {}", g.join(" | "))))
            }
            TraceEvent::Heal { .. } => out.push(line(t, "net", "every link works again")),
            TraceEvent::Disconnect { node, .. } => {
                out.push(line(t, "net", &format!("n{node} is cut off")))
            }
            TraceEvent::Connect { node, .. } => {
                out.push(line(t, "net", &format!("n{node} is reconnected")))
            }
            TraceEvent::Client {
                node, op, result, ..
            } => out.push(line(
                t,
                &format!("n{node}"),
                &format!("client {op}: {result}"),
            )),
            TraceEvent::Append { node, entries, .. } => {
                let (a, b) = (entries[0], entries[entries.len() - 1]);
                let what = if entries.len() == 1 {
                    format!("logs ({}, {})", a[0], a[1])
                } else {
                    format!(
                        "logs {} entries ({}, {})..({}, {})",
                        entries.len(),
                        a[0],
                        a[1],
                        b[0],
                        b[1]
                    )
                };
                out.push(line(t, &format!("n{node}"), &what))
            }
            TraceEvent::Truncate { node, after, .. } => out.push(line(
                t,
                &format!("n{node}"),
                &format!("drops its log entries after ({}, {})", after[0], after[1]),
            )),
            TraceEvent::Snapshot { node, last, .. } => out.push(line(
                t,
                &format!("n{node}"),
                &format!("stores a snapshot through ({}, {})", last[0], last[1]),
            )),
            TraceEvent::State {
                node,
                role_name,
                era,
                leader,
                vote,
                commit,
                cause,
                ..
            } => {
                let who = format!("n{node}");
                let prev = seen.get(node).cloned();
                let why = format!(" ({cause})");
                match &prev {
                    None => out.push(line(
                        t,
                        &who,
                        &format!("{role_name}, {era_word} {era}{why}"),
                    )),
                    Some(s) => {
                        if s.role != *role_name {
                            out.push(line(
                                t,
                                &who,
                                &format!("{} -> {role_name}, {era_word} {era}{why}", s.role),
                            ));
                        } else if s.era != *era {
                            out.push(line(
                                t,
                                &who,
                                &format!("{era_word} {} -> {era}{why}", s.era),
                            ));
                        }
                        if s.leader != *leader {
                            if let Some(l) = leader {
                                if l != node {
                                    out.push(line(t, &who, &format!("follows n{l}")));
                                }
                            }
                        }
                        if s.vote != *vote && s.role == *role_name {
                            if let Some(v) = vote {
                                out.push(line(
                                    t,
                                    &who,
                                    &format!("votes for n{v} ({era_word} {era}){why}"),
                                ));
                            }
                        }
                        if s.commit != *commit && commit[1] > 0 {
                            out.push(line(
                                t,
                                &who,
                                &format!("commits through ({}, {})", commit[0], commit[1]),
                            ));
                        }
                    }
                }
                seen.insert(*node, Seen::of(role_name, *era, *leader, *vote, *commit));
            }
            TraceEvent::Send {
                from, msg, fields, ..
            } => {
                if !interesting(msg, fields) {
                    continue;
                }
                // One line for the same message sent to several peers at once.
                let mut to = Vec::new();
                let mut j = i - 1;
                while j < events.len() {
                    match &events[j] {
                        TraceEvent::Send {
                            t: t2,
                            from: f2,
                            to: r,
                            msg: m2,
                            fields: fl2,
                            ..
                        } if *t2 == t
                            && f2 == from
                            && m2 == msg
                            && brief(m2, fl2) == brief(msg, fields) =>
                        {
                            to.push(format!("n{r}"));
                            j += 1;
                        }
                        TraceEvent::Drop { t: t2, .. } if *t2 == t => j += 1,
                        _ => break,
                    }
                }
                i = j;
                let b = brief(msg, fields);
                out.push(line(
                    t,
                    &format!("n{from}"),
                    &format!(
                        "-> {}: {msg}{}",
                        to.join(", "),
                        if b.is_empty() {
                            String::new()
                        } else {
                            format!(" [{b}]")
                        }
                    ),
                ));
            }
        }
    }
    out
}
