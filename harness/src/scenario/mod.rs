//! The classic consensus stories as scripted, replayable runs of the simulator.
//!
//! Each scenario builds a cluster, drives it through a story (crash the leader, split the
//! network, write on both sides, ...), records a trace of everything that happened, and returns
//! an [`Outcome`]: named facts a test can assert, sentences that state the result, and the
//! trace, from which [`narrate`] tells the story one line per step.

mod narrate;
mod stories;

pub use narrate::{narrate, narrate_events, quiet_of};

/// A run told for people: a heading, the narration one line per step, and the outcome.
pub fn render(o: &Outcome) -> String {
    let mut s = format!("== {} · {} (seed {}) ==\n", o.scenario, o.label, o.seed);
    for l in narrate(o) {
        s += &l;
        s.push('\n');
    }
    s += "Outcome:\n";
    for v in &o.verdict {
        s += &format!("  {v}\n");
    }
    s
}

use crate::cluster::Cluster;
use crate::protocol::{Knobs, Protocol, Words};
use crate::sim::{SimConfig, TraceEvent};
use consensus_core::kv::{KvCommand, KvOp, KvOutput};
use consensus_core::{codec, NodeId, Position, Role};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// A scenario's name and what it shows.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioInfo {
    /// The name on the command line.
    pub name: &'static str,
    /// One line: what happens.
    pub summary: &'static str,
}

/// Every scenario, in teaching order.
pub const SCENARIOS: [ScenarioInfo; 16] = [
    ScenarioInfo {
        name: "election",
        summary: "all nodes start without a leader; one times out first and wins; heartbeats keep it",
    },
    ScenarioInfo {
        name: "leader-crash",
        summary: "the leader dies; a new one is elected; how long the cluster had no leader",
    },
    ScenarioInfo {
        name: "leader-transfer",
        summary: "an operator moves the leader: Raft hands over with TimeoutNow; ZAB has no transfer, so the leader is stopped",
    },
    ScenarioInfo {
        name: "split-vote",
        summary: "two candidates at once split the votes; the next round resolves it (ZAB: votes converge)",
    },
    ScenarioInfo {
        name: "replication",
        summary: "one client write: logged, sent to a majority, committed, applied, answered",
    },
    ScenarioInfo {
        name: "partition",
        summary: "5 nodes split {old leader, one} | {three}; a write on each side; only the majority commits",
    },
    ScenarioInfo {
        name: "lagging-follower",
        summary: "a follower misses commits and catches up: by log repair or by snapshot (ZAB: DIFF or SNAP)",
    },
    ScenarioInfo {
        name: "disruptive-rejoin",
        summary: "an isolated node rejoins: Raft without pre-vote disrupts the leader, with pre-vote it does not",
    },
    ScenarioInfo {
        name: "even-cluster",
        summary: "four nodes need three for a majority; a 2 | 2 split has no leader",
    },
    ScenarioInfo {
        name: "stale-proposal",
        summary: "an old leader's lone uncommitted proposal is rolled back by the new era",
    },
    ScenarioInfo {
        name: "stale-read",
        summary: "a follower that missed a write: a local read answers stale, a read at a read index waits",
    },
    ScenarioInfo {
        name: "lease-drift",
        summary: "clocks 2x apart: a cut-off leader answers a lease read with an overwritten value",
    },
    ScenarioInfo {
        name: "replace-node",
        summary: "a follower dies for good; an empty node joins as a learner, catches up, is promoted; the dead one is removed",
    },
    ScenarioInfo {
        name: "remove-leader",
        summary: "the leader removes itself: Raft hands over at once; ZAB steps down and the rest elect",
    },
    ScenarioInfo {
        name: "grow-3-to-5",
        summary: "two learners catch up and are promoted together: Raft through a joint configuration, ZAB in one reconfig",
    },
    ScenarioInfo {
        name: "single-server-bug",
        summary: "two leaders' single-server changes miss each other: without the 2015 fix Raft loses a write; ZAB commits neither",
    },
];

/// What a scenario run found.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The scenario.
    pub scenario: String,
    /// The protocol, with its variant when a scenario runs more than one ("raft, no pre-vote").
    pub label: String,
    /// The protocol.
    pub protocol: Protocol,
    /// The seed the run used.
    pub seed: u64,
    /// Named results, for tests and `--json`.
    pub facts: BTreeMap<String, Value>,
    /// The result in sentences.
    pub verdict: Vec<String>,
    /// Everything that happened, with the stretches the narration sums up (`quiet` events).
    #[serde(skip)]
    pub trace: Vec<TraceEvent>,
}

