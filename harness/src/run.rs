//! One simulated run from start to verdict, and seed sweeps over many runs.
//!
//! A run: clients drive the workload while the nemesis injects faults; then every fault is
//! repaired, crashed nodes restart, and the cluster gets time to converge. The verdict checks
//! linearizability of the client history, that no acknowledged write is missing from the
//! final log, that no two replicas applied different sequences, and that no invariant broke.

mod report;
pub use report::{RunReport, Samples};

use crate::app::AppHandle;
use crate::checker;
use crate::cluster::Cluster;
use crate::history::{History, Outcome};
use crate::metrics::Latency;
use crate::nemesis::{Faults, Nemesis};
use crate::protocol::{self, Protocol};
use crate::sim::{Semantics, SimConfig};
use crate::workload::{KeyDistribution, WorkloadConfig};
use consensus_core::NodeId;
use consensus_core::ReadLevel;
use serde::Serialize;
use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the cluster gets to converge after the workload and faults end.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(30);
/// Liveness: after the last fault heals, a leader must be elected within this (virtual time).
pub const LEADER_BOUND: Duration = Duration::from_secs(2);
/// Liveness: after the last fault heals, every node must have caught up within this.
pub const CATCH_UP_BOUND: Duration = Duration::from_secs(5);

/// Everything that defines one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunConfig {
    /// The protocol.
    pub protocol: Protocol,
    /// Cluster size.
    pub nodes: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Operations in total.
    pub ops: usize,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Faults to inject.
    pub faults: Faults,
    /// Distinct keys.
    pub keys: usize,
    /// Fraction of reads.
    pub read_ratio: f64,
    /// Key popularity.
    pub distribution: KeyDistribution,
    /// Applied entries beyond the last snapshot that trigger a new one (0: never compact).
    pub snapshot_threshold: u64,
    /// Datagram or stream (TCP-like) links.
    pub network: Semantics,
    /// How gets are served: through the log, at a read index, under a lease, or locally.
    pub read_consistency: ReadLevel,
    /// How far each node's clock rate may be off true time (0: true clocks).
    pub clock_drift: f64,
    /// The replicated application and its model (default: the key-value store).
    pub app: AppHandle,
}

impl Default for RunConfig {
    fn default() -> Self {
        let w = WorkloadConfig::default();
        RunConfig {
            protocol: protocol::RAFT,
            nodes: 5,
            clients: w.clients,
            ops: w.ops,
            seed: 1,
            faults: Faults::Mixed,
            keys: w.keys,
            read_ratio: w.read_ratio,
            distribution: w.distribution,
            snapshot_threshold: protocol::default_snapshot_threshold(),
            network: Semantics::Stream,
            read_consistency: ReadLevel::Log,
            clock_drift: 0.0,
            app: AppHandle::kv(),
        }
    }
}

impl RunConfig {
    /// The `consensus-lab run` command that reproduces this run.
    pub fn command_line(&self) -> String {
        let mut s = format!(
            "consensus-lab run --protocol {} --nodes {} --clients {} --ops {} --seed {} --faults {}",
            self.protocol.name(),
            self.nodes,
            self.clients,
            self.ops,
            self.seed,
            serde_json::to_value(self.faults)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        );
        let d = RunConfig::default();
        if self.keys != d.keys {
            s += &format!(" --keys {}", self.keys);
        }
        if self.read_ratio != d.read_ratio {
            s += &format!(" --read-ratio {}", self.read_ratio);
        }
        if self.distribution != d.distribution {
            s += " --distribution zipf";
        }
        if self.network != d.network {
            s += " --network datagram";
        }
        if self.snapshot_threshold != d.snapshot_threshold {
            s += &format!(" --snapshot-threshold {}", self.snapshot_threshold);
        }
        if self.clock_drift != d.clock_drift {
            s += &format!(" --clock-drift {}", self.clock_drift);
        }
        if self.read_consistency != d.read_consistency {
            s += &format!(" --read-consistency {}", self.read_consistency.name());
        }
        if self.app != d.app {
            s += &format!(" --app {}", self.app.name());
        }
        s
    }

    fn workload(&self) -> WorkloadConfig {
        WorkloadConfig {
            clients: self.clients,
            ops: self.ops,
            keys: self.keys,
            read_ratio: self.read_ratio,
            distribution: self.distribution,
            read_level: self.read_consistency,
            ..WorkloadConfig::default()
        }
    }
}

/// Runs one simulation; `progress` is told how many operations have been issued.
pub fn run(cfg: &RunConfig, progress: Option<&dyn Fn(u64)>) -> RunReport {
    run_in(cfg, SimConfig::default(), progress)
}

/// Runs one simulation on a simulator shaped by `sim` (its node count and seed come from `cfg`).
pub fn run_in(cfg: &RunConfig, sim: SimConfig, progress: Option<&dyn Fn(u64)>) -> RunReport {
    run_traced(cfg, sim, progress, false).0
}

