//! The command line's flags: one struct per command, and the shapes they share.

use crate::protocol::Protocol;
use crate::run::RunConfig;
use crate::{Faults, KeyDistribution, Semantics};
use anyhow::{bail, Result};
use clap::Args;
use consensus_core::ReadLevel;
use std::ops::RangeInclusive;

#[derive(Args)]
#[command(after_help = "Examples:
  consensus-lab scenario --list
  consensus-lab scenario leader-crash                  # Raft, then ZAB
  consensus-lab scenario partition --protocol zab --seed 3
  consensus-lab scenario election --trace election.jsonl   # election.raft.jsonl, election.zab.jsonl
  consensus-lab view election.raft.jsonl election.zab.jsonl -o election.html")]
pub(super) struct ScenarioArgs {
    /// The scenario to play (see --list).
    #[arg(required_unless_present = "list")]
    pub(super) name: Option<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    pub(super) list: bool,
    /// Which protocols play it: raft, zab, a comma-separated list, both, or all (every
    /// registered protocol).
    #[arg(long, default_value = "both", value_parser = ProtocolSet::parse)]
    pub(super) protocol: ProtocolSet,
    /// Seed of the simulated run (timeouts, delays).
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// Write each run's trace as JSON Lines to FILE (with several runs, FILE.<protocol>.jsonl).
    #[arg(long, value_name = "FILE")]
    pub(super) trace: Option<std::path::PathBuf>,
    /// Print the outcomes as JSON instead of the narration.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Args)]
pub(super) struct ViewArgs {
    /// A trace written by `scenario --trace`.
    pub(super) trace: std::path::PathBuf,
    /// A second trace, replayed side by side on the same time axis.
    pub(super) other: Option<std::path::PathBuf>,
    /// The HTML file to write.
    #[arg(short, long, default_value = "trace.html")]
    pub(super) output: std::path::PathBuf,
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

API: PUT /kv/{key} (body = value), GET /kv/{key}[?consistency=log|index|lease|local]
(log, the default: through the log; index: Raft ReadIndex / ZooKeeper sync; lease: Raft
leader lease; local: this node's state, possibly stale), DELETE /kv/{key}, POST /cas/{key}
with {\"expected\":.. or null,\"new\":..}, GET /status, POST /cluster/transfer-leader with
{\"to\": N} (Raft: hand leadership to node N; ZAB has none). Keys may contain /. Followers
forward to the leader (or redirect with --redirect).
With --etcd-listen and --zk-listen the node also speaks etcd's and ZooKeeper's client
protocols (three keyspaces, one per protocol):
  etcdctl --endpoints 127.0.0.1:2379 put k v
  zkCli.sh -server 127.0.0.1:2181 create /a x
Set RUST_LOG (e.g. RUST_LOG=debug) for more log output."
)]
pub(super) struct ServeArgs {
    /// Read every setting from a TOML file (keys: protocol, id, peers, peer_http, data_dir,
    /// http, cluster_id, redirect, join, snapshot_threshold, etcd_listen, zk_listen, [tls]); the
    /// other flags must then be left out.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["protocol", "id", "peers", "peer_http", "data_dir", "http"])]
    pub(super) config: Option<std::path::PathBuf>,
    /// The protocol this node runs; every member must run the same.
    #[arg(long, default_value = "raft", value_parser = Protocol::parse)]
    pub(super) protocol: Protocol,
    /// This node's id (one of --peers).
    #[arg(long, required_unless_present = "config")]
    pub(super) id: Option<u64>,
    /// Every member and its peer address: 1=127.0.0.1:7001,2=127.0.0.1:7002,...
    #[arg(long, value_parser = crate::net::server::parse_members, required_unless_present = "config")]
    pub(super) peers: Option<std::collections::BTreeMap<u64, std::net::SocketAddr>>,
    /// Every member's HTTP address, so that followers can redirect clients to the leader.
    #[arg(long, value_parser = crate::net::server::parse_members)]
    pub(super) peer_http: Option<std::collections::BTreeMap<u64, std::net::SocketAddr>>,
    /// Directory for the log, hard state and snapshots (created if missing).
    #[arg(long, required_unless_present = "config")]
    pub(super) data_dir: Option<std::path::PathBuf>,
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1:8001")]
    pub(super) http: std::net::SocketAddr,
    /// Peers presenting another cluster id are refused.
    #[arg(long, default_value = "consensus-lab")]
    pub(super) cluster_id: String,
    /// At a follower, answer writes and log reads with a 307 to the leader instead of
    /// forwarding them (the default forwards, as ZooKeeper's followers do).
    #[arg(long)]
    pub(super) redirect: bool,
    /// Join a running cluster: start outside its configuration (--peers lists its members
    /// and this node) and wait until `consensus-lab member add` adds this node.
    #[arg(long)]
    pub(super) join: bool,
    /// Applied entries beyond the last snapshot that make the node take a new one (0: never;
    /// the default is etcd's and ZooKeeper's).
    #[arg(long, default_value_t = crate::net::serve_config::REAL_SNAPSHOT_THRESHOLD)]
    pub(super) snapshot_threshold: u64,
    /// Mutual TLS on peer links and HTTPS for clients: the cluster's CA certificate (PEM);
    /// needs --tls-cert and --tls-key.
    #[arg(long, value_name = "FILE", requires_all = ["tls_cert", "tls_key"])]
    pub(super) tls_ca: Option<std::path::PathBuf>,
    /// This node's certificate (PEM), valid for n<id>.<cluster id> and its HTTP host.
    #[arg(long, value_name = "FILE", requires = "tls_ca")]
    pub(super) tls_cert: Option<std::path::PathBuf>,
    /// This node's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_ca")]
    pub(super) tls_key: Option<std::path::PathBuf>,
    /// Whether HTTPS clients must show a certificate from the CA.
    #[arg(long, value_enum, default_value = "optional", requires = "tls_ca")]
    pub(super) tls_client_certs: crate::net::serve_config::ClientCerts,
    /// Also serve etcd's v3 gRPC API (KV, Maintenance.Status, Cluster.MemberList) here, so
    /// etcdctl and etcd's client libraries work against this node.
    #[arg(long, value_name = "ADDR")]
    pub(super) etcd_listen: Option<std::net::SocketAddr>,
    /// Also serve ZooKeeper's client protocol here, so zkCli.sh and ZooKeeper's client
    /// libraries work against this node.
    #[arg(long, value_name = "ADDR")]
    pub(super) zk_listen: Option<std::net::SocketAddr>,
}

#[derive(Args)]
pub(super) struct ClusterArgs {
    /// The protocol every node runs.
    #[arg(long, default_value = "raft", value_parser = Protocol::parse)]
    pub(super) protocol: Protocol,
    /// Number of nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub(super) nodes: u64,
    /// Also start this many nodes outside the configuration (ids after --nodes, `serve
    /// --join`), ready for `consensus-lab member add`.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=9))]
    pub(super) spares: u64,
    /// Node N listens for peers on port PEER_BASE + N.
    #[arg(long, default_value_t = 7000)]
    pub(super) peer_base: u16,
    /// Node N serves HTTP on port HTTP_BASE + N.
    #[arg(long, default_value_t = 8000)]
    pub(super) http_base: u16,
    /// Keep the nodes' data here (default: a temporary directory, removed on exit).
    #[arg(long)]
    pub(super) data_dir: Option<std::path::PathBuf>,
    /// The cluster id the nodes present to each other.
    #[arg(long, default_value = "consensus-lab")]
    pub(super) cluster_id: String,
    /// Start a node again (on its data directory) when its process exits; without it, the
    /// exit is reported and the others keep running.
    #[arg(long)]
    pub(super) restart: bool,
    /// Mutual TLS between the nodes and HTTPS for clients, with a throwaway CA and
    /// certificates written to <data dir>/tls (ca.pem, n<id>.pem/.key, client.pem/.key).
    #[arg(long)]
    pub(super) tls: bool,
    /// Node N also serves etcd's v3 gRPC API on port ETCD_BASE + N (2378: node 1 on etcd's
    /// usual 2379), for etcdctl and etcd's client libraries.
    #[arg(long)]
    pub(super) etcd_base: Option<u16>,
    /// Node N also serves ZooKeeper's client protocol on port ZK_BASE + N (2180: node 1 on
    /// ZooKeeper's usual 2181), for zkCli.sh and ZooKeeper's client libraries.
    #[arg(long)]
    pub(super) zk_base: Option<u16>,
}

#[derive(Args)]
#[command(after_help = "Examples:
  consensus-lab torture                                      # Raft, 3 nodes, 60 s, every fault
  consensus-lab torture --protocol zab --seconds 20 --faults partition
  consensus-lab torture --protocol raft --json > report.json   # exit status 1 on any failure")]
pub(super) struct TortureArgs {
    /// The protocol every node runs.
    #[arg(long, default_value = "raft", value_parser = Protocol::parse)]
    pub(super) protocol: Protocol,
    /// Number of nodes (processes on 127.0.0.1).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=7))]
    pub(super) nodes: u64,
    /// How long the clients and the faults run.
    #[arg(long, default_value_t = 60.0)]
    pub(super) seconds: f64,
    /// Faults to draw from, comma-separated: kill (SIGKILL and restart), pause (SIGSTOP, then
    /// SIGCONT), partition (isolate a node, cut one direction, or split the cluster; now and
    /// then with a node SIGKILLed during it), power (SIGKILL every node, restart them all).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "kill,pause,partition,power"
    )]
    pub(super) faults: Vec<crate::net::torture::FaultKind>,
    /// Seed of the clients' operations and the nemesis's choices (timing is real: two runs of
    /// a seed differ).
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// Concurrent clients, each sending to random nodes.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(super) clients: u32,
    /// Shared keys (each client also writes keys of its own, checked on every node at the end).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(super) keys: u32,
    /// After every heal, all nodes must follow one leader within this many ms.
    #[arg(long, default_value_t = 1000)]
    pub(super) rejoin_bound_ms: u64,
    /// Keep the nodes' data here (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub(super) data_dir: Option<std::path::PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Args)]
#[command(after_help = "Examples (against `consensus-lab cluster`):
  consensus-lab member list
  consensus-lab member transfer --to 3          # Raft: node 3 leads next (ZAB has no transfer)

Replacing node 3 by a fresh node 4 (started with `serve --id 4 --join --peers 1=...,2=...,4=...`):
  consensus-lab member add --id 4 --peer 127.0.0.1:7004 --http 127.0.0.1:8004
  consensus-lab member promote --id 4           # once it caught up (Raft refuses before)
  consensus-lab member remove --id 3")]
pub(super) struct MemberArgs {
    /// What to do.
    #[command(subcommand)]
    pub(super) action: MemberAction,
    /// HTTP endpoints of the cluster's nodes, comma-separated (any one that answers will do).
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003"
    )]
    pub(super) endpoints: Vec<String>,
}

