//! The simulator's commands: `run`, `check` and `compare`.

use super::args::{CheckArgs, CompareArgs, RunArgs};
use super::bar;
use super::render::{print_compare, print_table};
use crate::run::{self, RunConfig, RunReport};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

/// `run`: one simulated run.
pub(super) fn cmd_run(a: RunArgs, out: &mut dyn Write) -> Result<ExitCode> {
    a.shape.validate(&[a.protocol])?;
    let cfg = a.shape.config(a.protocol, a.one.ops, a.one.seed);
    let pb = bar(
        a.one.ops,
        !a.one.json,
        "{spinner} simulating [{bar:40}] {pos}/{len} ops issued ({elapsed})",
    );
    let tick = |n: u64| pb.set_position(n);
    let report = match &a.one.trace {
        Some(path) => {
            let (report, trace) = run::run_with_trace(&cfg, Some(&tick));
            write_trace(path, &trace)?;
            report
        }
        None => run::run(&cfg, Some(&tick)),
    };
    pb.finish_and_clear();
    if let Some(path) = &a.one.plot {
        write_plot(path, std::slice::from_ref(&report))?;
    }
    if a.one.json {
        outln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        );
    } else {
        print_table(&report, out);
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `check`: a seed sweep.
pub(super) fn cmd_check(a: CheckArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let kinds = a.protocol.0.clone();
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
    // Per protocol, across the seeds: time without a leader, and messages per op.
    let spread: std::sync::Mutex<Spread> = Default::default();
    let on_done = |r: &RunReport| {
        {
            let mut s = spread.lock().expect("no panics hold this lock");
            let e = s.entry(r.config.protocol.name()).or_default();
            e.0.push(r.time_without_leader_ms);
            e.1.push(r.messages_per_op);
        }
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
        let app = match a.shape.app.name() {
            "kv" => String::new(),
            name => format!(" running app {name}"),
        };
        lines.push(format!(
            "{} of {}{app} under {:?} faults ({} each): {} passed, {} failed in {:.1} s",
            crate::counted(count, "seed"),
            kind.name(),
            a.shape.faults,
            crate::counted(a.ops, "op"),
            count - f.len() as u64,
            f.len(),
            t.elapsed().as_secs_f64()
        ));
        failures.extend(f);
    }
    pb.finish_and_clear();
    if let Some(dir) = &a.trace {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for r in &failures {
            let (_, events) = run::run_with_trace(&r.config, None);
            let path = dir.join(format!(
                "{}-seed{}.jsonl",
                r.config.protocol.name(),
                r.config.seed
            ));
            write_trace(&path, &events)?;
        }
    }
    if let Some(path) = &a.plot {
        let spread = spread.into_inner().expect("no panics hold this lock");
        write_sweep_plot(path, &spread, count, &a)?;
    }
    let secs = started.elapsed().as_secs_f64();
    let tally = tally.into_inner().expect("no panics hold this lock");
    if a.json {
        let json = serde_json::json!({
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
        outln!(out, "{}", serde_json::to_string_pretty(&json)?);
    } else {
        for (l, kind) in lines.iter().zip(&kinds) {
            outln!(out, "{l}");
            if let Some(f) = tally.get(kind.name()).filter(|f| !f.is_empty()) {
                let f: Vec<String> = f.iter().map(|(k, v)| format!("{k} {v}")).collect();
                outln!(out, "  faults injected: {}", f.join(", "));
            }
        }
        for r in &failures {
            outln!(
                out,
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

/// `compare`: the protocols side by side on one workload and fault schedule.
pub(super) fn cmd_compare(a: CompareArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let kinds = a.protocol.0.clone();
    a.shape.validate(&kinds)?;
    let configs: Vec<RunConfig> = kinds
        .iter()
        .map(|&k| a.shape.config(k, a.one.ops, a.one.seed))
        .collect();
    let pb = bar(
        a.one.ops * configs.len() as u64,
        !a.one.json,
        "{spinner} simulating [{bar:40}] {pos}/{len} ops issued ({elapsed})",
    );
    let issued: Vec<AtomicU64> = configs.iter().map(|_| AtomicU64::new(0)).collect();
    // One thread per protocol: the runs are independent and each is deterministic.
    let trace = a.one.trace.as_ref();
    let runs: Vec<(RunReport, Vec<crate::sim::TraceEvent>)> = std::thread::scope(|s| {
        let handles: Vec<_> = configs
            .iter()
            .enumerate()
            .map(|(i, cfg)| {
                let (pb, issued) = (&pb, &issued);
                s.spawn(move || {
                    let tick = move |n: u64| {
                        issued[i].store(n, Ordering::Relaxed);
                        pb.set_position(issued.iter().map(|x| x.load(Ordering::Relaxed)).sum());
                    };
                    match trace {
                        Some(_) => {
                            let (report, events) = run::run_with_trace(cfg, Some(&tick));
                            (report, events)
                        }
                        None => (run::run(cfg, Some(&tick)), Vec::new()),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a simulation thread panicked"))
            .collect()
    });
    pb.finish_and_clear();
    let mut reports = Vec::new();
    for (report, events) in runs {
        if let Some(base) = trace {
            let path = super::story::trace_path(base, report.config.protocol.name(), true);
            write_trace(&path, &events)?;
        }
        reports.push(report);
    }
    if let Some(path) = &a.one.plot {
        write_plot(path, &reports)?;
    }
    if a.one.json {
        let by_name: serde_json::Map<String, serde_json::Value> = reports
            .iter()
            .map(|r| {
                Ok((
                    r.config.protocol.name().to_string(),
                    serde_json::to_value(r)?,
                ))
            })
            .collect::<Result<_>>()?;
        outln!(out, "{}", serde_json::to_string_pretty(&by_name)?);
    } else {
        print_compare(&reports, out);
    }
    Ok(if reports.iter().all(RunReport::passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Writes a run's trace as JSON Lines and says where.
fn write_trace(path: &std::path::Path, events: &[crate::sim::TraceEvent]) -> Result<()> {
    let f =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    crate::sim::trace::write_jsonl(events, std::io::BufWriter::new(f))
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("trace written to {}", path.display());
    Ok(())
}

/// Draws the latency CDFs of `reports` (writes and reads, per protocol) as SVG.
fn write_plot(path: &std::path::Path, reports: &[RunReport]) -> Result<()> {
    let svg = crate::report::runs_svg(reports)?;
    std::fs::write(path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("plot written to {}", path.display());
    Ok(())
}

/// Per protocol, across a sweep's seeds: ms without a leader, and messages per op.
type Spread = crate::report::Spread;

/// Draws a sweep's spread across seeds: time without a leader and messages per op.
fn write_sweep_plot(
    path: &std::path::Path,
    spread: &Spread,
    seeds: u64,
    a: &CheckArgs,
) -> Result<()> {
    let title = format!(
        "{}, {}, {} each, faults {}",
        crate::counted(seeds, "seed"),
        crate::counted(a.shape.nodes, "node"),
        crate::counted(a.ops, "op"),
        a.shape.faults.name()
    );
    let svg = crate::report::sweep_svg(&title, spread)?;
    std::fs::write(path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("plot written to {}", path.display());
    Ok(())
}
