//! `consensus-lab load`: a closed-loop load against a cluster's HTTP API. Each client sends
//! one request, waits for the answer, and sends the next; the report gives throughput and
//! latency percentiles.

use crate::net::client::Client;
use bytes::Bytes;
use consensus_core::ReadLevel;
use hdrhistogram::Histogram;
use hyper::{Method, StatusCode};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What load to offer.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// HTTP endpoints (`host:port`) of the cluster's nodes.
    pub endpoints: Vec<String>,
    /// Concurrent closed-loop clients.
    pub clients: usize,
    /// How long to run.
    pub duration: Duration,
    /// Size of each written value.
    pub value_bytes: usize,
    /// Fraction of operations that are reads, 0.0 to 1.0.
    pub read_fraction: f64,
    /// How reads are served (`log`, `index`, `lease`, `local`).
    pub read_consistency: ReadLevel,
    /// Distinct keys each client writes.
    pub keys_per_client: u64,
    /// Seed for the choice of keys and reads.
    pub seed: u64,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// What a load run measured.
#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    /// The protocol the first reachable node reported.
    pub protocol: Option<String>,
    /// Concurrent clients.
    pub clients: usize,
    /// Wall-clock seconds the load ran.
    pub seconds: f64,
    /// Bytes per written value.
    pub value_bytes: usize,
    /// Acknowledged operations (writes plus reads).
    pub ops: u64,
    /// Acknowledged writes.
    pub writes: u64,
    /// Successful reads.
    pub reads: u64,
    /// Operations that failed (errors, timeouts, no leader).
    pub errors: u64,
    /// Redirects to the leader that clients followed.
    pub redirects: u64,
    /// Acknowledged operations per second.
    pub ops_per_sec: f64,
    /// Latency of acknowledged operations, redirects included.
    pub latency: Latency,
}

impl LoadReport {
    /// A human-readable summary.
    pub fn render(&self) -> String {
        format!(
            "protocol      {}\nclients       {}\nduration      {:.1} s\nvalue size    {} B\n\
             ops           {} ({} writes, {} reads)\nerrors        {}\nredirects     {}\n\
             throughput    {:.0} ops/s\nlatency p50   {:.2} ms\nlatency p99   {:.2} ms\n\
             latency p99.9 {:.2} ms\nlatency max   {:.2} ms\n",
            self.protocol.as_deref().unwrap_or("unknown"),
            self.clients,
            self.seconds,
            self.value_bytes,
            self.ops,
            self.writes,
            self.reads,
            self.errors,
            self.redirects,
            self.ops_per_sec,
            self.latency.p50_ms,
            self.latency.p99_ms,
            self.latency.p999_ms,
            self.latency.max_ms,
        )
    }
}

#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    reads: AtomicU64,
    errors: AtomicU64,
}

struct ClientResult {
    hist: Histogram<u64>,
    redirects: u64,
}

