//! `consensus-lab`: run consensus protocols in a deterministic simulator, under a client
//! workload and faults, and check what the clients saw.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use harness::run::{self, RunConfig, RunReport};
use harness::{Faults, KeyDistribution, ProtocolKind, Semantics};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::ops::RangeInclusive;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "consensus-lab",
    version,
    about = "Raft (and soon ZAB) side by side in a deterministic simulator",
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
}

#[derive(Args, Clone)]
struct Shape {
    /// Protocol to run.
    #[arg(long, value_enum, default_value_t = ProtocolKind::Raft)]
    protocol: ProtocolKind,
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
    #[command(flatten)]
    shape: Shape,
    /// Operations to issue, over all clients.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    ops: u64,
    /// Seed: the same seed gives the same run, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CheckArgs {
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
    fn config(&self, ops: u64, seed: u64) -> RunConfig {
        RunConfig {
            protocol: self.protocol,
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
    fn validate(&self) -> Result<()> {
        if self.protocol == ProtocolKind::Zab && self.network == Semantics::Datagram {
            bail!("ZAB needs FIFO links (ZooKeeper runs it over TCP): use --network stream");
        }
        Ok(())
    }
}

fn cmd_run(a: RunArgs) -> Result<ExitCode> {
    a.shape.validate()?;
    let cfg = a.shape.config(a.ops, a.seed);
    let pb = bar(
        a.ops,
        !a.json,
        "{spinner} simulating [{bar:40}] {pos}/{len} ops issued ({elapsed})",
    );
    let tick = |n: u64| pb.set_position(n);
    let report = run::run(&cfg, Some(&tick));
    pb.finish_and_clear();
    if a.json {
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
    a.shape.validate()?;
    let base = a.shape.config(a.ops, 0);
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
        count,
        !a.json,
        "{spinner} checking [{bar:40}] {pos}/{len} seeds, {msg} ({elapsed}, eta {eta})",
    );
    pb.set_message("0 failing");
    let failing = std::sync::atomic::AtomicU64::new(0);
    let on_done = |r: &RunReport| {
        if !r.passed() {
            let f = failing.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            pb.set_message(format!("{f} failing"));
            if !a.json {
                pb.println(format!(
                    "seed {} FAILED: {}\n  reproduce: {}",
                    r.config.seed,
                    r.failure().unwrap_or_default(),
                    r.config.command_line()
                ));
            }
        }
        pb.inc(1);
    };
    let started = std::time::Instant::now();
    let failures = run::sweep(&base, a.seeds.clone(), jobs, &on_done);
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    if a.json {
        let out = serde_json::json!({
            "protocol": a.shape.protocol,
            "faults": a.shape.faults,
            "seeds": format!("{}..={}", a.seeds.start(), a.seeds.end()),
            "runs": count,
            "failed": failures.len(),
            "failures": failures.iter().map(|r| serde_json::json!({
                "seed": r.config.seed,
                "why": r.failure(),
                "reproduce": r.config.command_line(),
            })).collect::<Vec<_>>(),
            "wall_ms": secs * 1e3,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} seeds of {} under {:?} faults ({} ops each): {} passed, {} failed in {:.1} s",
            count,
            a.shape.protocol.name(),
            a.shape.faults,
            a.ops,
            count - failures.len() as u64,
            failures.len(),
            secs
        );
        for r in &failures {
            println!("  seed {}: {}", r.config.seed, r.config.command_line());
        }
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
