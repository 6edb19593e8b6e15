//! Applications the simulator runs and checks: a replicated state machine, the operations
//! clients send it, and its sequential model.
//!
//! An [`App`] is everything the simulator, `run`, `check`, `compare` and the scenarios need to
//! know about a state machine: how to build a fresh replica of it, what a client asks (an
//! operation generator driven by the run's seed), how an operation travels in the log, and
//! the sequential specification the linearizability checker steps. The key-value store
//! ([`Kv`]) is the built-in app and the default; [`register`] adds another by name, after
//! which `--app NAME` selects it on every command.
//!
//! Contract the simulator relies on (and checks):
//! - commands carry their client's session and sequence number ([`App::encode`] /
//!   [`App::decode`]), and the state machine applies each (client, seq) at most once, answering
//!   a retry with the first answer (the library's `Sessions` wrapper or the KV store's own table);
//! - [`App::step`] is what one replica does, sequentially: same state and operation, same
//!   output;
//! - `snapshot()` is canonical: two replicas that applied the same commands give equal bytes
//!   (or [`App::same_state`] says how to compare them).

mod kv;

pub use kv::Kv;

use crate::checker::local::LocalReads;
use crate::checker::{self, CheckResult};
use crate::history::History;
use crate::workload::WorkloadConfig;
use consensus_core::{Command, StateMachine};
use rand_chacha::ChaCha8Rng;
use std::any::Any;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, LazyLock, Mutex};

/// One client's operations: called with the sequence number of the next one (1, 2, 3, ...).
pub type OpSource<Op> = Box<dyn FnMut(u64) -> Op + Send>;

/// A command as it travels in the log: its client's session, its sequence number, the operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<Op> {
    /// The client.
    pub client: u64,
    /// The client's sequence number, from 1.
    pub seq: u64,
    /// The operation.
    pub op: Op,
}

/// A state machine with its workload and its sequential model.
pub trait App: Send + Sync + 'static {
    /// An operation a client asks for.
    type Op: Clone + Debug + Send + 'static;
    /// What an operation returns.
    type Output: Clone + Debug + PartialEq + Send + 'static;
    /// The sequential model's state (of one partition; see [`App::partition`]).
    type State: Clone + Debug + Eq + Hash + Send + 'static;

    /// The name `--app` takes and reports print ("kv").
    fn name(&self) -> &'static str;
    /// One line for `--help` and listings.
    fn about(&self) -> &'static str;
    /// A fresh replica's state machine, empty.
    fn machine(&self) -> Box<dyn StateMachine>;
    /// Client `client`'s operations in a run shaped by `cfg`, drawn from `rng` alone (so that
    /// every protocol faces the same operations).
    fn ops(&self, client: u64, rng: ChaCha8Rng, cfg: &WorkloadConfig) -> OpSource<Self::Op>;
    /// The command for a request, as the log carries it.
    fn encode(&self, request: &Request<Self::Op>) -> Command;
    /// The command a read is served from outside the log (the state machine's `query`);
    /// default: the same bytes as [`App::encode`].
    fn encode_read(&self, request: &Request<Self::Op>) -> Command {
        self.encode(request)
    }
    /// The request a command carries (`None`: not one of this app's commands).
    fn decode(&self, command: &[u8]) -> Option<Request<Self::Op>>;
    /// The output bytes a replica answered, decoded (`None`: an error answer: malformed,
    /// stale, refused).
    fn output(&self, bytes: &[u8]) -> Option<Self::Output>;
    /// True for an operation that changes nothing (served outside the log at read levels
    /// other than `log`).
    fn is_read(&self, op: &Self::Op) -> bool;
    /// The model's state before any operation.
    fn initial(&self) -> Self::State;
    /// The sequential specification: the state after `op` and what `op` returns.
    fn step(&self, state: &Self::State, op: &Self::Op) -> (Self::State, Self::Output);
    /// Which independent part of the state `op` touches (a key): the checker checks each
    /// partition's history on its own, which is sound only when operations on different
    /// partitions never affect each other. Default: one partition.
    fn partition(&self, op: &Self::Op) -> String {
        let _ = op;
        String::new()
    }
    /// A short human-readable form of `op` for traces and violation reports.
    fn describe(&self, op: &Self::Op) -> String {
        format!("{op:?}")
    }
    /// True when two replicas' snapshots hold the same state (default: equal bytes).
    fn same_state(&self, a: &[u8], b: &[u8]) -> bool {
        a == b
    }
    /// The check of reads served locally (`--read-consistency local`), if the app has one;
    /// without it, only the other operations are checked for linearizability.
    fn check_local_reads(&self, history: &History, order: &[Command]) -> Option<LocalReads> {
        let _ = (history, order);
        None
    }
}

