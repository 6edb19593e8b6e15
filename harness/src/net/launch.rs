//! `consensus-lab cluster`: a local cluster of `serve` processes on loopback.

use crate::protocol::Protocol;
use consensus_core::NodeId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Where and how to start a local cluster.
#[derive(Clone, Debug)]
pub struct LaunchConfig {
    /// Raft or ZAB.
    pub protocol: Protocol,
    /// Number of nodes (ids 1..=nodes).
    pub nodes: u64,
    /// Nodes started outside the configuration (ids after `nodes`, `serve --join`), for
    /// `member add`.
    pub spares: u64,
    /// Node N listens for peers on `peer_base + N`.
    pub peer_base: u16,
    /// Node N serves HTTP on `http_base + N`.
    pub http_base: u16,
    /// Node N keeps its data in `data_dir/nN`.
    pub data_dir: PathBuf,
    /// The cluster id every node presents to its peers.
    pub cluster_id: String,
    /// The `consensus-lab` binary to run.
    pub exe: PathBuf,
    /// The nodes log warnings and errors only (their stderr is this process's).
    pub quiet: bool,
    /// The address node `from` dials to reach peer `to`, where it is not the peer's own (a
    /// fault-injecting proxy in between: `torture`).
    pub links: BTreeMap<(NodeId, NodeId), String>,
    /// Mutual TLS and HTTPS, with a throwaway CA and certificates made in `data_dir/tls`.
    pub tls: bool,
    /// Node N also serves etcd's v3 API on `etcd_base + N`.
    pub etcd_base: Option<u16>,
    /// Node N also serves ZooKeeper's client protocol on `zk_base + N`.
    pub zk_base: Option<u16>,
}

impl LaunchConfig {
    /// The peer address of node `id`.
    pub fn peer_addr(&self, id: NodeId) -> String {
        format!("127.0.0.1:{}", self.peer_base as u64 + id)
    }

    /// The HTTP address of node `id`.
    pub fn http_addr(&self, id: NodeId) -> String {
        format!("127.0.0.1:{}", self.http_base as u64 + id)
    }

    /// The etcd address of node `id`, if the nodes serve etcd's API.
    pub fn etcd_addr(&self, id: NodeId) -> Option<String> {
        self.etcd_base
            .map(|b| format!("127.0.0.1:{}", b as u64 + id))
    }

    /// The ZooKeeper address of node `id`, if the nodes serve ZooKeeper's protocol.
    pub fn zk_addr(&self, id: NodeId) -> Option<String> {
        self.zk_base.map(|b| format!("127.0.0.1:{}", b as u64 + id))
    }

    /// Every node's HTTP address.
    pub fn endpoints(&self) -> Vec<String> {
        (1..=self.nodes).map(|id| self.http_addr(id)).collect()
    }

    /// The data directory of node `id`.
    pub fn node_dir(&self, id: NodeId) -> PathBuf {
        self.data_dir.join(format!("n{id}"))
    }

    /// Every node started: the members, then the spares.
    pub fn all_ids(&self) -> impl Iterator<Item = NodeId> {
        1..=self.nodes + self.spares
    }

    /// The `serve` arguments for node `id` (a spare joins: its peers are the members and itself).
    pub fn serve_args(&self, id: NodeId) -> Vec<String> {
        let spare = id > self.nodes;
        let members: Vec<NodeId> = (1..=self.nodes).chain(spare.then_some(id)).collect();
        let join = |ids: &[NodeId], f: &dyn Fn(NodeId) -> String| {
            ids.iter()
                .map(|&n| format!("{n}={}", f(n)))
                .collect::<Vec<_>>()
                .join(",")
        };
        let everyone: Vec<NodeId> = self.all_ids().collect();
        vec![
            "serve".into(),
            "--protocol".into(),
            self.protocol.name().into(),
            "--id".into(),
            id.to_string(),
            "--peers".into(),
            join(&members, &|n| {
                self.links
                    .get(&(id, n))
                    .cloned()
                    .unwrap_or_else(|| self.peer_addr(n))
            }),
            "--peer-http".into(),
            join(&everyone, &|n| self.http_addr(n)),
            "--http".into(),
            self.http_addr(id),
            "--data-dir".into(),
            self.node_dir(id).display().to_string(),
            "--cluster-id".into(),
            self.cluster_id.clone(),
        ]
        .into_iter()
        .chain(spare.then(|| "--join".to_string()))
        .chain(
            self.etcd_addr(id)
                .map(|a| ["--etcd-listen".to_string(), a])
                .into_iter()
                .flatten(),
        )
        .chain(
            self.zk_addr(id)
                .map(|a| ["--zk-listen".to_string(), a])
                .into_iter()
                .flatten(),
        )
        .chain(
            self.tls
                .then(|| {
                    let f = consensus_node::tls::node_files(&self.tls_dir(), id);
                    [
                        "--tls-ca".to_string(),
                        f.ca.display().to_string(),
                        "--tls-cert".into(),
                        f.cert.display().to_string(),
                        "--tls-key".into(),
                        f.key.display().to_string(),
                    ]
                })
                .into_iter()
                .flatten(),
        )
        .collect()
    }

    /// Where `cluster --tls` keeps the CA and the certificates.
    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }

    /// Starts node `id` as a child process (stderr inherited, for its log).
    pub fn spawn(&self, id: NodeId) -> std::io::Result<Child> {
        let mut c = Command::new(&self.exe);
        c.args(self.serve_args(id))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if self.quiet {
            c.env("RUST_LOG", "warn");
        }
        c.spawn()
    }
}

/// Sends signal `sig` ("-KILL", "-STOP", "-CONT") to process `pid` with `kill(1)`.
pub fn signal(pid: u32, sig: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill {sig} {pid} failed");
    Ok(())
}

