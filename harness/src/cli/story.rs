//! The teaching commands: `scenario` and `view`.

use super::args::{Figure16Args, ReportArgs, ScenarioArgs, ViewArgs};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::process::ExitCode;

/// Where the trace of one of several runs goes: `x.jsonl` becomes `x.<label>.jsonl`.
pub(super) fn trace_path(base: &std::path::Path, label: &str, several: bool) -> std::path::PathBuf {
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

/// `scenario`: a classic story, narrated.
pub(super) fn cmd_scenario(a: ScenarioArgs, out: &mut dyn Write) -> Result<ExitCode> {
    use crate::scenario;
    if a.list {
        for s in scenario::SCENARIOS {
            outln!(out, "{:<18} {}", s.name, s.summary);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let name = a.name.expect("required by clap");
    let mut outcomes = Vec::new();
    for kind in a.protocol.0.iter().copied() {
        outcomes.extend(scenario::run(&name, kind, a.seed).map_err(anyhow::Error::msg)?);
    }
    if let Some(base) = &a.trace {
        let several = outcomes.len() > 1;
        for o in &outcomes {
            let path = trace_path(base, &o.label, several);
            let f = std::fs::File::create(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            crate::sim::trace::write_jsonl(&o.trace, std::io::BufWriter::new(f))
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("trace of {} written to {}", o.label, path.display());
        }
    }
    if a.json {
        outln!(out, "{}", serde_json::to_string_pretty(&outcomes)?);
        return Ok(ExitCode::SUCCESS);
    }
    for (i, o) in outcomes.iter().enumerate() {
        if i > 0 {
            outln!(out);
        }
        let _ = write!(out, "{}", scenario::render(o));
    }
    Ok(ExitCode::SUCCESS)
}

/// `view`: the HTML replay of one or two traces.
pub(super) fn cmd_view(a: ViewArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let mut traces = Vec::new();
    for path in std::iter::once(&a.trace).chain(a.other.as_ref()) {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let events = crate::sim::trace::read_jsonl(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if events.is_empty() {
            bail!("{} holds no events", path.display());
        }
        traces.push(events);
    }
    let html = crate::viewer::render(&traces)?;
    std::fs::write(&a.output, html)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    outln!(out, "wrote {}", a.output.display());
    Ok(ExitCode::SUCCESS)
}

/// `figure16`: the election-time CDFs, as SVG and a table.
pub(super) fn cmd_figure16(a: Figure16Args, out: &mut dyn Write) -> Result<ExitCode> {
    let curves = crate::figure16::run(a.trials, Some(&|label: &str| eprintln!("done: {label}")));
    let svg = crate::figure16::svg(&curves, a.trials)?;
    std::fs::write(&a.output, svg)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    if a.json {
        let quantile =
            |c: &crate::figure16::Curve, q: f64| (!c.ms.is_empty()).then(|| c.quantile(q));
        let json: Vec<serde_json::Value> = curves
            .iter()
            .map(|c| {
                serde_json::json!({
                    "label": c.label,
                    "protocol": c.protocol,
                    "trials": a.trials,
                    "no_leader": c.no_leader,
                    "p50": quantile(c, 0.5),
                    "p90": quantile(c, 0.9),
                    "p99": quantile(c, 0.99),
                    "max": quantile(c, 1.0),
                    "ms": c.ms,
                })
            })
            .collect();
        outln!(out, "{}", serde_json::to_string_pretty(&json)?);
    } else {
        outln!(
            out,
            "{:<44}{:>9}{:>9}{:>9}{:>9}{:>10}",
            "ms from crash to new leader",
            "p50",
            "p90",
            "p99",
            "max",
            "no leader"
        );
        for c in &curves {
            outln!(
                out,
                "{:<44}{:>9.1}{:>9.1}{:>9.1}{:>9.1}{:>10}",
                c.label,
                c.quantile(0.5),
                c.quantile(0.9),
                c.quantile(0.99),
                c.quantile(1.0),
                c.no_leader
            );
        }
        outln!(out, "wrote {}", a.output.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `report`: one page of plots.
pub(super) fn cmd_report(a: ReportArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let o = crate::report::ReportOptions {
        ops: a.ops as usize,
        trials: a.trials,
        seeds: a.seeds,
        sweep_ops: a.sweep_ops as usize,
        real_failover: if a.no_real {
            None
        } else {
            Some(std::env::current_exe().context("cannot find the consensus-lab binary")?)
        },
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let report = crate::report::build(&o, &|step: &str| {
        eprintln!("[{:5.1} s] {step}", started.elapsed().as_secs_f64())
    })?;
    std::fs::write(&a.output, &report.html)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    if let Some(dir) = &a.svg_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for s in &report.sections {
            let path = dir.join(format!("{}.svg", s.slug));
            std::fs::write(&path, &s.svg)
                .with_context(|| format!("cannot write {}", path.display()))?;
            outln!(out, "wrote {}", path.display());
        }
    }
    outln!(
        out,
        "wrote {} in {:.1} s",
        a.output.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