async fn one_client(
    cfg: Arc<LoadConfig>,
    n: usize,
    deadline: Instant,
    counters: Arc<Counters>,
) -> ClientResult {
    let mut client = Client::new(cfg.endpoints.clone(), n);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ (n as u64).wrapping_mul(0x9E37_79B9));
    let value = Bytes::from("v".repeat(cfg.value_bytes));
    while Instant::now() < deadline {
        let key = format!(
            "/kv/c{n}-k{}",
            rng.random_range(0..cfg.keys_per_client.max(1))
        );
        let read = cfg.read_fraction > 0.0 && rng.random_bool(cfg.read_fraction.min(1.0));
        let start = Instant::now();
        let reply = if read {
            let path = match cfg.read_consistency {
                ReadLevel::Log => key.clone(),
                level => format!("{key}?consistency={}", level.name()),
            };
            client.call(Method::GET, &path, Bytes::new()).await
        } else {
            client.call(Method::PUT, &key, value.clone()).await
        };
        let ok = match &reply {
            Ok(r) if r.status == StatusCode::OK => true,
            Ok(r) if read && r.status == StatusCode::NOT_FOUND => true,
            _ => false,
        };
        if ok {
            let us = start.elapsed().as_micros().max(1) as u64;
            let _ = hist.record(us.min(60_000_000));
            let c = if read {
                &counters.reads
            } else {
                &counters.writes
            };
            c.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    ClientResult {
        hist,
        redirects: client.redirects,
    }
}

/// How long `load` waits for a cluster that is still starting to answer.
const STARTUP_WAIT: Duration = Duration::from_secs(5);

/// Asks the first reachable endpoint which protocol it runs, trying again for a while (a
/// cluster started a moment ago may not listen yet).
async fn protocol_of(endpoints: &[String]) -> Option<String> {
    let give_up = Instant::now() + STARTUP_WAIT;
    loop {
        for (i, _) in endpoints.iter().enumerate() {
            let mut c = Client::new(endpoints.to_vec(), i);
            if let Ok(r) = c.call_once(Method::GET, "/status", Bytes::new()).await {
                if let Some(p) = r.json()["protocol"].as_str() {
                    return Some(p.to_string());
                }
            }
        }
        if Instant::now() >= give_up {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the load and returns what it measured.
pub async fn run_load(cfg: LoadConfig) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(!cfg.endpoints.is_empty(), "no endpoints given");
    anyhow::ensure!(cfg.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&cfg.read_fraction),
        "--reads is a fraction between 0 and 1"
    );
    let protocol = protocol_of(&cfg.endpoints).await;
    if protocol.is_none() {
        anyhow::bail!(
            "no endpoint answered GET /status: {}",
            cfg.endpoints.join(", ")
        );
    }
    let cfg = Arc::new(cfg);
    let counters = Arc::new(Counters::default());
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let bar = if cfg.progress {
        let b = ProgressBar::with_draw_target(
            Some(cfg.duration.as_secs().max(1)),
            ProgressDrawTarget::stderr(),
        );
        b.set_style(
            ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} s  {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let ticker = {
        let counters = Arc::clone(&counters);
        let bar = bar.clone();
        tokio::spawn(async move {
            let mut last = 0u64;
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.tick().await;
            loop {
                every.tick().await;
                let done = counters.writes.load(Ordering::Relaxed)
                    + counters.reads.load(Ordering::Relaxed);
                bar.set_position(start.elapsed().as_secs());
                bar.set_message(format!(
                    "{done} ops, {} ops/s, {} errors",
                    done - last,
                    counters.errors.load(Ordering::Relaxed)
                ));
                last = done;
            }
        })
    };
    let tasks: Vec<_> = (0..cfg.clients)
        .map(|n| {
            tokio::spawn(one_client(
                Arc::clone(&cfg),
                n,
                deadline,
                Arc::clone(&counters),
            ))
        })
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut redirects = 0;
    for t in tasks {
        let r = t.await?;
        hist.add(&r.hist).expect("same bounds");
        redirects += r.redirects;
    }
    ticker.abort();
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let writes = counters.writes.load(Ordering::Relaxed);
    let reads = counters.reads.load(Ordering::Relaxed);
    let ms = |v: u64| v as f64 / 1000.0;
    let latency = if hist.is_empty() {
        Latency::default()
    } else {
        Latency {
            p50_ms: ms(hist.value_at_quantile(0.5)),
            p99_ms: ms(hist.value_at_quantile(0.99)),
            p999_ms: ms(hist.value_at_quantile(0.999)),
            max_ms: ms(hist.max()),
            mean_ms: hist.mean() / 1000.0,
        }
    };
    Ok(LoadReport {
        protocol,
        clients: cfg.clients,
        seconds,
        value_bytes: cfg.value_bytes,
        ops: writes + reads,
        writes,
        reads,
        errors: counters.errors.load(Ordering::Relaxed),
        redirects,
        ops_per_sec: (writes + reads) as f64 / seconds,
        latency,
    })
}
