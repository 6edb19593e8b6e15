//! What a torture run found, for people (`render`) and for programs (JSON).

use super::clients::{Learned, Record};
use super::{FaultKind, TortureConfig};
use crate::checker::CheckResult;
use serde::Serialize;
use std::time::Duration;

/// One fault: what, when, and how the cluster came through it.
#[derive(Clone, Debug, Serialize)]
pub struct FaultRecord {
    /// Its kind.
    pub kind: FaultKind,
    /// What exactly was done ("SIGKILL n2 (leader), restarted after 1.2 s").
    pub what: String,
    /// Seconds from the start of the workload when it began.
    pub at_s: f64,
    /// When it was healed.
    pub healed_s: f64,
    /// From the heal until every node followed one leader (None: not within the limit).
    pub rejoin_ms: Option<f64>,
    /// The longest time without any successful operation, from the fault's start until the
    /// next fault (or the end of the workload).
    pub longest_gap_ms: f64,
}

impl FaultRecord {
    /// One line for the terminal.
    pub fn line(&self) -> String {
        format!(
            "{:>7.1} s  {:<9} {}; {}",
            self.at_s,
            format!("{:?}", self.kind).to_lowercase(),
            self.what,
            match self.rejoin_ms {
                Some(ms) => format!("one leader again {ms:.0} ms after the heal"),
                None => "no single leader after the heal".into(),
            }
        )
    }
}

/// Fills in each fault's longest stretch without a successful operation.
pub(super) fn availability(faults: &mut [FaultRecord], records: &[Record], end_s: f64) {
    let mut ok: Vec<f64> = records
        .iter()
        .filter(|r| matches!(r.learned, Learned::Ok(_)))
        .map(|r| r.complete.as_secs_f64())
        .collect();
    ok.sort_by(f64::total_cmp);
    let starts: Vec<f64> = faults.iter().map(|f| f.at_s).collect();
    for (i, f) in faults.iter_mut().enumerate() {
        let until = starts.get(i + 1).copied().unwrap_or(end_s);
        let mut points = vec![f.at_s];
        points.extend(ok.iter().copied().filter(|&t| t > f.at_s && t <= until));
        points.push(until);
        f.longest_gap_ms = points
            .windows(2)
            .map(|w| (w[1] - w[0]) * 1e3)
            .fold(0.0, f64::max);
    }
}

/// What the run measured and checked, gathered by `run`.
pub(super) struct Findings<'a> {
    pub records: &'a [Record],
    pub faults: Vec<FaultRecord>,
    pub check: CheckResult,
    pub check_s: f64,
    pub final_rejoin: Option<Duration>,
    pub converged: bool,
    pub missing: Vec<String>,
    pub disagreements: Vec<String>,
    pub exits: Vec<String>,
    pub workload_s: f64,
    pub wall_s: f64,
}

/// The result of `consensus-lab torture`.
#[derive(Clone, Debug, Serialize)]
pub struct TortureReport {
    /// The protocol.
    pub protocol: String,
    /// Cluster size.
    pub nodes: u64,
    /// The seed of the clients' operations and of the nemesis's choices.
    pub seed: u64,
    /// Seconds the clients ran.
    pub workload_s: f64,
    /// Operations answered, refused before taking effect, and of unknown outcome.
    pub ops_ok: usize,
    /// See `ops_ok`.
    pub ops_failed: usize,
    /// See `ops_ok`.
    pub ops_unknown: usize,
    /// Successful operations per second.
    pub throughput_ops_per_sec: f64,
    /// The faults, in order.
    pub faults: Vec<FaultRecord>,
    /// The linearizability verdict on the whole history (final reads included).
    pub check: CheckResult,
    /// Seconds the check took.
    pub check_s: f64,
    /// Acknowledged writes to keys of their own: how many.
    pub own_writes_acknowledged: usize,
    /// Those missing from some node at the end ("key=value acknowledged, nN has ...").
    pub acknowledged_writes_missing: Vec<String>,
    /// Shared keys on which the nodes' final states differ.
    pub replicas_disagree: Vec<String>,
    /// Every node held the leader's whole log, committed, at the end.
    pub converged: bool,
    /// The slowest return to one leader after a heal (the final heal included), in ms.
    pub rejoin_max_ms: Option<f64>,
    /// The bound on it.
    pub rejoin_bound_ms: f64,
    /// The longest time without a successful operation after any fault, in ms.
    pub longest_gap_ms: f64,
    /// What failed (empty: the run passed).
    pub problems: Vec<String>,
    /// Seconds the whole run took.
    pub wall_s: f64,
}

