//! The library as an application uses it: the same code on Raft and ZAB, a leader stopped
//! mid-way, every command applied exactly once, retries answered from the session table.

use consensus_lab::core::{async_trait, codec, Command, Position, RestoreError, StateMachine};
use consensus_lab::{Client, Cluster, Protocol, ReadLevel, SessionCommand, Sessions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Adds every `+N`; counts how many commands it applied, across all nodes of the process.
struct Counter {
    value: i64,
    applied: Arc<AtomicU64>,
}

#[async_trait]
impl StateMachine for Counter {
    async fn apply(&mut self, _: Position, command: &Command) -> bytes::Bytes {
        let n: i64 = std::str::from_utf8(command)
            .ok()
            .and_then(|c| c.strip_prefix('+'))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        self.value += n;
        self.applied.fetch_add(1, Ordering::Relaxed);
        self.value.to_string().into()
    }
    async fn snapshot(&mut self) -> bytes::Bytes {
        self.value.to_string().into()
    }
    async fn restore(&mut self, data: &[u8]) -> Result<(), RestoreError> {
        self.value = if data.is_empty() {
            0
        } else {
            std::str::from_utf8(data)?.parse()?
        };
        Ok(())
    }
    async fn query(&mut self, _: &Command) -> bytes::Bytes {
        self.value.to_string().into()
    }
}

/// Three nodes of `protocol` replicating a counter, the count of applied commands, and the
/// directory that holds their data (deleted when dropped).
async fn counters(protocol: Protocol) -> (Cluster, Arc<AtomicU64>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let applied = Arc::new(AtomicU64::new(0));
    let cluster = Cluster::start_local(protocol, 3, dir.path(), |_| Counter {
        value: 0,
        applied: applied.clone(),
    })
    .await
    .unwrap();
    (cluster, applied, dir)
}

async fn counter_through_a_leader_stop(protocol: Protocol) {
    let (cluster, _, _dir) = counters(protocol).await;
    let mut client = Client::new(cluster.handles());
    for i in 1..=10 {
        let out = client.submit(b"+1".to_vec()).await.unwrap();
        assert_eq!(out, i.to_string(), "{protocol:?}");
    }
    let leader = cluster
        .handles()
        .iter()
        .find_map(|h| h.status().leader)
        .unwrap();
    cluster.node(leader).unwrap().stop();
    for i in 11..=15 {
        let out = client.submit(b"+1".to_vec()).await.unwrap();
        assert_eq!(out, i.to_string(), "{protocol:?} after the leader stopped");
    }
    let read = client
        .read(ReadLevel::Index, b"get".to_vec())
        .await
        .unwrap();
    assert_eq!(read, "15", "{protocol:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raft_counter_survives_its_leader() {
    counter_through_a_leader_stop(Protocol::Raft).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zab_counter_survives_its_leader() {
    counter_through_a_leader_stop(Protocol::Zab).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_command_is_applied_once_on_every_node() {
    for protocol in [Protocol::Raft, Protocol::Zab] {
        let (cluster, applied, _dir) = counters(protocol).await;
        // The same session and sequence number twice, as a client retrying after a timeout.
        let cmd = bytes::Bytes::from(
            codec::encode(&SessionCommand {
                session: 7,
                seq: 1,
                command: b"+5".to_vec(),
            })
            .unwrap(),
        );
        let mut client = Client::new(cluster.handles());
        client.submit(b"+0".to_vec()).await.unwrap(); // a leader is elected
        let leader = cluster
            .handles()
            .into_iter()
            .find(|h| h.status().leader == Some(h.status().id))
            .unwrap();
        assert_eq!(leader.submit(cmd.clone()).await.unwrap(), "5");
        assert_eq!(leader.submit(cmd).await.unwrap(), "5", "{protocol:?}");
        let read = client
            .read(ReadLevel::Index, b"get".to_vec())
            .await
            .unwrap();
        assert_eq!(read, "5", "{protocol:?}: applied once");
        // Two commands applied (+0 and +5) on each of the three nodes, the retry on none;
        // give the followers a moment to apply.
        let want = 2 * 3;
        for _ in 0..100 {
            if applied.load(Ordering::Relaxed) >= want {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(applied.load(Ordering::Relaxed), want, "{protocol:?}");
    }
}

#[tokio::test]
async fn the_session_table_survives_a_snapshot() {
    let applied = Arc::new(AtomicU64::new(0));
    let mk = || {
        Sessions::new(Counter {
            value: 0,
            applied: applied.clone(),
        })
    };
    let cmd = |seq| {
        bytes::Bytes::from(
            codec::encode(&SessionCommand {
                session: 1,
                seq,
                command: b"+2".to_vec(),
            })
            .unwrap(),
        )
    };
    let mut a = mk();
    assert_eq!(a.apply(Position::new(1, 1), &cmd(1)).await, "2");
    let snap = a.snapshot().await;
    let mut b = mk();
    b.restore(&snap).await.unwrap();
    // The restored copy answers the retry of seq 1 without applying it, and applies seq 2.
    assert_eq!(b.apply(Position::new(1, 2), &cmd(1)).await, "2");
    assert_eq!(b.apply(Position::new(1, 3), &cmd(2)).await, "4");
    assert_eq!(b.inner().value, 4);
    assert!(b.restore(b"\xff\xff garbage").await.is_err());
    assert_eq!(
        b.inner().value,
        4,
        "a bad snapshot leaves the state unchanged"
    );
}

#[path = "../examples/lock.rs"]
mod lock;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_service_grants_one_holder_at_a_time_with_growing_tokens() {
    for protocol in [Protocol::Raft, Protocol::Zab] {
        let dir = tempfile::tempdir().unwrap();
        let tokens = lock::contend(protocol, dir.path()).await.unwrap();
        assert_eq!(tokens.len(), 2, "{protocol:?}");
        assert!(tokens[0] < tokens[1], "{protocol:?}: {tokens:?}");
    }
    // The fence turns away a token smaller than one it accepted.
    let mut f = lock::Fenced::default();
    assert!(f.write(3) && f.write(3) && !f.write(2) && f.write(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_mutual_tls_replicate_and_refuse_a_node_without_it() {
    use consensus_lab::tls::{generate, node_files};
    use consensus_lab::{Node, NodeConfig};
    let certs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    generate(certs.path(), "tls-app", &[1, 2, 3]).unwrap();
    let applied = Arc::new(AtomicU64::new(0));
    for protocol in [Protocol::Raft, Protocol::Zab] {
        let listeners: Vec<std::net::TcpListener> = (0..3)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let peers: std::collections::BTreeMap<u64, std::net::SocketAddr> = listeners
            .iter()
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, l.local_addr().unwrap()))
            .collect();
        drop(listeners);
        let mut nodes = Vec::new();
        // Node 3 runs without TLS: the others refuse it, and two of three still make a quorum.
        for id in 1..=3 {
            let cfg = NodeConfig {
                id,
                peers: peers.clone(),
                data_dir: data.path().join(format!("{protocol:?}-n{id}")),
                cluster_id: "tls-app".into(),
                seed: None,
                tls: (id != 3).then(|| node_files(certs.path(), id)),
            };
            let sm = Counter {
                value: 0,
                applied: Arc::clone(&applied),
            };
            nodes.push(Node::start(protocol, cfg, sm).await.unwrap());
        }
        let mut client = Client::new(nodes.iter().map(Node::handle).collect());
        for _ in 0..5 {
            client.submit(b"+1".to_vec()).await.unwrap();
        }
        let count = client
            .read(ReadLevel::Index, b"get".to_vec())
            .await
            .unwrap();
        assert_eq!(&count[..], b"5", "{protocol:?}");
        // The plaintext node never heard of them.
        let s3 = nodes[2].handle().status();
        assert_eq!(s3.commit, consensus_lab::core::Position::ZERO, "{s3:?}");
    }
}
