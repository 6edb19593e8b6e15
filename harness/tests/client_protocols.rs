//! etcd's and ZooKeeper's own client libraries (the `etcd-client` and `zookeeper-client`
//! crates, written by others) against 3-node consensus-lab clusters of each protocol: put, get,
//! txn compare-and-swap and create-if-absent; create, get, set with versions, ephemeral and
//! sequential znodes, multi, sync; a session that survives a leader change; writes under a
//! leader SIGKILL, every acknowledged one present afterwards; a silent session's ephemeral
//! znode gone after its timeout; a malformed frame closes only its own connection; calls not
//! served answer the client's own "unimplemented". Where `etcdctl` and `zkCli.sh` are
//! installed, they are driven too (skipped with a message otherwise).
//!
//! 127.0.0.1 only; every wait is bounded; every node is killed by its PID at the end.

use harness::net::launch::{free_port_base, LaunchConfig, LocalCluster};
use harness::protocol::Protocol;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zookeeper_client as zk;

const EXE: &str = env!("CARGO_BIN_EXE_consensus-lab");
const WAIT: Duration = Duration::from_secs(30);

struct Lab {
    cfg: LaunchConfig,
    cluster: LocalCluster,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start(protocol: Protocol) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let base = free_port_base(12).unwrap();
        let cfg = LaunchConfig {
            protocol,
            nodes: 3,
            spares: 0,
            peer_base: base,
            http_base: base + 3,
            data_dir: dir.path().to_path_buf(),
            cluster_id: "client-protocols".into(),
            exe: EXE.into(),
            quiet: true,
            links: Default::default(),
            tls: false,
            etcd_base: Some(base + 6),
            zk_base: Some(base + 9),
        };
        let cluster = LocalCluster::start(cfg.clone()).unwrap();
        Lab {
            cfg,
            cluster,
            _dir: dir,
        }
    }

    fn etcd(&self, id: u64) -> String {
        self.cfg.etcd_addr(id).unwrap()
    }

    fn etcd_all(&self) -> Vec<String> {
        (1..=3).map(|id| self.etcd(id)).collect()
    }

    fn zk(&self, id: u64) -> String {
        self.cfg.zk_addr(id).unwrap()
    }

    fn zk_all(&self) -> String {
        (1..=3).map(|id| self.zk(id)).collect::<Vec<_>>().join(",")
    }

    /// The leader, as etcd's Maintenance.Status reports it at a live node.
    async fn leader(&self) -> u64 {
        let t0 = Instant::now();
        loop {
            for id in 1..=3 {
                if self.cluster.pid(id).is_none() {
                    continue;
                }
                if let Ok(Ok(mut c)) = tokio::time::timeout(
                    Duration::from_secs(2),
                    etcd_client::Client::connect([self.etcd(id)], None),
                )
                .await
                {
                    if let Ok(Ok(s)) =
                        tokio::time::timeout(Duration::from_secs(2), c.status()).await
                    {
                        if s.leader() != 0 && self.cluster.pid(s.leader()).is_some() {
                            return s.leader();
                        }
                    }
                }
            }
            assert!(t0.elapsed() < WAIT, "no leader within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Retries `f` until it succeeds, for up to 30 s.
async fn eventually<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let t0 = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), f()).await {
            Ok(Ok(t)) => return t,
            Ok(Err(e)) => {
                assert!(t0.elapsed() < WAIT, "{what}: {e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) => {
                assert!(t0.elapsed() < WAIT, "{what}: timed out");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn etcd_at(addr: String) -> etcd_client::Client {
    eventually("etcd connect", || {
        etcd_client::Client::connect([addr.clone()], None)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_clients_put_get_and_compare_and_swap_on_either_protocol() {
    use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};
    for protocol in [harness::protocol::RAFT, harness::protocol::ZAB] {
        let lab = Lab::start(protocol);
        let leader = lab.leader().await;
        let follower = if leader == 1 { 2 } else { 1 };
        // A write at a follower is forwarded to the leader.
        let mut c = etcd_at(lab.etcd(follower)).await;
        let put = eventually("put", || {
            let mut c = c.clone();
            async move { c.put("greeting", "hello", None).await }
        })
        .await;
        let header = put.header().unwrap();
        assert_eq!(header.member_id(), follower);
        assert!(header.revision() >= 2, "{header:?}");
        // Linearizable (default) and serializable reads, at another node.
        let other = 6 - leader - follower;
        let mut r = etcd_at(lab.etcd(other)).await;
        let got = r.get("greeting", None).await.unwrap();
        assert_eq!(got.kvs()[0].value(), b"hello", "{}", protocol.name());
        assert_eq!(got.kvs()[0].version(), 1);
        let serial = eventually("serializable get", || {
            let mut r = r.clone();
            async move {
                let g = r
                    .get("greeting", Some(GetOptions::new().with_serializable()))
                    .await?;
                if g.kvs().is_empty() {
                    return Err(etcd_client::Error::InvalidArgs("not yet".into()));
                }
                Ok(g)
            }
        })
        .await;
        assert_eq!(serial.kvs()[0].value(), b"hello");

        // Compare-and-swap: the wrong expected value fails and writes nothing.
        let cas = |expected: &str, new: &str| {
            Txn::new()
                .when([Compare::value("greeting", CompareOp::Equal, expected)])
                .and_then([TxnOp::put("greeting", new, None)])
                .or_else([TxnOp::get("greeting", None)])
        };
        let lost = c.txn(cas("wrong", "x")).await.unwrap();
        assert!(!lost.succeeded());
        let won = c.txn(cas("hello", "world")).await.unwrap();
        assert!(won.succeeded());
        let got = r.get("greeting", None).await.unwrap();
        assert_eq!(got.kvs()[0].value(), b"world");
        assert_eq!(got.kvs()[0].version(), 2);
        // Create-if-absent: create_revision = 0.
        let create = || {
            Txn::new()
                .when([Compare::create_revision("lock", CompareOp::Equal, 0)])
                .and_then([TxnOp::put("lock", "me", None)])
        };
        assert!(c.txn(create()).await.unwrap().succeeded());
        assert!(!c.txn(create()).await.unwrap().succeeded());
        // Prefix ranges and deletes.
        for i in 0..5 {
            c.put(format!("dir/{i}"), "v", None).await.unwrap();
        }
        let listed = r
            .get("dir/", Some(GetOptions::new().with_prefix().with_limit(3)))
            .await
            .unwrap();
        assert_eq!(
            (listed.kvs().len(), listed.count(), listed.more()),
            (3, 5, true)
        );
        let deleted = c
            .delete(
                "dir/",
                Some(etcd_client::DeleteOptions::new().with_prefix()),
            )
            .await
            .unwrap();
        assert_eq!(deleted.deleted(), 5);
        // MemberList reports the configuration in force: three voters, no learner.
        let listed = c.member_list().await.unwrap();
        let mut ids: Vec<u64> = listed.members().iter().map(|m| m.id()).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 2, 3]);
        assert!(listed.members().iter().all(|m| !m.is_learner()));
        // etcd's MoveLeader is Raft's leadership transfer; ZAB has none.
        let mut l = etcd_at(lab.etcd(leader)).await;
        let moved = l.move_leader(follower).await;
        if protocol == harness::protocol::RAFT {
            moved.unwrap();
            // Every node hears of the new leader within a heartbeat or two.
            let t0 = Instant::now();
            while lab.leader().await != follower {
                assert!(
                    t0.elapsed() < Duration::from_secs(5),
                    "n{follower} does not lead"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } else {
            match moved {
                Err(etcd_client::Error::GRpcStatus(s)) => {
                    assert_eq!(s.code(), tonic::Code::Unimplemented, "{s:?}")
                }
                other => panic!("zab move-leader: {other:?}"),
            }
        }
        // What is not served answers UNIMPLEMENTED, at once.
        let lease = tokio::time::timeout(Duration::from_secs(5), c.lease_grant(10, None))
            .await
            .expect("an unimplemented call answers");
        match lease {
            Err(etcd_client::Error::GRpcStatus(s)) => {
                assert_eq!(s.code(), tonic::Code::Unimplemented);
                assert!(s.message().contains("not served"), "{s:?}");
            }
            other => panic!("lease grant: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_writes_acknowledged_across_a_leader_sigkill_are_all_kept() {
    for protocol in [harness::protocol::RAFT, harness::protocol::ZAB] {
        let mut lab = Lab::start(protocol);
        let leader = lab.leader().await;
        let mut acked = Vec::new();
        let mut c = etcd_at(lab.etcd(leader)).await;
        let all = lab.etcd_all();
        let t0 = Instant::now();
        let mut killed = None;
        let mut i = 0;
        while acked.len() < 60 {
            assert!(
                t0.elapsed() < WAIT * 2,
                "{}: {} acked",
                protocol.name(),
                acked.len()
            );
            if acked.len() == 20 && killed.is_none() {
                assert!(lab.cluster.kill(leader));
                killed = Some(leader);
                // A client of the cluster, as applications configure one: every endpoint.
                c = etcd_client::Client::connect(all.clone(), None)
                    .await
                    .unwrap();
            }
            i += 1;
            let key = format!("k{i}");
            match tokio::time::timeout(Duration::from_secs(5), c.put(key.clone(), "v", None)).await
            {
                Ok(Ok(_)) => acked.push(key),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let new_leader = lab.leader().await;
        assert_ne!(Some(new_leader), killed);
        let mut r = etcd_at(lab.etcd(new_leader)).await;
        for key in &acked {
            let got = r.get(key.as_str(), None).await.unwrap();
            assert_eq!(
                got.kvs().len(),
                1,
                "{}: acknowledged {key} lost",
                protocol.name()
            );
        }
    }
}

fn anyone() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

async fn zk_at(cluster: String) -> zk::Client {
    eventually("zookeeper connect", || {
        let cluster = cluster.clone();
        async move {
            zk::Client::connector()
                .with_session_timeout(Duration::from_secs(6))
                .connect(&cluster)
                .await
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_clients_create_get_set_and_multi_on_either_protocol() {
    for protocol in [harness::protocol::RAFT, harness::protocol::ZAB] {
        let lab = Lab::start(protocol);
        let leader = lab.leader().await;
        let follower = if leader == 1 { 2 } else { 1 };
        let c = zk_at(lab.zk(follower)).await;
        let (stat, _) = c.create("/app", b"v1", &anyone()).await.unwrap();
        assert_eq!(stat.version, 0);
        assert!(stat.czxid > 0, "{}: {stat:?}", protocol.name());
        let (data, stat) = c.get_data("/app").await.unwrap();
        assert_eq!((data.as_slice(), stat.version), (&b"v1"[..], 0));
        // Versions: a stale one is refused, the right one wins.
        assert_eq!(
            c.set_data("/app", b"x", Some(7)).await.unwrap_err(),
            zk::Error::BadVersion
        );
        let stat = c.set_data("/app", b"v2", Some(0)).await.unwrap();
        assert_eq!(stat.version, 1);
        assert_eq!(
            c.create("/app", b"", &anyone()).await.unwrap_err(),
            zk::Error::NodeExists
        );
        assert_eq!(c.get_data("/nope").await.unwrap_err(), zk::Error::NoNode);
        // Sequential children, listed.
        let seq = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
        let (_, first) = c.create("/app/job-", b"", &seq).await.unwrap();
        let (_, second) = c.create("/app/job-", b"", &seq).await.unwrap();
        assert!(second.into_i64() > first.into_i64());
        let (children, parent) = c.get_children("/app").await.unwrap();
        assert_eq!(children.len(), 2);
        assert_eq!(parent.num_children, 2);
        // A read at another node after a sync sees the write.
        let other = zk_at(lab.zk(6 - leader - follower)).await;
        other.sync("/app").await.unwrap();
        assert_eq!(other.get_data("/app").await.unwrap().0, b"v2");
        // Multi: all or nothing.
        let mut m = c.new_multi_writer();
        m.add_check_version("/app", 1).unwrap();
        m.add_set_data("/app", b"v3", None).unwrap();
        m.add_create("/app/made-by-multi", b"", &anyone()).unwrap();
        m.commit().await.unwrap();
        let mut m = c.new_multi_writer();
        m.add_set_data("/app", b"never", None).unwrap();
        m.add_check_version("/app", 99).unwrap();
        assert!(m.commit().await.is_err());
        assert_eq!(c.get_data("/app").await.unwrap().0, b"v3");
        // Watches are not served: the client hears so at once.
        let watched = tokio::time::timeout(Duration::from_secs(5), c.get_and_watch_data("/app"))
            .await
            .expect("an unimplemented call answers");
        assert_eq!(watched.unwrap_err(), zk::Error::Unimplemented);
        // Ephemerals die with a closed session.
        let e = zk_at(lab.zk(leader)).await;
        let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        e.create("/app/eph", b"", &eph).await.unwrap();
        drop(e);
        eventually("the closed session's ephemeral goes", || {
            let c = c.clone();
            async move {
                match c.check_stat("/app/eph").await {
                    Ok(None) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zookeeper_session_survives_a_leader_sigkill_and_keeps_every_acknowledged_write() {
    for protocol in [harness::protocol::RAFT, harness::protocol::ZAB] {
        let mut lab = Lab::start(protocol);
        let leader = lab.leader().await;
        let follower = if leader == 1 { 2 } else { 1 };
        // The client knows every server but starts at a follower.
        let order = format!("{},{}", lab.zk(follower), lab.zk_all());
        let c = zk_at(order).await;
        let session = c.session_id();
        let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        c.create("/alive", b"", &eph).await.unwrap();
        let mut acked = Vec::new();
        let t0 = Instant::now();
        let mut i = 0;
        while acked.len() < 40 {
            assert!(
                t0.elapsed() < WAIT * 2,
                "{}: {} acked",
                protocol.name(),
                acked.len()
            );
            if acked.len() == 15 && lab.cluster.pid(leader).is_some() {
                assert!(lab.cluster.kill(leader));
            }
            i += 1;
            let path = format!("/w{i}");
            match tokio::time::timeout(Duration::from_secs(5), c.create(&path, b"", &anyone()))
                .await
            {
                Ok(Ok(_)) => acked.push(path),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        assert!(lab.cluster.pid(leader).is_none());
        assert_eq!(c.session_id(), session, "the session survived");
        assert!(
            c.check_stat("/alive").await.unwrap().is_some(),
            "its ephemeral too"
        );
        let new_leader = lab.leader().await;
        let r = zk_at(lab.zk(new_leader)).await;
        r.sync("/").await.unwrap();
        for path in &acked {
            assert!(
                r.check_stat(path).await.unwrap().is_some(),
                "{}: acknowledged {path} lost",
                protocol.name()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_sessions_ephemeral_expires_and_a_bad_frame_closes_only_its_connection() {
    let lab = Lab::start(harness::protocol::ZAB);
    lab.leader().await;
    // A session whose client goes away without closing it (detached: not closed on drop).
    let first = lab.zk(1);
    let quiet = eventually("zookeeper connect", || {
        let first = first.clone();
        async move {
            zk::Client::connector()
                .with_session_timeout(Duration::from_secs(4))
                .with_detached()
                .connect(&first)
                .await
        }
    })
    .await;
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    quiet.create("/lease", b"", &eph).await.unwrap();
    drop(quiet);
    let c = zk_at(lab.zk(2)).await;
    assert!(c.check_stat("/lease").await.unwrap().is_some());
    // Expired after its 4 s timeout (plus the tracker's half-second rounds), not before.
    let t0 = Instant::now();
    eventually("the silent session expires", || {
        let c = c.clone();
        async move {
            match c.check_stat("/lease").await {
                Ok(None) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());

    // Garbage after the length prefix: the node closes that connection and serves on.
    let mut s = tokio::net::TcpStream::connect(lab.zk(2)).await.unwrap();
    s.write_all(&[0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("the connection is closed, not left hanging");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    // A frame longer than ZooKeeper's 1 MiB limit: closed too.
    let mut s = tokio::net::TcpStream::connect(lab.zk(2)).await.unwrap();
    s.write_all(&0x7fff_0000i32.to_be_bytes()).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    c.create("/still-serving", b"", &anyone()).await.unwrap();
    // The four-letter word srvr.
    let mut s = tokio::net::TcpStream::connect(lab.zk(2)).await.unwrap();
    s.write_all(b"srvr").await.unwrap();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut text))
        .await
        .unwrap()
        .unwrap();
    assert!(
        text.contains("Mode: ") && text.contains("Zxid: 0x"),
        "{text}"
    );
}

fn installed(tool: &str) -> Option<std::path::PathBuf> {
    let candidates = [
        std::path::PathBuf::from(format!("/usr/bin/{tool}")),
        std::path::PathBuf::from(format!("/usr/share/zookeeper/bin/{tool}")),
    ];
    candidates.into_iter().find(|p| p.exists())
}

fn run(tool: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("timeout")
        .arg("60")
        .arg(tool)
        .args(args)
        .env("ETCDCTL_API", "3")
        .output()
        .unwrap();
    assert!(out.status.success(), "{tool:?} {args:?}: {out:?}");
    // zkCli.sh prints some answers on stderr.
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_and_zkcli_work_against_either_protocol() {
    let (Some(etcdctl), Some(zkcli)) = (installed("etcdctl"), installed("zkCli.sh")) else {
        eprintln!(
            "SKIPPED: etcdctl or zkCli.sh is not installed (apt-get install etcd-client zookeeper)"
        );
        return;
    };
    for protocol in [harness::protocol::RAFT, harness::protocol::ZAB] {
        let lab = Lab::start(protocol);
        lab.leader().await;
        let e1 = lab.etcd(1);
        let e3 = lab.etcd(3);
        let etcdctl_c = etcdctl.clone();
        tokio::task::spawn_blocking(move || {
            assert!(run(&etcdctl_c, &["--endpoints", &e1, "put", "k", "v"]).contains("OK"));
            assert!(run(&etcdctl_c, &["--endpoints", &e3, "get", "k"]).starts_with("k\nv\n"));
        })
        .await
        .unwrap();
        let (z1, z2, z3) = (lab.zk(1), lab.zk(2), lab.zk(3));
        let zkcli_c = zkcli.clone();
        tokio::task::spawn_blocking(move || {
            let created = run(&zkcli_c, &["-server", &z2, "create", "/a", "x"]);
            assert!(created.contains("Created /a"), "{created}");
            // A new session's read at another node is ZooKeeper's: it may lag the write by a
            // moment, so it is retried (what `sync` is for).
            let read_until = |want: &str| {
                for _ in 0..20 {
                    if run(&zkcli_c, &["-server", &z3, "get", "/a"]).contains(want) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                panic!("zkCli never read {want:?} at {z3}");
            };
            read_until("\nx\n");
            run(&zkcli_c, &["-server", &z1, "set", "/a", "y"]);
            read_until("\ny\n");
        })
        .await
        .unwrap();
    }
}
