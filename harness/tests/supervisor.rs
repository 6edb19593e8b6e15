//! `consensus-lab cluster` as a supervisor: a node that dies is reported, the others keep
//! serving, and with `--restart` it comes back on its data directory.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_consensus-lab");
const WAIT: Duration = Duration::from_secs(20);

/// A base port with the next `n` ports free on 127.0.0.1.
fn base(n: u16) -> u16 {
    for _ in 0..50 {
        let p = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if p > 2000 && p < 60000 && (1..=n).all(|i| TcpListener::bind(("127.0.0.1", p + i)).is_ok())
        {
            return p;
        }
    }
    panic!("no free port range");
}

fn kill(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.contains(") Z "),
        Err(_) => false,
    }
}

/// True when the node's HTTP port answers `GET /status`.
fn answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}

struct Supervised {
    child: Child,
    pids: Vec<u32>,
    http_base: u16,
    lines: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Supervised {
    fn start(restart: bool) -> Supervised {
        let (peer_base, http_base) = (base(3), base(3));
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(EXE);
        cmd.args(["cluster", "--protocol", "zab", "--nodes", "3"])
            .args(["--peer-base", &peer_base.to_string()])
            .args(["--http-base", &http_base.to_string()])
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if restart {
            cmd.arg("--restart");
        }
        let mut child = cmd.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut pids = Vec::new();
        let mut line = String::new();
        while pids.len() < 3 {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "cluster exited early"
            );
            if let Some(p) = line.split("pid ").nth(1) {
                pids.push(p.trim().parse::<u32>().unwrap());
            }
        }
        // The supervisor's reports come on stderr; collect them as they come.
        let (tx, lines) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Supervised {
            child,
            pids,
            http_base,
            lines,
            _dir: dir,
        }
    }

    /// The first report line containing `text`, within the wait.
    fn report(&self, text: &str) -> String {
        let end = Instant::now() + WAIT;
        while Instant::now() < end {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                if l.contains(text) {
                    return l;
                }
            }
        }
        panic!("no report containing {text:?}");
    }

    fn wait_answering(&self, node: u16) -> bool {
        let end = Instant::now() + WAIT;
        while Instant::now() < end {
            if answers(self.http_base + node) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        kill(self.child.id(), "-INT");
        let end = Instant::now() + WAIT;
        while self.child.try_wait().unwrap().is_none() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.child.try_wait().unwrap().is_none() {
            kill(self.child.id(), "-KILL");
        }
        for &p in &self.pids {
            if pid_alive(p) {
                kill(p, "-KILL");
            }
        }
    }
}

#[test]
fn a_killed_node_is_reported_and_the_others_keep_serving() {
    let mut c = Supervised::start(false);
    // Every node logs its elections at the default level.
    let elected = c.report("role, era or leader changed");
    assert!(elected.contains("era="), "{elected}");
    assert!(c.wait_answering(1) && c.wait_answering(3));
    kill(c.pids[1], "-KILL");
    let line = c.report("node 2 exited");
    assert!(line.contains("the other 2 keep running"), "{line}");
    assert!(
        c.child.try_wait().unwrap().is_none(),
        "the supervisor runs on"
    );
    assert!(answers(c.http_base + 1) && answers(c.http_base + 3));
    assert!(!answers(c.http_base + 2));
}

#[test]
fn with_restart_a_killed_node_comes_back_on_its_data() {
    let mut c = Supervised::start(true);
    assert!(c.wait_answering(2));
    kill(c.pids[1], "-KILL");
    let line = c.report("node 2 exited");
    let pid: u32 = line
        .split("pid ")
        .nth(1)
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    c.pids.push(pid);
    assert!(c.wait_answering(2), "node 2 serves again");
    assert!(c.child.try_wait().unwrap().is_none());
}
