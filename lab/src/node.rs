//! Starting nodes: one [`Node`] of a real cluster, or a whole [`Cluster`] on this machine.

use crate::{Error, Protocol, Sessions};
use consensus_core::{NodeId, StateMachine};
use consensus_node::runtime::{Node as Runtime, NodeError, NodeHandle, NodeStats};
use consensus_node::tcp::{TcpConfig, TcpTransport};
use consensus_node::FileLog;
use rand::RngExt;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where one node runs and who its peers are.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node.
    pub id: NodeId,
    /// Every member's peer address, this node's included.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Where the node keeps its log, hard state and snapshots.
    pub data_dir: PathBuf,
    /// Peers of another cluster id are refused.
    pub cluster_id: String,
    /// Seed of the node's randomness (election timeouts); `None` draws one.
    pub seed: Option<u64>,
    /// Mutual TLS between the nodes: the cluster's CA, this node's certificate (valid for
    /// `n<id>.<cluster_id>`) and key, PEM files; `None`: plain TCP.
    pub tls: Option<crate::tls::TlsFiles>,
}

/// A running node.
pub struct Node {
    handle: NodeHandle,
    task: tokio::task::JoinHandle<Result<NodeStats, NodeError>>,
}

impl Node {
    /// Starts node `cfg.id` running `protocol` over `sm` (wrapped in [`Sessions`]): binds its
    /// peer port, recovers its data directory and spawns its task on the current tokio
    /// runtime.
    pub async fn start<S>(protocol: Protocol, cfg: NodeConfig, sm: S) -> Result<Node, Error>
    where
        S: StateMachine + 'static,
    {
        let id = cfg.id;
        let fail = |reason: String| Error::Start { node: id, reason };
        let Some(&listen) = cfg.peers.get(&id) else {
            return Err(Error::Usage(format!("node {id} is not among the peers")));
        };
        let voters: Vec<NodeId> = cfg.peers.keys().copied().collect();
        let seed = cfg.seed.unwrap_or_else(|| rand::rng().random());
        let tls = match &cfg.tls {
            Some(files) => Some(
                crate::tls::Tls::load(files, &cfg.cluster_id).map_err(|e| fail(e.to_string()))?,
            ),
            None => None,
        };
        let tcp = TcpConfig {
            id,
            cluster_id: cfg.cluster_id.clone(),
            listen,
            peers: cfg.peers.clone(),
            tls,
        };
        let sm = Sessions::new(sm);
        let store_err = |e: consensus_core::StorageError| fail(e.to_string());
        let start_err = |e: NodeError| fail(e.to_string());
        let (handle, task) = match protocol {
            Protocol::Raft => {
                let transport = TcpTransport::<raft::Message>::bind(tcp)
                    .await
                    .map_err(|e| fail(format!("cannot listen on {listen}: {e}")))?;
                let store = FileLog::open(&cfg.data_dir).map_err(store_err)?;
                // Lease reads are served: a lease needs the vote pause at start-up.
                let config = raft::Config::serving_leases();
                let (node, handle) = Runtime::start(store, transport, sm, move |rec, now| {
                    raft::RaftReplica::new(id, &voters, config, seed, rec, now)
                })
                .await
                .map_err(start_err)?;
                (handle, tokio::spawn(node.run()))
            }
            Protocol::Zab => {
                let transport = TcpTransport::<zab::Message>::bind(tcp)
                    .await
                    .map_err(|e| fail(format!("cannot listen on {listen}: {e}")))?;
                let store = FileLog::open(&cfg.data_dir).map_err(store_err)?;
                let (node, handle) = Runtime::start(store, transport, sm, move |rec, now| {
                    zab::ZabReplica::new(id, &voters, zab::Config::default(), seed, rec, now)
                })
                .await
                .map_err(start_err)?;
                (handle, tokio::spawn(node.run()))
            }
        };
        Ok(Node { handle, task })
    }

    /// A handle for submitting commands, reading and watching the node's status.
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Stops the node (as a crash would: what it synced stays on disk).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Nodes of one cluster, all in this process, on 127.0.0.1.
pub struct Cluster {
    nodes: Vec<Node>,
}

impl Cluster {
    /// Starts `n` nodes running `protocol` on free ports of 127.0.0.1, node `i` keeping its
    /// data in `dir/n<i>` and replicating the state machine `make(i)`.
    pub async fn start_local<S, F>(
        protocol: Protocol,
        n: usize,
        dir: &Path,
        make: F,
    ) -> Result<Cluster, Error>
    where
        S: StateMachine + 'static,
        F: Fn(NodeId) -> S,
    {
        if n == 0 {
            return Err(Error::Usage("a cluster needs at least one node".into()));
        }
        // Reserve a port per node, then let the nodes bind them.
        let mut peers = BTreeMap::new();
        {
            let mut held = Vec::new();
            for id in 1..=n as NodeId {
                let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Error::Start {
                    node: id,
                    reason: e.to_string(),
                })?;
                peers.insert(id, l.local_addr().expect("a bound listener has an address"));
                held.push(l);
            }
        }
        let mut nodes = Vec::new();
        for id in 1..=n as NodeId {
            let cfg = NodeConfig {
                id,
                peers: peers.clone(),
                data_dir: dir.join(format!("n{id}")),
                cluster_id: "local".into(),
                seed: None,
                tls: None,
            };
            nodes.push(Node::start(protocol, cfg, make(id)).await?);
        }
        Ok(Cluster { nodes })
    }

    /// One handle per node, in id order.
    pub fn handles(&self) -> Vec<NodeHandle> {
        self.nodes.iter().map(Node::handle).collect()
    }

    /// Node `id` (from 1).
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get((id as usize).checked_sub(1)?)
    }
}