impl Outcome {
    /// A fact as a bool (false when missing).
    pub fn flag(&self, name: &str) -> bool {
        self.facts
            .get(name)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// A fact as a number.
    pub fn num(&self, name: &str) -> Option<f64> {
        self.facts.get(name).and_then(Value::as_f64)
    }
}

/// A scenario being played: the cluster plus what the script has found so far.
pub(crate) struct Script {
    pub c: Cluster,
    pub facts: BTreeMap<String, Value>,
    pub verdict: Vec<String>,
    pub quiet: Vec<(u64, u64, String)>,
    next_client: u64,
    /// The protocol's words (the story differs in places).
    pub w: &'static Words,
}

/// Virtual milliseconds of a time, for people.
pub(crate) fn ms(t: Duration) -> String {
    format!("{:.1} ms", t.as_secs_f64() * 1000.0)
}

impl Script {
    fn new(protocol: Protocol, cfg: SimConfig, title: &str) -> Script {
        let mut c = Cluster::new(protocol, cfg);
        c.enable_trace(title);
        Script {
            c,
            facts: BTreeMap::new(),
            verdict: Vec::new(),
            quiet: Vec::new(),
            next_client: 1,
            w: protocol.words(),
        }
    }

    pub fn fact(&mut self, name: &str, v: impl Into<Value>) {
        self.facts.insert(name.to_string(), v.into());
    }

    pub fn say(&mut self, line: String) {
        self.verdict.push(line);
    }

    pub fn note(&mut self, text: &str) {
        self.c.note(text);
    }

    /// What the protocol calls an era ("term", "epoch").
    pub fn era_word(&self) -> &'static str {
        self.w.era
    }

    pub fn now(&self) -> Duration {
        self.c.now()
    }

    fn now_us(&self) -> u64 {
        self.c.now().as_micros() as u64
    }

    /// Runs `f` and marks its time as quiet for the narration.
    pub fn quietly<T>(&mut self, summary: &str, f: impl FnOnce(&mut Script) -> T) -> T {
        let start = self.now_us();
        let out = f(self);
        let end = self.now_us();
        self.quiet.push((start, end, summary.to_string()));
        out
    }

    /// Runs until some node leads (established: it takes proposals), up to `limit`.
    pub fn wait_leader(&mut self, limit: Duration) -> Option<NodeId> {
        let ok = self.c.run_until(limit, |c| c.leader().is_some());
        if ok {
            self.c.leader()
        } else {
            None
        }
    }

    /// Runs until a leader other than `old` leads.
    pub fn wait_new_leader(&mut self, old: NodeId, limit: Duration) -> Option<NodeId> {
        let ok = self
            .c
            .run_until(limit, |c| c.leader().is_some_and(|l| l != old));
        if ok {
            self.c.leader()
        } else {
            None
        }
    }

    /// Proposes `put key=value` at `node`.
    pub fn put(&mut self, node: NodeId, key: &str, value: &str) -> Option<Position> {
        let client = self.next_client;
        self.next_client += 1;
        let cmd = KvCommand {
            client,
            seq: 1,
            op: KvOp::Put {
                key: key.into(),
                value: value.into(),
            },
        }
        .encode();
        self.c.propose(node, cmd).ok()
    }

    /// Runs until `node` has committed `pos` (and applied it), up to `limit`.
    pub fn wait_committed(&mut self, node: NodeId, pos: Position, limit: Duration) -> bool {
        self.c
            .run_until(limit, |c| c.status(node).is_some_and(|s| s.commit >= pos))
    }

    /// Writes `n` values through the leader, waiting for each batch to commit.
    pub fn write_many(&mut self, prefix: &str, n: usize) -> usize {
        let mut done = 0;
        let mut i = 0;
        while done < n && i < n * 4 {
            i += 1;
            let Some(leader) = self.wait_leader(Duration::from_secs(5)) else {
                break;
            };
            let batch = (n - done).min(20);
            let mut last = None;
            for k in 0..batch {
                last = self
                    .put(leader, &format!("{prefix}{}", done + k), "v")
                    .or(last);
            }
            match last {
                Some(p) if self.wait_committed(leader, p, Duration::from_secs(2)) => done += batch,
                _ => {}
            }
        }
        done
    }