/// A membership action.
#[derive(clap::Subcommand)]
pub(super) enum MemberAction {
    /// Every member with its addresses, role, era and log positions, and who leads.
    List,
    /// Hand leadership to a member (Raft's leadership transfer; ZAB has none).
    Transfer {
        /// The member that should lead.
        #[arg(long)]
        to: u64,
    },
    /// Add a node (started with `serve --join`) as a learner (Raft) or observer (ZAB): it
    /// receives the log but does not vote until promoted.
    Add {
        /// The new node's id.
        #[arg(long)]
        id: u64,
        /// Its peer address (serve's --peers entry for it).
        #[arg(long)]
        peer: std::net::SocketAddr,
        /// Its HTTP address.
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
        /// Add it as a voter at once instead of a learner.
        #[arg(long)]
        voter: bool,
    },
    /// Make a learner a voter (Raft: only once it has caught up with the commit index).
    Promote {
        /// The learner's id.
        #[arg(long)]
        id: u64,
    },
    /// Remove a member, voter or learner (the leader itself too: it hands over and steps down).
    Remove {
        /// The member's id.
        #[arg(long)]
        id: u64,
    },
}

#[derive(Args)]
pub(super) struct LoadArgs {
    /// What the endpoints speak: lab (this project's HTTP API), etcd (v3 gRPC) or zookeeper (its
    /// client protocol); the last two also drive this project's nodes through `serve
    /// --etcd-listen` / `--zk-listen`. etcd and ZooKeeper serve reads at index (linearizable;
    /// ZooKeeper: sync then read) or local (serializable; ZooKeeper's plain read).
    #[arg(long, value_enum, default_value = "lab")]
    pub(super) system: crate::net::peers::System,
    /// Client endpoints of the cluster's nodes, comma-separated (HTTP for lab).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003"
    )]
    pub(super) endpoints: Vec<String>,
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(super) clients: u64,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub(super) seconds: f64,
    /// Size of each written value, in bytes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub(super) value_bytes: u64,
    /// Fraction of operations that are reads (0 to 1); the same flag as in `run`.
    #[arg(long = "read-ratio", alias = "reads", default_value_t = 0.0, value_parser = parse_ratio)]
    pub(super) reads: f64,
    /// How reads are served: log, index, lease or local (see `serve --help`).
    #[arg(long, default_value = "log", value_parser = ReadLevel::parse)]
    pub(super) read_consistency: ReadLevel,
    /// Distinct keys per client.
    #[arg(long, default_value_t = 1000)]
    pub(super) keys: u64,
    /// Seed for key choice.
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// SIGKILL the leader this many seconds into the run (its pid from /status: the cluster
    /// must run on this machine; `cluster --restart` brings it back).
    #[arg(long, value_name = "SECS")]
    pub(super) kill_leader_at: Option<f64>,
    /// Draw throughput and the slowest answer over time (100 ms buckets) as SVG.
    #[arg(long, value_name = "FILE")]
    pub(super) plot: Option<std::path::PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub(super) json: bool,
    /// Speak HTTPS, trusting this CA certificate (PEM): `cluster --tls` writes it to
    /// <data dir>/tls/ca.pem.
    #[arg(long, value_name = "FILE")]
    pub(super) tls_ca: Option<std::path::PathBuf>,
    /// Authenticate with this client certificate (PEM; with --tls-key), for nodes that
    /// require one.
    #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_key"])]
    pub(super) tls_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(super) tls_key: Option<std::path::PathBuf>,
}

