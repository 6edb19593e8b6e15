//! Figures of runs (latency CDFs, latency and throughput over time with the fault windows
//! shaded) and the self-contained HTML page of the `report` command.

use crate::net::load::Bucket;
use crate::plot::{Chart, Line, Panel, Series, TimePanel};
use crate::run::RunReport;

/// The x axis of the simulator's time charts.
const VIRTUAL_MS: &str = "virtual ms from the start of the run";

/// How many time buckets a time chart aims for.
const BUCKETS: f64 = 120.0;

/// The width of one time bucket for a run of `duration_ms`: a multiple of 10 ms.
pub fn bucket_ms(duration_ms: f64) -> f64 {
    ((duration_ms / BUCKETS / 10.0).ceil() * 10.0).max(10.0)
}

/// What was answered in each bucket of `width` ms up to `end`, from (answered at, latency)
/// samples: the same timeline a `load` run records.
fn buckets<'a>(
    samples: impl IntoIterator<Item = &'a (f64, f64)>,
    width: f64,
    end: f64,
) -> Vec<Bucket> {
    let n = (end / width).ceil().max(1.0) as usize;
    let mut b = vec![Bucket::default(); n];
    for &(at, ms) in samples {
        let i = ((at / width) as usize).min(n - 1);
        b[i].ops += 1;
        b[i].max_ms = b[i].max_ms.max(ms);
    }
    b
}

/// A timeline of `width`-ms buckets as two lines labelled `label`: the slowest answer of
/// each bucket that answered any (at least 1 ms, for a log axis), and answers per second.
fn timeline_lines(label: &str, timeline: &[Bucket], width: f64) -> (Line, Line) {
    let x = |i: usize| (i as f64 + 0.5) * width;
    let slowest = timeline
        .iter()
        .enumerate()
        .filter(|(_, b)| b.ops > 0)
        .map(|(i, b)| (x(i), b.max_ms.max(1.0)))
        .collect();
    let per_second = timeline
        .iter()
        .enumerate()
        .map(|(i, b)| (x(i), b.ops as f64 * 1000.0 / width))
        .collect();
    (
        Line {
            label: label.to_string(),
            points: slowest,
        },
        Line {
            label: label.to_string(),
            points: per_second,
        },
    )
}

/// The highest y of `line`, or `floor`.
fn top_of(line: &Line, floor: f64) -> f64 {
    line.points.iter().map(|p| p.1).fold(floor, f64::max)
}

/// The latency CDFs (writes, and reads if any) of each report.
pub fn latency_series(reports: &[RunReport], reads_only: bool) -> (Vec<Series>, f64) {
    let mut series = Vec::new();
    let mut top: f64 = 1.0;
    for r in reports {
        let name = r.config.protocol.name();
        let level = r.config.read_consistency.name();
        let kinds: &[(bool, String)] = &[
            (false, format!("{name} writes")),
            (true, format!("{name} reads ({level})")),
        ];
        for (reads, label) in kinds {
            if reads_only && !reads {
                continue;
            }
            let mut v = r.latency_samples.latencies(*reads);
            if v.is_empty() {
                continue;
            }
            v.sort_by(f64::total_cmp);
            // The axis ends at the 99th percentile of the slowest series, so the bulk shows.
            top = top.max(v[(v.len() - 1) * 99 / 100]);
            series.push(Series {
                label: label.clone(),
                values: v,
            });
        }
    }
    (series, top * 1.1)
}

