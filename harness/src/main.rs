//! `consensus-lab`: run consensus protocols in a deterministic simulator, under a client
//! workload and faults, and check what the clients saw.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use harness::run::{self, RunConfig, RunReport};
use harness::{Faults, KeyDistribution, ProtocolKind, Semantics};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::ops::RangeInclusive;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "consensus-lab",
    version,
    about = "Raft and ZAB side by side in a deterministic simulator",
    long_about = "Runs consensus protocols in a deterministic simulator: a virtual clock, a faulty \
network, disks that lose unsynced writes. Clients issue put/get/cas operations; a nemesis \
crashes nodes and cuts links; afterwards the client history is checked for linearizability \
and the replicas for lost or diverging writes. The same seed always gives the same run."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One simulated run: workload + faults, then the verdict and metrics.
    Run(RunArgs),
    /// A seed sweep: many runs, every failing seed printed with the command that reproduces it.
    Check(CheckArgs),
    /// Raft and ZAB on the identical workload and fault schedule, side by side.
    Compare(CompareArgs),
    /// One node of the replicated key-value service: a file log, TCP to its peers, HTTP for clients.
    Serve(ServeArgs),
    /// A local cluster of `serve` processes on loopback; Ctrl-C stops them all.
    Cluster(ClusterArgs),
    /// Closed-loop load against a cluster's HTTP API: throughput and latency percentiles.
    Load(LoadArgs),
    /// Replays a classic story (election, partition, ...) in the simulator and narrates it.
    Scenario(ScenarioArgs),
    /// Writes a self-contained HTML page that replays one or two traces side by side.
    View(ViewArgs),
}

#[derive(Args)]
#[command(after_help = "Examples:
  consensus-lab scenario --list
  consensus-lab scenario leader-crash                  # Raft, then ZAB
  consensus-lab scenario partition --protocol zab --seed 3
  consensus-lab scenario election --trace election.jsonl   # election.raft.jsonl, election.zab.jsonl
  consensus-lab view election.raft.jsonl election.zab.jsonl -o election.html")]
struct ScenarioArgs {
    /// The scenario to play (see --list).
    #[arg(required_unless_present = "list")]
    name: Option<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Which protocol plays it.
    #[arg(long, value_enum, default_value_t = Protocols::Both)]
    protocol: Protocols,
    /// Seed of the simulated run (timeouts, delays).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write each run's trace as JSON Lines to FILE (with several runs, FILE.<protocol>.jsonl).
    #[arg(long, value_name = "FILE")]
    trace: Option<std::path::PathBuf>,
    /// Print the outcomes as JSON instead of the narration.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ViewArgs {
    /// A trace written by `scenario --trace`.
    trace: std::path::PathBuf,
    /// A second trace, replayed side by side on the same time axis.
    other: Option<std::path::PathBuf>,
    /// The HTML file to write.
    #[arg(short, long, default_value = "trace.html")]
    output: std::path::PathBuf,
}

#[derive(Args)]
#[command(
    after_help = "Example (three terminals, or use `consensus-lab cluster`):
  consensus-lab serve --protocol raft --id 1 \\
    --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \\
    --peer-http 1=127.0.0.1:8001,2=127.0.0.1:8002,3=127.0.0.1:8003 \\
    --data-dir data/n1 --http 127.0.0.1:8001
  curl -X PUT --data-binary hello 127.0.0.1:8001/kv/greeting
  curl 127.0.0.1:8001/kv/greeting