/// Which protocols a command covers: one name, names separated by commas, `both` (Raft and
/// ZAB) or `all` (every registered protocol).
#[derive(Clone, Debug)]
pub(super) struct ProtocolSet(pub(super) Vec<Protocol>);

impl ProtocolSet {
    pub(super) fn parse(s: &str) -> Result<ProtocolSet, String> {
        Protocol::parse_set(s).map(ProtocolSet)
    }
}

#[derive(Args, Clone)]
pub(super) struct Shape {
    /// Cluster size (nodes are numbered 1..=N).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=99))]
    pub(super) nodes: u16,
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(super) clients: u32,
    /// Faults the nemesis injects.
    #[arg(long, value_enum, default_value_t = Faults::Mixed)]
    pub(super) faults: Faults,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(super) keys: u32,
    /// Fraction of operations that are reads (0 to 1).
    #[arg(long, default_value_t = 0.3, value_parser = parse_ratio)]
    pub(super) read_ratio: f64,
    /// How keys are picked.
    #[arg(long, value_enum, default_value_t = KeyDistribution::Uniform)]
    pub(super) distribution: KeyDistribution,
    /// Links between nodes: datagrams (loss drops, duplicates, reorders) or streams (TCP-like:
    /// in order, exactly once, loss costs a retransmission timeout).
    #[arg(long, value_enum, default_value_t = Semantics::Stream)]
    pub(super) network: Semantics,
    /// How far each simulated node's clock may run off true time: its rate is drawn from
    /// [1 - D, 1 + D] (0: true clocks). Raft's lease tolerates rates about 10% apart.
    #[arg(long, default_value_t = 0.0, value_parser = parse_drift)]
    pub(super) clock_drift: f64,
    /// How gets are served: log (through the log, like a write), index (Raft's ReadIndex,
    /// ZooKeeper's sync), lease (Raft's leader lease; ZAB serves it as index), local (from the
    /// serving node's own state: never behind what the client saw, possibly stale).
    #[arg(long, default_value = "log", value_parser = ReadLevel::parse)]
    pub(super) read_consistency: ReadLevel,
    /// Snapshot and compact the log after this many applied entries (0: never).
    #[arg(long, default_value_t = crate::protocol::default_snapshot_threshold())]
    pub(super) snapshot_threshold: u64,
    /// The replicated application and its model: kv (the built-in key-value store), or an
    /// app a program registered before running this command line (harness::app::register).
    #[arg(long, default_value = "kv", value_parser = crate::app::AppHandle::parse)]
    pub(super) app: crate::app::AppHandle,
}

