//! The examples' state machines in the simulator, under the framework's faults, checked
//! against sequential models written here (not the examples' own code): each is an
//! `harness::App`, run through `run` as `consensus-lab run --app NAME` runs it.

#[path = "../examples/counter.rs"]
#[allow(dead_code)]
mod counter;
#[path = "../examples/lock.rs"]
#[allow(dead_code)]
mod lock;

use consensus_lab::core::{codec, Command, StateMachine};
use consensus_lab::{SessionCommand, Sessions};
use harness::app::{App, AppHandle, OpSource, Request};
use harness::run::{self, RunConfig, RunReport};
use harness::{Faults, Protocol, WorkloadConfig};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// The log form of a command: the library's session envelope around the app's bytes.
fn wrap(r: &Request<impl Sized>, command: &str) -> Command {
    codec::encode(&SessionCommand {
        session: r.client,
        seq: r.seq,
        command: command.as_bytes().to_vec(),
    })
    .expect("a session command encodes")
    .into()
}

/// The session envelope's contents: (client, seq, the app's command as text).
fn unwrap(command: &[u8]) -> Option<(u64, u64, String)> {
    let c: SessionCommand = codec::decode(command).ok()?;
    Some((c.session, c.seq, String::from_utf8(c.command).ok()?))
}

/// The counter example as an app: adds of 1 to 5 and reads.
struct CounterApp {
    /// Run the counter without the session table (a mutation: retries apply twice).
    without_sessions: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum CounterOp {
    Add(i64),
    Get,
}

impl CounterOp {
    fn text(&self) -> String {
        match self {
            CounterOp::Add(n) => format!("+{n}"),
            CounterOp::Get => "get".into(),
        }
    }
}

/// The counter with the session envelope taken off but no table: a retry is applied again.
struct Forgetful(counter::Counter);

#[consensus_lab::core::async_trait]
impl StateMachine for Forgetful {
    async fn apply(
        &mut self,
        pos: consensus_lab::core::Position,
        command: &Command,
    ) -> bytes::Bytes {
        let inner = unwrap(command).map(|(_, _, c)| c).unwrap_or_default();
        self.0.apply(pos, &inner.into()).await
    }
    async fn snapshot(&mut self) -> bytes::Bytes {
        self.0.snapshot().await
    }
    async fn restore(&mut self, data: &[u8]) -> Result<(), consensus_lab::core::RestoreError> {
        self.0.restore(data).await
    }
    async fn query(&mut self, command: &Command) -> bytes::Bytes {
        self.0.query(command).await
    }
}

impl App for CounterApp {
    type Op = CounterOp;
    type Output = i64;
    type State = i64;

    fn name(&self) -> &'static str {
        if self.without_sessions {
            "counter-without-sessions"
        } else {
            "counter"
        }
    }
    fn about(&self) -> &'static str {
        "the counter example: +N adds N, get reads"
    }
    fn machine(&self) -> Box<dyn StateMachine> {
        if self.without_sessions {
            Box::new(Forgetful(counter::Counter::default()))
        } else {
            Box::new(Sessions::new(counter::Counter::default()))
        }
    }
    fn ops(&self, _client: u64, mut rng: ChaCha8Rng, cfg: &WorkloadConfig) -> OpSource<CounterOp> {
        let read_ratio = cfg.read_ratio;
        Box::new(move |_seq| {
            if rng.random_bool(read_ratio) {
                CounterOp::Get
            } else {
                CounterOp::Add(rng.random_range(1..=5))
            }
        })
    }
    fn encode(&self, r: &Request<CounterOp>) -> Command {
        wrap(r, &r.op.text())
    }
    fn encode_read(&self, r: &Request<CounterOp>) -> Command {
        r.op.text().into()
    }
    fn decode(&self, command: &[u8]) -> Option<Request<CounterOp>> {
        let (client, seq, text) = unwrap(command)?;
        let op = match text.strip_prefix('+') {
            Some(n) => CounterOp::Add(n.parse().ok()?),
            None if text == "get" => CounterOp::Get,
            None => return None,
        };
        Some(Request { client, seq, op })
    }
    fn output(&self, bytes: &[u8]) -> Option<i64> {
        std::str::from_utf8(bytes).ok()?.parse().ok()
    }
    fn is_read(&self, op: &CounterOp) -> bool {
        *op == CounterOp::Get
    }
    fn initial(&self) -> i64 {
        0
    }
    fn step(&self, count: &i64, op: &CounterOp) -> (i64, i64) {
        let next = match op {
            CounterOp::Add(n) => count + n,
            CounterOp::Get => *count,
        };
        (next, next)
    }
    fn describe(&self, op: &CounterOp) -> String {
        op.text()
    }
}