API: PUT /kv/{key} (body = value), GET /kv/{key} (linearizable), POST /kv/{key}/cas
with {\"expected\":..,\"new\":..}, GET /status. Followers redirect (307) to the leader.
Set RUST_LOG (e.g. RUST_LOG=debug) for more log output."
)]
struct ServeArgs {
    /// Read every setting from a TOML file (keys: protocol, id, peers, peer_http, data_dir,
    /// http, cluster_id); the other flags must then be left out.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["protocol", "id", "peers", "peer_http", "data_dir", "http"])]
    config: Option<std::path::PathBuf>,
    /// The protocol this node runs; every member must run the same.
    #[arg(long, value_enum, default_value_t = ProtocolKind::Raft)]
    protocol: ProtocolKind,
    /// This node's id (one of --peers).
    #[arg(long, required_unless_present = "config")]
    id: Option<u64>,
    /// Every member and its peer address: 1=127.0.0.1:7001,2=127.0.0.1:7002,...
    #[arg(long, value_parser = harness::net::server::parse_members, required_unless_present = "config")]
    peers: Option<std::collections::BTreeMap<u64, std::net::SocketAddr>>,
    /// Every member's HTTP address, so that followers can redirect clients to the leader.
    #[arg(long, value_parser = harness::net::server::parse_members)]
    peer_http: Option<std::collections::BTreeMap<u64, std::net::SocketAddr>>,
    /// Directory for the log, hard state and snapshots (created if missing).
    #[arg(long, required_unless_present = "config")]
    data_dir: Option<std::path::PathBuf>,
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1:8001")]
    http: std::net::SocketAddr,
    /// Peers presenting another cluster id are refused.
    #[arg(long, default_value = "consensus-lab")]
    cluster_id: String,
}

#[derive(Args)]
struct ClusterArgs {
    /// The protocol every node runs.
    #[arg(long, value_enum, default_value_t = ProtocolKind::Raft)]
    protocol: ProtocolKind,
    /// Number of nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    nodes: u64,
    /// Node N listens for peers on port PEER_BASE + N.
    #[arg(long, default_value_t = 7000)]
    peer_base: u16,
    /// Node N serves HTTP on port HTTP_BASE + N.
    #[arg(long, default_value_t = 8000)]
    http_base: u16,
    /// Keep the nodes' data here (default: a temporary directory, removed on exit).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// The cluster id the nodes present to each other.
    #[arg(long, default_value = "consensus-lab")]
    cluster_id: String,
}

#[derive(Args)]
struct LoadArgs {
    /// HTTP endpoints of the cluster's nodes, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003"
    )]
    endpoints: Vec<String>,
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    clients: u64,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Size of each written value, in bytes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    value_bytes: u64,
    /// Fraction of operations that are linearizable reads (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    reads: f64,
    /// Distinct keys per client.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Seed for key choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Which protocols a sweep covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Protocols {
    /// Raft only.
    Raft,
    /// ZAB only.
    Zab,
    /// Raft, then ZAB.
    Both,
}

impl Protocols {
    fn kinds(self) -> Vec<ProtocolKind> {
        match self {
            Protocols::Raft => vec![ProtocolKind::Raft],
            Protocols::Zab => vec![ProtocolKind::Zab],
            Protocols::Both => vec![ProtocolKind::Raft, ProtocolKind::Zab],
        }
    }
}

#[derive(Args, Clone)]
struct Shape {
    /// Cluster size (nodes are numbered 1..=N).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=99))]
    nodes: u16,
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    clients: u32,
    /// Faults the nemesis injects.
    #[arg(long, value_enum, default_value_t = Faults::Mixed)]
    faults: Faults,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    keys: u32,
    /// Fraction of operations that are reads (0 to 1).
    #[arg(long, default_value_t = 0.3, value_parser = parse_ratio)]
    read_ratio: f64,
    /// How keys are picked.
    #[arg(long, value_enum, default_value_t = KeyDistribution::Uniform)]
    distribution: KeyDistribution,
    /// Links between nodes: datagrams (loss drops, duplicates, reorders) or streams (TCP-like:
    /// in order, exactly once, loss costs a retransmission timeout).
    #[arg(long, value_enum, default_value_t = Semantics::Stream)]
    network: Semantics,
    /// Snapshot and compact the log after this many applied entries (0: never).
    #[arg(long, default_value_t = raft::Config::default().snapshot_threshold)]
    snapshot_threshold: u64,
}

