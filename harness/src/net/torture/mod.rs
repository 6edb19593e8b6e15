//! `consensus-lab torture`: faults injected into a local cluster of real processes while
//! clients read and write over HTTP, then the recorded history checked.
//!
//! The cluster is `serve` processes on 127.0.0.1 whose peer links each pass through a
//! [`LinkProxy`] (one per direction), so a partition, even a one-way one, needs no root. The
//! nemesis SIGKILLs and restarts nodes, SIGSTOPs and resumes them (a resumed old leader must
//! not serve stale data), and cuts links; the clients send puts, gets and compare-and-sets to
//! random nodes. At the end every fault is healed and the run checks: the history is
//! linearizable (Wing & Gong with Lowe's memoization, operations of unknown outcome possibly
//! applied, as Jepsen treats them); every acknowledged write to a key of its own is on every
//! node; the nodes agree on every shared key; and after every heal all nodes followed one
//! leader within the bound.

mod clients;
mod nemesis;
mod report;

pub use report::{FaultRecord, TortureReport};

use crate::app::Kv;
use crate::checker;
use crate::history::{History, Outcome};
use crate::net::launch::{free_port_base, LaunchConfig, LocalCluster};
use crate::net::proxy::LinkProxy;
use crate::net::Client;
use crate::protocol::Protocol;
use clients::{Learned, Record};
use consensus_core::kv::KvOp;
use consensus_core::NodeId;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A kind of fault the nemesis injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// SIGKILL a node (the leader more often than not), restart it on its data directory.
    Kill,
    /// SIGSTOP a node, SIGCONT it later: a paused leader wakes up behind the times.
    Pause,
    /// Cut peer links: a node isolated, unable to send or to receive, or the cluster split;
    /// sometimes a node is SIGKILLed while the cut holds.
    Partition,
    /// Whole-cluster power loss: SIGKILL every node, then restart them all.
    Power,
}

/// What a torture run does.
#[derive(Clone, Debug)]
pub struct TortureConfig {
    /// The protocol the nodes run.
    pub protocol: Protocol,
    /// Cluster size.
    pub nodes: u64,
    /// How long clients and faults run.
    pub duration: Duration,
    /// The faults to draw from (none: a fault-free run).
    pub faults: Vec<FaultKind>,
    /// Seeds the clients' operations and the nemesis's choices (timing is real, so two runs
    /// of one seed differ).
    pub seed: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Shared keys (each client also writes keys of its own).
    pub keys: usize,
    /// The `consensus-lab` binary the nodes run.
    pub exe: PathBuf,
    /// Where the nodes keep their data (None: a temporary directory, removed afterwards).
    pub data_dir: Option<PathBuf>,
    /// After each heal, all nodes must follow one leader within this.
    pub rejoin_bound: Duration,
    /// Print each fault as it happens (stderr).
    pub progress: bool,
}

/// Runs the clients and the nemesis, heals, checks; the processes are gone when it returns
/// (or when its future is dropped).
pub async fn run(cfg: TortureConfig) -> anyhow::Result<TortureReport> {
    let wall = Instant::now();
    anyhow::ensure!(cfg.nodes >= 1, "a cluster needs at least one node");
    let temp = tempfile::Builder::new()
        .prefix("consensus-lab-torture-")
        .tempdir()?;
    let data_dir = cfg
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let base = free_port_base(2 * cfg.nodes as u16)?;
    let mut launch = LaunchConfig {
        protocol: cfg.protocol,
        nodes: cfg.nodes,
        spares: 0,
        peer_base: base,
        http_base: base + cfg.nodes as u16,
        data_dir,
        cluster_id: format!("torture-{}", cfg.seed),
        exe: cfg.exe.clone(),
        quiet: true,
        links: BTreeMap::new(),
        tls: false,
        etcd_base: None,
        zk_base: None,
    };
    let mut proxies = BTreeMap::new();
    for from in 1..=cfg.nodes {
        for to in (1..=cfg.nodes).filter(|&t| t != from) {
            let proxy = LinkProxy::start(launch.peer_addr(to)).await?;
            launch.links.insert((from, to), proxy.addr().to_string());
            proxies.insert((from, to), proxy);
        }
    }
    let endpoints = launch.endpoints();
    let cluster = LocalCluster::start(launch)?;
    let ready = nemesis::wait_one_leader(&endpoints, Duration::from_secs(20)).await;
    anyhow::ensure!(
        ready.is_some(),
        "the cluster elected no leader within 20 s of starting (see the nodes' log above)"
    );

    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = tokio::task::JoinSet::new();
    for id in 1..=cfg.clients as u64 {
        clients.spawn(clients::client(
            id,
            endpoints.clone(),
            cfg.keys,
            cfg.seed,
            start,
            Arc::clone(&stop),
        ));
    }
    let mut nemesis = nemesis::Nemesis::new(
        cluster,
        proxies,
        cfg.faults.clone(),
        cfg.seed,
        start,
        cfg.progress,
    );
    let mut faults = nemesis.run(cfg.duration).await;
    let left = cfg.duration.saturating_sub(start.elapsed());
    tokio::time::sleep(left).await;
    stop.store(true, Ordering::Relaxed);
    let mut records: Vec<Record> = clients.join_all().await.into_iter().flatten().collect();
    let workload_s = start.elapsed().as_secs_f64();

    // Heal, let the cluster settle, and read the final state.
    nemesis.heal_all().await?;
    let final_rejoin = nemesis::wait_one_leader(&endpoints, nemesis::REJOIN_LIMIT).await;
    let reader = cfg.clients as u64 + 1;
    for k in 0..cfg.keys {
        let key = clients::shared_key(k);
        records.push(final_read(reader, k as u64 + 1, key, &endpoints, start).await);
    }
    let converged = wait_converged(&endpoints, Duration::from_secs(15)).await;
    let (missing, disagreements) = compare_replicas(&records, cfg.keys, &endpoints).await;
    let exits = std::mem::take(&mut nemesis.exits);
    drop(nemesis); // every process stopped, every proxy closed

    report::availability(&mut faults, &records, workload_s);
    let history = history_of(&records);
    let checking = Instant::now();
    let check =
        tokio::task::spawn_blocking(move || checker::check(&Kv, &history, checker::DEFAULT_BUDGET))
            .await?;
    Ok(TortureReport::new(
        &cfg,
        report::Findings {
            records: &records,
            faults,
            check,
            check_s: checking.elapsed().as_secs_f64(),
            final_rejoin,
            converged,
            missing,
            disagreements,
            exits,
            workload_s,
            wall_s: wall.elapsed().as_secs_f64(),
        },
    ))
}

