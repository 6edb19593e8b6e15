//! A third protocol, registered in one place (this file), runs through every simulator
//! command: `run`, `compare`, `check`, `scenario` and `view`.
//!
//! The protocol is a toy on purpose: node 1 leads forever, in era 1, and replicates its log to
//! the others, committing an entry once a majority holds it durably. It is safe (only one node
//! ever writes, and it sends only what its disk holds) but not live when node 1 is down, so
//! the runs here inject no faults.

use consensus_core::{
    Command, Entry, Envelope, NodeId, Position, ProposeError, Ready, Recovered, Replica, Role,
    Snapshot, Status, Time,
};
use harness::cluster::{simulated, Backend};
use harness::net::node::{start_node, RealNode};
use harness::protocol::{
    self, CatchUp, Protocol, ProtocolDef, RealStart, SplitVotes, StaleRollback, Words,
};
use harness::sim::SimConfig;
use serde::{Deserialize, Serialize};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

const LEADER: NodeId = 1;
const HEARTBEAT: Duration = Duration::from_millis(20);
const MAX_BATCH: usize = 64;

/// The toy's messages.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Message {
    /// Entries after `prev`, and the leader's commit point.
    Append {
        prev: u64,
        entries: Vec<Entry>,
        commit: u64,
    },
    /// The follower durably holds everything through `last`.
    Ack { last: u64 },
    /// The follower's log ends at `last`, before the append's `prev`.
    Behind { last: u64 },
}

impl consensus_core::MessageName for Message {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Message::Append { .. } => "Append",
            Message::Ack { .. } => "Ack",
            Message::Behind { .. } => "Behind",
        }
        .into()
    }
}

/// One node of the toy protocol.
struct FixedLeader {
    id: NodeId,
    voters: Vec<NodeId>,
    log: Vec<Entry>,
    durable: u64,
    commit: u64,
    applied: u64,
    /// Per follower: the last entry it acknowledged, and the next to send.
    matched: Vec<(NodeId, u64, u64)>,
    next_beat: Time,
    ready: Ready<Message, ()>,
}

impl FixedLeader {
    fn new(id: NodeId, voters: &[NodeId], recovered: Recovered<()>, now: Time) -> Self {
        let durable = recovered.entries.last().map_or(0, |e| e.pos.seq);
        FixedLeader {
            id,
            voters: voters.to_vec(),
            log: recovered.entries,
            durable,
            commit: 0,
            applied: 0,
            matched: voters
                .iter()
                .filter(|&&v| v != id)
                .map(|&v| (v, 0, 1))
                .collect(),
            next_beat: now,
            ready: Ready::default(),
        }
    }

    fn last(&self) -> u64 {
        self.log.len() as u64
    }

    fn send_from(&mut self, to: NodeId, from: u64) {
        let start = (from.max(1) - 1) as usize;
        let end = (start + MAX_BATCH).min(self.log.len());
        let entries = self.log[start.min(end)..end].to_vec();
        self.ready.messages.push(Envelope {
            to,
            msg: Message::Append {
                prev: start as u64,
                entries,
                commit: self.commit,
            },
        });
    }

    fn advance_commit(&mut self, to: u64) {
        let to = to.min(self.durable);
        if to > self.commit {
            self.commit = to;
        }
        while self.applied < self.commit {
            self.ready
                .committed
                .push(self.log[self.applied as usize].clone());
            self.applied += 1;
        }
    }

    fn leader_commit(&mut self) {
        let mut acked: Vec<u64> = self.matched.iter().map(|m| m.1).collect();
        acked.push(self.durable);
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let majority = self.voters.len() / 2 + 1;
        self.advance_commit(acked[majority - 1]);
    }
}

impl Replica for FixedLeader {
    type Message = Message;
    type HardState = ();

    fn id(&self) -> NodeId {
        self.id
    }

    fn tick(&mut self, now: Time) {
        if self.id != LEADER || now < self.next_beat {
            return;
        }
        self.next_beat = now + HEARTBEAT;
        for i in 0..self.matched.len() {
            let (to, matched, _) = self.matched[i];
            self.send_from(to, matched + 1);
        }
    }

    fn next_deadline(&self) -> Time {
        if self.id == LEADER {
            self.next_beat
        } else {
            Duration::from_secs(u32::MAX as u64)
        }
    }

