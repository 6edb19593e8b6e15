//! A record of a simulated run, event by event, for narration and for the HTML viewer.
//!
//! Written as JSON Lines: one [`TraceEvent`] per line, tagged by `kind`. Times `t` are virtual
//! microseconds since the run started. Positions are `[era, seq]` pairs.

use consensus_core::{MessageName, NodeId, Position, Status};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use twox_hash::XxHash3_64;

/// One thing that happened in a traced run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceEvent {
    /// The first line: what ran.
    Meta {
        /// The protocol's registered name.
        protocol: String,
        /// What the protocol calls an era ("term", "epoch"); empty in older traces.
        #[serde(default)]
        era: String,
        /// Number of nodes, numbered from 1.
        nodes: u64,
        /// The run's seed.
        seed: u64,
        /// What the run shows (a scenario's name, say).
        title: String,
    },
    /// A node handed a message to the network.
    Send {
        /// Virtual time, µs.
        t: u64,
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// Pairs the send with its `recv` or `drop`.
        id: u64,
        /// The message type (for ZAB quorum packets, the packet types).
        msg: String,
        /// The message's fields, with bulky ones (entries, data) summarized.
        fields: Value,
        /// Encoded size.
        bytes: u64,
    },
    /// A message reached its receiver, which handled it.
    Recv {
        /// Virtual time, µs.
        t: u64,
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// The send's id.
        id: u64,
        /// The message type.
        msg: String,
    },
    /// A message was lost.
    Drop {
        /// Virtual time, µs.
        t: u64,
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// The send's id.
        id: u64,
        /// The message type.
        msg: String,
        /// Why: partition, crashed receiver, loss.
        why: String,
    },
    /// A node's role, era, leader, vote, commit point or log end changed.
    State {
        /// Virtual time, µs.
        t: u64,
        /// The node.
        node: NodeId,
        /// Leader, Follower or Candidate.
        role: String,
        /// The protocol's name for the role.
        role_name: String,
        /// Raft term or ZAB epoch.
        era: u64,
        /// The leader it believes in.
        leader: Option<NodeId>,
        /// Whom its vote goes to.
        vote: Option<NodeId>,
        /// Last committed position.
        commit: [u64; 2],
        /// Last log position.
        last: [u64; 2],
        /// When the node's next timer fires, µs (election or heartbeat timeout).
        timer: u64,
        /// The input that caused the change.
        cause: String,
    },
    /// A node's next timer (election timeout, or a leader's heartbeat) moved.
    Timer {
        /// Virtual time, µs.
        t: u64,
        /// The node.
        node: NodeId,
        /// When the timer fires, µs.
        at: u64,
    },
    /// Entries went to a node's log (handed to its disk).
    Append {
        /// Virtual time, µs.
        t: u64,
        /// The node.
        node: NodeId,
        /// Positions of the entries.
        entries: Vec<[u64; 2]>,
    },
    /// A node dropped every log entry after a position.
    Truncate {
        /// Virtual time, µs.
        t: u64,
        /// The node.
        node: NodeId,
        /// Entries after this position are gone.
        after: [u64; 2],
    },
    /// A node stored a snapshot and dropped the log up to it.
    Snapshot {
        /// Virtual time, µs.
        t: u64,
        /// The node.
        node: NodeId,
        /// The snapshot's last position.
        last: [u64; 2],
    },
    /// A node crashed.
    Crash {
        /// Virtual time, µs.
        t: u64,
        /// The node.
        node: NodeId,
    },
    /// A node restarted from its disk.
    Restart {
        /// Virtual time, µs.
        t: u64,
        /// The node.
        node: NodeId,
    },
    /// The network was split into groups (a node in no group is isolated).
    Partition {
        /// Virtual time, µs.
        t: u64,
        /// The groups.
        groups: Vec<Vec<NodeId>>,
    },
    /// Every link to and from a node was cut.
    Disconnect {
        /// Virtual time, µs.
        t: u64,
        /// The node.
        node: NodeId,
    },
    /// Every link to and from a node works again.
    Connect {
        /// Virtual time, µs.
        t: u64,
        /// The node.
        node: NodeId,
    },
    /// Every link works again.
    Heal {
        /// Virtual time, µs.
        t: u64,
    },
    /// A client operation at a node.
    Client {
        /// Virtual time, µs.
        t: u64,
        /// The node it went to.
        node: NodeId,
        /// What the client asked, e.g. "put x=1".
        op: String,
        /// What happened: "proposed at [e, s]", "refused: not the leader", "applied".
        result: String,
    },
    /// A line of narration from a scenario script.
    Note {
        /// Virtual time, µs.
        t: u64,
        /// The text.
        text: String,
    },
    /// A node's protocol-specific state changed ([`consensus_core::Replica::inspect`]).
    Detail {
        /// Virtual time, µs.
        t: u64,
        /// The node.
        node: NodeId,
        /// (name, value) pairs, named as in the paper or ZooKeeper.
        fields: Vec<(String, String)>,
    },
    /// A stretch of a scenario its narration sums up in one line (recorded at its end).
    Quiet {
        /// Virtual time the stretch ended, µs.
        t: u64,
        /// When it began, µs.
        from: u64,
        /// The line that stands for it.
        text: String,
    },
}