/// One figure of runs on the same seed: latency CDFs, then the slowest answer and the
/// throughput over time, with the nemesis' fault windows shaded.
pub fn runs_svg(reports: &[RunReport]) -> anyhow::Result<String> {
    anyhow::ensure!(!reports.is_empty(), "no runs to plot");
    let c = &reports[0].config;
    let title = format!(
        "{}: {}, {}, {}, seed {}, faults {}, reads {}",
        reports
            .iter()
            .map(|r| r.config.protocol.name())
            .collect::<Vec<_>>()
            .join(" vs "),
        crate::counted(c.nodes, "node"),
        crate::counted(c.clients, "client"),
        crate::counted(c.ops, "op"),
        c.seed,
        c.faults.name(),
        c.read_consistency.name()
    );
    let (series, top) = latency_series(reports, false);
    let end = reports
        .iter()
        .flat_map(|r| {
            let s = &r.latency_samples;
            s.writes.iter().chain(&s.reads).map(|&(at, _)| at)
        })
        .fold(1.0, f64::max);
    let width = bucket_ms(end);
    let mut slowest = Vec::new();
    let mut throughput = Vec::new();
    let mut y_lat: f64 = 10.0;
    let mut y_ops: f64 = 1.0;
    for r in reports {
        let s = &r.latency_samples;
        let timeline = buckets(s.writes.iter().chain(&s.reads), width, end);
        let (lat, ops) = timeline_lines(r.config.protocol.name(), &timeline, width);
        y_lat = y_lat.max(top_of(&lat, 0.0));
        y_ops = y_ops.max(top_of(&ops, 0.0));
        slowest.push(lat);
        throughput.push(ops);
    }
    // One seed draws one fault schedule, whatever the protocol; each run stops it when its
    // workload ends: shade the longest.
    let longest = reports
        .iter()
        .max_by(|a, b| {
            let end = |r: &RunReport| r.fault_windows.last().map_or(0.0, |w| w.end_ms);
            end(a).total_cmp(&end(b))
        })
        .expect("not empty");
    let shaded: Vec<(f64, f64, &str)> = longest
        .fault_windows
        .iter()
        .map(|w| (w.start_ms, w.end_ms, w.kind))
        .collect();
    let lat_label = format!("slowest answer per {width} ms (ms, log)");
    let ops_label = format!("answers per second ({width} ms buckets)");
    let charts = [
        Chart::Cdf(Panel {
            x_label: "ms from invocation to answer",
            x_max: top,
            series: &series,
        }),
        Chart::Time(TimePanel {
            x_label: VIRTUAL_MS,
            y_label: &lat_label,
            x_max: end,
            y_max: y_lat * 1.5,
            log_y: true,
            lines: &slowest,
            shaded: &shaded,
        }),
        Chart::Time(TimePanel {
            x_label: VIRTUAL_MS,
            y_label: &ops_label,
            x_max: end,
            y_max: y_ops * 1.15,
            log_y: false,
            lines: &throughput,
            shaded: &shaded,
        }),
    ];
    crate::plot::figure_svg(&title, &charts, 1)
}

/// Read latency CDFs of runs that differ in read level, on one chart.
pub fn read_levels_svg(reports: &[RunReport]) -> anyhow::Result<String> {
    let (series, top) = latency_series(reports, true);
    anyhow::ensure!(!series.is_empty(), "no reads to plot");
    let c = &reports[0].config;
    let title = format!(
        "Read latency by read level: {}, {}, faults {}, {:.0}% reads",
        crate::counted(c.nodes, "node"),
        crate::counted(c.clients, "client"),
        c.faults.name(),
        c.read_ratio * 100.0
    );
    crate::plot::cdf_svg(&title, "ms from invocation to answer", top, &series)
}