/// The lock service example as an app: clients acquire and release two locks and ask who
/// holds them.
struct LockApp;

/// The model: each lock's holder and token, and the last token handed out (tokens are
/// global, so the locks are one partition).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct LockModel {
    held: Vec<(String, String, u64)>,
    last_token: u64,
}

impl LockModel {
    fn holder(&self, name: &str) -> Option<&(String, String, u64)> {
        self.held.iter().find(|(n, _, _)| n == name)
    }
}

impl App for LockApp {
    /// The lock service's command text ("acquire db c3").
    type Op = String;
    type Output = String;
    type State = LockModel;

    fn name(&self) -> &'static str {
        "lock"
    }
    fn about(&self) -> &'static str {
        "the lock service example: acquire, release, holder"
    }
    fn machine(&self) -> Box<dyn StateMachine> {
        Box::new(Sessions::new(lock::Locks::default()))
    }
    fn ops(&self, client: u64, mut rng: ChaCha8Rng, cfg: &WorkloadConfig) -> OpSource<String> {
        let read_ratio = cfg.read_ratio;
        Box::new(move |_seq| {
            let name = ["db", "queue"][rng.random_range(0..2)];
            if rng.random_bool(read_ratio) {
                format!("holder {name}")
            } else if rng.random_bool(0.5) {
                format!("acquire {name} c{client}")
            } else {
                format!("release {name} c{client}")
            }
        })
    }
    fn encode(&self, r: &Request<String>) -> Command {
        wrap(r, &r.op)
    }
    fn encode_read(&self, r: &Request<String>) -> Command {
        r.op.clone().into()
    }
    fn decode(&self, command: &[u8]) -> Option<Request<String>> {
        let (client, seq, op) = unwrap(command)?;
        Some(Request { client, seq, op })
    }
    fn output(&self, bytes: &[u8]) -> Option<String> {
        let s = std::str::from_utf8(bytes).ok()?;
        (!s.starts_with("error")).then(|| s.to_string())
    }
    fn is_read(&self, op: &String) -> bool {
        op.starts_with("holder ")
    }
    fn initial(&self) -> LockModel {
        LockModel::default()
    }
    fn step(&self, m: &LockModel, op: &String) -> (LockModel, String) {
        let mut m = m.clone();
        let words: Vec<&str> = op.split(' ').collect();
        let out = match words.as_slice() {
            ["acquire", name, owner] => match m.holder(name).cloned() {
                Some((_, holder, token)) if holder == *owner => format!("granted {token}"),
                Some((_, holder, _)) => format!("held by {holder}"),
                None => {
                    m.last_token += 1;
                    m.held
                        .push((name.to_string(), owner.to_string(), m.last_token));
                    m.held.sort();
                    format!("granted {}", m.last_token)
                }
            },
            ["release", name, owner] => match m.holder(name) {
                Some((_, holder, _)) if holder == owner => {
                    m.held.retain(|(n, _, _)| n != name);
                    "released".into()
                }
                _ => "not held".into(),
            },
            ["holder", name] => match m.holder(name) {
                Some((_, holder, token)) => format!("{holder} {token}"),
                None => "free".into(),
            },
            _ => "error".into(),
        };
        (m, out)
    }
    fn describe(&self, op: &String) -> String {
        op.clone()
    }
}

fn config(app: AppHandle, protocol: Protocol, seed: u64) -> RunConfig {
    RunConfig {
        app,
        protocol,
        seed,
        nodes: 5,
        ops: 3_000,
        faults: Faults::Chaos,
        snapshot_threshold: 200,
        ..RunConfig::default()
    }
}

/// Every safety and liveness check of a run passed.
fn clean(r: &RunReport) -> bool {
    r.linearizable
        && r.lost_acked_writes == 0
        && r.diverged.is_empty()
        && r.converged
        && r.final_state.is_empty()
        && r.violations.is_empty()
        && r.liveness.is_empty()
}