impl TraceEvent {
    /// The event's virtual time in µs (0 for `meta`).
    pub fn time(&self) -> u64 {
        match self {
            TraceEvent::Meta { .. } => 0,
            TraceEvent::Send { t, .. }
            | TraceEvent::Recv { t, .. }
            | TraceEvent::Drop { t, .. }
            | TraceEvent::State { t, .. }
            | TraceEvent::Timer { t, .. }
            | TraceEvent::Append { t, .. }
            | TraceEvent::Truncate { t, .. }
            | TraceEvent::Snapshot { t, .. }
            | TraceEvent::Crash { t, .. }
            | TraceEvent::Restart { t, .. }
            | TraceEvent::Partition { t, .. }
            | TraceEvent::Disconnect { t, .. }
            | TraceEvent::Connect { t, .. }
            | TraceEvent::Heal { t }
            | TraceEvent::Client { t, .. }
            | TraceEvent::Note { t, .. }
            | TraceEvent::Detail { t, .. }
            | TraceEvent::Quiet { t, .. } => *t,
        }
    }
}

/// A position as `[era, seq]`.
pub fn pos(p: Position) -> [u64; 2] {
    [p.era, p.seq]
}

/// The running fingerprint of a run: every event and every encoded message folds into it.
///
/// Each piece is hashed with XXH3 (a specified algorithm, where std's `DefaultHasher` may
/// change in any Rust release) and folded into the state by hashing the 8-byte result with
/// the state as the seed: whole messages go through XXH3's one-shot path, with no buffering,
/// which is what makes it cheap.
#[derive(Clone, Debug, Default)]
pub struct TraceHash(u64);

impl TraceHash {
    fn fold(&mut self, v: u64) {
        self.0 = XxHash3_64::oneshot_with_seed(self.0, &v.to_le_bytes());
    }
}

impl std::hash::Hasher for TraceHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.fold(XxHash3_64::oneshot(bytes));
    }

    fn write_u8(&mut self, v: u8) {
        self.fold(u64::from(v));
    }

    fn write_u16(&mut self, v: u16) {
        self.fold(u64::from(v));
    }

    fn write_u32(&mut self, v: u32) {
        self.fold(u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        self.fold(v);
    }

    fn write_usize(&mut self, v: usize) {
        self.fold(v as u64);
    }
}

/// The recorder a simulator carries while tracing.
#[derive(Debug, Default)]
pub struct Tracer {
    /// Everything recorded so far.
    pub events: Vec<TraceEvent>,
    next_id: u64,
    /// What the simulator is handling right now, for `State::cause`.
    pub cause: String,
    last: Vec<Option<Status>>,
    timers: Vec<u64>,
    details: Vec<Vec<(String, String)>>,
}

impl Tracer {
    /// A tracer for `nodes` nodes.
    pub fn new(nodes: usize) -> Tracer {
        Tracer {
            events: Vec::new(),
            next_id: 0,
            cause: "start".into(),
            last: vec![None; nodes + 1],
            timers: vec![0; nodes + 1],
            details: vec![Vec::new(); nodes + 1],
        }
    }

    /// A fresh id for a sent message.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Records the node's status if it differs from the last one recorded, and its timer if
    /// that moved.
    pub fn status(&mut self, t: u64, s: &Status, timer: u64) {
        if self.timers[s.id as usize] != timer {
            self.timers[s.id as usize] = timer;
            self.events.push(TraceEvent::Timer {
                t,
                node: s.id,
                at: timer,
            });
        }
        let slot = &mut self.last[s.id as usize];
        if slot.as_ref() == Some(s) {
            return;
        }
        *slot = Some(s.clone());
        self.events.push(TraceEvent::State {
            t,
            node: s.id,
            role: format!("{:?}", s.role),
            role_name: s.role_name.to_string(),
            era: s.era,
            leader: s.leader,
            vote: s.vote,
            commit: pos(s.commit),
            last: pos(s.last),
            timer,
            cause: self.cause.clone(),
        });
    }

