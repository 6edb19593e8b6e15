//! Mutual TLS on peer links: nodes with certificates from the cluster's CA talk; a peer with a
//! certificate from another CA, a node showing another node's certificate, and a plaintext
//! peer are refused and logged, and the node keeps serving its real peers. 127.0.0.1 only.

use consensus_core::{NodeId, Transport};
use consensus_node::tcp::{TcpConfig, TcpTransport};
use consensus_node::tls::{generate, node_files, Tls};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything the nodes log, for the checks that a refusal is logged.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn install() -> Log {
        let log = Log::default();
        let writer = log.clone();
        let _ = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init();
        log
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap()).collect()
}

async fn node(
    id: NodeId,
    peers: &BTreeMap<NodeId, SocketAddr>,
    listen: SocketAddr,
    tls: Option<Tls>,
) -> TcpTransport<String> {
    TcpTransport::bind(TcpConfig {
        id,
        cluster_id: "test".into(),
        listen,
        peers: peers.clone(),
        tls,
    })
    .await
    .unwrap()
}

fn tls(dir: &Path, id: NodeId) -> Tls {
    Tls::load(&node_files(dir, id), "test").unwrap()
}

async fn recv(t: &mut TcpTransport<String>, within: Duration) -> Option<(NodeId, String)> {
    tokio::time::timeout(within, t.recv()).await.ok().flatten()
}

/// Node 1 (honest, on the cluster's CA) and the honest node 2; `intruder` plays node 2 from
/// another address and keeps sending. Node 1 must hear the honest node 2 and never the
/// intruder.
async fn intruder_is_refused(intruder_tls: Option<Tls>, ours: &Path) {
    let addrs = free_addrs(3);
    let peers: BTreeMap<NodeId, SocketAddr> = [(1, addrs[0]), (2, addrs[1])].into();
    let mut n1 = node(1, &peers, addrs[0], Some(tls(ours, 1))).await;
    let n2 = node(2, &peers, addrs[1], Some(tls(ours, 2))).await;
    // The intruder claims to be node 2 and dials node 1.
    let intruder = node(2, &peers, addrs[2], intruder_tls).await;
    for i in 0..20 {
        let _ = intruder.send(1, format!("forged {i}")).await;
    }
    n2.send(1, "honest".into()).await.unwrap();
    let mut heard = Vec::new();
    while let Some((from, m)) = recv(&mut n1, Duration::from_secs(2)).await {
        heard.push((from, m));
    }
    assert!(heard.contains(&(2, "honest".to_string())), "{heard:?}");
    assert!(
        heard.iter().all(|(_, m)| !m.starts_with("forged")),
        "{heard:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_on_the_clusters_ca_talk_and_intruders_are_refused_and_logged() {
    let log = Log::install();
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    generate(ours.path(), "test", &[1, 2, 3]).unwrap();
    generate(theirs.path(), "test", &[1, 2, 3]).unwrap();

    // A certificate for node 2 from another CA.
    intruder_is_refused(Some(tls(theirs.path(), 2)), ours.path()).await;
    assert!(
        log.text().contains("TLS handshake refused"),
        "{}",
        log.text()
    );

    // Our CA, but node 3's certificate, while claiming to be node 2.
    intruder_is_refused(Some(tls(ours.path(), 3)), ours.path()).await;
    assert!(
        log.text()
            .contains("the certificate shown for node 2 is not n2.test's"),
        "{}",
        log.text()
    );

    // No TLS at all.
    let before = log.text().matches("TLS handshake refused").count();
    intruder_is_refused(None, ours.path()).await;
    assert!(
        log.text().matches("TLS handshake refused").count() > before,
        "{}",
        log.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialer_refuses_a_server_that_is_not_the_node_it_dials() {
    let ours = tempfile::tempdir().unwrap();
    generate(ours.path(), "test", &[1, 2, 3]).unwrap();
    let addrs = free_addrs(2);
    let peers: BTreeMap<NodeId, SocketAddr> = [(1, addrs[0]), (2, addrs[1])].into();
    // Node 2's address answers with node 3's certificate: node 1 must not send to it.
    let mut impostor = node(2, &peers, addrs[1], Some(tls(ours.path(), 3))).await;
    let n1 = node(1, &peers, addrs[0], Some(tls(ours.path(), 1))).await;
    for i in 0..20 {
        let _ = n1.send(2, format!("secret {i}")).await;
    }
    assert_eq!(recv(&mut impostor, Duration::from_secs(2)).await, None);
}