#[derive(Args)]
pub(super) struct RunArgs {
    /// Protocol to run.
    #[arg(long, default_value = "raft", value_parser = Protocol::parse)]
    pub(super) protocol: Protocol,
    #[command(flatten)]
    pub(super) shape: Shape,
    #[command(flatten)]
    pub(super) one: OneRun,
}

/// What defines a single run beyond the cluster's shape.
#[derive(Args)]
pub(super) struct OneRun {
    /// Operations to issue, over all clients.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub(super) ops: u64,
    /// Seed: the workload, the fault schedule and every network draw derive from it; the same
    /// seed gives the same run, byte for byte.
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// Print JSON instead of a table (for compare: `{"raft": {...}, "zab": {...}}`).
    #[arg(long)]
    pub(super) json: bool,
    /// Record the run as JSON Lines for `view` (compare: FILE.<protocol>.jsonl per protocol).
    #[arg(long, value_name = "FILE")]
    pub(super) trace: Option<std::path::PathBuf>,
    /// Draw the latency CDFs (writes and reads, per protocol) as SVG.
    #[arg(long, value_name = "FILE")]
    pub(super) plot: Option<std::path::PathBuf>,
}

#[derive(Args)]
pub(super) struct CheckArgs {
    /// Protocol(s) to sweep: raft, zab, a comma-separated list, both, or all.
    #[arg(long, default_value = "raft", value_parser = ProtocolSet::parse)]
    pub(super) protocol: ProtocolSet,
    #[command(flatten)]
    pub(super) shape: Shape,
    /// Operations per run (10,000 is about 6 s of virtual time: several faults per seed).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub(super) ops: u64,
    /// Seeds to run: `A..B` (inclusive), `A..=B`, or one seed.
    #[arg(long, default_value = "1..200", value_parser = parse_seeds)]
    pub(super) seeds: RangeInclusive<u64>,
    /// Parallel runs (default: one per core).
    #[arg(long)]
    pub(super) jobs: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(super) json: bool,
    /// Re-run every failing seed with its trace recorded, into DIR/<protocol>-seed<N>.jsonl
    /// (runs are deterministic, so the trace is the failing run), ready for `view`.
    #[arg(long, value_name = "DIR")]
    pub(super) trace: Option<std::path::PathBuf>,
    /// Draw, across the seeds, the distributions of time without a leader and of messages
    /// per op, per protocol, as SVG.
    #[arg(long, value_name = "FILE")]
    pub(super) plot: Option<std::path::PathBuf>,
}