    /// Records the node's protocol-specific state if it changed.
    pub fn detail(&mut self, t: u64, node: NodeId, fields: Vec<(String, String)>) {
        let slot = &mut self.details[node as usize];
        if *slot == fields {
            return;
        }
        *slot = fields.clone();
        self.events.push(TraceEvent::Detail { t, node, fields });
    }

    /// Forgets a crashed node's last status, so its restart is recorded in full.
    pub fn forget(&mut self, node: NodeId) {
        self.last[node as usize] = None;
        self.timers[node as usize] = 0;
        self.details[node as usize].clear();
    }
}

/// A message's name (from its protocol) and its fields with bulky parts summarized, from its
/// serde form (`{"Variant": {fields}}`); a message that wraps one `packet` or several
/// `packets` shows their fields.
pub fn describe<M: Serialize + MessageName>(msg: &M) -> (String, Value) {
    let v = serde_json::to_value(msg).unwrap_or(Value::Null);
    let (_, fields) = variant(v);
    let fields = match fields {
        Value::Object(mut o) if o.contains_key("packet") => variant(o["packet"].take()).1,
        Value::Object(mut o) if o.contains_key("packets") => Value::Array(
            o["packets"]
                .take()
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|p| summarize(variant(p).1))
                .collect(),
        ),
        other => other,
    };
    (msg.name().into_owned(), summarize(fields))
}

fn variant(v: Value) -> (String, Value) {
    match v {
        Value::String(s) => (s, Value::Null),
        Value::Object(o) if o.len() == 1 => {
            let (k, v) = o.into_iter().next().expect("one key");
            (k, v)
        }
        other => ("message".into(), other),
    }
}

/// Replaces entry lists by their positions and byte arrays by their lengths.
fn summarize(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "entries" => Value::Array(
                            v.as_array()
                                .map(|es| {
                                    es.iter()
                                        .map(|e| {
                                            serde_json::json!([
                                                e["pos"]["era"].clone(),
                                                e["pos"]["seq"].clone()
                                            ])
                                        })
                                        .collect()
                                })
                                .unwrap_or_default(),
                        ),
                        "data" | "payload" => match &v {
                            Value::Array(a) => serde_json::json!({ "bytes": a.len() }),
                            Value::Object(inner) if inner.contains_key("Command") => {
                                let n = inner["Command"].as_array().map_or(0, |a| a.len());
                                serde_json::json!({ "command_bytes": n })
                            }
                            other => summarize(other.clone()),
                        },
                        _ => summarize(v),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(a) if a.len() > 16 && a.iter().all(Value::is_number) => {
            serde_json::json!({ "bytes": a.len() })
        }
        Value::Array(a) => Value::Array(a.into_iter().map(summarize).collect()),
        other => other,
    }
}

/// Writes events as JSON Lines.
pub fn write_jsonl(events: &[TraceEvent], mut out: impl std::io::Write) -> std::io::Result<()> {
    for e in events {
        serde_json::to_writer(&mut out, e)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Reads JSON Lines written by [`write_jsonl`]; a bad line is an error naming its number.
pub fn read_jsonl(text: &str) -> Result<Vec<TraceEvent>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("line {}: not a trace event: {e}", i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::TraceHash;
    use std::hash::{Hash, Hasher};

    fn fingerprint(pieces: &[(u64, u8, &[u8])]) -> u64 {
        let mut h = TraceHash::default();
        for (t, kind, msg) in pieces {
            (t, kind).hash(&mut h);
            msg.hash(&mut h);
        }
        h.finish()
    }

    #[test]
    fn the_fingerprint_is_pinned_and_sees_order_and_every_byte() {
        let run: &[(u64, u8, &[u8])] = &[(1_000, 1, b"append"), (2_000, 3, b"ack")];
        // XXH3 is specified: the same pieces give this value on every build. A change here
        // changes every trace hash, which the docs and the sessions' notes record.
        assert_eq!(fingerprint(run), PINNED);
        let swapped: &[(u64, u8, &[u8])] = &[(2_000, 3, b"ack"), (1_000, 1, b"append")];
        assert_ne!(fingerprint(swapped), PINNED, "the order of events counts");
        let flipped: &[(u64, u8, &[u8])] = &[(1_000, 1, b"appene"), (2_000, 3, b"ack")];
        assert_ne!(
            fingerprint(flipped),
            PINNED,
            "one byte of one message counts"
        );
    }

    const PINNED: u64 = 18_119_016_011_886_790_571;
}
