//! How reports look in a terminal.

use super::yes_no;
use crate::run::RunReport;
use std::io::Write;

/// The report of one run, as a table.
pub(super) fn print_table(r: &RunReport, out: &mut dyn Write) {
    let c = &r.config;
    outln!(
        out,
        "consensus-lab run: {}, {}, {}, {}, seed {}, faults {:?}{}",
        c.protocol.name(),
        crate::counted(c.nodes, "node"),
        crate::counted(c.clients, "client"),
        crate::counted(c.ops, "op"),
        c.seed,
        c.faults,
        match c.app.name() {
            "kv" => String::new(),
            name => format!(", app {name}"),
        }
    );
    outln!(out);
    outln!(out, "verdict");
    outln!(
        out,
        "  linearizable              {}",
        yes_no(r.linearizable)
    );
    outln!(out, "  acknowledged writes lost  {}", r.lost_acked_writes);
    outln!(
        out,
        "  diverged replicas         {}",
        if r.diverged.is_empty() {
            "none".to_string()
        } else {
            format!("{:?}", r.diverged)
        }
    );
    outln!(out, "  converged after faults    {}", yes_no(r.converged));
    if let Some(t) = r.caught_up_after_heal_ms {
        outln!(out, "  caught up after last heal {t:.0} ms (virtual)");
    }
    for p in r.liveness.iter().chain(&r.final_state) {
        outln!(out, "  problem                   {p}");
    }
    if !r.faults.is_empty() {
        let f: Vec<String> = r.faults.iter().map(|(k, v)| format!("{k} {v}")).collect();
        outln!(out, "  faults injected           {}", f.join(", "));
    }
    for v in &r.violations {
        outln!(out, "  violation                 {v}");
    }
    if let Some(why) = r.failure() {
        outln!(out, "  FAILED: {why}");
    }
    outln!(out, "operations");
    outln!(
        out,
        "  ok / failed / unknown     {} / {} / {}",
        r.ops_ok,
        r.ops_failed,
        r.ops_unknown
    );
    outln!(
        out,
        "  throughput                {:.0} ops/s (virtual)",
        r.throughput_ops_per_sec
    );
    outln!(
        out,
        "  latency p50 / p99 / max   {:.2} / {:.2} / {:.2} ms (virtual)",
        r.commit_latency.p50_ms,
        r.commit_latency.p99_ms,
        r.commit_latency.max_ms
    );
    outln!(out, "leadership");
    outln!(out, "  elections                 {}", r.elections);
    outln!(out, "  leader changes            {}", r.leader_changes);
    outln!(
        out,
        "  time without leader       {:.1} ms of {:.1} ms",
        r.time_without_leader_ms,
        r.virtual_ms
    );
    outln!(
        out,
        "  election time mean / max  {:.1} / {:.1} ms",
        r.election_time_mean_ms,
        r.election_time_max_ms
    );
    outln!(out, "cost");
    outln!(out, "  committed commands        {}", r.committed_ops);
    outln!(
        out,
        "  messages per op           {:.2} ({} in all)",
        r.messages_per_op,
        r.messages
    );
    outln!(
        out,
        "  messages per read         {:.2} (outside the log)",
        r.messages_per_read
    );
    outln!(
        out,
        "  bytes per op              {:.1} ({} in all)",
        r.bytes_per_op,
        r.bytes
    );
    outln!(out, "  fsyncs                    {}", r.fsyncs);
    outln!(out, "simulation");
    outln!(out, "  events                    {}", r.sim_events);
    outln!(
        out,
        "  wall time                 {:.0} ms ({:.0} events/s)",
        r.wall_ms,
        r.sim_events as f64 / (r.wall_ms / 1e3).max(1e-9)
    );
    outln!(out, "  trace hash                {}", r.trace_hash);
}

/// The rows of the side-by-side table: a label and how to show one report's value.
pub(super) type Row = (&'static str, fn(&RunReport) -> String);

pub(super) fn compare_rows() -> Vec<Row> {
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
        ("read latency p50", |r| ms(r.read_latency.p50_ms)),
        ("read latency p99", |r| ms(r.read_latency.p99_ms)),
        ("read throughput (virtual)", |r| {
            format!("{:.0} ops/s", r.read_throughput_ops_per_sec)
        }),
        ("stale reads", |r| {
            r.local_reads
                .as_ref()
                .map_or("-".into(), |l| format!("{} of {}", l.stale, l.reads))
        }),
        ("elections", |r| r.elections.to_string()),
        ("leader changes", |r| r.leader_changes.to_string()),
        ("time without leader", |r| ms(r.time_without_leader_ms)),
        ("election time mean", |r| ms(r.election_time_mean_ms)),
        ("election time max", |r| ms(r.election_time_max_ms)),
        ("committed commands", |r| r.committed_ops.to_string()),
        ("messages per op", |r| format!("{:.2}", r.messages_per_op)),
        ("messages per read (outside the log)", |r| {
            format!("{:.2}", r.messages_per_read)
        }),
        ("bytes per op", |r| format!("{:.1}", r.bytes_per_op)),
        ("fsyncs", |r| r.fsyncs.to_string()),
        ("simulated events", |r| r.sim_events.to_string()),
        ("wall time", |r| format!("{:.0} ms", r.wall_ms)),
    ]
}

/// Reports of the same run under several protocols, one column each.
pub(super) fn print_compare(reports: &[RunReport], out: &mut dyn Write) {
    let Some(c) = reports.first().map(|r| &r.config) else {
        return;
    };
    outln!(
        out,
        "consensus-lab compare: {}, {}, {}, seed {}, faults {:?}, {:?} links",
        crate::counted(c.nodes, "node"),
        crate::counted(c.clients, "client"),
        crate::counted(c.ops, "op"),
        c.seed,
        c.faults,
        c.network
    );
    outln!(out);
    let mut head = format!("{:<28}", "");
    for r in reports {
        head += &format!("{:>22}", r.config.protocol.name());
    }
    outln!(out, "{head}");
    for (label, show) in compare_rows() {
        let mut row = format!("{label:<28}");
        for r in reports {
            row += &format!("{:>22}", show(r));
        }
        outln!(out, "{row}");
    }
    for r in reports {
        if let Some(why) = r.failure() {
            outln!(out, "{} FAILED: {why}", r.config.protocol.name());
        }
    }
}
