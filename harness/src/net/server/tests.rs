use super::*;

#[test]
fn members_parse_and_bad_ones_are_named() {
    let m = parse_members("1=127.0.0.1:7001, 2=127.0.0.1:7002").unwrap();
    assert_eq!(m[&2], "127.0.0.1:7002".parse().unwrap());
    assert!(parse_members("1=localhost")
        .unwrap_err()
        .contains("localhost"));
    assert!(parse_members("x=127.0.0.1:1")
        .unwrap_err()
        .contains("\"x\""));
    assert!(parse_members("1=127.0.0.1:1,1=127.0.0.1:2")
        .unwrap_err()
        .contains("twice"));
}

#[test]
fn an_id_outside_the_peers_is_refused() {
    let cfg = ServeConfig {
        protocol: crate::protocol::RAFT,
        id: 4,
        peers: parse_members("1=127.0.0.1:7001,2=127.0.0.1:7002").unwrap(),
        peer_http: BTreeMap::new(),
        data_dir: "/tmp/x".into(),
        http: "127.0.0.1:8001".parse().unwrap(),
        cluster_id: default_cluster_id(),
        redirect: false,
        join: false,
        tls: None,
        snapshot_threshold: crate::net::serve_config::REAL_SNAPSHOT_THRESHOLD,
        etcd_listen: None,
        zk_listen: None,
    };
    assert!(cfg.validate().unwrap_err().to_string().contains("--id 4"));
    // With TLS the cluster id names certificates: it must fit a DNS name.
    let tls = ServeConfig {
        id: 1,
        cluster_id: "my cluster".into(),
        tls: Some(crate::net::serve_config::ServeTls {
            ca: "ca.pem".into(),
            cert: "n1.pem".into(),
            key: "n1.key".into(),
            client_certs: Default::default(),
        }),
        ..cfg
    };
    assert!(tls
        .validate()
        .unwrap_err()
        .to_string()
        .contains("cluster id"));
}

#[test]
fn a_data_dir_of_the_other_protocol_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    check_protocol_marker(dir.path(), crate::protocol::RAFT).unwrap();
    check_protocol_marker(dir.path(), crate::protocol::RAFT).unwrap();
    let err = check_protocol_marker(dir.path(), crate::protocol::ZAB).unwrap_err();
    assert!(err.to_string().contains("raft data"), "{err}");
}

#[test]
fn the_snapshot_threshold_defaults_to_etcd_and_zookeeper_and_can_be_set() {
    let base = "protocol = \"zab\"\nid = 1\npeers = { 1 = \"127.0.0.1:7001\" }\n\
                data_dir = \"/tmp/x\"\nhttp = \"127.0.0.1:8001\"\n";
    let cfg: ServeConfig = toml::from_str(base).unwrap();
    assert_eq!(cfg.snapshot_threshold, 100_000);
    let cfg: ServeConfig = toml::from_str(&format!("{base}snapshot_threshold = 5\n")).unwrap();
    assert_eq!(cfg.snapshot_threshold, 5);
}
