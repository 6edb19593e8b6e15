//! The `consensus-lab` command line, as a library: the binary calls [`main`]; tests call
//! [`run`] with any registered protocol and read what it wrote.

/// `println!` into the command's output; a closed output is not an error worth a panic.
macro_rules! outln {
    ($out:expr) => {{
        let _ = writeln!($out);
    }};
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

mod args;
mod real;
mod render;
mod sim;
mod story;

use args::{
    CheckArgs, ClusterArgs, CompareArgs, Figure16Args, LoadArgs, MemberArgs, ReportArgs, RunArgs,
    ScenarioArgs, ServeArgs, TortureArgs, ViewArgs,
};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
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
    /// The protocols (Raft and ZAB by default) on the identical workload and fault schedule, side by side.
    Compare(CompareArgs),
    /// One node of the replicated key-value service: a file log, TCP to its peers, HTTP for clients.
    Serve(ServeArgs),
    /// A local cluster of `serve` processes on loopback; Ctrl-C stops them all.
    Cluster(ClusterArgs),
    /// Closed-loop load against a cluster's HTTP API: throughput and latency percentiles.
    Load(LoadArgs),
    /// A running cluster's members: list them, or hand leadership to one.
    Member(MemberArgs),
    /// Faults against a local cluster of real processes (SIGKILL, SIGSTOP, partitions through
    /// proxies) under a client workload; then the history is checked for linearizability and
    /// every node for the acknowledged writes.
    Torture(TortureArgs),
    /// Replays a classic story (election, partition, ...) in the simulator and narrates it.
    Scenario(ScenarioArgs),
    /// Writes a self-contained HTML page that replays one or two traces side by side.
    View(ViewArgs),
    /// Figure 16 of the Raft paper for both protocols: time to a new leader after a crash, as
    /// CDFs over many trials, per election timeout range; written as SVG.
    Figure16(Figure16Args),
    /// One HTML page of plots for both protocols: latency and throughput over time with the
    /// faults shaded, latency CDFs, reads per level, Figure 16, and a seed sweep.
    Report(ReportArgs),
}

pub(super) fn bar(len: u64, show: bool, template: &str) -> ProgressBar {
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

pub(super) fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

/// The binary's entry point: the process's arguments, output to stdout.
pub fn main() -> ExitCode {
    run(std::env::args_os(), &mut std::io::stdout().lock())
}

/// Runs the command line `args` (the program's name first), writing its output to `out`.
pub fn run<I, T>(args: I, out: &mut dyn Write) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
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
            let mut lines = text.lines();
            let mut first = lines
                .next()
                .unwrap_or("error: invalid arguments")
                .to_string();
            // "...not provided:" is followed by the arguments, one per indented line.
            if first.ends_with(':') {
                let named: Vec<&str> = lines
                    .take_while(|l| l.starts_with("  "))
                    .map(str::trim)
                    .collect();
                first = format!("{first} {}", named.join(", "));
            }
            eprintln!("{first} (see --help)");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Run(a) => sim::cmd_run(a, out),
        Command::Check(a) => sim::cmd_check(a, out),
        Command::Compare(a) => sim::cmd_compare(a, out),
        Command::Serve(a) => real::cmd_serve(a),
        Command::Cluster(a) => real::cmd_cluster(a, out),
        Command::Load(a) => real::cmd_load(a, out),
        Command::Member(a) => real::cmd_member(a, out),
        Command::Torture(a) => real::cmd_torture(a, out),
        Command::Scenario(a) => story::cmd_scenario(a, out),
        Command::View(a) => story::cmd_view(a, out),
        Command::Figure16(a) => story::cmd_figure16(a, out),
        Command::Report(a) => story::cmd_report(a, out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