/// A load run on a real cluster over time: answers per second and the slowest answer per
/// bucket, with the span from a killed leader to the recovery shaded.
pub fn load_svg(r: &crate::net::LoadReport) -> anyhow::Result<String> {
    let width = crate::net::load::BUCKET.as_secs_f64() * 1e3;
    let name = r.protocol.clone().unwrap_or_else(|| "unknown".into());
    // The last bucket is cut short by the end of the run: leave it out.
    let whole = ((r.seconds * 1e3 / width) as usize).min(r.timeline.len());
    let timeline = &r.timeline[..whole];
    let (lat, per_second) = timeline_lines(&name, timeline, width);
    let (slowest, ops) = ([lat], [per_second]);
    let end = timeline.len().max(1) as f64 * width;
    let shaded: Vec<(f64, f64, &str)> = r
        .killed
        .iter()
        .map(|k| {
            let from = k.at_s * 1e3;
            let to = k.recovered_after_s.map_or(end, |s| from + s * 1e3);
            (
                from,
                to.max(from + width / 4.0),
                "leader killed, until half the rate is back",
            )
        })
        .collect();
    let y_ops = top_of(&ops[0], 1.0) * 1.15;
    let y_lat = top_of(&slowest[0], 10.0) * 1.5;
    let title = format!(
        "{name} on a real cluster: {}, {} B values, {:.0}% reads{}",
        crate::counted(r.clients, "client"),
        r.value_bytes,
        r.reads as f64 * 100.0 / r.ops.max(1) as f64,
        r.killed.as_ref().map_or(String::new(), |k| format!(
            ", leader n{} killed at {:.1} s{}",
            k.node,
            k.at_s,
            k.recovered_after_s
                .map_or(String::from(", never recovered"), |s| format!(
                    ", half the rate back {:.0} ms later",
                    s * 1e3
                ))
        ))
    );
    let ops_label = format!("answers per second ({width} ms buckets)");
    let lat_label = format!("slowest answer per {width} ms (ms, log)");
    crate::plot::figure_svg(
        &title,
        &[
            Chart::Time(TimePanel {
                x_label: "ms from the start of the load (wall clock)",
                y_label: &ops_label,
                x_max: end,
                y_max: y_ops,
                log_y: false,
                lines: &ops,
                shaded: &shaded,
            }),
            Chart::Time(TimePanel {
                x_label: "ms from the start of the load (wall clock)",
                y_label: &lat_label,
                x_max: end,
                y_max: y_lat,
                log_y: true,
                lines: &slowest,
                shaded: &shaded,
            }),
        ],
        1,
    )
}

/// Per protocol, across a sweep's seeds: ms without a leader, and messages per op.
pub type Spread = std::collections::BTreeMap<&'static str, (Vec<f64>, Vec<f64>)>;

/// Histograms across a sweep's seeds: time without a leader, and messages per op.
pub fn sweep_svg(title: &str, spread: &Spread) -> anyhow::Result<String> {
    // `second`: messages per op; otherwise time without a leader.
    let series = |second: bool| -> Vec<Series> {
        spread
            .iter()
            .map(|(name, (leaderless, messages))| Series {
                label: name.to_string(),
                values: if second { messages } else { leaderless }.clone(),
            })
            .collect()
    };
    let top = |s: &[Series]| {
        s.iter()
            .flat_map(|s| s.values.iter().copied())
            .fold(1.0f64, f64::max)
            * 1.05
    };
    let leaderless = series(false);
    let messages = series(true);
    crate::plot::figure_svg(
        title,
        &[
            Chart::Histogram(Panel {
                x_label: "ms without a leader (virtual)",
                x_max: top(&leaderless),
                series: &leaderless,
            }),
            Chart::Histogram(Panel {
                x_label: "messages per committed op",
                x_max: top(&messages),
                series: &messages,
            }),
        ],
        2,
    )
}

