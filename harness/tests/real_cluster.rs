//! Real processes on 127.0.0.1: three `consensus-lab serve` nodes per protocol, driven over
//! HTTP. Every wait is bounded; every process is killed by its PID when the test ends.

use bytes::Bytes;
use harness::net::Client;
use hyper::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EXE: &str = env!("CARGO_BIN_EXE_consensus-lab");
const WAIT: Duration = Duration::from_secs(30);

/// Addresses that are free right now (bound to port 0, then released).
fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap()).collect()
}

struct TestCluster {
    protocol: &'static str,
    dir: tempfile::TempDir,
    peer: Vec<SocketAddr>,
    http: Vec<SocketAddr>,
    /// The members the cluster started with (`--peers` of nodes `1..=initial`).
    initial: usize,
    procs: BTreeMap<u64, Child>,
}

impl TestCluster {
    fn start(protocol: &'static str) -> TestCluster {
        let addrs = free_addrs(6);
        let mut c = TestCluster {
            protocol,
            dir: tempfile::tempdir().unwrap(),
            peer: addrs[..3].to_vec(),
            http: addrs[3..].to_vec(),
            initial: 3,
            procs: BTreeMap::new(),
        };
        for id in 1..=3 {
            c.spawn(id);
        }
        c
    }

    fn list(addrs: &[SocketAddr]) -> String {
        addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("n{id}"))
    }

    fn log_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("n{id}.stderr"))
    }

    fn spawn(&mut self, id: u64) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .unwrap();
        // A node added later joins: its --peers are the running members and itself.
        let join = id as usize > self.initial;
        let peers = if join {
            Self::list(&self.peer)
        } else {
            Self::list(&self.peer[..self.initial])
        };
        let child = Command::new(EXE)
            .args([
                "serve",
                "--protocol",
                self.protocol,
                "--id",
                &id.to_string(),
            ])
            .args(["--peers", &peers])
            .args(if join { &["--join"][..] } else { &[][..] })
            .args(["--peer-http", &Self::list(&self.http)])
            .args(["--http", &self.http[id as usize - 1].to_string()])
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.procs.insert(id, child);
    }

    /// Starts a fresh node outside the configuration (`serve --join`); returns its id.
    fn spawn_joiner(&mut self) -> u64 {
        let addrs = free_addrs(2);
        self.peer.push(addrs[0]);
        self.http.push(addrs[1]);
        let id = self.peer.len() as u64;
        self.spawn(id);
        id
    }

    /// SIGKILL, by PID, and reap.
    fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.procs.remove(&id) {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn endpoint(&self, id: u64) -> String {
        self.http[id as usize - 1].to_string()
    }

    fn endpoints(&self) -> Vec<String> {
        self.http.iter().map(|a| a.to_string()).collect()
    }

    fn client(&self, start_at: u64) -> Client {
        Client::new(self.endpoints(), start_at as usize - 1)
    }

    async fn status(&self, id: u64) -> Option<Value> {
        let mut c = Client::new(vec![self.endpoint(id)], 0);
        let r = c
            .call_once(Method::GET, "/status", Bytes::new())
            .await
            .ok()?;
        (r.status == StatusCode::OK).then(|| r.json())
    }

    /// Waits until a live node reports itself leader and a write through it succeeds.
    async fn wait_leader(&self) -> u64 {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            for &id in self.procs.keys() {
                if let Some(s) = self.status(id).await {
                    if s["role"] == "Leader" {
                        let mut c = Client::new(vec![self.endpoint(id)], 0);
                        if let Ok(r) = c
                            .call_once(Method::PUT, "/kv/probe", Bytes::from("x"))
                            .await
                        {
                            if r.status == StatusCode::OK {
                                return id;
                            }
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{}: no leader within {WAIT:?}", self.protocol);
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.procs.keys().copied().collect();
        for id in ids {
            self.kill(id);
        }
    }
}

async fn put(c: &mut Client, key: &str, value: &str) {
    let r = c
        .call(
            Method::PUT,
            &format!("/kv/{key}"),
            Bytes::from(value.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

async fn get(c: &mut Client, key: &str) -> Option<String> {
    let r = c
        .call(Method::GET, &format!("/kv/{key}"), Bytes::new())
        .await
        .unwrap();
    match r.status {
        StatusCode::OK => Some(r.json()["value"].as_str().unwrap().to_string()),
        StatusCode::NOT_FOUND => None,
        s => panic!("GET {key}: {s} {}", String::from_utf8_lossy(&r.body)),
    }
}

async fn writes_reads_cas_and_bad_input(protocol: &'static str) {
    let cluster = TestCluster::start(protocol);
    let leader = cluster.wait_leader().await;
    let follower = if leader == 1 { 2 } else { 1 };

    // Writes sent to a follower are forwarded to the leader: the client never moves.
    let mut c = cluster.client(follower);
    for i in 0..20 {
        put(&mut c, &format!("k{i}"), &format!("v{i}")).await;
    }
    assert_eq!(c.redirects, 0, "the follower forwarded, not redirected");
    // Reads through every node see every acknowledged write.
    for id in 1..=3 {
        let mut c = cluster.client(id);
        for i in 0..20 {
            assert_eq!(get(&mut c, &format!("k{i}")).await, Some(format!("v{i}")));
        }
        assert_eq!(get(&mut c, "missing").await, None);
    }
    // Every read level answers at a follower too: index and lease through the leader's read
    // index (ZAB: sync), local from the follower's own state once it has caught up.
    let mut f = Client::new(vec![cluster.endpoint(follower)], 0);
    for level in ["log", "index", "lease", "local"] {
        let mut value = None;
        for _ in 0..50 {
            let r = f
                .call(
                    Method::GET,
                    &format!("/kv/k3?consistency={level}"),
                    Bytes::new(),
                )
                .await
                .unwrap();
            assert!(
                r.status == StatusCode::OK || r.status == StatusCode::NOT_FOUND,
                "{level}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
            value = r.json()["value"].as_str().map(str::to_string);
            if value.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(value.as_deref(), Some("v3"), "{level}");
    }
    let r = f
        .call_once(Method::GET, "/kv/k3?consistency=psychic", Bytes::new())
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // A follower forwards a write to the leader and relays the answer: the client talks to
    // any node and never sees a redirect.
    for (path, key, value) in [("/kv/fw%3Fd", "fw?d", "one"), ("/kv/fw/d", "fw/d", "two")] {
        let mut served = false;
        for _ in 0..50 {
            let leader = cluster.wait_leader().await;
            let follower = cluster.endpoint(if leader == 1 { 2 } else { 1 });
            let mut c = Client::new(vec![follower], 0);
            let r = c
                .call_once(Method::PUT, path, Bytes::from(value))
                .await
                .unwrap();
            if r.status == StatusCode::OK {
                served = true;
                break;
            }
            assert_ne!(
                r.status,
                StatusCode::TEMPORARY_REDIRECT,
                "forwarded, not redirected"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(served, "{path}: a follower forwarded the write");
        let g = c.call(Method::GET, path, Bytes::new()).await.unwrap();
        assert_eq!(g.json()["key"], key, "{path}");
        assert_eq!(g.json()["value"], value, "{path}");
    }

    // A follower asked not to forward (`serve --redirect`, or a request already forwarded once)
    // redirects, repeating the path as the client encoded it: following it (as `curl -L` does,
    // hop by hop while leadership moves) writes the key the client meant, not a prefix of it.
    for (path, key) in [("/kv/q%3Fx", "q?x"), ("/kv/h%23y", "h#y")] {
        let leader = cluster.wait_leader().await;
        let mut at = cluster.endpoint(if leader == 1 { 2 } else { 1 });
        let mut redirected = 0;
        let mut written = None;
        for _ in 0..50 {
            let mut c = Client::forwarder(at.clone());
            let r = c
                .call_once(Method::PUT, path, Bytes::from_static(b"v"))
                .await
                .unwrap();
            match r.status {
                StatusCode::OK => {
                    written = Some(at.clone());
                    break;
                }
                StatusCode::TEMPORARY_REDIRECT => {
                    let location = r.location.clone().expect("a Location header");
                    assert!(location.ends_with(path), "{location}");
                    let target = location.split_once("//").unwrap().1;
                    at = target[..target.find('/').unwrap()].to_string();
                    redirected += 1;
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        assert!(redirected >= 1, "{path}: the follower redirected");
        let at = written.unwrap_or_else(|| panic!("{path} was never written"));
        let mut l = Client::new(vec![at], 0);
        let g = l.call(Method::GET, path, Bytes::new()).await.unwrap();
        assert_eq!(g.json()["key"], key);
        let prefix = l
            .call(Method::GET, &format!("/kv/{}", &key[..1]), Bytes::new())
            .await
            .unwrap();
        assert_eq!(
            prefix.status,
            StatusCode::NOT_FOUND,
            "{key}: no write to a prefix"
        );
    }

    let cas = |expected: &str, new: &str| {
        Bytes::from(serde_json::json!({"expected": expected, "new": new}).to_string())
    };
    let r = c
        .call(Method::POST, "/cas/k1", cas("v1", "w1"))
        .await
        .unwrap();
    assert_eq!(r.json()["ok"], true);
    let r = c
        .call(Method::POST, "/cas/k1", cas("v1", "x1"))
        .await
        .unwrap();
    assert_eq!(r.json()["ok"], false);
    assert_eq!(get(&mut c, "k1").await, Some("w1".into()));

    // Create-if-absent is a CAS against null: it writes an absent key once, then never again.
    let create =
        |new: &str| Bytes::from(serde_json::json!({"expected": null, "new": new}).to_string());
    for (new, want) in [("c1", true), ("c2", false)] {
        let r = c
            .call(Method::POST, "/cas/fresh", create(new))
            .await
            .unwrap();
        assert_eq!(r.json()["ok"], want, "create {new}");
    }
    assert_eq!(get(&mut c, "fresh").await, Some("c1".into()));
    // A CAS body without `expected` is refused, not taken for a create.
    let r = c
        .call(
            Method::POST,
            "/cas/fresh",
            Bytes::from_static(b"{\"new\":\"z\"}"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Keys may hold `/`, raw or encoded: the same key either way.
    put(&mut c, "dir/sub/leaf", "deep").await;
    assert_eq!(get(&mut c, "dir/sub/leaf").await, Some("deep".into()));
    let r = c
        .call(Method::GET, "/kv/dir%2Fsub%2Fleaf", Bytes::new())
        .await
        .unwrap();
    assert_eq!(r.json()["value"], "deep");
    assert_eq!(get(&mut c, "dir").await, None, "no write to a prefix");

    // DELETE removes a key and says whether it was there.
    for want in [true, false] {
        let r = c
            .call(Method::DELETE, "/kv/dir/sub/leaf", Bytes::new())
            .await
            .unwrap();
        assert_eq!(r.json()["existed"], want);
    }
    assert_eq!(get(&mut c, "dir/sub/leaf").await, None);

    // Malformed requests: 4xx with a JSON error, and the node keeps serving.
    let mut direct = Client::new(vec![cluster.endpoint(leader)], 0);
    for (method, path, body, want) in [
        (
            Method::PUT,
            "/kv/bin",
            Bytes::from_static(&[0xff, 0xfe]),
            400,
        ),
        (
            Method::POST,
            "/cas/k1",
            Bytes::from_static(b"{\"expected\":"),
            400,
        ),
        (Method::GET, "/nope", Bytes::new(), 404),
        (
            Method::PUT,
            "/kv/big",
            Bytes::from(vec![b'v'; harness::net::server::MAX_VALUE_BYTES + 1]),
            413,
        ),
        (Method::PATCH, "/kv/k1", Bytes::new(), 405),
    ] {
        let r = direct.call_once(method.clone(), path, body).await.unwrap();
        assert_eq!(r.status.as_u16(), want, "{method} {path}");
        assert!(r.json()["error"].is_string(), "{method} {path}: JSON error");
    }

    // Garbage, an oversized frame and a wrong cluster id on a peer port are refused.
    let hello_other_cluster = {
        let payload = harness::net::tcp::Hello::new("someone-else", 2).to_frame();
        let mut v = (payload.len() as u32).to_be_bytes().to_vec();
        v.extend(payload);
        v
    };
    let oversized = {
        let mut v = u32::MAX.to_be_bytes().to_vec();
        v.extend([0u8; 32]);
        v
    };
    for bytes in [
        b"\x00\x00\x00\x05hello garbage".to_vec(),
        oversized,
        hello_other_cluster,
    ] {
        let mut s = tokio::net::TcpStream::connect(cluster.peer[leader as usize - 1])
            .await
            .unwrap();
        s.write_all(&bytes).await.unwrap();
        let mut buf = [0u8; 8];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the node closes a refused connection");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    }
    let mut c = cluster.client(leader);
    put(&mut c, "after-garbage", "still-serving").await;
    assert_eq!(
        get(&mut c, "after-garbage").await,
        Some("still-serving".into())
    );
    let s = cluster.status(leader).await.unwrap();
    assert_eq!(s["protocol"], protocol);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_cluster_serves_writes_and_linearizable_reads() {
    writes_reads_cas_and_bad_input("raft").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zab_cluster_serves_writes_and_linearizable_reads() {
    writes_reads_cas_and_bad_input("zab").await;
}

fn last_segment(dir: &std::path::Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    segs.pop().expect("the node wrote a log segment")
}

/// Where the records of a log segment end: the file log writes zeros ahead of them, and a
/// record is `len: u32 LE | crc: u32 LE | payload` with a non-zero length.
fn records_end(seg: &std::path::Path) -> u64 {
    let data = std::fs::read(seg).unwrap();
    let mut off = 0;
    while off + 8 <= data.len() {
        let len = u32::from_le_bytes(data[off..off + 4].try_into().unwrap()) as usize;
        if len == 0 || off + 8 + len > data.len() {
            break;
        }
        off += 8 + len;
    }
    off as u64
}

async fn leader_killed_then_restarted(protocol: &'static str) {
    let mut cluster = TestCluster::start(protocol);
    let leader = cluster.wait_leader().await;
    let mut c = cluster.client(leader);
    for i in 0..30 {
        put(&mut c, &format!("k{i}"), &format!("v{i}")).await;
    }

    cluster.kill(leader);
    // The killed writer left half a record at the end of its log, over the zeros ahead.
    let seg = last_segment(&cluster.data_dir(leader).join("log"));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .write_all_at(&[200, 0, 0, 0, 1, 2, 3, 4, 5, 6], records_end(&seg))
        .unwrap();

    let new_leader = cluster.wait_leader().await;
    assert_ne!(new_leader, leader);
    let mut c = cluster.client(new_leader);
    for i in 0..30 {
        assert_eq!(
            get(&mut c, &format!("k{i}")).await,
            Some(format!("v{i}")),
            "acknowledged write k{i} survived the leader's crash"
        );
    }
    for i in 30..40 {
        put(&mut c, &format!("k{i}"), &format!("v{i}")).await;
    }

    cluster.spawn(leader);
    let target = cluster.status(new_leader).await.unwrap()["commit"].clone();
    let start = Instant::now();
    loop {
        if let Some(s) = cluster.status(leader).await {
            let commit = &s["commit"];
            let caught_up = (commit["era"].as_u64(), commit["seq"].as_u64())
                >= (target["era"].as_u64(), target["seq"].as_u64());
            if caught_up && s["role"] == "Follower" {
                break;
            }
        }
        assert!(
            start.elapsed() < WAIT,
            "{protocol}: node {leader} did not catch up to {target} in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(cluster.log_path(leader)).unwrap();
    assert!(
        log.contains("truncating a torn record"),
        "the restart reported the torn tail:\n{log}"
    );
    // The restarted node serves the whole history (through the leader, by redirect).
    let mut c = cluster.client(leader);
    for i in [0, 29, 39] {
        assert_eq!(get(&mut c, &format!("k{i}")).await, Some(format!("v{i}")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_leader_sigkill_loses_no_acknowledged_write_and_restart_catches_up() {
    leader_killed_then_restarted("raft").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zab_leader_sigkill_loses_no_acknowledged_write_and_restart_catches_up() {
    leader_killed_then_restarted("zab").await;
}

fn pid_alive(pid: u32) -> bool {
    // A reaped or exited process has no /proc entry (or is a zombie awaiting its parent).
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.contains(") Z "),
        Err(_) => false,
    }
}

#[test]
fn cluster_command_starts_nodes_load_measures_them_through_a_leader_kill_and_sigint_stops_all() {
    // Three consecutive free ports for peers and three for HTTP.
    let peer_base = harness::net::launch::free_port_base(6).unwrap();
    let http_base = peer_base + 3;
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Command::new(EXE)
        .args(["cluster", "--protocol", "raft", "--nodes", "3", "--restart"])
        .args(["--peer-base", &peer_base.to_string()])
        .args(["--http-base", &http_base.to_string()])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("cluster.err")).unwrap())
        .spawn()
        .unwrap();
    let guard_pid = cluster.id();
    let mut out = std::io::BufReader::new(cluster.stdout.take().unwrap());
    let mut pids = Vec::new();
    let mut line = String::new();
    while pids.len() < 3 {
        line.clear();
        let n = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(n > 0, "cluster exited before listing its nodes");
        if let Some(p) = line.split("pid ").nth(1) {
            pids.push(p.trim().parse::<u32>().unwrap());
        }
    }
    let endpoints: Vec<String> = (1..=3)
        .map(|i| format!("127.0.0.1:{}", http_base + i))
        .collect();
    let plot = dir.path().join("failover.svg");
    let load = Command::new(EXE)
        .args(["load", "--clients", "4", "--seconds", "3", "--json"])
        .args(["--kill-leader-at", "1", "--plot"])
        .arg(&plot)
        .args(["--endpoints", &endpoints.join(",")])
        .output()
        .unwrap();
    let stop = |pid: u32, sig: &str| {
        let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
    };
    if !load.status.success() {
        stop(guard_pid, "-KILL");
        for &p in &pids {
            stop(p, "-KILL");
        }
        panic!("load failed: {}", String::from_utf8_lossy(&load.stderr));
    }
    let report: Value = serde_json::from_slice(&load.stdout).unwrap();
    assert_eq!(report["protocol"], "raft");
    assert!(report["ops"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["latency"]["p99_ms"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    // The leader was one of the nodes, it died, and the others took over.
    let killed = report["killed"]["pid"].as_u64().unwrap() as u32;
    assert!(pids.contains(&killed), "{report}");
    assert!(!pid_alive(killed), "the killed leader {killed} still runs");
    assert!(
        report["killed"]["recovered_after_s"].as_f64().is_some(),
        "{report}"
    );
    let buckets = report["timeline"].as_array().unwrap();
    assert!((25..=35).contains(&buckets.len()), "{}", buckets.len());
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.contains("leader killed"), "{svg}");

    sigint_and_wait(&mut cluster);
    // `--restart` brought the killed node back as a new process; it stopped too.
    let rest = std::fs::read_to_string(dir.path().join("cluster.err")).unwrap();
    let restarted: Vec<u32> = rest
        .lines()
        .filter_map(|l| l.split("restarted it, pid ").nth(1))
        .map(|p| p.trim().parse().unwrap())
        .collect();
    assert_eq!(restarted.len(), 1, "{rest}");
    assert_all_stopped(pids.into_iter().chain(restarted));
}

/// SIGINT to a `cluster` command; it must exit cleanly within [`WAIT`] (SIGKILL otherwise).
fn sigint_and_wait(cluster: &mut std::process::Child) {
    let pid = cluster.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = cluster.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > WAIT {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("cluster did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

/// Every node process is gone (any left is killed by its pid, and the test fails).
fn assert_all_stopped(pids: impl IntoIterator<Item = u32>) {
    for p in pids {
        let alive = pid_alive(p);
        if alive {
            let _ = Command::new("kill")
                .args(["-KILL", &p.to_string()])
                .status();
        }
        assert!(!alive, "node process {p} outlived the cluster command");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_its_settings_from_a_toml_config() {
    let addrs = free_addrs(2);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "protocol = \"raft\"\nid = 1\ndata_dir = \"{}\"\nhttp = \"{}\"\n\n[peers]\n1 = \"{}\"\n",
            dir.path().join("data").display(),
            addrs[1],
            addrs[0]
        ),
    )
    .unwrap();
    let mut child = Command::new(EXE)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut c = Client::new(vec![addrs[1].to_string()], 0);
    let result = tokio::time::timeout(WAIT, async {
        // A one-node cluster elects itself; the client retries until it has.
        put(&mut c, "solo", "yes").await;
        get(&mut c, "solo").await
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(result.expect("served in time"), Some("yes".into()));
}

/// A follower forwarding to a leader that stops answering (SIGSTOP) gives up once a new
/// leader is elected, instead of waiting out the forward's 10 s exchange timeout.
async fn forward_to_a_paused_leader_ends_with_the_leadership(protocol: &'static str) {
    let cluster = TestCluster::start(protocol);
    let leader = cluster.wait_leader().await;
    let follower = (1..=3).find(|&i| i != leader).unwrap();
    let pid = cluster.procs[&leader].id();
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    let mut c = Client::new(vec![cluster.endpoint(follower)], 0);
    let t0 = Instant::now();
    let r = c
        .call_once(Method::PUT, "/kv/during-pause", Bytes::from("x"))
        .await;
    let took = t0.elapsed();
    signal("-CONT");
    let r = r.expect("the follower answers");
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.json());
    assert!(
        r.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("was replaced")),
        "{:?}",
        r.json()
    );
    assert!(
        took < Duration::from_secs(5),
        "{protocol}: the forward waited {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_to_a_paused_leader_ends_when_a_new_leader_is_elected() {
    forward_to_a_paused_leader_ends_with_the_leadership("raft").await;
    forward_to_a_paused_leader_ends_with_the_leadership("zab").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_hands_leadership_to_the_node_asked_and_zab_says_it_has_none() {
    let transfer = |to: u64| Bytes::from(format!("{{\"to\": {to}}}"));
    let cluster = TestCluster::start("raft");
    let leader = cluster.wait_leader().await;
    let to = if leader == 3 { 1 } else { 3 };
    let mut c = Client::new(vec![cluster.endpoint(leader)], 0);
    let r = c
        .call_once(Method::POST, "/cluster/transfer-leader", transfer(to))
        .await
        .unwrap();
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["leader"], to);
    // The new leader says so (its status is published after its first fsync as leader: a
    // moment after the old leader heard from it), in a later term, and takes writes.
    let t0 = Instant::now();
    let s = loop {
        let s = cluster.status(to).await.unwrap();
        if s["role"] == "Leader" || t0.elapsed() > Duration::from_secs(2) {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(s["role"], "Leader", "{s}");
    assert!(s["era"].as_u64().unwrap() >= 2, "{s}");
    let mut w = Client::new(vec![cluster.endpoint(to)], 0);
    put(&mut w, "after-transfer", "yes").await;
    // A node that is not a voter is refused; a follower redirects to the leader.
    let r = w
        .call_once(Method::POST, "/cluster/transfer-leader", transfer(9))
        .await
        .unwrap();
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let mut f = Client::new(vec![cluster.endpoint(leader)], 0);
    let r = f
        .call_once(Method::POST, "/cluster/transfer-leader", transfer(leader))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
    // The same through the command line: `member transfer` back to the first leader (its
    // client follows the redirect), then `member list` shows it leading.
    let endpoints = cluster.endpoints().join(",");
    let out = Command::new(EXE)
        .args([
            "member",
            "transfer",
            "--to",
            &leader.to_string(),
            "--endpoints",
            &endpoints,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("n{leader} leads")));
    // (the node that answers may hear of the new leader a moment later: bounded retries)
    let t0 = Instant::now();
    let list = loop {
        let out = Command::new(EXE)
            .args(["member", "list", "--endpoints", &endpoints])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let list = String::from_utf8_lossy(&out.stdout).to_string();
        if list.contains(&format!("leader: n{leader}")) || t0.elapsed() > Duration::from_secs(3) {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        list.lines()
            .filter(|l| l.trim_start().starts_with('n'))
            .count(),
        3,
        "{list}"
    );
    assert!(list.contains(&format!("leader: n{leader}")), "{list}");
    let out = Command::new(EXE)
        .args(["member", "transfer", "--to", "9", "--endpoints", &endpoints])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a voter"),
        "{out:?}"
    );
    drop(cluster);

    let cluster = TestCluster::start("zab");
    let leader = cluster.wait_leader().await;
    let mut c = Client::new(vec![cluster.endpoint(leader)], 0);
    let r = c
        .call_once(
            Method::POST,
            "/cluster/transfer-leader",
            transfer(if leader == 1 { 2 } else { 1 }),
        )
        .await
        .unwrap();
    assert_eq!(
        r.status,
        StatusCode::NOT_IMPLEMENTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

/// Runs `consensus-lab member ...` against `endpoints`; returns its stdout, or its stderr as
/// the error.
fn member(args: &[&str], endpoints: &str) -> Result<String, String> {
    let out = Command::new(EXE)
        .arg("member")
        .args(args)
        .args(["--endpoints", endpoints])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// The README's demonstration: a follower is SIGKILLed for good; a fresh node joins as a
/// learner, is promoted once caught up, and the dead node is removed, all with `member`
/// commands; then another original node dies and the cluster (two of the three voters
/// left: the leader and the new node) still commits, and every acknowledged write reads back.
async fn replace_a_sigkilled_node(protocol: &'static str) {
    let mut cluster = TestCluster::start(protocol);
    let leader = cluster.wait_leader().await;
    let mut c = cluster.client(leader);
    let mut acked = Vec::new();
    for i in 0..20 {
        put(&mut c, &format!("before-{i}"), &format!("v{i}")).await;
        acked.push((format!("before-{i}"), format!("v{i}")));
    }
    let dead = (1..=3).find(|&i| i != leader).unwrap();
    cluster.kill(dead);
    for i in 0..20 {
        put(&mut c, &format!("degraded-{i}"), &format!("w{i}")).await;
        acked.push((format!("degraded-{i}"), format!("w{i}")));
    }
    // Bad requests get clear answers: a malformed body 400, a change that makes no sense 409,
    // a follower 307 to the leader.
    let leader = cluster.wait_leader().await;
    let mut at_leader = Client::new(vec![cluster.endpoint(leader)], 0);
    let post = |body: &'static str| (Method::POST, "/cluster/members", Bytes::from(body));
    let (m, path, body) = post("{\"changes\": 5}");
    let r = at_leader.call_once(m, path, body).await.unwrap();
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let (m, path, body) = post("{\"changes\": [{\"action\": \"remove\", \"id\": 9}]}");
    let r = at_leader.call_once(m, path, body).await.unwrap();
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        r.json()["error"].as_str().unwrap().contains("not a member"),
        "{}",
        r.json()
    );
    let follower = (1..=3).find(|&i| i != leader && i != dead).unwrap();
    let mut at_follower = Client::new(vec![cluster.endpoint(follower)], 0);
    let (m, path, body) = post("{\"changes\": [{\"action\": \"remove\", \"id\": 9}]}");
    let r = at_follower.call_once(m, path, body).await.unwrap();
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
    let fresh = cluster.spawn_joiner();
    let live: Vec<String> = (1..=3)
        .filter(|&i| i != dead)
        .map(|i| cluster.endpoint(i))
        .collect();
    let endpoints = live.join(",");
    let (peer, http) = (
        cluster.peer[fresh as usize - 1].to_string(),
        cluster.http[fresh as usize - 1].to_string(),
    );
    let id = fresh.to_string();
    let out = member(
        &["add", "--id", &id, "--peer", &peer, "--http", &http],
        &endpoints,
    )
    .unwrap_or_else(|e| panic!("{protocol}: member add: {e}"));
    assert!(out.contains("learners {n4}"), "{out}");
    // Promotion waits for the learner to catch up (Raft refuses before): bounded retries.
    let t0 = Instant::now();
    let out = loop {
        match member(&["promote", "--id", &id], &endpoints) {
            Ok(out) => break out,
            Err(e) if t0.elapsed() < WAIT && e.contains("caught up") => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{protocol}: member promote: {e}"),
        }
    };
    assert!(out.contains(&format!("n{fresh} is a voter")), "{out}");
    let out = member(&["remove", "--id", &dead.to_string()], &endpoints)
        .unwrap_or_else(|e| panic!("{protocol}: member remove: {e}"));
    let mut want: Vec<u64> = vec![1, 2, 3, fresh];
    want.retain(|&i| i != dead);
    let voters = want
        .iter()
        .map(|i| format!("n{i}"))
        .collect::<Vec<_>>()
        .join(",");
    assert!(out.contains(&format!("voters {{{voters}}}")), "{out}");
    let list = member(&["list"], &endpoints).unwrap();
    assert!(
        list.contains(&format!("configuration: voters {{{voters}}}")),
        "{list}"
    );
    // The new node counts: with another original node gone, the leader and the new node are
    // two of three voters.
    let leader = cluster.wait_leader().await;
    let other = want
        .iter()
        .copied()
        .find(|&i| i != leader && i != fresh)
        .unwrap();
    cluster.kill(other);
    let mut c = Client::new(vec![cluster.endpoint(leader), cluster.endpoint(fresh)], 0);
    for i in 0..20 {
        put(&mut c, &format!("after-{i}"), &format!("x{i}")).await;
        acked.push((format!("after-{i}"), format!("x{i}")));
    }
    // Every acknowledged write is there, read linearizably (through the log) at the new node.
    let mut at_fresh = Client::new(vec![cluster.endpoint(fresh)], 0);
    for (k, v) in &acked {
        assert_eq!(
            get(&mut at_fresh, k).await.as_deref(),
            Some(v.as_str()),
            "{protocol}: {k}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_replaces_a_sigkilled_node_with_member_commands() {
    replace_a_sigkilled_node("raft").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zab_replaces_a_sigkilled_node_with_member_commands() {
    replace_a_sigkilled_node("zab").await;
}

/// `cluster --spares 1` starts a fourth node outside the configuration; `member add` and
/// `member promote` make it a voter of the running cluster, the ZAB way too (an observer first);
/// SIGINT stops every process, the spare included.
#[test]
fn cluster_starts_a_spare_that_member_commands_add() {
    for protocol in ["raft", "zab"] {
        // Four consecutive free ports for peers and four for HTTP.
        let peer_base = harness::net::launch::free_port_base(8).unwrap();
        let http_base = peer_base + 4;
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Command::new(EXE)
            .args([
                "cluster",
                "--protocol",
                protocol,
                "--nodes",
                "3",
                "--spares",
                "1",
            ])
            .args(["--peer-base", &peer_base.to_string()])
            .args(["--http-base", &http_base.to_string()])
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("cluster.err")).unwrap())
            .spawn()
            .unwrap();
        let guard_pid = cluster.id();
        let stop = |pid: u32, sig: &str| {
            let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
        };
        let mut out = std::io::BufReader::new(cluster.stdout.take().unwrap());
        let (mut pids, mut spare_line) = (Vec::new(), String::new());
        let mut line = String::new();
        while pids.len() < 4 {
            line.clear();
            let n = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
            assert!(n > 0, "cluster exited before listing its nodes");
            if let Some(p) = line.split("pid ").nth(1) {
                pids.push(p.split_whitespace().next().unwrap().parse::<u32>().unwrap());
                if line.contains("spare") {
                    spare_line = line.clone();
                }
            }
        }
        let add = spare_line
            .split("(spare: consensus-lab ")
            .nth(1)
            .map(|s| s.trim().trim_end_matches(')').to_string())
            .unwrap_or_else(|| panic!("no spare listed: {spare_line}"));
        assert!(add.starts_with("member add --id 4"), "{add}");
        let endpoints = (1..=3)
            .map(|i| format!("127.0.0.1:{}", http_base + i))
            .collect::<Vec<_>>()
            .join(",");
        // The cluster may still be electing: bounded retries.
        let t0 = Instant::now();
        let retry = |args: Vec<&str>| loop {
            match member(&args, &endpoints) {
                Ok(out) => break out,
                Err(e) if t0.elapsed() < WAIT => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => {
                    stop(guard_pid, "-KILL");
                    panic!("{protocol}: member {args:?}: {e}")
                }
            }
        };
        let args: Vec<&str> = add.split_whitespace().skip(1).collect();
        let added = retry(args);
        assert!(added.contains("learners {n4}"), "{protocol}: {added}");
        let promoted = retry(vec!["promote", "--id", "4"]);
        assert!(
            promoted.contains("voters {n1,n2,n3,n4}"),
            "{protocol}: {promoted}"
        );
        sigint_and_wait(&mut cluster);
        assert_all_stopped(pids);
    }
}
