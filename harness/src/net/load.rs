//! `consensus-lab load`: a closed-loop load against a cluster: this project's over its HTTP
//! API, or etcd or ZooKeeper over their own client protocols ([`System`]). Each client sends
//! one request, waits for the answer, and sends the next; the report gives throughput and
//! latency percentiles.

use crate::net::client::Client;
use crate::net::peers::{Conn, System};
use bytes::Bytes;
use consensus_core::ReadLevel;
use hdrhistogram::Histogram;
use hyper::Method;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What load to offer.
#[derive(Clone)]
pub struct LoadConfig {
    /// The system the endpoints run.
    pub system: System,
    /// Client endpoints (`host:port`) of the cluster's nodes.
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
    /// SIGKILL the leader this long after the start (it must run on this machine).
    pub kill_leader_at: Option<Duration>,
    /// HTTPS with this connector (`None`: plain HTTP).
    pub tls: Option<tokio_rustls::TlsConnector>,
}

/// The width of one bucket of the load's timeline.
pub const BUCKET: Duration = Duration::from_millis(100);

/// One bucket of the timeline: what was answered in it.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Bucket {
    /// Acknowledged operations.
    pub ops: u64,
    /// Failed operations.
    pub errors: u64,
    /// The slowest acknowledged operation, in ms.
    pub max_ms: f64,
}

/// The leader `load` killed.
#[derive(Clone, Debug, Serialize)]
pub struct Killed {
    /// The node.
    pub node: consensus_core::NodeId,
    /// Its process.
    pub pid: u32,
    /// Seconds from the start of the load.
    pub at_s: f64,
    /// Seconds from the kill until a 100 ms bucket answered at least half the mean of the
    /// buckets before the kill (None: never, within the run).
    pub recovered_after_s: Option<f64>,
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
    /// The protocol the first reachable node reported (for etcd and ZooKeeper: the system
    /// and its version).
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
    /// What was answered in each 100 ms of the run.
    pub timeline: Vec<Bucket>,
    /// The leader killed during the run, if `kill_leader_at` asked for it.
    pub killed: Option<Killed>,
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
        ) + &self.killed.as_ref().map_or(String::new(), |k| {
            format!(
                "leader killed n{} (pid {}) at {:.1} s; {}\n",
                k.node,
                k.pid,
                k.at_s,
                k.recovered_after_s.map_or(
                    "throughput never came back to half its rate".to_string(),
                    |s| format!("half the rate back after {:.0} ms", s * 1e3)
                )
            )
        })
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
    timeline: Vec<Bucket>,
}

/// The timeline's bucket for an answer at `at`, growing the timeline to hold it.
fn bucket_at(timeline: &mut Vec<Bucket>, start: Instant, at: Instant) -> &mut Bucket {
    let i = (at.saturating_duration_since(start).as_millis() / BUCKET.as_millis()) as usize;
    if timeline.len() <= i {
        timeline.resize(i + 1, Bucket::default());
    }
    &mut timeline[i]
}