/// What the simulator and the checker call on an app, whatever its types.
pub trait DynApp: Send + Sync + Any {
    /// See [`App::name`].
    fn name(&self) -> &'static str;
    /// See [`App::about`].
    fn about(&self) -> &'static str;
    /// See [`App::machine`].
    fn machine(&self) -> Box<dyn StateMachine>;
    /// Client `client`'s generator, type-erased; [`DynApp::next`] draws from it.
    fn ops(&self, client: u64, rng: ChaCha8Rng, cfg: &WorkloadConfig) -> Box<dyn Any + Send>;
    /// The next command of a generator from [`DynApp::ops`], and for a read, the command its
    /// `query` takes.
    fn next(
        &self,
        ops: &mut Box<dyn Any + Send>,
        client: u64,
        seq: u64,
    ) -> (Command, Option<Command>);
    /// True when a replica's answer is a proper output (not an error answer).
    fn output_ok(&self, bytes: &[u8]) -> bool;
    /// The (client, seq) a command carries.
    fn identify(&self, command: &[u8]) -> Option<(u64, u64)>;
    /// A command, readable.
    fn describe_command(&self, command: &[u8]) -> String;
    /// An answer, readable.
    fn describe_output(&self, bytes: &[u8]) -> String;
    /// Linearizability of `history`, trying the replicas' `order` first.
    fn check(&self, history: &History, order: &[Command], budget: usize) -> CheckResult;
    /// See [`App::same_state`].
    fn same_state(&self, a: &[u8], b: &[u8]) -> bool;
    /// See [`App::check_local_reads`].
    fn check_local_reads(&self, history: &History, order: &[Command]) -> Option<LocalReads>;
}

impl<A: App> DynApp for A {
    fn name(&self) -> &'static str {
        App::name(self)
    }
    fn about(&self) -> &'static str {
        App::about(self)
    }
    fn machine(&self) -> Box<dyn StateMachine> {
        App::machine(self)
    }
    fn ops(&self, client: u64, rng: ChaCha8Rng, cfg: &WorkloadConfig) -> Box<dyn Any + Send> {
        Box::new(App::ops(self, client, rng, cfg))
    }
    fn next(
        &self,
        ops: &mut Box<dyn Any + Send>,
        client: u64,
        seq: u64,
    ) -> (Command, Option<Command>) {
        let source = ops
            .downcast_mut::<OpSource<A::Op>>()
            .expect("a generator comes from the same app");
        let request = Request {
            client,
            seq,
            op: source(seq),
        };
        let query = self
            .is_read(&request.op)
            .then(|| self.encode_read(&request));
        (self.encode(&request), query)
    }
    fn output_ok(&self, bytes: &[u8]) -> bool {
        self.output(bytes).is_some()
    }
    fn identify(&self, command: &[u8]) -> Option<(u64, u64)> {
        self.decode(command).map(|r| (r.client, r.seq))
    }
    fn describe_command(&self, command: &[u8]) -> String {
        match self.decode(command) {
            Some(r) => self.describe(&r.op),
            None => format!("command of {} bytes", command.len()),
        }
    }
    fn describe_output(&self, bytes: &[u8]) -> String {
        match self.output(bytes) {
            Some(o) => format!("{o:?}"),
            None => format!("error answer {:?}", String::from_utf8_lossy(bytes)),
        }
    }
    fn check(&self, history: &History, order: &[Command], budget: usize) -> CheckResult {
        checker::check_with_order(self, history, order, budget)
    }
    fn same_state(&self, a: &[u8], b: &[u8]) -> bool {
        App::same_state(self, a, b)
    }
    fn check_local_reads(&self, history: &History, order: &[Command]) -> Option<LocalReads> {
        App::check_local_reads(self, history, order)
    }
}

/// A registered app: a cheap, clonable handle.
#[derive(Clone)]
pub struct AppHandle(Arc<dyn DynApp>);

impl AppHandle {
    /// A handle on `app` (not registered: [`register`] makes it known to `--app`).
    pub fn new(app: impl App) -> Self {
        AppHandle(Arc::new(app))
    }

    /// The built-in key-value store.
    pub fn kv() -> Self {
        KV.clone()
    }

    /// The app's name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// Its type-erased interface.
    pub fn get(&self) -> &dyn DynApp {
        &*self.0
    }

    /// The app registered under `name`, or a one-line error listing the known ones.
    pub fn parse(name: &str) -> Result<AppHandle, String> {
        all().into_iter().find(|a| a.name() == name).ok_or_else(|| {
            let names: Vec<&str> = all().iter().map(|a| a.name()).collect();
            format!("unknown app '{name}' (known: {})", names.join(", "))
        })
    }

    /// The concrete app, when it is an `A`.
    pub fn downcast<A: App>(&self) -> Option<&A> {
        (&*self.0 as &dyn Any).downcast_ref::<A>()
    }
}

/// The built-in key-value store's handle, made once.
static KV: LazyLock<AppHandle> = LazyLock::new(|| AppHandle::new(Kv));

impl Default for AppHandle {
    fn default() -> Self {
        AppHandle::kv()
    }
}

impl PartialEq for AppHandle {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Debug for AppHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for AppHandle {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Apps added at run time by [`register`].
static EXTRA: Mutex<Vec<AppHandle>> = Mutex::new(Vec::new());

/// Adds an app; every command's `--app` accepts its name from then on. Fails when the name
/// is taken.
pub fn register(app: impl App) -> Result<AppHandle, String> {
    let handle = AppHandle::new(app);
    let mut extra = EXTRA.lock().unwrap_or_else(|e| e.into_inner());
    if handle.name() == "kv" || extra.iter().any(|a| a == &handle) {
        return Err(format!(
            "an app named {} is already registered",
            handle.name()
        ));
    }
    extra.push(handle.clone());
    Ok(handle)
}

/// Every registered app: the key-value store first, then the others in registration order.
pub fn all() -> Vec<AppHandle> {
    let extra = EXTRA.lock().unwrap_or_else(|e| e.into_inner());
    std::iter::once(AppHandle::kv())
        .chain(extra.iter().cloned())
        .collect()
}
