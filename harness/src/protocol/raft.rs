//! Raft in the registry.

use super::words::{join, CatchUp, SplitVotes, StaleRollback, Words};
use super::{Knobs, ProtocolDef, RealStart};
use crate::cluster::{simulated, Backend};
use crate::net::node::{start_node, RealNode};
use crate::sim::SimConfig;
use ::raft::{Config, RaftReplica};
use serde_json::Value;
use std::time::Duration;

/// Raft's entry in the registry.
pub(super) struct RaftDef;

pub(super) fn default_snapshot_threshold() -> u64 {
    Config::default().snapshot_threshold
}

/// Raft's configuration: the caller's (or the default), with the knobs applied.
fn config(base: Config, k: &Knobs) -> Config {
    let mut c = base;
    if let Some(t) = k.snapshot_threshold {
        c.snapshot_threshold = t;
    }
    if let Some((min, max)) = k.election_timeout {
        c.election_timeout_min = min;
        c.election_timeout_max = max;
    }
    if let Some(on) = k.lease_reads {
        c.lease_reads = on;
    }
    if let Some(n) = k.max_bytes_per_message {
        c.max_bytes_per_message = n;
    }
    if let Some(on) = k.disruption_guards {
        c.pre_vote = on;
        c.check_quorum = on;
    }
    if let Some(on) = k.safe_membership_changes {
        c.change_after_own_term_commit = on;
    }
    c
}

impl ProtocolDef for RaftDef {
    fn name(&self) -> &'static str {
        "raft"
    }

    fn about(&self) -> &'static str {
        "Raft (Ongaro & Ousterhout), with pre-vote and check-quorum"
    }

    fn words(&self) -> &'static Words {
        &WORDS
    }

    fn simulate(&self, cfg: &SimConfig) -> Box<dyn Backend> {
        let members = cfg.membership();
        let seed = cfg.seed;
        let rc = config(cfg.tuning.get(), &cfg.knobs);
        simulated(cfg.clone(), move |id, recovered, now| {
            RaftReplica::with_membership(id, members.clone(), rc.clone(), seed, recovered, now)
        })
    }

    fn start_real(&self, n: RealNode) -> RealStart {
        Box::pin(async move {
            let (id, voters, seed) = (n.id, n.voters.clone(), n.seed);
            // Real nodes serve lease reads: a lease needs the vote pause at start-up.
            let config = config(Config::serving_leases(), &n.knobs);
            start_node(n, move |rec, now| {
                RaftReplica::with_membership(
                    id,
                    consensus_core::Membership::of_voters(&voters),
                    config,
                    seed,
                    rec,
                    now,
                )
            })
            .await
        })
    }

    fn variants(&self, scenario: &str) -> Vec<(String, Knobs)> {
        if scenario == "single-server-bug" {
            let rule = |on| Knobs {
                safe_membership_changes: Some(on),
                ..Knobs::default()
            };
            return vec![
                ("raft, unfixed rule".into(), rule(false)),
                ("raft, fixed rule".into(), rule(true)),
            ];
        }
        if scenario != "disruptive-rejoin" {
            return Vec::new();
        }
        let guards = |on| Knobs {
            disruption_guards: Some(on),
            ..Knobs::default()
        };
        vec![
            ("raft, no pre-vote".into(), guards(false)),
            ("raft, pre-vote".into(), Knobs::default()),
        ]
    }
}

/// Whether an AppendEntries (or its answer) carries, acknowledges or commits the write.
fn carries_write(msg: &str, f: &Value, pos: [u64; 2]) -> bool {
    match msg {
        "AppendEntries" => {
            f["entries"]
                .as_array()
                .is_some_and(|es| es.iter().any(|e| e[0] == pos[0] && e[1] == pos[1]))
                || f["leader_commit"].as_u64() >= Some(pos[1])
        }
        "AppendEntriesResponse" => {
            f["success"] == true && f["match_index"].as_u64() >= Some(pos[1])
        }
        _ => false,
    }
}

fn is_rejection(msg: &str, f: &Value) -> bool {
    msg == "AppendEntriesResponse" && f["success"] == false
}

/// The few fields of a Raft message that matter to a reader.
fn brief(msg: &str, f: &Value) -> String {
    let term = f["term"].as_u64().map(|t| format!("term {t}"));
    let parts: Vec<String> = match msg {
        "TimeoutNow" => vec![term.unwrap_or_default(), "campaign now".into()],
        "PreVote" | "RequestVote" | "TransferVote" => vec![
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
        _ => Vec::new(),
    };
    join(parts)
}

/// Worth a line: everything but heartbeats (empty AppendEntries) and their acceptances.
fn interesting(msg: &str, fields: &Value) -> bool {
    match msg {
        "AppendEntries" => fields["entries"].as_array().is_some_and(|e| !e.is_empty()),
        "AppendEntriesResponse" => fields["success"] == false,
        _ => true,
    }
}

static WORDS: Words = Words {
    title: "Raft",
    learner: "learner",
    era: "term",
    starting_role: "followers",
    election_start: "each waits out a random election timeout (150-300 ms)",
    elected: None,
    heartbeat_message: "AppendEntries",
    heartbeats: "heartbeats (empty AppendEntries)",
    split_votes: SplitVotes::Split {
        candidate_role: "Candidate",
        timeout: (Duration::from_millis(150), Duration::from_millis(165)),
    },
    carries_write,
    interesting,
    brief,
    commit_message: Some("AppendEntries"),
    commit_notice: "the leader's next AppendEntries (leaderCommit; heartbeats every 50 ms)",
    catch_up: CatchUp {
        mechanisms: &[(
            "InstallSnapshot",
            "the entries it lacked were already compacted into a snapshot, so the leader sent InstallSnapshot, then the entries after it",
        )],
        otherwise: (
            "AppendEntries",
            "the leader's nextIndex for it still pointed at the first missing entry, so AppendEntries carried the missing entries at once",
        ),
        after_rejections: "the new leader started with nextIndex just past its own log; its AppendEntries failed the consistency check {rejections} time(s), each rejection moving nextIndex back (to the follower's hint) until the logs matched; then the missing entries flowed",
        is_rejection,
    },
    rejoin_aside: "",
    stale: StaleRollback {
        repair: &[],
        otherwise: "AppendEntries",
        sentence: "When n{old} came back, the leader's AppendEntries conflicted with its stale entry, which was deleted and replaced ({result}). A Raft leader never commits an older term's entry by counting replicas (Figure 8); it commits only entries of its own term, and older ones with them: held throughout = {own_era}.",
        results: ("rolled back", "NOT rolled back"),
    },
    read_index: "ReadIndex: the leader's commit point, confirmed by a round of its followers",
    lease_read: "its lease (election_timeout_min less the drift bound, counted from its last confirmed round) had not run out by its own slow clock, while the others' fast clocks had already let them elect a new leader; a lease is only as good as the bound on clock drift (with clocks within it the same read is not answered: harness/tests/reads.rs)",
};
