//! Catch-up of any size on the real stack (TCP transport, file logs, tokio runtime): a
//! follower that was down while 64 values of 1 MiB were written, and the log compacted, gets
//! a 64 MiB snapshot, over 16 MiB frames, in 1 MiB chunks (Raft's InstallSnapshot, ZAB's
//! SNAP), and ends with every value. Sockets on 127.0.0.1 only; every node is stopped at the end.

use consensus_core::kv::{KvCommand, KvOp, KvOutput, KvStore};
use consensus_core::{codec, NodeId, Position, ReadLevel};
use consensus_node::runtime::{Node, NodeHandle};
use consensus_node::tcp::{TcpConfig, TcpTransport};
use consensus_node::FileLog;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

const VALUES: usize = 64;
const VALUE_BYTES: usize = 1 << 20;

#[derive(Clone, Copy, Debug)]
enum Proto {
    Raft,
    Zab,
}

fn peers(base: u16) -> BTreeMap<NodeId, SocketAddr> {
    (1..=3)
        .map(|id| {
            (
                id,
                format!("127.0.0.1:{}", base + id as u16).parse().unwrap(),
            )
        })
        .collect()
}

/// Starts node `id` (binding its port, retried while a stopped predecessor lets go of it).
async fn start(proto: Proto, id: NodeId, base: u16, dir: &Path) -> (NodeHandle, JoinHandle<()>) {
    let peers = peers(base);
    let voters: Vec<NodeId> = peers.keys().copied().collect();
    let tcp = TcpConfig {
        id,
        cluster_id: "catch-up".into(),
        listen: peers[&id],
        peers: peers.clone(),
        tls: None,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    macro_rules! bind {
        ($msg:ty) => {
            loop {
                match TcpTransport::<$msg>::bind(tcp.clone()).await {
                    Ok(t) => break t,
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("cannot bind node {id}: {e}"),
                }
            }
        };
    }
    match proto {
        Proto::Raft => {
            let config = raft::Config {
                snapshot_threshold: 8,
                ..raft::Config::default()
            };
            let store = FileLog::open(dir).unwrap();
            let (node, handle) =
                Node::start(store, bind!(raft::Message), KvStore::new(), |rec, now| {
                    raft::RaftReplica::new(id, &voters, config, id, rec, now)
                })
                .await
                .unwrap();
            (
                handle,
                tokio::spawn(async move {
                    let _ = node.run().await;
                }),
            )
        }
        Proto::Zab => {
            let config = zab::Config {
                snapshot_threshold: 8,
                commit_log_count: 4,
                ..zab::Config::default()
            };
            let store = FileLog::open(dir).unwrap();
            let (node, handle) =
                Node::start(store, bind!(zab::Message), KvStore::new(), |rec, now| {
                    zab::ZabReplica::new(id, &voters, config, id, rec, now)
                })
                .await
                .unwrap();
            (
                handle,
                tokio::spawn(async move {
                    let _ = node.run().await;
                }),
            )
        }
    }
}

async fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Submits `cmd` to whichever running node leads (the session makes a retry take effect once).
async fn submit(up: &[NodeHandle], cmd: bytes::Bytes) -> bytes::Bytes {
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "a write commits with two of three up"
        );
        let leader = up
            .iter()
            .find(|h| h.status().role == consensus_core::Role::Leader);
        if let Some(h) = leader {
            let r = tokio::time::timeout(Duration::from_secs(5), h.submit(cmd.clone())).await;
            if let Ok(Ok(out)) = r {
                return out;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn put(seq: u64, key: String, value: String) -> bytes::Bytes {
    KvCommand {
        client: 1,
        seq,
        op: KvOp::Put { key, value },
    }
    .encode()
}

async fn a_lagging_follower_gets_64_mib(proto: Proto) {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let base = harness::net::launch::free_port_base(3).unwrap();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(proto, id, base, dirs[id as usize - 1].path()).await);
    }
    let leader = {
        let handles: Vec<NodeHandle> = nodes.iter().map(|(h, _)| h.clone()).collect();
        let mut leader = None;
        wait_for("a leader", Duration::from_secs(10), || {
            leader = handles
                .iter()
                .find(|h| h.status().role == consensus_core::Role::Leader)
                .map(|h| h.status().id);
            leader.is_some()
        })
        .await;
        leader.unwrap()
    };
    // Stop a follower; write 64 MiB while it is down.
    let lagger: NodeId = (1..=3).find(|&i| i != leader).unwrap();
    let (_, task) = nodes.remove(lagger as usize - 1);
    task.abort();
    let _ = task.await;
    let up: Vec<NodeHandle> = nodes.iter().map(|(h, _)| h.clone()).collect();
    let value = |i: usize| format!("{i:04}{}", "x".repeat(VALUE_BYTES - 4));
    for i in 0..VALUES {
        let out = submit(&up, put(i as u64 + 1, format!("k{i}"), value(i))).await;
        assert_eq!(codec::decode::<KvOutput>(&out).unwrap(), KvOutput::Written);
    }
    let target = up.iter().map(|h| h.status().commit).max().unwrap();
    // The follower comes back: the entries it needs are compacted, only the state can help.
    let (h, task) = start(proto, lagger, base, dirs[lagger as usize - 1].path()).await;
    wait_for(
        &format!("{proto:?}: the lagging follower's catch-up"),
        Duration::from_secs(60),
        || h.status().commit >= target,
    )
    .await;
    for i in [0, VALUES / 2, VALUES - 1] {
        let get = KvCommand {
            client: 0,
            seq: 0,
            op: KvOp::Get {
                key: format!("k{i}"),
            },
        }
        .encode();
        let out = h.read(ReadLevel::Local, get, Position::ZERO).await.unwrap();
        match codec::decode::<KvOutput>(&out).unwrap() {
            KvOutput::Value(Some(v)) => assert!(v == value(i), "{proto:?}: k{i} differs"),
            other => panic!("{proto:?}: k{i} is {other:?} on the caught-up follower"),
        }
    }
    task.abort();
    for (_, t) in nodes {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raft_follower_64_mib_behind_catches_up_by_chunked_install_snapshot() {
    a_lagging_follower_gets_64_mib(Proto::Raft).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zab_follower_64_mib_behind_catches_up_by_chunked_snap() {
    a_lagging_follower_gets_64_mib(Proto::Zab).await;
}