/// A running local cluster; dropping it kills every process it started.
pub struct LocalCluster {
    /// How it was started.
    pub cfg: LaunchConfig,
    children: Vec<(NodeId, Child)>,
}

impl LocalCluster {
    /// Starts every node.
    pub fn start(cfg: LaunchConfig) -> std::io::Result<LocalCluster> {
        std::fs::create_dir_all(&cfg.data_dir)?;
        if cfg.tls && !cfg.tls_dir().join("ca.pem").exists() {
            let ids: Vec<NodeId> = cfg.all_ids().collect();
            consensus_node::tls::generate(&cfg.tls_dir(), &cfg.cluster_id, &ids)
                .map_err(std::io::Error::other)?;
        }
        let mut cluster = LocalCluster {
            cfg,
            children: Vec::new(),
        };
        let ids: Vec<NodeId> = cluster.cfg.all_ids().collect();
        for id in ids {
            let child = cluster.cfg.spawn(id)?;
            cluster.children.push((id, child));
        }
        Ok(cluster)
    }

    /// Process ids, by node.
    pub fn pids(&self) -> Vec<(NodeId, u32)> {
        self.children.iter().map(|(id, c)| (*id, c.id())).collect()
    }

    /// The nodes whose processes have exited since the last call, with their exit statuses;
    /// they are no longer counted as running.
    pub fn exited(&mut self) -> Vec<(NodeId, std::process::ExitStatus)> {
        let mut gone = Vec::new();
        self.children.retain_mut(|(id, c)| match c.try_wait() {
            Ok(Some(status)) => {
                gone.push((*id, status));
                false
            }
            _ => true,
        });
        gone
    }

    /// The process id of node `id`, while it runs.
    pub fn pid(&self, id: NodeId) -> Option<u32> {
        self.children
            .iter()
            .find(|(n, _)| *n == id)
            .map(|(_, c)| c.id())
    }

    /// SIGKILLs node `id` and waits for it to exit; false when it was not running.
    pub fn kill(&mut self, id: NodeId) -> bool {
        let Some(i) = self.children.iter().position(|(n, _)| *n == id) else {
            return false;
        };
        let (_, mut child) = self.children.remove(i);
        let _ = child.kill();
        let _ = child.wait();
        true
    }

    /// Number of node processes running.
    pub fn running(&self) -> usize {
        self.children.len()
    }

    /// Starts node `id` again on its data directory (after it exited); returns its pid.
    pub fn restart(&mut self, id: NodeId) -> std::io::Result<u32> {
        let child = self.cfg.spawn(id)?;
        let pid = child.id();
        self.children.push((id, child));
        self.children.sort_by_key(|(id, _)| *id);
        Ok(pid)
    }

    /// Kills every process (SIGKILL: the nodes' data is durable) and waits for it.
    pub fn stop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
        }
        for (_, c) in &mut self.children {
            let _ = c.wait();
        }
        self.children.clear();
    }

    /// The data directory of the whole cluster.
    pub fn data_dir(&self) -> &Path {
        &self.cfg.data_dir
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port `base` such that `base + 1 ..= base + n` are free on 127.0.0.1 now, below the
/// kernel's ephemeral range (32768 and up on Linux): a port the system may hand to any
/// outgoing connection could be taken while its node is down, and the node could not come
/// back on it.
///
/// The ports are free when it looks, not reserved: the nodes bind them later. Within one
/// process (tests of one binary run in parallel) a range once given is never given again, so
/// two clusters starting at the same moment cannot both be handed the same ports.
pub fn free_port_base(n: u16) -> anyhow::Result<u16> {
    static GIVEN: std::sync::Mutex<Vec<(u16, u16)>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    // Spread concurrent callers (other processes) over the range.
    let start = (std::process::id() as u64 * 7919 + now_nanos()) as u16;
    pick_ports(start, n, &mut given, |port| {
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
    })
}

/// The search of [`free_port_base`], from a starting point: the first `n` consecutive ports
/// that are free and overlap no range in `given`, which then records them.
fn pick_ports(
    start: u16,
    n: u16,
    given: &mut Vec<(u16, u16)>,
    free: impl Fn(u16) -> bool,
) -> anyhow::Result<u16> {
    const LOW: u16 = 10_000;
    const HIGH: u16 = 32_000;
    let mut p = LOW + start % (HIGH - LOW);
    for _ in 0..2_000 {
        if p + n >= HIGH {
            p = LOW;
        }
        let (first, last) = (p + 1, p + n);
        let overlaps = given.iter().any(|&(a, b)| first <= b && a <= last);
        if !overlaps && (first..=last).all(&free) {
            given.push((first, last));
            return Ok(p);
        }
        p += n + 1;
    }
    anyhow::bail!("no {n} consecutive free ports on 127.0.0.1 between {LOW} and {HIGH}")
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_once_given_is_not_given_again_even_while_its_ports_look_free() {
        let mut given = Vec::new();
        // Every port looks free (the clusters have not bound theirs yet), and both callers
        // start their search at the same place.
        let a = pick_ports(500, 6, &mut given, |_| true).unwrap();
        let b = pick_ports(500, 6, &mut given, |_| true).unwrap();
        assert_eq!(a, 10_500);
        assert!(b + 1 > a + 6, "{b} overlaps {a}");
        assert_eq!(given, vec![(10_501, 10_506), (10_508, 10_513)]);
    }

    #[test]
    fn ports_in_use_are_skipped() {
        let mut given = Vec::new();
        let p = pick_ports(0, 3, &mut given, |port| port != 10_002).unwrap();
        assert_eq!(p, 10_004, "the first range holds 10002, which is taken");
    }
}
