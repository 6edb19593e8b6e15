//! What `serve` needs to run one node, from flags or a TOML file, and its checks.

use crate::protocol::Protocol;
use anyhow::bail;
use consensus_core::NodeId;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `serve` needs to run one node.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The protocol (a registered name).
    pub protocol: Protocol,
    /// This node's id; must be one of `peers`.
    pub id: NodeId,
    /// Every member (this node included) and its peer address.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Members' HTTP addresses, for redirecting clients to the leader.
    #[serde(default)]
    pub peer_http: BTreeMap<NodeId, SocketAddr>,
    /// Where the log, hard state and snapshots live.
    pub data_dir: PathBuf,
    /// Address of the HTTP API.
    pub http: SocketAddr,
    /// Peer connections from another cluster are refused.
    #[serde(default = "default_cluster_id")]
    pub cluster_id: String,
    /// Answer writes at a follower with a 307 to the leader instead of forwarding them.
    #[serde(default)]
    pub redirect: bool,
    /// Mutual TLS on peer links and HTTPS for clients (absent: plain TCP and HTTP).
    #[serde(default)]
    pub tls: Option<ServeTls>,
    /// Applied entries beyond the last snapshot that make the node take a new one (0: never).
    #[serde(default = "default_snapshot_threshold")]
    pub snapshot_threshold: u64,
    /// Serve etcd's v3 gRPC API here too.
    #[serde(default)]
    pub etcd_listen: Option<SocketAddr>,
    /// Serve ZooKeeper's client protocol here too.
    #[serde(default)]
    pub zk_listen: Option<SocketAddr>,
    /// Start outside the configuration and wait to be added (`member add`): `peers` lists
    /// the running members and this node.
    #[serde(default)]
    pub join: bool,
}

/// A real node's snapshot threshold unless told otherwise: etcd's `--snapshot-count` and
/// ZooKeeper's `snapCount` default, 100,000 (the simulator's is 10,000: its runs are short).
pub const REAL_SNAPSHOT_THRESHOLD: u64 = 100_000;

fn default_snapshot_threshold() -> u64 {
    REAL_SNAPSHOT_THRESHOLD
}

/// The `[tls]` section: PEM files, and whether HTTPS clients must show a certificate.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeTls {
    /// The cluster's CA certificate (it signed every node's and client's certificate).
    pub ca: PathBuf,
    /// This node's certificate, valid for `n{id}.{cluster_id}` (and the HTTP host).
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
    /// HTTPS clients must show a certificate from the CA (`required`) or may (`optional`).
    #[serde(default)]
    pub client_certs: ClientCerts,
}

/// Whether HTTPS clients must authenticate with a certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClientCerts {
    /// A client may show one (checked when shown).
    #[default]
    Optional,
    /// Every client must show one.
    Required,
}

impl ServeTls {
    /// The files as the peer transport takes them.
    pub fn files(&self) -> consensus_node::tls::TlsFiles {
        consensus_node::tls::TlsFiles {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }
}

/// The cluster id used when none is given.
pub fn default_cluster_id() -> String {
    "consensus-lab".to_string()
}

impl ServeConfig {
    /// Checks that the members, addresses and this node's id fit together.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.peers.contains_key(&self.id) {
            bail!(
                "--id {} is not among the peers ({})",
                self.id,
                self.peers
                    .keys()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if self.peers.contains_key(&0) {
            bail!("node ids start at 1");
        }
        if self.join && self.peers.len() < 2 {
            bail!("--join needs the running members in --peers (besides this node)");
        }
        if self.tls.is_some()
            && !self
                .cluster_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            bail!(
                "with TLS the cluster id names certificates (n<id>.<cluster id>): use letters, digits, '-' and '.', not {:?}",
                self.cluster_id
            );
        }
        if let Some(&own) = self.peer_http.get(&self.id) {
            if own != self.http {
                bail!(
                    "--peer-http gives this node {own}, but --http is {}",
                    self.http
                );
            }
        }
        Ok(())
    }
}

/// Parses `1=127.0.0.1:7001,2=127.0.0.1:7002` into a map.
pub fn parse_members(s: &str) -> Result<BTreeMap<NodeId, SocketAddr>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not ID=HOST:PORT"))?;
        let id: NodeId = id
            .trim()
            .parse()
            .map_err(|_| format!("{id:?} is not a node id"))?;
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP:PORT address"))?;
        if out.insert(id, addr).is_some() {
            return Err(format!("node {id} is listed twice"));
        }
    }
    if out.is_empty() {
        return Err("no members given".into());
    }
    Ok(out)
}