/// Runs one simulation and records its trace for `view` (the same run: recording draws no
/// randomness and schedules nothing).
pub fn run_with_trace(
    cfg: &RunConfig,
    progress: Option<&dyn Fn(u64)>,
) -> (RunReport, Vec<crate::sim::TraceEvent>) {
    let (report, trace) = run_traced(cfg, SimConfig::default(), progress, true);
    (report, trace.unwrap_or_default())
}

fn run_traced(
    cfg: &RunConfig,
    sim: SimConfig,
    progress: Option<&dyn Fn(u64)>,
    trace: bool,
) -> (RunReport, Option<Vec<crate::sim::TraceEvent>>) {
    let wall = Instant::now();
    // A protocol that needs FIFO links runs on streams whatever was asked: report what ran,
    // so the printed reproduction command is the run that happened.
    let mut cfg = cfg.clone();
    if cfg.protocol.def().needs_fifo().is_some() {
        cfg.network = Semantics::Stream;
    }
    let cfg = &cfg;
    let mut sim = SimConfig {
        nodes: cfg.nodes,
        seed: cfg.seed,
        ..sim
    };
    sim.knobs.snapshot_threshold = Some(cfg.snapshot_threshold);
    sim.clock_drift = cfg.clock_drift;
    if cfg.read_consistency == ReadLevel::Lease {
        sim.knobs.lease_reads = Some(true);
    }
    sim.net.semantics = cfg.network;
    sim.app = cfg.app.clone();
    let mut c = Cluster::new(cfg.protocol, sim);
    if trace {
        c.enable_trace(&cfg.command_line());
    }
    c.start_workload(cfg.workload());
    c.start_nemesis(Nemesis::new(cfg.faults, cfg.seed, cfg.nodes));
    let mut steps = 0u64;
    while !c.workload_done() && c.step_one() {
        steps += 1;
        if steps.is_multiple_of(65_536) {
            if let (Some(p), Some(h)) = (progress, c.history()) {
                p(h.ops.len() as u64);
            }
        }
    }
    let workload_end = c.now();
    c.stop_nemesis();
    let healed = c.now();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let has_leader = c.run_until(SETTLE_LIMIT, |c| c.leader().is_some());
    let leader_at = has_leader.then(|| ms(c.now() - healed));
    let converged = c.run_until(SETTLE_LIMIT, |c| c.converged());
    let caught_up_at = converged.then(|| ms(c.now() - healed));
    let mut missed = Vec::new();
    match leader_at {
        Some(t) if t <= ms(LEADER_BOUND) => {}
        t => missed.push(format!(
            "liveness: no leader within {} ms of the last heal ({})",
            ms(LEADER_BOUND),
            t.map_or("none at all".into(), |t| format!("took {t:.0} ms"))
        )),
    }
    match caught_up_at {
        Some(t) if t <= ms(CATCH_UP_BOUND) => {}
        Some(t) => missed.push(format!(
            "liveness: nodes caught up {t:.0} ms after the last heal (bound {} ms)",
            ms(CATCH_UP_BOUND)
        )),
        None => {} // reported as not converged
    }
    let after_heal = AfterHeal {
        leader_ms: leader_at,
        caught_up_ms: caught_up_at,
        missed,
    };
    let report = report(cfg, &mut c, workload_end, after_heal, wall);
    (report, trace.then(|| c.trace_events().to_vec()))
}

/// Latencies in ms of the acknowledged writes and reads.
fn samples(history: &History) -> Samples {
    let mut s = Samples::default();
    for r in &history.ops {
        if let (Outcome::Ok(_), Some(done)) = (&r.outcome, r.complete) {
            let sample = (
                done.as_secs_f64() * 1e3,
                done.saturating_sub(r.invoke).as_secs_f64() * 1e3,
            );
            if r.read {
                s.reads.push(sample);
            } else {
                s.writes.push(sample);
            }
        }
    }
    s
}

/// How the cluster recovered once the last fault healed.
struct AfterHeal {
    leader_ms: Option<f64>,
    caught_up_ms: Option<f64>,
    /// Liveness bounds missed.
    missed: Vec<String>,
}