/// The final read of a shared key, through any node, retried for a while.
async fn final_read(
    client: u64,
    seq: u64,
    key: String,
    endpoints: &[String],
    start: Instant,
) -> Record {
    let op = KvOp::Get { key };
    let invoke = start.elapsed();
    let give_up = Instant::now() + Duration::from_secs(15);
    let mut learned = Learned::Fail;
    'tries: while Instant::now() < give_up {
        for e in endpoints {
            learned = clients::attempt(&mut Client::new(vec![e.clone()], 0), &op).await;
            if matches!(learned, Learned::Ok(_)) {
                break 'tries;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Record {
        client,
        seq,
        op,
        invoke,
        complete: start.elapsed(),
        learned,
    }
}

/// Waits until every node has committed and holds exactly the leader's log.
async fn wait_converged(endpoints: &[String], limit: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        let views = nemesis::statuses(endpoints).await;
        if let Some(l) = nemesis::one_leader(&views, endpoints.len() as u64) {
            let last = views[&l].last;
            if views.values().all(|v| v.commit == last && v.last == last) {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Reads every node's own state (local reads): acknowledged writes to keys of their own that
/// some node lacks, and shared keys on which the nodes disagree.
async fn compare_replicas(
    records: &[Record],
    keys: usize,
    endpoints: &[String],
) -> (Vec<String>, Vec<String>) {
    let own: Vec<(&str, &str)> = records
        .iter()
        .filter_map(Record::acknowledged_own_write)
        .collect();
    let shared: Vec<String> = (0..keys).map(clients::shared_key).collect();
    let mut reads = tokio::task::JoinSet::new();
    for (i, e) in endpoints.iter().enumerate() {
        let mut c = Client::new(vec![e.clone()], 0);
        let wanted: Vec<String> = shared
            .iter()
            .cloned()
            .chain(own.iter().map(|(k, _)| k.to_string()))
            .collect();
        reads.spawn(async move {
            let mut found = BTreeMap::new();
            for key in wanted {
                let path = format!("/kv/{key}?consistency=local");
                let value = match c
                    .call_once(hyper::Method::GET, &path, bytes::Bytes::new())
                    .await
                {
                    Ok(r) if r.status == hyper::StatusCode::OK => {
                        r.json()["value"].as_str().map(str::to_string)
                    }
                    Ok(r) if r.status == hyper::StatusCode::NOT_FOUND => None,
                    Ok(r) => Some(format!("<HTTP {}>", r.status)),
                    Err(e) => Some(format!("<{e}>")),
                };
                found.insert(key, value);
            }
            (i as NodeId + 1, found)
        });
    }
    let states: BTreeMap<NodeId, BTreeMap<String, Option<String>>> =
        reads.join_all().await.into_iter().collect();
    let mut missing = Vec::new();
    for (key, value) in &own {
        for (node, state) in &states {
            let got = state.get(*key).cloned().flatten();
            if got.as_deref() != Some(*value) {
                missing.push(format!(
                    "{key}={value} acknowledged, n{node} has {}",
                    got.unwrap_or_else(|| "nothing".into())
                ));
            }
        }
    }
    let mut disagreements = Vec::new();
    for key in &shared {
        let values: BTreeMap<NodeId, Option<String>> = states
            .iter()
            .map(|(n, s)| (*n, s.get(key).cloned().flatten()))
            .collect();
        let first = values.values().next().cloned().flatten();
        if values.values().any(|v| *v != first) {
            disagreements.push(format!("{key}: {values:?}"));
        }
    }
    (missing, disagreements)
}

/// The clients' records as a history the checker reads.
fn history_of(records: &[Record]) -> History {
    let mut h = History::default();
    for r in records {
        let i = Kv::invoke(&mut h, r.client, r.seq, r.op.clone(), r.invoke);
        let outcome = match &r.learned {
            Learned::Ok(out) => Kv::answer(out.clone()),
            Learned::Fail => Outcome::Fail,
            Learned::Unknown => Outcome::Unknown,
        };
        h.complete(i, outcome, r.complete);
    }
    h
}
