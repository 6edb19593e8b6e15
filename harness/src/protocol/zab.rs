//! ZAB in the registry.

use super::words::{join, CatchUp, SplitVotes, StaleRollback, Words};
use super::{Knobs, ProtocolDef, RealStart};
use crate::cluster::{simulated, Backend};
use crate::net::node::{start_node, RealNode};
use crate::sim::SimConfig;
use ::zab::{Config, ZabReplica};
use serde_json::Value;

/// ZAB's entry in the registry.
pub(super) struct ZabDef;

/// ZAB's configuration: the caller's (or the default), with the knobs applied.
fn config(base: Config, k: &Knobs) -> Config {
    let mut zc = base;
    if let Some(t) = k.snapshot_threshold {
        zc.snapshot_threshold = t;
    }
    if let Some(n) = k.catch_up_log {
        zc.commit_log_count = n;
    }
    if let Some(n) = k.max_bytes_per_message {
        zc.max_bytes_per_message = n;
    }
    // The role of Raft's election timeout: how long followers wait for a silent leader
    // (syncLimit ticks); the tick scales to it.
    if let Some((min, _)) = k.election_timeout {
        zc.tick_time = min / zc.sync_limit.max(1);
    }
    zc
}

impl ProtocolDef for ZabDef {
    fn name(&self) -> &'static str {
        "zab"
    }

    fn about(&self) -> &'static str {
        "ZAB as Apache ZooKeeper runs it"
    }

    fn needs_fifo(&self) -> Option<&'static str> {
        Some("ZooKeeper runs it over TCP")
    }

    fn words(&self) -> &'static Words {
        &WORDS
    }

    fn simulate(&self, cfg: &SimConfig) -> Box<dyn Backend> {
        let members = cfg.membership();
        let seed = cfg.seed;
        let zc = config(cfg.tuning.get(), &cfg.knobs);
        simulated(cfg.clone(), move |id, recovered, now| {
            ZabReplica::with_membership(id, members.clone(), zc.clone(), seed, recovered, now)
        })
    }

    fn start_real(&self, n: RealNode) -> RealStart {
        Box::pin(async move {
            let (id, voters, seed) = (n.id, n.voters.clone(), n.seed);
            let zc = config(Config::default(), &n.knobs);
            start_node(n, move |rec, now| {
                ZabReplica::with_membership(
                    id,
                    consensus_core::Membership::of_voters(&voters),
                    zc,
                    seed,
                    rec,
                    now,
                )
            })
            .await
        })
    }
}

/// Whether a packet (or any packet of a batch) is about the write's zxid.
fn carries_write(_msg: &str, f: &Value, pos: [u64; 2]) -> bool {
    let z = (pos[0] << 32) | pos[1];
    let one = |p: &Value| p["zxid"].as_u64() == Some(z);
    match f {
        Value::Array(ps) => ps.iter().any(one),
        other => one(other),
    }
}

/// The few fields of a ZAB message that matter to a reader: epochs and zxids.
fn brief(_msg: &str, f: &Value) -> String {
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
        let zs: Vec<u64> = items
            .iter()
            .filter_map(|i| i.get("zxid").and_then(Value::as_u64))
            .collect();
        let zs: Vec<String> = if zs.len() > 4 {
            // A long synchronization: the range of its zxids.
            let mut sorted = zs.clone();
            sorted.sort_unstable();
            sorted.dedup();
            let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
            vec![format!(
                "{} .. {}, {} zxids",
                zxid(&lo.into()),
                zxid(&hi.into()),
                sorted.len()
            )]
        } else {
            zs.iter().map(|&z| zxid(&z.into())).collect()
        };
        if !zs.is_empty() {
            v.push(zs.join(" "));
        }
    }
    join(v)
}

fn zxid(v: &Value) -> String {
    v.as_u64()
        .map(|z| format!("({}, {})", z >> 32, z & 0xffff_ffff))
        .unwrap_or_default()
}

/// Worth a line: everything but PINGs and election traffic (notifications, configurations).
fn interesting(msg: &str, _fields: &Value) -> bool {
    !matches!(msg, "PING" | "Notification" | "Configuration")
}

static WORDS: Words = Words {
    title: "ZAB",
    learner: "observer",
    era: "epoch",
    starting_role: "LOOKING",
    election_start: "each votes for itself and tells the others (Fast Leader Election)",
    elected: Some("Every server was LOOKING from the start; their votes converged on n{leader}, which after finalizeWait, discovery and synchronization led epoch {era} at {at}."),
    heartbeat_message: "PING",
    heartbeats: "PINGs",
    split_votes: SplitVotes::Converge(
        "votes are ordered by (epoch, zxid, server id), every server switches to the best vote it hears, and n{leader} (the highest id, all logs being equal) won",
    ),
    carries_write,
    interesting,
    brief,
    commit_message: None,
    commit_notice: "an explicit COMMIT to each",
    catch_up: CatchUp {
        mechanisms: &[
            ("SNAP", "the follower was further behind than the leader's committed log reaches, so the leader sent a SNAP: its snapshot, then the proposals after it"),
            ("TRUNC", "the follower had proposals the leader never committed; TRUNC cut them"),
            ("DIFF", "the leader still had the missing proposals in its committed log, so it synchronized n{lag} with a DIFF"),
        ],
        otherwise: ("none", "nothing was needed"),
        after_rejections: "nothing was needed",
        is_rejection: |_, _| false,
    },
    rejoin_aside: "; its notifications back off while it is alone, and the next one finds the leader through the others' replies",
    stale: StaleRollback {
        repair: &["TRUNC", "SNAP", "DIFF"],
        otherwise: "none",
        sentence: "When n{old} came back, the leader synchronized it with {sync}: the proposal of the old epoch, which no quorum had acknowledged, was {result}. ZAB's new leader does commit the older epoch's proposals it holds, when NEWLEADER is acknowledged.",
        results: ("removed", "NOT removed"),
    },
    read_index: "a SYNC: the leader's last proposal, on the same FIFO channel as its commits",
    lease_read: "ZAB has no leases, so a lease read is a sync, and a leader answers a sync from its own history without confirming it still leads; only when its slow clock reaches syncLimit does it give up (with true clocks it gives up before the others, who wait as long, can establish another leader)",
};