fn report(
    cfg: &RunConfig,
    c: &mut Cluster,
    workload_end: Duration,
    after_heal: AfterHeal,
    wall: Instant,
) -> RunReport {
    let converged = after_heal.caught_up_ms.is_some();
    let final_state = if converged {
        c.final_state_problems()
    } else {
        Vec::new()
    };
    let c = &*c;
    let empty = Default::default();
    let history = c.history().unwrap_or(&empty);
    let reference = c.committed_sequence();
    // Local reads promise less than linearizability: the writes (and any other reads) are
    // checked for it, the local reads for what they do promise.
    let local = cfg.read_consistency == ReadLevel::Local;
    let app = cfg.app.get();
    let local_reads = local
        .then(|| app.check_local_reads(history, reference))
        .flatten();
    let linearizable_part;
    let checked = if local {
        linearizable_part = History {
            ops: history.ops.iter().filter(|r| !r.read).cloned().collect(),
        };
        &linearizable_part
    } else {
        history
    };
    let check = app.check(checked, reference, checker::DEFAULT_BUDGET);
    let (ops_ok, ops_failed, ops_unknown) = history.counts();

    // Every applied command was checked against the cluster's sequence as it happened; an
    // acknowledged write counts as kept only if every replica's final state holds it. (A
    // cluster that did not converge is reported as such; its lagging nodes are not counted as
    // having lost writes.)
    let diverged: Vec<NodeId> = c.diverged().keys().copied().collect();
    let divergence = c.diverged().values().next().cloned();
    let kept = if converged {
        c.final_prefix()
    } else {
        reference.len()
    };
    let in_log: BTreeSet<(u64, u64)> = reference[..kept]
        .iter()
        .filter_map(|b| app.identify(b))
        .collect();
    let lost_acked_writes = history
        .ops
        .iter()
        .filter(|r| r.is_acknowledged_write() && !in_log.contains(&(r.client, r.seq)))
        .count();

    let obs = c.observer();
    let et = obs.election_times();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let stats = c.stats();
    let committed = reference.len();
    let per_op = |x: u64| {
        if committed == 0 {
            0.0
        } else {
            x as f64 / committed as f64
        }
    };
    RunReport {
        config: cfg.clone(),
        ops_ok,
        ops_failed,
        ops_unknown,
        linearizable: check.is_linearizable(),
        check,
        elections: obs.elections(),
        leader_changes: obs.leader_changes(),
        time_without_leader_ms: ms(obs.leaderless_time(workload_end)),
        election_time_mean_ms: if et.is_empty() {
            0.0
        } else {
            ms(et.iter().sum::<Duration>()) / et.len() as f64
        },
        election_time_max_ms: et.iter().max().copied().map_or(0.0, ms),
        commit_latency: Latency::of(history),
        read_latency: Latency::of_some(history, |r| r.read),
        read_throughput_ops_per_sec: if workload_end.is_zero() {
            0.0
        } else {
            history
                .ops
                .iter()
                .filter(|r| r.read && matches!(r.outcome, Outcome::Ok(_)))
                .count() as f64
                / workload_end.as_secs_f64()
        },
        latency_samples: samples(history),
        fault_windows: c.fault_windows(),
        local_reads,
        throughput_ops_per_sec: if workload_end.is_zero() {
            0.0
        } else {
            ops_ok as f64 / workload_end.as_secs_f64()
        },
        virtual_ms: ms(workload_end),
        committed_ops: committed,
        messages: stats.messages,
        bytes: stats.bytes,
        messages_per_op: per_op(stats.messages),
        messages_per_read: {
            let reads = history
                .ops
                .iter()
                .filter(|r| r.read && matches!(r.outcome, Outcome::Ok(_)))
                .count();
            if reads == 0 {
                0.0
            } else {
                stats.read_messages as f64 / reads as f64
            }
        },
        bytes_per_op: per_op(stats.bytes),
        fsyncs: stats.fsyncs,
        lost_acked_writes,
        diverged,
        divergence,
        converged,
        leader_after_heal_ms: after_heal.leader_ms,
        caught_up_after_heal_ms: after_heal.caught_up_ms,
        liveness: after_heal.missed,
        final_state,
        faults: c
            .faults_injected()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        violations: c.violations().to_vec(),
        sim_events: stats.events,
        wall_ms: wall.elapsed().as_secs_f64() * 1e3,
        trace_hash: format!("{:016x}", c.trace_hash()),
    }
}

/// Runs every config on `jobs` threads; the reports come back in the configs' order.
pub fn run_many(configs: &[RunConfig], jobs: usize) -> Vec<RunReport> {
    let next = AtomicU64::new(0);
    let done = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(cfg) = configs.get(i) else { break };
                let r = run(cfg, None);
                done.lock().expect("no panics hold this lock").push((i, r));
            });
        }
    });
    let mut done = done.into_inner().expect("no panics hold this lock");
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Runs `base` once per seed in `seeds` on `jobs` threads; `on_done` sees every report as it
/// finishes. Returns the failing reports, sorted by seed.
pub fn sweep(
    base: &RunConfig,
    seeds: RangeInclusive<u64>,
    jobs: usize,
    on_done: &(dyn Fn(&RunReport) + Sync),
) -> Vec<RunReport> {
    let next = AtomicU64::new(*seeds.start());
    let end = *seeds.end();
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed > end || seed < *seeds.start() {
                    break;
                }
                let r = run(
                    &RunConfig {
                        seed,
                        ..base.clone()
                    },
                    None,
                );
                on_done(&r);
                if !r.passed() {
                    failures.lock().expect("no panics hold this lock").push(r);
                }
            });
        }
    });
    let mut f = failures.into_inner().expect("no panics hold this lock");
    f.sort_by_key(|r| r.config.seed);
    f
}