    fn receive(&mut self, _now: Time, from: NodeId, msg: Message) {
        match msg {
            Message::Append {
                prev,
                entries,
                commit,
            } => {
                if prev > self.last() {
                    let last = self.last();
                    self.ready.messages.push(Envelope {
                        to: from,
                        msg: Message::Behind { last },
                    });
                    return;
                }
                // Only the leader writes, so a follower's log is a prefix of the leader's.
                let new: Vec<Entry> = entries
                    .into_iter()
                    .filter(|e| e.pos.seq > self.last())
                    .collect();
                if !new.is_empty() {
                    self.log.extend(new.iter().cloned());
                    self.ready.append(new);
                } else {
                    let last = self.durable;
                    self.ready.messages.push(Envelope {
                        to: from,
                        msg: Message::Ack { last },
                    });
                }
                self.advance_commit(commit);
            }
            Message::Ack { last } => {
                if let Some(m) = self.matched.iter_mut().find(|m| m.0 == from) {
                    m.1 = m.1.max(last);
                    m.2 = m.2.max(last + 1);
                }
                self.leader_commit();
            }
            Message::Behind { last } => {
                if let Some(m) = self.matched.iter_mut().find(|m| m.0 == from) {
                    m.2 = last + 1;
                }
                self.send_from(from, last + 1);
            }
        }
    }

    fn propose(&mut self, _now: Time, command: Command) -> Result<Position, ProposeError> {
        if self.id != LEADER {
            return Err(ProposeError::NotLeader {
                leader: Some(LEADER),
            });
        }
        let pos = Position::new(1, self.last() + 1);
        let entry = Entry::command(pos, command);
        self.log.push(entry.clone());
        self.ready.append(vec![entry]);
        for i in 0..self.matched.len() {
            let (to, _, next) = self.matched[i];
            self.send_from(to, next);
            self.matched[i].2 = pos.seq + 1;
        }
        Ok(pos)
    }

    fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    fn take_ready(&mut self) -> Ready<Message, ()> {
        std::mem::take(&mut self.ready)
    }

    fn compact(&mut self, _now: Time, _snapshot: Snapshot) {}

    fn persisted(&mut self, _now: Time, through: Position) {
        self.durable = self.durable.max(through.seq);
        if self.id == LEADER {
            self.leader_commit();
        } else {
            let last = self.durable;
            self.ready.messages.push(Envelope {
                to: LEADER,
                msg: Message::Ack { last },
            });
        }
    }

    fn status(&self) -> Status {
        let leads = self.id == LEADER;
        Status {
            id: self.id,
            role: if leads { Role::Leader } else { Role::Follower },
            role_name: if leads { "Leader" } else { "Follower" },
            era: 1,
            leader: Some(LEADER),
            vote: None,
            commit: Position::new(if self.commit > 0 { 1 } else { 0 }, self.commit),
            last: Position::new(if self.last() > 0 { 1 } else { 0 }, self.last()),
        }
    }
}

/// The toy's entry in the registry.
struct FixedLeaderDef;

static WORDS: Words = Words {
    title: "Fixed leader",
    learner: "learner",
    era: "era",
    starting_role: "followers of node 1",
    election_start: "node 1 leads from the start, without an election",
    elected: Some("n{leader} led era {era} from the start, at {at}."),
    heartbeat_message: "Append",
    heartbeats: "appends",
    split_votes: SplitVotes::Converge("there is no vote: node 1 always leads"),
    carries_write: |msg, f, pos| {
        msg == "Append"
            && f["entries"]
                .as_array()
                .is_some_and(|es| es.iter().any(|e| e[1] == pos[1]))
    },
    interesting: |msg, f| msg != "Append" || f["entries"].as_array().is_some_and(|e| !e.is_empty()),
    brief: |msg, f| match msg {
        "Append" => format!(
            "after {}, {} entries, commit {}",
            f["prev"],
            f["entries"].as_array().map_or(0, Vec::len),
            f["commit"]
        ),
        _ => format!("last {}", f["last"]),
    },
    commit_message: Some("Append"),
    commit_notice: "the leader's next append",
    catch_up: CatchUp {
        mechanisms: &[],
        otherwise: ("Append", "the leader sent what it missed"),
        after_rejections: "the follower said where its log ends and the leader sent the rest",
        is_rejection: |msg, _| msg == "Behind",
    },
    rejoin_aside: "",
    stale: StaleRollback {
        repair: &[],
        otherwise: "Append",
        sentence: "n{old} came back and was repaired by {sync}; the stale entry was {result}.",
        results: ("gone", "still there"),
    },
    read_index: "none: the toy serves reads through the log",
    lease_read: "the toy has no leases",
};