#[derive(Args)]
struct RunArgs {
    /// Protocol to run.
    #[arg(long, value_enum, default_value_t = ProtocolKind::Raft)]
    protocol: ProtocolKind,
    #[command(flatten)]
    shape: Shape,
    #[command(flatten)]
    one: OneRun,
}

/// What defines a single run beyond the cluster's shape.
#[derive(Args)]
struct OneRun {
    /// Operations to issue, over all clients.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    ops: u64,
    /// Seed: the workload, the fault schedule and every network draw derive from it; the same
    /// seed gives the same run, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON instead of a table (for compare: `{"raft": {...}, "zab": {...}}`).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CheckArgs {
    /// Protocol(s) to sweep.
    #[arg(long, value_enum, default_value_t = Protocols::Raft)]
    protocol: Protocols,
    #[command(flatten)]
    shape: Shape,
    /// Operations per run (10,000 is about 6 s of virtual time: several faults per seed).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    ops: u64,
    /// Seeds to run: `A..B` (inclusive), `A..=B`, or one seed.
    #[arg(long, default_value = "1..200", value_parser = parse_seeds)]
    seeds: RangeInclusive<u64>,
    /// Parallel runs (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CompareArgs {
    #[command(flatten)]
    shape: Shape,
    #[command(flatten)]
    one: OneRun,
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

fn parse_seeds(s: &str) -> Result<RangeInclusive<u64>, String> {
    let num = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{x}` is not a seed (a whole number)"))
    };
    let (a, b) = if let Some((a, b)) = s.split_once("..=") {
        (num(a)?, num(b)?)
    } else if let Some((a, b)) = s.split_once("..") {
        (num(a)?, num(b)?)
    } else {
        let v = num(s)?;
        (v, v)
    };
    if a > b {
        return Err(format!("empty seed range {a}..{b}"));
    }
    if b == u64::MAX {
        return Err("seeds must be below 18446744073709551615".into());
    }
    Ok(a..=b)
}

impl Shape {
    fn config(&self, protocol: ProtocolKind, ops: u64, seed: u64) -> RunConfig {
        RunConfig {
            protocol,
            nodes: self.nodes as usize,
            clients: self.clients as usize,
            ops: ops as usize,
            seed,
            faults: self.faults,
            keys: self.keys as usize,
            read_ratio: self.read_ratio,
            distribution: self.distribution,
            snapshot_threshold: self.snapshot_threshold,
            network: self.network,
        }
    }
}

fn bar(len: u64, show: bool, template: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(len),
        if show && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    pb.set_style(
        ProgressStyle::with_template(template)
            .expect("static template is valid")
            .progress_chars("=> "),
    );
    pb
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

fn print_table(r: &RunReport) {
    let c = &r.config;
    println!(
        "consensus-lab run: {}, {} nodes, {} clients, {} ops, seed {}, faults {:?}",
        c.protocol.name(),
        c.nodes,
        c.clients,
        c.ops,
        c.seed,
        c.faults
    );
    println!();
    println!("verdict");
    println!("  linearizable              {}", yes_no(r.linearizable));
    println!("  acknowledged writes lost  {}", r.lost_acked_writes);
    println!(
        "  diverged replicas         {}",
        if r.diverged.is_empty() {
            "none".to_string()
        } else {
            format!("{:?}", r.diverged)
        }
    );
    println!("  converged after faults    {}", yes_no(r.converged));
    if let Some(t) = r.caught_up_after_heal_ms {
        println!("  caught up after last heal {t:.0} ms (virtual)");
    }
    for p in r.liveness.iter().chain(&r.final_state) {
        println!("  problem                   {p}");
    }
    if !r.faults.is_empty() {
        let f: Vec<String> = r.faults.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("  faults injected           {}", f.join(", "));
    }
    for v in &r.violations {
        println!("  violation                 {v}");
    }
    if let Some(why) = r.failure() {
        println!("  FAILED: {why}");
    }
    println!("operations");
    println!(
        "  ok / failed / unknown     {} / {} / {}",
        r.ops_ok, r.ops_failed, r.ops_unknown
    );
    println!(
        "  throughput                {:.0} ops/s (virtual)",
        r.throughput_ops_per_sec
    );
    println!(
        "  latency p50 / p99 / max   {:.2} / {:.2} / {:.2} ms (virtual)",
        r.commit_latency.p50_ms, r.commit_latency.p99_ms, r.commit_latency.max_ms
    );
    println!("leadership");
    println!("  elections                 {}", r.elections);
    println!("  leader changes            {}", r.leader_changes);
    println!(
        "  time without leader       {:.1} ms of {:.1} ms",
        r.time_without_leader_ms, r.virtual_ms
    );
    println!(
        "  election time mean / max  {:.1} / {:.1} ms",
        r.election_time_mean_ms, r.election_time_max_ms
    );
    println!("cost");
    println!("  committed commands        {}", r.committed_ops);
    println!(
        "  messages per op           {:.2} ({} in all)",
        r.messages_per_op, r.messages
    );
    println!(
        "  bytes per op              {:.1} ({} in all)",
        r.bytes_per_op, r.bytes
    );
    println!("  fsyncs                    {}", r.fsyncs);
    println!("simulation");
    println!("  events                    {}", r.sim_events);
    println!(
        "  wall time                 {:.0} ms ({:.0} events/s)",
        r.wall_ms,
        r.sim_events as f64 / (r.wall_ms / 1e3).max(1e-9)
    );
    println!("  trace hash                {}", r.trace_hash);
}

impl Shape {
    fn validate(&self, protocols: &[ProtocolKind]) -> Result<()> {
        if protocols.contains(&ProtocolKind::Zab) && self.network == Semantics::Datagram {
            bail!("ZAB needs FIFO links (ZooKeeper runs it over TCP): use --network stream");
        }
        Ok(())
    }
}

fn cmd_run(a: RunArgs) -> Result<ExitCode> {
    a.shape.validate(&[a.protocol])?;
    let cfg = a.shape.config(a.protocol, a.one.ops, a.one.seed);
    let pb = bar(
        a.one.ops,
        !a.one.json,
        "{spinner} simulating [{bar:40}] {pos}/{len} ops issued ({elapsed})",
    );
    let tick = |n: u64| pb.set_position(n);
    let report = run::run(&cfg, Some(&tick));
    pb.finish_and_clear();
    if a.one.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        );
    } else {
        print_table(&report);
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn cmd_check(a: CheckArgs) -> Result<ExitCode> {
    let kinds = a.protocol.kinds();
    a.shape.validate(&kinds)?;
    let count = a.seeds.end() - a.seeds.start() + 1;
    let jobs = a.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let pb = bar(
        count * kinds.len() as u64,
        !a.json,
        "{spinner} checking [{bar:40}] {pos}/{len} runs, {msg} ({elapsed}, eta {eta})",
    );
    pb.set_message("0 failing");
    let failing = std::sync::atomic::AtomicU64::new(0);
    // Per protocol: faults injected by kind, summed over the sweep.
    let tally: std::sync::Mutex<BTreeMap<&'static str, BTreeMap<String, u64>>> = Default::default();
    let on_done = |r: &RunReport| {
        {
            let mut t = tally.lock().expect("no panics hold this lock");
            let faults = t.entry(r.config.protocol.name()).or_default();
            for (k, v) in &r.faults {
                *faults.entry(k.clone()).or_default() += v;
            }
        }
        if !r.passed() {
            let f = failing.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            pb.set_message(format!("{f} failing"));
            if !a.json {
                let line = format!(
                    "{} seed {} FAILED: {}\n  reproduce: {}",
                    r.config.protocol.name(),
                    r.config.seed,
                    r.failure().unwrap_or_default(),
                    r.config.command_line()
                );
                // Without a terminal the bar is hidden and would swallow the line.
                if pb.is_hidden() {
                    eprintln!("{line}");
                } else {
                    pb.println(line);
                }
            }
        }
        pb.inc(1);
    };
    let started = std::time::Instant::now();
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for &kind in &kinds {
        let t = std::time::Instant::now();
        let base = a.shape.config(kind, a.ops, 0);
        let f = run::sweep(&base, a.seeds.clone(), jobs, &on_done);
        lines.push(format!(
            "{} seeds of {} under {:?} faults ({} ops each): {} passed, {} failed in {:.1} s",
            count,
            kind.name(),
            a.shape.faults,
            a.ops,
            count - f.len() as u64,
            f.len(),
            t.elapsed().as_secs_f64()
        ));
        failures.extend(f);
    }
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let tally = tally.into_inner().expect("no panics hold this lock");
    if a.json {
        let out = serde_json::json!({
            "protocols": kinds,
            "faults": a.shape.faults,
            "seeds": format!("{}..={}", a.seeds.start(), a.seeds.end()),
            "runs": count * kinds.len() as u64,
            "failed": failures.len(),
            "failures": failures.iter().map(|r| serde_json::json!({
                "protocol": r.config.protocol,
                "seed": r.config.seed,
                "why": r.failure(),
                "reproduce": r.config.command_line(),
            })).collect::<Vec<_>>(),
            "faults_injected": tally,
            "wall_ms": secs * 1e3,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (l, kind) in lines.iter().zip(&kinds) {
            println!("{l}");
            if let Some(f) = tally.get(kind.name()).filter(|f| !f.is_empty()) {
                let f: Vec<String> = f.iter().map(|(k, v)| format!("{k} {v}")).collect();
                println!("  faults injected: {}", f.join(", "));
            }
        }
        for r in &failures {
            println!(
                "  {} seed {}: {}",
                r.config.protocol.name(),
                r.config.seed,
                r.config.command_line()
            );
        }
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The rows of the side-by-side table: a label and how to show one report's value.
type Row = (&'static str, fn(&RunReport) -> String);

fn compare_rows() -> Vec<Row> {
    fn ms(x: f64) -> String {
        format!("{x:.1} ms")
    }
    vec![
        ("linearizable", |r| yes_no(r.linearizable).into()),
        ("acknowledged writes lost", |r| {
            r.lost_acked_writes.to_string()
        }),
        ("diverged replicas", |r| {
            if r.diverged.is_empty() {
                "none".into()
            } else {
                format!("{:?}", r.diverged)
            }
        }),
        ("converged after faults", |r| yes_no(r.converged).into()),
        ("ops ok / failed / unknown", |r| {
            format!("{} / {} / {}", r.ops_ok, r.ops_failed, r.ops_unknown)
        }),
        ("throughput (virtual)", |r| {
            format!("{:.0} ops/s", r.throughput_ops_per_sec)
        }),
        ("latency p50", |r| ms(r.commit_latency.p50_ms)),
        ("latency p99", |r| ms(r.commit_latency.p99_ms)),
        ("latency max", |r| ms(r.commit_latency.max_ms)),
        ("elections", |r| r.elections.to_string()),
        ("leader changes", |r| r.leader_changes.to_string()),
        ("time without leader", |r| ms(r.time_without_leader_ms)),
        ("election time mean", |r| ms(r.election_time_mean_ms)),
        ("election time max", |r| ms(r.election_time_max_ms)),
        ("committed commands", |r| r.committed_ops.to_string()),
        ("messages per op", |r| format!("{:.2}", r.messages_per_op)),
        ("bytes per op", |r| format!("{:.1}", r.bytes_per_op)),
        ("fsyncs", |r| r.fsyncs.to_string()),
        ("simulated events", |r| r.sim_events.to_string()),
        ("wall time", |r| format!("{:.0} ms", r.wall_ms)),
    ]
}

fn cmd_compare(a: CompareArgs) -> Result<ExitCode> {
    let kinds = [ProtocolKind::Raft, ProtocolKind::Zab];
    a.shape.validate(&kinds)?;
    let configs: Vec<RunConfig> = kinds
        .iter()
        .map(|&k| a.shape.config(k, a.one.ops, a.one.seed))
        .collect();
    let pb = bar(
        a.one.ops * 2,
        !a.one.json,
        "{spinner} simulating both [{bar:40}] {pos}/{len} ops issued ({elapsed})",
    );
    let issued: Vec<std::sync::atomic::AtomicU64> = (0..2)
        .map(|_| std::sync::atomic::AtomicU64::new(0))
        .collect();
    // One protocol per core: the runs are independent and each is deterministic.
    let reports: Vec<RunReport> = std::thread::scope(|s| {
        let handles: Vec<_> = configs
            .iter()
            .enumerate()
            .map(|(i, cfg)| {
                let (pb, issued) = (&pb, &issued);
                s.spawn(move || {
                    let tick = move |n: u64| {
                        issued[i].store(n, std::sync::atomic::Ordering::Relaxed);
                        let total: u64 = issued
                            .iter()
                            .map(|x| x.load(std::sync::atomic::Ordering::Relaxed))
                            .sum();
                        pb.set_position(total);
                    };
                    run::run(cfg, Some(&tick))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a simulation thread panicked"))
            .collect()
    });
    pb.finish_and_clear();
    if a.one.json {
        let out = serde_json::json!({ "raft": reports[0], "zab": reports[1] });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let c = &configs[0];
        println!(
            "consensus-lab compare: {} nodes, {} clients, {} ops, seed {}, faults {:?}, {:?} links",
            c.nodes, c.clients, c.ops, c.seed, c.faults, c.network
        );
        println!();
        println!("{:<28}{:>22}{:>22}", "", "raft", "zab");
        for (label, show) in compare_rows() {
            println!(
                "{label:<28}{:>22}{:>22}",
                show(&reports[0]),
                show(&reports[1])
            );
        }
        for r in &reports {
            if let Some(why) = r.failure() {
                println!("{} FAILED: {why}", r.config.protocol.name());
            }
        }
    }
    Ok(if reports.iter().all(RunReport::passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn cmd_serve(a: ServeArgs) -> Result<ExitCode> {
    let cfg = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str::<harness::net::ServeConfig>(&text)
                .with_context(|| format!("{} is not a valid config", path.display()))?
        }
        None => harness::net::ServeConfig {
            protocol: a.protocol,
            id: a.id.expect("required by clap"),
            peers: a.peers.expect("required by clap"),
            peer_http: a.peer_http.unwrap_or_default(),
            data_dir: a.data_dir.expect("required by clap"),
            http: a.http,
            cluster_id: a.cluster_id,
        },
    };
    cfg.validate()?;
    init_logging();
    runtime()?.block_on(harness::net::server::serve(cfg, stop_signal()))?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_cluster(a: ClusterArgs) -> Result<ExitCode> {
    use harness::net::launch::{LaunchConfig, LocalCluster};
    let temp = match &a.data_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("consensus-lab-")
                .tempdir()?,
        ),
    };
    let data_dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.as_ref().expect("made above").path().to_path_buf());
    let cfg = LaunchConfig {
        protocol: a.protocol,
        nodes: a.nodes,
        peer_base: a.peer_base,
        http_base: a.http_base,
        data_dir,
        cluster_id: a.cluster_id,
        exe: std::env::current_exe().context("cannot find the consensus-lab binary")?,
    };
    if a.peer_base as u64 + a.nodes > u16::MAX as u64
        || a.http_base as u64 + a.nodes > u16::MAX as u64
    {
        bail!(
            "--peer-base/--http-base leave no room for {} ports",
            a.nodes
        );
    }
    let rt = runtime()?;
    let mut cluster = LocalCluster::start(cfg.clone()).context("cannot start the nodes")?;
    println!(
        "{} cluster of {} nodes, data in {}",
        cfg.protocol.name(),
        cfg.nodes,
        cfg.data_dir.display()
    );
    for (id, pid) in cluster.pids() {
        println!(
            "  node {id}: http://{}  peer {}  pid {pid}",
            cfg.http_addr(id),
            cfg.peer_addr(id)
        );
    }
    println!(
        "try: curl -X PUT --data-binary hello http://{}/kv/greeting -L\n     consensus-lab load --endpoints {}\nCtrl-C stops every node.",
        cfg.http_addr(1),
        cfg.endpoints().join(",")
    );
    let code = rt.block_on(async {
        let mut poll = tokio::time::interval(std::time::Duration::from_millis(200));
        let stop = stop_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break ExitCode::SUCCESS,
                _ = poll.tick() => {
                    if let Some((id, status)) = cluster.exited() {
                        eprintln!("node {id} exited ({status}); stopping the cluster");
                        break ExitCode::FAILURE;
                    }
                }
            }
        }
    });
    cluster.stop();
    println!("stopped all {} nodes", cfg.nodes);
    Ok(code)
}

fn cmd_load(a: LoadArgs) -> Result<ExitCode> {
    if !(a.seconds > 0.0 && a.seconds <= 86_400.0) {
        bail!("--seconds must be between 0 and 86400");
    }
    let cfg = harness::net::LoadConfig {
        endpoints: a.endpoints,
        clients: a.clients as usize,
        duration: std::time::Duration::from_secs_f64(a.seconds),
        value_bytes: a.value_bytes as usize,
        read_fraction: a.reads,
        keys_per_client: a.keys,
        seed: a.seed,
        progress: std::io::stderr().is_terminal(),
    };
    let report = runtime()?.block_on(harness::net::load::run_load(cfg))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.ops > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Where the trace of one of several runs goes: `x.jsonl` becomes `x.<label>.jsonl`.
fn trace_path(base: &std::path::Path, label: &str, several: bool) -> std::path::PathBuf {
    if !several {
        return base.to_path_buf();
    }
    let label: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let ext = base
        .extension()
        .map(|e| e.to_string_lossy().to_string())
        .unwrap_or_else(|| "jsonl".into());
    base.with_file_name(format!("{stem}.{label}.{ext}"))
}

fn cmd_scenario(a: ScenarioArgs) -> Result<ExitCode> {
    use harness::scenario;
    if a.list {
        for s in scenario::SCENARIOS {
            println!("{:<18} {}", s.name, s.summary);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let name = a.name.expect("required by clap");
    let mut outcomes = Vec::new();
    for kind in a.protocol.kinds() {
        outcomes.extend(scenario::run(&name, kind, a.seed).map_err(anyhow::Error::msg)?);
    }
    if let Some(base) = &a.trace {
        let several = outcomes.len() > 1;
        for o in &outcomes {
            let path = trace_path(base, &o.label, several);
            let f = std::fs::File::create(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            harness::sim::trace::write_jsonl(&o.trace, std::io::BufWriter::new(f))
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("trace of {} written to {}", o.label, path.display());
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
        return Ok(ExitCode::SUCCESS);
    }
    for (i, o) in outcomes.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("== {} · {} (seed {}) ==", o.scenario, o.label, o.seed);
        for l in scenario::narrate(o) {
            println!("{l}");
        }
        println!("Outcome:");
        for v in &o.verdict {
            println!("  {v}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_view(a: ViewArgs) -> Result<ExitCode> {
    let mut traces = Vec::new();
    for path in std::iter::once(&a.trace).chain(a.other.as_ref()) {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let events = harness::sim::trace::read_jsonl(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if events.is_empty() {
            bail!("{} holds no events", path.display());
        }
        traces.push(events);
    }
    let html = harness::viewer::render(&traces)?;
    std::fs::write(&a.output, html)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    println!("wrote {}", a.output.display());
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line: clap's first line, which names the problem.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{first} (see --help)");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Run(a) => cmd_run(a),
        Command::Check(a) => cmd_check(a),
        Command::Compare(a) => cmd_compare(a),
        Command::Serve(a) => cmd_serve(a),
        Command::Cluster(a) => cmd_cluster(a),
        Command::Load(a) => cmd_load(a),
        Command::Scenario(a) => cmd_scenario(a),
        Command::View(a) => cmd_view(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
