//! What one run measured and concluded, and the one-line reason when it failed.

use super::RunConfig;
use crate::checker::local::LocalReads;
use crate::checker::CheckResult;
use crate::metrics::Latency;
use consensus_core::NodeId;
use serde::Serialize;

/// Acknowledged operations as (answered at, latency), both in virtual ms from the run's start.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    /// Writes.
    pub writes: Vec<(f64, f64)>,
    /// Reads.
    pub reads: Vec<(f64, f64)>,
}

impl Samples {
    /// The latencies of writes (`reads` false) or reads, in ms.
    pub fn latencies(&self, reads: bool) -> Vec<f64> {
        let v = if reads { &self.reads } else { &self.writes };
        v.iter().map(|&(_, ms)| ms).collect()
    }
}

/// What one run measured and concluded.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// The run's definition.
    pub config: RunConfig,
    /// Operations acknowledged by the cluster.
    pub ops_ok: usize,
    /// Operations that certainly did not take effect.
    pub ops_failed: usize,
    /// Operations whose outcome the client never learned.
    pub ops_unknown: usize,
    /// The checker's verdict, as a yes/no.
    pub linearizable: bool,
    /// The checker's full verdict.
    pub check: CheckResult,
    /// Successful elections (distinct era/leader pairs).
    pub elections: u64,
    /// Times leadership moved to another node.
    pub leader_changes: u64,
    /// Virtual time with no live leader.
    pub time_without_leader_ms: f64,
    /// Mean length of a leaderless interval that ended in an election.
    pub election_time_mean_ms: f64,
    /// Longest such interval.
    pub election_time_max_ms: f64,
    /// Invoke-to-answer latency of acknowledged operations (virtual time).
    pub commit_latency: Latency,
    /// The same, of gets only.
    pub read_latency: Latency,
    /// Acknowledged gets per virtual second of workload.
    pub read_throughput_ops_per_sec: f64,
    /// Every acknowledged operation's answer time and latency, for plots.
    #[serde(skip)]
    pub latency_samples: Samples,
    /// When each fault was in force (one seed draws the same schedule for every protocol, up
    /// to the end of each run's workload).
    pub fault_windows: Vec<crate::nemesis::FaultWindow>,
    /// Local reads: how stale they were, and whether any went back in time (local level only).
    pub local_reads: Option<LocalReads>,
    /// Acknowledged operations per virtual second of workload.
    pub throughput_ops_per_sec: f64,
    /// Virtual time the workload took.
    pub virtual_ms: f64,
    /// Client commands in the final log.
    pub committed_ops: usize,
    /// Messages between nodes.
    pub messages: u64,
    /// Encoded bytes of those messages.
    pub bytes: u64,
    /// Messages per committed command.
    pub messages_per_op: f64,
    /// Messages that carried only reads outside the log (read indexes asked, confirmed,
    /// answered), per read answered; 0 when reads go through the log (their messages are
    /// counted per op) or are local.
    pub messages_per_read: f64,
    /// Bytes per committed command.
    pub bytes_per_op: f64,
    /// Fsyncs on all nodes.
    pub fsyncs: u64,
    /// Acknowledged writes missing from the final log (must be 0).
    pub lost_acked_writes: usize,
    /// Nodes that applied a command differing from the cluster's sequence (must be empty).
    pub diverged: Vec<NodeId>,
    /// The first difference of the first diverged node, explained.
    pub divergence: Option<String>,
    /// Whether all nodes caught up after the faults ended.
    pub converged: bool,
    /// Virtual time from the last heal to a leader (None: none within the settle limit).
    pub leader_after_heal_ms: Option<f64>,
    /// Virtual time from the last heal until every node caught up (None: never).
    pub caught_up_after_heal_ms: Option<f64>,
    /// Liveness bounds missed after the last heal (must be empty).
    pub liveness: Vec<String>,
    /// Problems of the replicas' final state against the cluster's sequence (must be empty).
    pub final_state: Vec<String>,
    /// Faults the nemesis injected, by kind.
    pub faults: std::collections::BTreeMap<String, u64>,
    /// Broken invariants (must be empty).
    pub violations: Vec<String>,
    /// Simulator events processed.
    pub sim_events: u64,
    /// Wall-clock time of the run.
    pub wall_ms: f64,
    /// Hash of the event trace: equal for equal runs.
    pub trace_hash: String,
}

impl RunReport {
    /// True when every safety check passed and the cluster converged.
    pub fn passed(&self) -> bool {
        self.linearizable
            && self
                .local_reads
                .as_ref()
                .is_none_or(|l| l.violations.is_empty())
            && self.lost_acked_writes == 0
            && self.diverged.is_empty()
            && self.violations.is_empty()
            && self.converged
            && self.liveness.is_empty()
            && self.final_state.is_empty()
    }

    /// A one-line reason for a failed run.
    pub fn failure(&self) -> Option<String> {
        let mut why = Vec::new();
        match &self.check {
            CheckResult::Linearizable => {}
            CheckResult::Violation(v) => why.push(format!(
                "not linearizable on key {} (stuck at: {})",
                v.key, v.stuck
            )),
            CheckResult::Inconclusive { key, steps } => why.push(format!(
                "linearizability undecided on key {key} after {steps} steps"
            )),
        }
        if let Some(v) = self.local_reads.as_ref().and_then(|l| l.violations.first()) {
            why.push(format!("local read went back in time: {v}"));
        }
        if self.lost_acked_writes > 0 {
            why.push(format!(
                "{} acknowledged writes lost",
                self.lost_acked_writes
            ));
        }
        if !self.diverged.is_empty() {
            why.push(format!(
                "replicas diverged: {:?} ({})",
                self.diverged,
                self.divergence.as_deref().unwrap_or("")
            ));
        }
        if !self.converged {
            why.push("cluster did not converge after healing".into());
        }
        why.extend(self.liveness.iter().cloned());
        why.extend(self.final_state.iter().cloned());
        why.extend(self.violations.iter().cloned());
        (!why.is_empty()).then(|| why.join("; "))
    }
}