async fn one_client(
    cfg: Arc<LoadConfig>,
    n: usize,
    mut conn: Conn,
    (begin, deadline): (Instant, Instant),
    counters: Arc<Counters>,
) -> ClientResult {
    let mut timeline = Vec::new();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ (n as u64).wrapping_mul(0x9E37_79B9));
    let value = Bytes::from("v".repeat(cfg.value_bytes));
    while Instant::now() < deadline {
        let key = format!("c{n}-k{}", rng.random_range(0..cfg.keys_per_client.max(1)));
        let read = cfg.read_fraction > 0.0 && rng.random_bool(cfg.read_fraction.min(1.0));
        let start = Instant::now();
        let ok = if read {
            conn.read(&key, cfg.read_consistency).await
        } else {
            conn.write(&key, &value).await
        };
        let now = Instant::now();
        let b = bucket_at(&mut timeline, begin, now);
        if ok {
            let us = (now - start).as_micros().max(1) as u64;
            let _ = hist.record(us.min(60_000_000));
            b.ops += 1;
            b.max_ms = b.max_ms.max(us as f64 / 1000.0);
            let c = if read {
                &counters.reads
            } else {
                &counters.writes
            };
            c.fetch_add(1, Ordering::Relaxed);
        } else {
            b.errors += 1;
            counters.errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    ClientResult {
        hist,
        redirects: conn.redirects(),
        timeline,
    }
}

/// Opens client `n`'s connection. This project's clients start at endpoint `n` (modulo
/// their number) and follow redirects to the leader; etcd's and ZooKeeper's connect to the
/// leader when the load only writes (their best case: no forwarding hop) and spread over the
/// endpoints when it reads.
async fn connect(cfg: &LoadConfig, n: usize, leader: Option<usize>) -> anyhow::Result<Conn> {
    let spread = n % cfg.endpoints.len();
    let at = if cfg.read_fraction == 0.0 {
        leader.unwrap_or(spread)
    } else {
        spread
    };
    match cfg.system {
        // Redirected once to the leader and then talking to it directly, as before followers
        // forwarded: the figures in docs/performance.md measure the leader, not an extra hop.
        System::Lab => Ok(Conn::Lab(Box::new(
            Client::new(cfg.endpoints.clone(), n)
                .preferring_redirects()
                .with_tls(cfg.tls.clone()),
        ))),
        System::Etcd => Conn::etcd(&cfg.endpoints[at]).await,
        System::Zookeeper => Conn::zookeeper(&cfg.endpoints[at]).await,
    }
}

/// Finds the node that leads (asking every endpoint) and SIGKILLs its process.
async fn kill_leader(
    endpoints: &[String],
    tls: &Option<tokio_rustls::TlsConnector>,
) -> anyhow::Result<(consensus_core::NodeId, u32)> {
    for (i, e) in endpoints.iter().enumerate() {
        let mut c = Client::new(endpoints.to_vec(), i).with_tls(tls.clone());
        let Ok(r) = c.call_once(Method::GET, "/status", Bytes::new()).await else {
            continue;
        };
        let s = r.json();
        if s["role"] == "Leader" {
            let (Some(node), Some(pid)) = (s["id"].as_u64(), s["pid"].as_u64()) else {
                anyhow::bail!("{e} leads but does not report its pid");
            };
            let host = e.rsplit_once(':').map_or(e.as_str(), |(h, _)| h);
            anyhow::ensure!(
                matches!(host, "127.0.0.1" | "localhost" | "[::1]"),
                "the leader {e} is not on this machine; --kill-leader-at needs a local cluster"
            );
            crate::net::launch::signal(pid as u32, "-KILL")?;
            return Ok((node, pid as u32));
        }
    }
    anyhow::bail!("no endpoint is the leader: {}", endpoints.join(", "))
}

/// How long `load` waits for a cluster that is still starting to answer.
const STARTUP_WAIT: Duration = Duration::from_secs(5);

/// Asks the first reachable endpoint which protocol it runs, trying again for a while (a
/// cluster started a moment ago may not listen yet).
async fn protocol_of(
    endpoints: &[String],
    tls: &Option<tokio_rustls::TlsConnector>,
) -> Option<String> {
    let give_up = Instant::now() + STARTUP_WAIT;
    loop {
        for (i, _) in endpoints.iter().enumerate() {
            let mut c = Client::new(endpoints.to_vec(), i).with_tls(tls.clone());
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
    if cfg.read_fraction > 0.0 {
        cfg.system.check_level(cfg.read_consistency)?;
    }
    let (protocol, leader) = match cfg.system {
        System::Lab => match protocol_of(&cfg.endpoints, &cfg.tls).await {
            Some(p) => (p, None),
            None => anyhow::bail!(
                "no endpoint answered GET /status: {}",
                cfg.endpoints.join(", ")
            ),
        },
        peer => {
            anyhow::ensure!(
                cfg.kill_leader_at.is_none() && cfg.tls.is_none(),
                "--kill-leader-at and --tls-* are for consensus-lab clusters"
            );
            let d = crate::net::peers::describe(peer, &cfg.endpoints).await?;
            (d.name, d.leader)
        }
    };
    let protocol = Some(protocol);
    // Every client is connected before the clock starts.
    let conns =
        futures_util::future::try_join_all((0..cfg.clients).map(|n| connect(&cfg, n, leader)))
            .await?;
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
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(n, conn)| {
            tokio::spawn(one_client(
                Arc::clone(&cfg),
                n,
                conn,
                (start, deadline),
                Arc::clone(&counters),
            ))
        })
        .collect();
    let killer = cfg.kill_leader_at.map(|after| {
        let endpoints = cfg.endpoints.clone();
        let tls = cfg.tls.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let at_s = start.elapsed().as_secs_f64();
            kill_leader(&endpoints, &tls)
                .await
                .map(|(node, pid)| (node, pid, at_s))
        })
    });
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut redirects = 0;
    let mut timeline: Vec<Bucket> = Vec::new();
    for t in tasks {
        let r = t.await?;
        hist.add(&r.hist).expect("same bounds");
        redirects += r.redirects;
        if timeline.len() < r.timeline.len() {
            timeline.resize(r.timeline.len(), Bucket::default());
        }
        for (sum, b) in timeline.iter_mut().zip(&r.timeline) {
            sum.ops += b.ops;
            sum.errors += b.errors;
            sum.max_ms = sum.max_ms.max(b.max_ms);
        }
    }
    let killed = match killer {
        Some(k) => {
            let (node, pid, at_s) = k.await??;
            Some(Killed {
                node,
                pid,
                at_s,
                recovered_after_s: recovery(&timeline, at_s),
            })
        }
        None => None,
    };
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
        timeline,
        killed,
    })
}

/// Seconds from `at_s` until a bucket answers at least half the mean of the whole buckets
/// before it.
pub fn recovery(timeline: &[Bucket], at_s: f64) -> Option<f64> {
    let width = BUCKET.as_secs_f64();
    let k = (at_s / width) as usize;
    let before = &timeline[..k.min(timeline.len())];
    if before.is_empty() {
        return None;
    }
    let mean = before.iter().map(|b| b.ops as f64).sum::<f64>() / before.len() as f64;
    // The first bucket that starts after the kill.
    timeline
        .iter()
        .enumerate()
        .skip(k + 1)
        .find(|(_, b)| b.ops as f64 >= mean / 2.0)
        .map(|(i, _)| ((i + 1) as f64 * width - at_s).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(v: &[u64]) -> Vec<Bucket> {
        v.iter()
            .map(|&ops| Bucket {
                ops,
                ..Bucket::default()
            })
            .collect()
    }

    #[test]
    fn recovery_is_the_end_of_the_first_bucket_back_at_half_the_rate() {
        // 100 ops per bucket, the kill at 0.25 s, nothing for 3 buckets, then 60.
        let t = ops(&[100, 100, 90, 0, 0, 0, 60, 100]);
        let r = recovery(&t, 0.25).unwrap();
        assert!((r - 0.45).abs() < 1e-9, "{r}");
        assert_eq!(recovery(&ops(&[100, 100, 0, 0]), 0.15), None);
    }
}
