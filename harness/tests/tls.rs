//! HTTPS and mutual TLS on real nodes (127.0.0.1 only, every wait bounded, every process
//! killed at the end): `cluster --tls`'s throwaway CA and certificates carry a 3-node
//! cluster of each protocol, followers forwarding writes over HTTPS; plaintext to an HTTPS
//! port is refused while the node keeps serving; a node that requires client certificates
//! refuses a client without one, or with one from another CA.

use bytes::Bytes;
use consensus_node::tls::{client_connector, generate, node_files};
use harness::net::launch::{free_port_base, LaunchConfig, LocalCluster};
use harness::net::serve_config::{ClientCerts, ServeTls};
use harness::net::{Client, ServeConfig};
use hyper::{Method, StatusCode};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_consensus-lab");

/// Retries `call` (a fresh connection each time) until it answers 200, for up to 30 s.
async fn until_ok(client: &mut Client, method: Method, path: &str, body: &'static str) -> Bytes {
    let t0 = Instant::now();
    loop {
        let r = client
            .call(method.clone(), path, Bytes::from_static(body.as_bytes()))
            .await;
        match r {
            Ok(r) if r.status == StatusCode::OK => return r.body,
            other => {
                assert!(t0.elapsed() < Duration::from_secs(30), "{path}: {other:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_of_each_protocol_serves_https_and_refuses_plaintext() {
    for protocol in [harness::protocol::RAFT, harness::protocol::ZAB] {
        let dir = tempfile::tempdir().unwrap();
        let base = free_port_base(6).unwrap();
        let cfg = LaunchConfig {
            protocol,
            nodes: 3,
            spares: 0,
            peer_base: base,
            http_base: base + 3,
            data_dir: dir.path().to_path_buf(),
            cluster_id: "tls-test".into(),
            exe: EXE.into(),
            quiet: true,
            links: Default::default(),
            tls: true,
            etcd_base: None,
            zk_base: None,
        };
        let endpoints = cfg.endpoints();
        let ca = cfg.tls_dir().join("ca.pem");
        let _cluster = LocalCluster::start(cfg.clone()).unwrap();
        let tls = Some(client_connector(&ca, None).unwrap());
        // A write at node 2 (forwarded to the leader over HTTPS if node 2 follows), a read
        // at node 3.
        let mut c2 = Client::new(vec![endpoints[1].clone()], 0).with_tls(tls.clone());
        until_ok(&mut c2, Method::PUT, "/kv/greeting", "hello").await;
        let mut c3 = Client::new(vec![endpoints[2].clone()], 0).with_tls(tls.clone());
        let body = until_ok(&mut c3, Method::GET, "/kv/greeting", "").await;
        assert!(String::from_utf8_lossy(&body).contains("hello"), "{body:?}");

        // Plaintext HTTP to an HTTPS port gets no answer; HTTPS still works after it.
        let mut plain = Client::new(vec![endpoints[0].clone()], 0);
        let r = plain.call_once(Method::GET, "/status", Bytes::new()).await;
        assert!(r.is_err(), "{}: plaintext answered: {r:?}", protocol.name());
        let mut c1 = Client::new(vec![endpoints[0].clone()], 0).with_tls(tls);
        until_ok(&mut c1, Method::GET, "/status", "").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificates_refuse_clients_without_one_from_the_ca() {
    let certs = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    generate(certs.path(), "solo", &[1]).unwrap();
    generate(other.path(), "solo", &[1]).unwrap();
    let data = tempfile::tempdir().unwrap();
    let base = free_port_base(2).unwrap();
    let http = format!("127.0.0.1:{}", base + 2);
    let files = node_files(certs.path(), 1);
    let cfg = ServeConfig {
        protocol: harness::protocol::RAFT,
        id: 1,
        peers: [(1, format!("127.0.0.1:{}", base + 1).parse().unwrap())].into(),
        peer_http: Default::default(),
        data_dir: data.path().join("n1"),
        http: http.parse().unwrap(),
        cluster_id: "solo".into(),
        redirect: false,
        join: false,
        snapshot_threshold: harness::net::serve_config::REAL_SNAPSHOT_THRESHOLD,
        etcd_listen: None,
        zk_listen: None,
        tls: Some(ServeTls {
            ca: files.ca.clone(),
            cert: files.cert,
            key: files.key,
            client_certs: ClientCerts::Required,
        }),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(harness::net::server::serve(cfg, async {
        let _ = stopped.await;
    }));

    let ca = certs.path().join("ca.pem");
    let client_cert = (
        certs.path().join("client.pem"),
        certs.path().join("client.key"),
    );
    let with_cert = client_connector(&ca, Some((&client_cert.0, &client_cert.1))).unwrap();
    let mut good = Client::new(vec![http.clone()], 0).with_tls(Some(with_cert));
    until_ok(&mut good, Method::PUT, "/kv/k", "v").await;

    let without = client_connector(&ca, None).unwrap();
    let mut anonymous = Client::new(vec![http.clone()], 0).with_tls(Some(without));
    let r = anonymous
        .call_once(Method::GET, "/kv/k", Bytes::new())
        .await;
    assert!(
        r.is_err(),
        "a client without a certificate was served: {r:?}"
    );

    let (oc, ok) = (
        other.path().join("client.pem"),
        other.path().join("client.key"),
    );
    let foreign = client_connector(&ca, Some((&oc, &ok))).unwrap();
    let mut stranger = Client::new(vec![http.clone()], 0).with_tls(Some(foreign));
    let r = stranger.call_once(Method::GET, "/kv/k", Bytes::new()).await;
    assert!(
        r.is_err(),
        "a certificate from another CA was accepted: {r:?}"
    );

    // The node kept serving the client it trusts.
    let body = until_ok(&mut good, Method::GET, "/kv/k", "").await;
    assert!(String::from_utf8_lossy(&body).contains("\"v\""), "{body:?}");
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}
