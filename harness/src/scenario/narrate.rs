//! Turns a scenario's trace into one line per step: time, node, what it did and why.

use super::Outcome;
use crate::sim::TraceEvent;
use consensus_core::NodeId;
use serde_json::Value;
use std::collections::BTreeMap;

/// Message types worth a line: elections, log repair, synchronization. Heartbeats and pings
/// are left out, as are successful append acknowledgements outside a traced write.
fn interesting(msg: &str, fields: &Value) -> bool {
    match msg {
        "AppendEntries" => fields["entries"].as_array().is_some_and(|e| !e.is_empty()),
        "AppendEntriesResponse" => fields["success"] == false,
        "PING" | "Notification" => false,
        _ => true,
    }
}

fn zxid(v: &Value) -> String {
    v.as_u64()
        .map(|z| format!("({}, {})", z >> 32, z & 0xffff_ffff))
        .unwrap_or_default()
}

/// The few fields of a message that matter to a reader.
fn brief(msg: &str, f: &Value) -> String {
    let term = f["term"].as_u64().map(|t| format!("term {t}"));
    let parts: Vec<String> = match msg {
        "PreVote" | "RequestVote" => vec![
            term.unwrap_or_default(),
            format!(
                "last log ({}, {})",
                f["last_log_term"].as_u64().unwrap_or(0),
                f["last_log_index"].as_u64().unwrap_or(0)
            ),
        ],
        "PreVoteResponse" | "RequestVoteResponse" => vec![
            term.unwrap_or_default(),
            if f["vote_granted"] == true {
                "granted".into()
            } else {
                "refused".into()
            },
        ],
        "AppendEntries" => {
            let n = f["entries"].as_array().map_or(0, Vec::len);
            vec![
                term.unwrap_or_default(),
                format!(
                    "after ({}, {})",
                    f["prev_log_term"].as_u64().unwrap_or(0),
                    f["prev_log_index"].as_u64().unwrap_or(0)
                ),
                format!("{n} entries"),
                format!("commit {}", f["leader_commit"].as_u64().unwrap_or(0)),
            ]
        }
        "AppendEntriesResponse" => vec![
            term.unwrap_or_default(),
            if f["success"] == true {
                format!("ok, match {}", f["match_index"])
            } else {
                format!("rejected, hint index {}", f["conflict_index"])
            },
        ],
        "InstallSnapshot" => vec![
            term.unwrap_or_default(),
            format!(
                "through ({}, {})",
                f["last_included_term"], f["last_included_index"]
            ),
        ],
        _ => {
            let mut v = Vec::new();
            if let Some(e) = f.get("new_epoch").and_then(Value::as_u64) {
                v.push(format!("epoch {e}"));
            }
            if let Some(e) = f.get("accepted_epoch").and_then(Value::as_u64) {
                v.push(format!("acceptedEpoch {e}"));
            }
            if let Some(z) = f.get("zxid") {
                v.push(format!("zxid {}", zxid(z)));
            }
            if let Some(z) = f.get("last_zxid") {
                v.push(format!("last zxid {}", zxid(z)));
            }
            if let Value::Array(items) = f {
                // A frame of several packets: their zxids.
                let zs: Vec<String> = items
                    .iter()
                    .filter_map(|i| i.get("zxid").map(zxid))
                    .collect();
                if !zs.is_empty() {
                    v.push(zs.join(" "));
                }
            }
            v
        }
    };
    parts
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

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

fn line(t: u64, who: &str, text: &str) -> String {
    format!("{:>9.1} ms  {who:<4} {text}", t as f64 / 1000.0)
}

/// The story of a run, one line per step.
pub fn narrate(o: &Outcome) -> Vec<String> {
    let era_word = o.protocol.words().era;
    let mut out = Vec::new();
    let mut seen: BTreeMap<NodeId, Seen> = BTreeMap::new();
    let mut quiet_told = vec![false; o.quiet.len()];
    let events = &o.trace;
    let mut i = 0;
    while i < events.len() {
        let e = &events[i];
        i += 1;
        let t = e.time();
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
            if let Some(k) = o.quiet.iter().position(|(a, b, _)| t > *a && t <= *b) {
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
                    out.push(line(t, "", &format!("... {}", o.quiet[k].2)));
                }
                continue;
            }
        }
        match e {
            TraceEvent::Meta { .. }
            | TraceEvent::Recv { .. }
            | TraceEvent::Drop { .. }
            | TraceEvent::Timer { .. } => {}
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