/// A real local cluster of `protocol` (3 processes of `exe`), 64 writers for 6 s, the leader
/// SIGKILLed at 2.5 s: throughput and the slowest answer over time.
fn failover(protocol: crate::Protocol, exe: &std::path::Path) -> anyhow::Result<Section> {
    let dir = tempfile::tempdir()?;
    let base = crate::net::launch::free_port_base(6)?;
    let cfg = crate::net::launch::LaunchConfig {
        protocol,
        nodes: 3,
        spares: 0,
        peer_base: base,
        http_base: base + 3,
        data_dir: dir.path().to_path_buf(),
        cluster_id: "report".into(),
        exe: exe.to_path_buf(),
        quiet: true,
        links: Default::default(),
        tls: false,
        etcd_base: None,
        zk_base: None,
    };
    let endpoints = cfg.endpoints();
    let mut cluster = crate::net::launch::LocalCluster::start(cfg)?;
    let load = crate::net::LoadConfig {
        system: crate::net::peers::System::Lab,
        tls: None,
        endpoints,
        clients: 64,
        duration: std::time::Duration::from_secs(6),
        value_bytes: 100,
        read_fraction: 0.0,
        read_consistency: consensus_core::ReadLevel::Log,
        keys_per_client: 1000,
        seed: 1,
        progress: false,
        kill_leader_at: Some(std::time::Duration::from_millis(2500)),
    };
    let report = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(crate::net::load::run_load(load));
    cluster.stop();
    let report = report?;
    let back = report
        .killed
        .as_ref()
        .and_then(|k| k.recovered_after_s)
        .map_or("never, within the run".to_string(), |s| {
            format!("{:.0} ms later", s * 1e3)
        });
    Ok(Section {
        slug: format!("failover-{}", protocol.name()),
        heading: format!("Failover under load: a real {} cluster", protocol.name()),
        text: format!(
            "Wall clock, not virtual time: 3 local processes, 64 closed-loop writers, 100-byte \
             values, fsync on; the leader SIGKILLed at 2.5 s; half the rate back {back}; {:.0} \
             writes/s overall. Measured on the machine that wrote this page.\n$ consensus-lab \
             cluster --protocol {p} --restart & consensus-lab load --seconds 6 \
             --kill-leader-at 2.5 --plot FILE.svg",
            report.ops_per_sec,
            p = protocol.name()
        ),
        svg: load_svg(&report)?,
    })
}

/// One section of a report page.
pub struct Section {
    /// A file name for the figure alone (without extension).
    pub slug: String,
    /// The heading.
    pub heading: String,
    /// What the figure shows and the command that draws it alone (HTML-escaped here).
    pub text: String,
    /// The figure, an SVG document.
    pub svg: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A self-contained HTML page of figures (no scripts, no network).
pub fn page(title: &str, intro: &str, sections: &[Section]) -> String {
    let mut html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n\
         <style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;\
         color:#222}}svg{{max-width:100%;height:auto;border:1px solid #ddd}}\
         nav a{{margin-right:1em}}p.cmd{{font-family:monospace;background:#f4f4f4;\
         padding:.4em}}</style></head><body>\n<h1>{t}</h1>\n<p>{i}</p>\n<nav>",
        t = escape(title),
        i = escape(intro)
    );
    for (k, s) in sections.iter().enumerate() {
        html.push_str(&format!("<a href=\"#f{k}\">{}</a>", escape(&s.heading)));
    }
    html.push_str("</nav>\n");
    for (k, s) in sections.iter().enumerate() {
        let (text, cmd) = s.text.split_once("\n$ ").unwrap_or((&s.text, ""));
        html.push_str(&format!(
            "<section id=\"f{k}\"><h2>{}</h2>\n<p>{}</p>\n",
            escape(&s.heading),
            escape(text)
        ));
        if !cmd.is_empty() {
            html.push_str(&format!("<p class=\"cmd\">$ {}</p>\n", escape(cmd)));
        }
        // An SVG document's XML declaration is not allowed inside HTML.
        let svg = s.svg.trim_start();
        let svg = match svg.strip_prefix("<?xml") {
            Some(rest) => rest.split_once("?>").map_or(svg, |(_, body)| body),
            None => svg,
        };
        html.push_str(svg);
        html.push_str("\n</section>\n");
    }
    html.push_str("</body></html>\n");
    html
}

/// What the `report` command draws.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// The protocols compared.
    pub protocols: Vec<crate::Protocol>,
    /// Operations per comparison run.
    pub ops: usize,
    /// Trials per curve of Figure 16.
    pub trials: u64,
    /// Seeds of the sweep (1 to this).
    pub seeds: u64,
    /// Operations per run of the sweep.
    pub sweep_ops: usize,
    /// Threads.
    pub jobs: usize,
    /// The `consensus-lab` binary, to measure a failover under load on a real local cluster
    /// of each protocol (`None`: simulator figures only).
    pub real_failover: Option<std::path::PathBuf>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            protocols: crate::protocol::builtin(),
            ops: 20_000,
            trials: 1000,
            seeds: 100,
            sweep_ops: 2_000,
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            real_failover: None,
        }
    }
}