impl ProtocolDef for FixedLeaderDef {
    fn name(&self) -> &'static str {
        "fixed"
    }

    fn about(&self) -> &'static str {
        "a toy: node 1 leads forever"
    }

    fn words(&self) -> &'static Words {
        &WORDS
    }

    fn simulate(&self, cfg: &SimConfig) -> Box<dyn Backend> {
        let voters = cfg.voters();
        simulated(cfg.clone(), move |id, recovered, now| {
            FixedLeader::new(id, &voters, recovered, now)
        })
    }

    fn start_real(&self, node: RealNode) -> RealStart {
        Box::pin(async move {
            let (id, voters) = (node.id, node.voters.clone());
            start_node(node, move |rec, now| {
                FixedLeader::new(id, &voters, rec, now)
            })
            .await
        })
    }
}

/// Registers the toy once for the whole test binary.
fn fixed() -> Protocol {
    static P: OnceLock<Protocol> = OnceLock::new();
    *P.get_or_init(|| protocol::register(&FixedLeaderDef).expect("the name is free"))
}

/// Runs the command line; returns its exit code and what it printed.
fn lab(args: &[&str]) -> (ExitCode, String) {
    fixed();
    let mut out = Vec::new();
    let code = harness::cli::run(
        std::iter::once("consensus-lab").chain(args.iter().copied()),
        &mut out,
    );
    (code, String::from_utf8(out).expect("utf-8 output"))
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn the_registry_lists_the_new_protocol_after_the_built_in_ones() {
    let p = fixed();
    let names: Vec<&str> = protocol::all().iter().map(|p| p.name()).collect();
    assert_eq!(names, ["raft", "zab", "fixed"]);
    assert_eq!(Protocol::parse("fixed").unwrap(), p);
    assert!(protocol::register(&FixedLeaderDef).is_err());
}

#[test]
fn run_checks_the_new_protocol_like_the_others() {
    let (code, out) = lab(&[
        "run",
        "--protocol",
        "fixed",
        "--nodes",
        "3",
        "--ops",
        "400",
        "--faults",
        "none",
        "--json",
    ]);
    let r = json(&out);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert_eq!(r["config"]["protocol"], "fixed");
    assert_eq!(r["linearizable"], true);
    assert_eq!(r["ops_ok"], 400);
    assert!(r["messages"].as_u64().unwrap() > 400);
}

#[test]
fn compare_prints_one_column_per_protocol() {
    let args = [
        "compare",
        "--protocol",
        "raft,zab,fixed",
        "--nodes",
        "3",
        "--ops",
        "300",
        "--faults",
        "none",
    ];
    let (code, out) = lab(&args);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    let head = out
        .lines()
        .find(|l| l.contains("raft") && l.contains("zab"))
        .expect("a header row");
    assert!(head.contains("fixed"), "{head}");
    let ops = out
        .lines()
        .find(|l| l.starts_with("ops ok / failed / unknown"))
        .expect("an ops row");
    assert_eq!(ops.matches("300 / 0 / 0").count(), 3, "{ops}");
    let (code, out) = lab(&[&args[..], &["--json"]].concat());
    assert_eq!(code, ExitCode::SUCCESS);
    let v = json(&out);
    for p in ["raft", "zab", "fixed"] {
        assert_eq!(v[p]["config"]["protocol"], p, "{p}");
    }
}

#[test]
fn check_sweeps_the_new_protocol() {
    let (code, out) = lab(&[
        "check",
        "--protocol",
        "fixed",
        "--nodes",
        "3",
        "--ops",
        "200",
        "--faults",
        "none",
        "--seeds",
        "1..4",
        "--json",
    ]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    let v = json(&out);
    assert_eq!(v["runs"], 4);
    assert_eq!(v["failed"], 0);
    assert_eq!(v["protocols"], serde_json::json!(["fixed"]));
}

#[test]
fn a_scenario_of_the_new_protocol_is_narrated_traced_and_viewed() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("replication.jsonl");
    let (code, out) = lab(&[
        "scenario",
        "replication",
        "--protocol",
        "fixed",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(out.contains("== replication · fixed"), "{out}");
    assert!(out.contains("committed it once a majority"), "{out}");
    assert!(out.contains("Append"), "{out}");
    let text = std::fs::read_to_string(&trace).unwrap();
    let first = json(text.lines().next().unwrap());
    assert_eq!(first["protocol"], "fixed");
    assert_eq!(first["era"], "era");
    let page = dir.path().join("replication.html");
    let (code, out) = lab(&[
        "view",
        trace.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("\"protocol\":\"fixed\""));
}

#[test]
fn every_scenario_plays_for_the_new_protocol() {
    fixed();
    for s in harness::scenario::SCENARIOS {
        let runs = harness::scenario::run(s.name, fixed(), 1).unwrap();
        assert_eq!(runs.len(), 1, "{}", s.name);
        assert_eq!(runs[0].label, "fixed");
        assert!(
            !harness::scenario::narrate(&runs[0]).is_empty(),
            "{}",
            s.name
        );
    }
}