    /// True when every live node has the same last and commit positions.
    pub fn converged(&self) -> bool {
        let st: Vec<_> = self
            .c
            .ids()
            .filter(|&id| !self.c.is_crashed(id))
            .filter_map(|id| self.c.status(id))
            .collect();
        st.windows(2)
            .all(|w| w[0].commit == w[1].commit && w[0].last == w[1].last)
    }

    /// Runs until the live nodes agree on their logs, up to `limit`.
    pub fn wait_converged(&mut self, limit: Duration) -> bool {
        let deadline = self.c.now() + limit;
        loop {
            if self.converged() && self.c.leader().is_some() {
                // Let the last writes reach the disks and the state machines.
                self.c.run_for(Duration::from_millis(50));
                return true;
            }
            if self.c.now() >= deadline {
                return false;
            }
            self.c.run_for(Duration::from_millis(10));
        }
    }

    pub fn role(&self, id: NodeId) -> Option<Role> {
        self.c.status(id).map(|s| s.role)
    }

    /// The value `key` has in node `id`'s state machine.
    pub fn value(&mut self, id: NodeId, key: &str) -> Option<String> {
        let get = KvCommand {
            client: 0,
            seq: 0,
            op: KvOp::Get { key: key.into() },
        };
        match codec::decode(&self.c.query(id, &get.encode())) {
            Ok(KvOutput::Value(v)) => v,
            _ => None,
        }
    }

    fn finish(self, scenario: &str, label: String, seed: u64) -> Outcome {
        let protocol = self.c.protocol();
        let mut trace = self.c.trace_events().to_vec();
        // The quiet stretches go into the trace too, so that a viewer narrates it as the
        // terminal does: each at its end, after the events of that moment.
        for (from, until, text) in &self.quiet {
            let at = trace.partition_point(|e| e.time() <= *until);
            trace.insert(
                at.max(1),
                TraceEvent::Quiet {
                    t: *until,
                    from: *from,
                    text: text.clone(),
                },
            );
        }
        Outcome {
            scenario: scenario.to_string(),
            label,
            protocol,
            seed,
            facts: self.facts,
            verdict: self.verdict,
            trace,
        }
    }
}

/// Runs scenario `name` for one protocol; a scenario may return more than one run, one per
/// variant the protocol asks for (Raft's disruptive rejoin runs without and with pre-vote).
pub fn run(name: &str, protocol: Protocol, seed: u64) -> Result<Vec<Outcome>, String> {
    let info = SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("no scenario named {name:?} (see scenario --list)"))?;
    let mut base = SimConfig {
        seed,
        ..SimConfig::default()
    };
    let story: fn(&mut Script) = match info.name {
        "election" => stories::election,
        "leader-crash" => stories::leader_crash,
        "leader-transfer" => stories::leader_transfer,
        "split-vote" => |_| {},
        "replication" => {
            base.nodes = 3;
            stories::replication
        }
        "partition" => stories::partition,
        "lagging-follower" => {
            base.knobs.snapshot_threshold = Some(100);
            base.knobs.catch_up_log = Some(100);
            stories::lagging_follower
        }
        "disruptive-rejoin" => stories::disruptive_rejoin,
        "even-cluster" => {
            base.nodes = 4;
            stories::even_cluster
        }
        "stale-proposal" => stories::stale_proposal,
        "stale-read" => stories::stale_read,
        "lease-drift" => {
            base.nodes = 3;
            base.knobs.lease_reads = Some(true);
            stories::lease_drift
        }
        "replace-node" => {
            base.nodes = 4;
            base.spares = 1;
            stories::replace_node
        }
        "remove-leader" => {
            base.nodes = 3;
            stories::remove_leader
        }
        "grow-3-to-5" => {
            base.spares = 2;
            stories::grow_3_to_5
        }
        "single-server-bug" => {
            base.spares = 1;
            stories::single_server_bug
        }
        other => return Err(format!("scenario {other} has no script")),
    };
    let mut variants = protocol.def().variants(info.name);
    if variants.is_empty() {
        variants.push((protocol.name().to_string(), Knobs::default()));
    }
    Ok(variants
        .into_iter()
        .map(|(label, knobs)| {
            let cfg = SimConfig {
                knobs: knobs.over(&base.knobs),
                ..base.clone()
            };
            if info.name == "split-vote" {
                return stories::split_vote(protocol, cfg, label);
            }
            let mut s = Script::new(protocol, cfg, &format!("{}: {}", info.name, label));
            story(&mut s);
            s.finish(info.name, label, seed)
        })
        .collect())
}