#[derive(Args)]
pub(super) struct CompareArgs {
    /// The protocols side by side, comma-separated (one column each).
    #[arg(long, default_value = "raft,zab", value_parser = ProtocolSet::parse)]
    pub(super) protocol: ProtocolSet,
    #[command(flatten)]
    pub(super) shape: Shape,
    #[command(flatten)]
    pub(super) one: OneRun,
}

fn parse_drift(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=0.5).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 0.5"))
    }
}

pub(super) fn parse_ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

pub(super) fn parse_seeds(s: &str) -> Result<RangeInclusive<u64>, String> {
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
    pub(super) fn config(&self, protocol: Protocol, ops: u64, seed: u64) -> RunConfig {
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
            read_consistency: self.read_consistency,
            clock_drift: self.clock_drift,
            app: self.app.clone(),
        }
    }
}

impl Shape {
    pub(super) fn validate(&self, protocols: &[Protocol]) -> Result<()> {
        for p in protocols {
            if let Some(why) = p.def().needs_fifo() {
                if self.network == Semantics::Datagram {
                    bail!(
                        "{} needs FIFO links ({why}): use --network stream",
                        p.words().title
                    );
                }
            }
        }
        Ok(())
    }
}

#[derive(Args)]
#[command(
    after_help = "As in the paper, Raft runs without pre-vote and check-quorum; ZAB's curves vary how
long followers wait for a silent leader (syncLimit ticks). Each trial is one seed: elect, lead
500 ms, crash the leader, time until another leads (up to 10 s)."
)]
pub(super) struct Figure16Args {
    /// Trials (seeds) per curve.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(super) trials: u64,
    /// Where to write the SVG.
    #[arg(short, long, default_value = "figure16.svg")]
    pub(super) output: std::path::PathBuf,
    /// Print the curves' samples and percentiles as JSON instead of a table.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Args)]
#[command(
    after_help = "Runs, in the deterministic simulator: compare under mixed and under chaos faults, \
compare at every read level, Figure 16, and a check sweep; on real local clusters, a failover
under load for each protocol (unless --no-real); then writes one self-contained HTML page
(inline SVG, no scripts, no network). Each figure's caption gives the command that draws it alone."
)]
pub(super) struct ReportArgs {
    /// Where to write the page.
    #[arg(short, long, default_value = "report.html")]
    pub(super) output: std::path::PathBuf,
    /// Operations per comparison run.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(100..=10_000_000))]
    pub(super) ops: u64,
    /// Trials per curve of Figure 16.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(super) trials: u64,
    /// Seeds of the sweep (1 to N).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(super) seeds: u64,
    /// Operations per run of the sweep.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(100..=10_000_000))]
    pub(super) sweep_ops: u64,
    /// Also write each figure alone as DIR/NAME.svg (report-mixed, report-chaos, report-reads,
    /// figure16, report-sweep, failover-raft, failover-zab).
    #[arg(long, value_name = "DIR")]
    pub(super) svg_dir: Option<std::path::PathBuf>,
    /// Leave out the failover under load on a real local cluster (3 processes per protocol on
    /// free ports of 127.0.0.1, 6 s each): the page then holds simulator figures only, the same
    /// on any machine.
    #[arg(long)]
    pub(super) no_real: bool,
}