/// Seeds per protocol: 3, or `SIMULATED_SEEDS` (a longer sweep:
/// `SIMULATED_SEEDS=100 cargo test --release -p consensus-lab --test simulated`).
fn seeds() -> std::ops::RangeInclusive<u64> {
    let n = std::env::var("SIMULATED_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    1..=n
}

fn protocols() -> [Protocol; 2] {
    [harness::protocol::RAFT, harness::protocol::ZAB]
}

#[test]
fn the_counter_survives_chaos_on_both_protocols() {
    survives_chaos(AppHandle::new(CounterApp {
        without_sessions: false,
    }));
}

/// Runs `app` under chaos for both protocols and every seed: each run passes every check,
/// answers most of its operations, and had faults injected.
fn survives_chaos(app: AppHandle) {
    for protocol in protocols() {
        for seed in seeds() {
            let r = run::run(&config(app.clone(), protocol, seed), None);
            assert!(clean(&r), "{}: {:#?}", r.config.command_line(), r);
            assert!(
                r.ops_ok > 1_000,
                "{}: {} ops answered",
                protocol.name(),
                r.ops_ok
            );
            assert!(r.faults.values().sum::<u64>() > 0, "chaos injected nothing");
        }
    }
}

#[test]
fn the_counter_reads_outside_the_log_are_checked_too() {
    let app = AppHandle::new(CounterApp {
        without_sessions: false,
    });
    for protocol in protocols() {
        let cfg = RunConfig {
            read_consistency: consensus_lab::ReadLevel::Index,
            ..config(app.clone(), protocol, 4)
        };
        let r = run::run(&cfg, None);
        assert!(clean(&r), "{}: {:#?}", r.config.command_line(), r);
        assert!(r.read_throughput_ops_per_sec > 0.0, "reads were served");
    }
}

#[test]
fn a_counter_that_applies_retries_twice_is_caught() {
    // The mutation: no session table, so a command retried after a timeout or a leader
    // change counts twice. Some chaos seed must show it as a non-linearizable history.
    let app = AppHandle::new(CounterApp {
        without_sessions: true,
    });
    let caught = (1..=10).any(|seed| {
        let r = run::run(&config(app.clone(), harness::protocol::RAFT, seed), None);
        !r.linearizable
    });
    assert!(caught, "ten chaos seeds and no double count found");
}

#[test]
fn the_lock_service_survives_chaos_on_both_protocols() {
    survives_chaos(AppHandle::new(LockApp));
}

#[test]
fn a_registered_app_runs_from_the_command_line() {
    harness::app::register(LockApp).unwrap();
    assert!(
        harness::app::register(LockApp).is_err(),
        "a name is taken once"
    );
    let mut out = Vec::new();
    let code = harness::cli::run(
        [
            "consensus-lab",
            "check",
            "--app",
            "lock",
            "--protocol",
            "both",
            "--faults",
            "chaos",
            "--seeds",
            "1..2",
            "--ops",
            "2000",
        ],
        &mut out,
    );
    let text = String::from_utf8_lossy(&out);
    assert_eq!(code, std::process::ExitCode::SUCCESS, "{text}");
    for protocol in ["raft", "zab"] {
        let line = format!("2 seeds of {protocol} running app lock under Chaos faults");
        assert!(text.contains(&line), "{text}");
    }
    assert!(
        !text.contains("1 failed") && !text.contains("2 failed"),
        "{text}"
    );
}

#[test]
fn a_story_of_your_own_runs_the_counter_on_a_simulated_cluster() {
    // A scenario written against the simulated cluster with the counter as its app: three
    // increments, the leader crashes, two more at the new leader; every node, the old leader
    // restarted included, ends at 5, and the trace names the commands as the app describes
    // them.
    use harness::sim::SimConfig;
    use harness::Cluster;
    use std::time::Duration;
    let app = CounterApp {
        without_sessions: false,
    };
    let add = |client: u64| {
        app.encode(&Request {
            client,
            seq: 1,
            op: CounterOp::Add(1),
        })
    };
    for protocol in protocols() {
        let cfg = SimConfig {
            nodes: 3,
            app: AppHandle::new(CounterApp {
                without_sessions: false,
            }),
            ..SimConfig::default()
        };
        let mut c = Cluster::new(protocol, cfg);
        c.enable_trace("counter: a leader crash");
        let limit = Duration::from_secs(5);
        let count = |c: &mut Cluster, id| app.output(&c.query(id, &"get".into()));
        assert!(c.run_until(limit, |c| c.leader().is_some()));
        let old = c.leader().unwrap();
        for client in 1..=3 {
            c.propose(old, add(client)).unwrap();
        }
        assert!(c.run_until(limit, |c| c.ids().all(|id| c.applied(id).len() == 3)));
        c.crash(old);
        assert!(c.run_until(limit, |c| c.leader().is_some_and(|l| l != old)));
        let new = c.leader().unwrap();
        for client in 4..=5 {
            c.propose(new, add(client)).unwrap();
        }
        c.restart(old);
        assert!(c.run_until(limit, |c| {
            c.ids()
                .all(|id| c.applied_base(id) + c.applied(id).len() as u64 == 5)
        }));
        for id in c.ids().collect::<Vec<_>>() {
            assert_eq!(count(&mut c, id), Some(5), "{} n{id}", protocol.name());
        }
        let described = c
            .trace_events()
            .iter()
            .filter(|e| format!("{e:?}").contains("+1"))
            .count();
        assert!(
            described >= 5,
            "{}: the trace names the increments",
            protocol.name()
        );
        assert!(c.violations().is_empty(), "{:?}", c.violations());
    }
}