impl TortureReport {
    pub(super) fn new(cfg: &TortureConfig, f: Findings<'_>) -> TortureReport {
        let count =
            |pred: fn(&Learned) -> bool| f.records.iter().filter(|r| pred(&r.learned)).count();
        let ops_ok = count(|l| matches!(l, Learned::Ok(_)));
        let own = f
            .records
            .iter()
            .filter(|r| r.acknowledged_own_write().is_some())
            .count();
        let final_ms = f.final_rejoin.map(|d| d.as_secs_f64() * 1e3);
        let rejoins: Vec<Option<f64>> = f
            .faults
            .iter()
            .map(|x| x.rejoin_ms)
            .chain([final_ms])
            .collect();
        let rejoin_max_ms = rejoins
            .iter()
            .copied()
            .collect::<Option<Vec<f64>>>()
            .map(|v| v.into_iter().fold(0.0, f64::max));
        let bound_ms = cfg.rejoin_bound.as_secs_f64() * 1e3;
        let mut problems = Vec::new();
        if !f.check.is_linearizable() {
            problems.push(format!("the history is not linearizable: {:?}", f.check));
        }
        if !f.missing.is_empty() {
            problems.push(format!(
                "{} acknowledged writes missing, first: {}",
                f.missing.len(),
                f.missing[0]
            ));
        }
        if !f.disagreements.is_empty() {
            problems.push(format!("replicas disagree: {}", f.disagreements.join("; ")));
        }
        if !f.converged {
            problems.push("the nodes did not converge on one log after the final heal".into());
        }
        match rejoin_max_ms {
            None => problems.push(format!(
                "after some heal the nodes did not follow one leader within {} s",
                super::nemesis::REJOIN_LIMIT.as_secs()
            )),
            Some(ms) if ms > bound_ms => problems.push(format!(
                "the slowest return to one leader took {ms:.0} ms (bound {bound_ms:.0} ms)"
            )),
            Some(_) => {}
        }
        if ops_ok == 0 {
            problems.push("no operation succeeded".into());
        }
        problems.extend(f.exits.iter().map(|e| format!("{e} (its log is above)")));
        if let Some(x) = f.faults.iter().find(|x| x.what.starts_with("not injected")) {
            problems.push(format!("a fault was {}", x.what));
        }
        TortureReport {
            protocol: cfg.protocol.name().to_string(),
            nodes: cfg.nodes,
            seed: cfg.seed,
            workload_s: f.workload_s,
            ops_ok,
            ops_failed: count(|l| *l == Learned::Fail),
            ops_unknown: count(|l| *l == Learned::Unknown),
            throughput_ops_per_sec: ops_ok as f64 / f.workload_s.max(1e-9),
            longest_gap_ms: f
                .faults
                .iter()
                .map(|x| x.longest_gap_ms)
                .fold(0.0, f64::max),
            faults: f.faults,
            check: f.check,
            check_s: f.check_s,
            own_writes_acknowledged: own,
            acknowledged_writes_missing: f.missing,
            replicas_disagree: f.disagreements,
            converged: f.converged,
            rejoin_max_ms,
            rejoin_bound_ms: bound_ms,
            problems,
            wall_s: f.wall_s,
        }
    }

    /// True when nothing failed.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// The report for the terminal.
    pub fn render(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "NO" };
        let mut s = format!(
            "consensus-lab torture: {}, {}, {:.0} s, seed {}\n\nfaults\n",
            self.protocol,
            crate::counted(self.nodes, "node"),
            self.workload_s,
            self.seed
        );
        if self.faults.is_empty() {
            s += "  none\n";
        }
        for f in &self.faults {
            s += &format!(
                "  {}; longest wait for any answer {:.0} ms\n",
                f.line(),
                f.longest_gap_ms
            );
        }
        s += &format!(
            "\nverdict\n  linearizable                  {} ({} operations, {} of unknown outcome; checked in {:.1} s)\n",
            yes(self.check.is_linearizable()),
            self.ops_ok + self.ops_failed + self.ops_unknown,
            self.ops_unknown,
            self.check_s
        );
        s += &format!(
            "  acknowledged writes missing   {} (of {} writes to keys of their own, looked up on every node)\n",
            self.acknowledged_writes_missing.len(),
            self.own_writes_acknowledged
        );
        s += &format!(
            "  replicas agree                {}\n  converged after the last heal {}\n",
            yes(self.replicas_disagree.is_empty()),
            yes(self.converged)
        );
        s += &format!(
            "  one leader after every heal   {}\n",
            match self.rejoin_max_ms {
                Some(ms) => format!(
                    "{} (slowest {ms:.0} ms; bound {:.0} ms)",
                    yes(ms <= self.rejoin_bound_ms),
                    self.rejoin_bound_ms
                ),
                None => "NO (not within the limit)".into(),
            }
        );
        s += &format!(
            "\noperations\n  ok / failed / unknown         {} / {} / {}\n  throughput                    {:.0} ops/s\n  longest wait for any answer   {:.0} ms\n",
            self.ops_ok,
            self.ops_failed,
            self.ops_unknown,
            self.throughput_ops_per_sec,
            self.longest_gap_ms
        );
        s += &format!(
            "\n{} in {:.1} s\n",
            if self.passed() { "PASSED" } else { "FAILED" },
            self.wall_s
        );
        for p in &self.problems {
            s += &format!("  {p}\n");
        }
        s
    }
}