/// The comparison configs of one fault kind and read level, one per protocol.
fn configs(
    o: &ReportOptions,
    faults: crate::Faults,
    read_ratio: Option<f64>,
    level: consensus_core::ReadLevel,
) -> Vec<crate::RunConfig> {
    o.protocols
        .iter()
        .map(|&protocol| {
            let d = crate::RunConfig::default();
            crate::RunConfig {
                protocol,
                ops: o.ops,
                faults,
                read_ratio: read_ratio.unwrap_or(d.read_ratio),
                read_consistency: level,
                ..d
            }
        })
        .collect()
}

/// Runs everything the report shows and returns its page; `progress` hears each step.
pub fn build(o: &ReportOptions, progress: &dyn Fn(&str)) -> anyhow::Result<Report> {
    use crate::Faults;
    use consensus_core::ReadLevel;
    let names: Vec<&str> = o.protocols.iter().map(|p| p.name()).collect();
    let protocols = names.join(",");
    let mut sections = Vec::new();

    for (slug, faults, what) in [
        (
            "report-mixed",
            Faults::Mixed,
            "crashes, partitions, lossy links and bursts of overlapping faults",
        ),
        (
            "report-chaos",
            Faults::Chaos,
            "overlapping faults all the time, aimed at elections, syncs and snapshot installs, \
             and whole-cluster power loss",
        ),
    ] {
        progress(&format!("compare under {} faults", faults.name()));
        let reports = crate::run::run_many(&configs(o, faults, None, ReadLevel::Log), o.jobs);
        let verdicts: Vec<String> = reports
            .iter()
            .map(|r| {
                format!(
                    "{}: {}, {} elections, {:.0} ms without a leader",
                    r.config.protocol.name(),
                    if r.passed() { "passed" } else { "FAILED" },
                    r.elections,
                    r.time_without_leader_ms
                )
            })
            .collect();
        sections.push(Section {
            slug: slug.into(),
            heading: format!("Latency and throughput under {} faults", faults.name()),
            text: format!(
                "The same workload and fault schedule ({what}) for each protocol: the latency CDFs, \
                 then the slowest answer and the answers per second over time, with the faults' \
                 windows shaded. {}.\n$ consensus-lab compare --protocol {protocols} --ops {} \
                 --faults {} --plot FILE.svg",
                verdicts.join("; "),
                o.ops,
                faults.name()
            ),
            svg: runs_svg(&reports)?,
        });
    }

    progress("reads at every level");
    let mut reads = Vec::new();
    for level in ReadLevel::ALL {
        reads.extend(crate::run::run_many(
            &configs(o, Faults::None, Some(0.3), level),
            o.jobs,
        ));
    }
    sections.push(Section {
        slug: "report-reads".into(),
        heading: "Read latency per read level".into(),
        text: format!(
            "No faults, 30% reads, each read level in turn: log (through the log like a write), \
             index (ReadIndex; ZAB's sync), lease (Raft's leader lease; ZAB serves it as a sync), \
             local (the node's own state, possibly stale).\n$ consensus-lab compare --protocol \
             {protocols} --ops {} --faults none --read-ratio 0.3 --read-consistency LEVEL --plot FILE.svg",
            o.ops
        ),
        svg: read_levels_svg(&reads)?,
    });

    progress(&format!("Figure 16, {} trials per curve", o.trials));
    let curves = crate::figure16::run(o.trials, None);
    sections.push(Section {
        slug: "figure16".into(),
        heading: "Figure 16: time to a new leader after a crash".into(),
        text: format!(
            "5 nodes; elect, lead 500 ms, crash the leader, time until another leads, {} per \
             curve. Raft per election timeout range (without pre-vote and check-quorum, as in the \
             paper); ZAB per wait before followers notice a silent leader.\n$ consensus-lab \
             figure16 --trials {} -o FILE.svg",
            crate::counted(o.trials, "trial"),
            o.trials
        ),
        svg: crate::figure16::svg(&curves, o.trials)?,
    });

    progress(&format!("sweep of {} seeds", o.seeds));
    let spread: std::sync::Mutex<Spread> = Default::default();
    let mut failed = 0;
    for &p in &o.protocols {
        let base = crate::RunConfig {
            protocol: p,
            ops: o.sweep_ops,
            ..crate::RunConfig::default()
        };
        failed += crate::run::sweep(&base, 1..=o.seeds, o.jobs, &|r: &RunReport| {
            let mut s = spread.lock().expect("no panics hold this lock");
            let e = s.entry(r.config.protocol.name()).or_default();
            e.0.push(r.time_without_leader_ms);
            e.1.push(r.messages_per_op);
        })
        .len();
    }
    let spread = spread.into_inner().expect("no panics hold this lock");
    let title = format!(
        "{}, 5 nodes, {} each, faults mixed",
        crate::counted(o.seeds, "seed"),
        crate::counted(o.sweep_ops, "op")
    );
    sections.push(Section {
        slug: "report-sweep".into(),
        heading: "Across seeds: time without a leader, messages per op".into(),
        text: format!(
            "Each seed draws its own fault schedule; {failed} of {} runs failed a check.\n$ \
             consensus-lab check --protocol {protocols} --seeds 1..{} --ops {} --plot FILE.svg",
            o.seeds * o.protocols.len() as u64,
            o.seeds,
            o.sweep_ops
        ),
        svg: sweep_svg(&title, &spread)?,
    });

    if let Some(exe) = &o.real_failover {
        for &p in &o.protocols {
            progress(&format!("failover under load, real {} cluster", p.name()));
            sections.push(failover(p, exe)?);
        }
    }

    let html = page(
        &format!("consensus-lab report: {}", names.join(" vs ")),
        "Every figure is virtual time from the deterministic simulator: the same on any machine. \
         Under each heading, the command that draws that figure alone.",
        &sections,
    );
    Ok(Report { html, sections })
}

/// The report: its page, and each figure alone.
pub struct Report {
    /// The self-contained HTML page.
    pub html: String,
    /// The figures, in page order.
    pub sections: Vec<Section>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_count_answers_and_keep_the_slowest() {
        let b = buckets(&[(5.0, 2.0), (7.0, 9.0), (25.0, 1.0)], 10.0, 30.0);
        let got: Vec<(u64, f64)> = b.iter().map(|b| (b.ops, b.max_ms)).collect();
        assert_eq!(got, vec![(2, 9.0), (0, 0.0), (1, 1.0)]);
        let (slowest, per_second) = timeline_lines("x", &b, 10.0);
        assert_eq!(slowest.points, vec![(5.0, 9.0), (25.0, 1.0)]);
        assert_eq!(
            per_second.points,
            vec![(5.0, 200.0), (15.0, 0.0), (25.0, 100.0)]
        );
        assert_eq!(bucket_ms(6000.0), 50.0);
        assert_eq!(bucket_ms(100.0), 10.0);
    }

    #[test]
    fn a_page_holds_every_section_and_no_xml_declaration() {
        let p = page(
            "T",
            "a < b",
            &[Section {
                slug: "one".into(),
                heading: "one".into(),
                text: "why\n$ consensus-lab run --plot x.svg".into(),
                svg: "<?xml version=\"1.0\"?><svg></svg>".into(),
            }],
        );
        assert!(p.contains("<svg></svg>") && !p.contains("<?xml"));
        assert!(p.contains("a &lt; b") && p.contains("$ consensus-lab run --plot x.svg"));
        assert!(p.contains("href=\"#f0\""));
    }
}
