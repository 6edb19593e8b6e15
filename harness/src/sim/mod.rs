//! A deterministic discrete-event simulator for any [`Replica`].
//!
//! One thread, a virtual clock, and an event queue ordered by (time, sequence number). All
//! randomness comes from one ChaCha generator seeded from the run's seed, so the same seed
//! yields the same run, byte for byte. The network delays, drops, duplicates, reorders and
//! partitions messages; each node has a simulated disk with an fsync latency and group commit,
//! and a crash loses whatever was not synced.

mod clients;
mod clock;
mod config;
mod disk;
mod driver;
mod faults;
mod network;
mod oracle;
mod reads;
#[cfg(test)]
mod tests;
pub mod trace;

use crate::metrics::Observer;
use crate::nemesis::{Nemesis, NetFaults};
use crate::workload::WorkloadConfig;
pub use config::{NetConfig, Semantics, SimConfig, Stats, RETRANSMISSION_TIMEOUT};
use consensus_core::poll::now_or_never;
use consensus_core::{
    codec, Command, Entry, Envelope, LogStore, MemLogStore, NodeId, Outcome, Payload, PendingReads,
    Position, ProposeError, ReadLevel, ReadState, Recovered, Release, Replica, Snapshot,
    StateMachine, Status, Step, Time, Waiters,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::Duration;
pub use trace::{TraceEvent, Tracer};

pub(crate) use clients::Workload;

/// What a client hears back from a node.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// The command was applied (or the read served); the state machine's encoded output, and
    /// the position the node's state stood at.
    Done(bytes::Bytes, Position),
    /// The node does not lead; it names who it thinks does.
    NotLeader(Option<NodeId>),
    /// The attempt's entry was overwritten; try again.
    Retry,
}

pub(crate) enum Event<M> {
    Deliver {
        from: NodeId,
        to: NodeId,
        to_inc: u64,
        msg: M,
        /// The tracer's id for the message (0 when not tracing).
        id: u64,
    },
    Tick {
        node: NodeId,
        inc: u64,
    },
    Release {
        node: NodeId,
        inc: u64,
        sync: bool,
        /// Boxed: the largest variant would otherwise make every queued event as large.
        apply: Box<Release<M>>,
    },
    ClientStart {
        client: usize,
    },
    ClientArrive {
        client: usize,
        node: NodeId,
        seq: u64,
        attempt: u32,
    },
    ClientReply {
        client: usize,
        seq: u64,
        attempt: u32,
        reply: Reply,
    },
    ClientTimeout {
        client: usize,
        seq: u64,
        attempt: u32,
    },
    ClientRetry {
        client: usize,
        seq: u64,
    },
    Nemesis,
    /// A beat of the chaos engine started by chaos step `generation`.
    Chaos {
        generation: u64,
    },
    /// A fault aimed at a protocol window of `node` (incarnation `inc`).
    ChaosAim {
        generation: u64,
        node: NodeId,
        inc: u64,
        window: faults::Window,
    },
}

/// A queued event's place in the order: its time in nanoseconds and its sequence number, and
/// the slot that holds the event. The heap moves only these small keys; the events stay in
/// their slots. The heap is a max-heap: the earliest (time, sequence) compares greatest.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    nanos: u64,
    seq: u64,
    slot: usize,
}

impl Key {
    /// (time, sequence) as one number, so that one comparison orders two keys.
    fn order(&self) -> u128 {
        (u128::from(self.nanos) << 64) | u128::from(self.seq)
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.order().cmp(&self.order())
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The result of a state machine's call: the simulator's state machines never wait (they
/// run in memory), so every call completes at once.
fn at_once<T>(call: impl std::future::Future<Output = T>) -> T {
    now_or_never(call).expect("a simulated state machine answers at once")
}

/// The client number of reads a test asks for directly.
const DIRECT_READER: usize = usize::MAX;

/// Who waits for an entry a node accepted: (client, seq, attempt).
type Waiter = (usize, u64, u32);

pub(crate) struct Node<R: Replica> {
    replica: Option<R>,
    store: MemLogStore<R::HardState>,
    /// The app's state machine.
    sm: Box<dyn StateMachine>,
    /// Commands the state machine held before `applied` began (from a restored snapshot).
    applied_base: u64,
    applied: Vec<Command>,
    inc: u64,
    sync_start: Time,
    sync_done: Time,
    tick_at: Option<Time>,
    /// Release events scheduled and not yet processed: while any is queued, later Readies
    /// queue behind it, so a node's Readies take effect strictly in order.
    releases_queued: usize,
    waiting: Waiters<Waiter>,
    /// Reads waiting for their read index or for the state machine to catch up.
    reads: PendingReads<Waiter>,
    /// The position of the last entry the state machine applied (commands and no-ops).
    applied_at: Position,
    /// How fast this node's clock runs against true time (1: exactly), since the true time
    /// `clock_base.0`, when it read `clock_base.1`.
    rate: f64,
    clock_base: (Time, Time),
}

impl<R: Replica> Node<R> {
    /// Commands this node's state machine holds: those of a restored snapshot, then those
    /// applied one by one since.
    fn total_applied(&self) -> u64 {
        self.applied_base + self.applied.len() as u64
    }
}

/// Builds a node's core from what it recovered, at a given time.
pub type Factory<R> = Box<dyn Fn(NodeId, Recovered<<R as Replica>::HardState>, Time) -> R + Send>;

/// The simulator for one protocol.
pub struct Sim<R: Replica> {
    cfg: SimConfig,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Key>,
    /// Clients' request timeouts: each comes due the same delay after its request, so they
    /// come due in the order they were scheduled and a FIFO holds them, in (time, sequence)
    /// order; the heap keeps the rest and stays small.
    timeouts: VecDeque<Key>,
    /// The queued events, by slot; `free` lists the empty slots.
    slots: Vec<Option<Event<R::Message>>>,
    free: Vec<usize>,
    rng: ChaCha8Rng,
    nodes: Vec<Node<R>>,
    factory: Factory<R>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    net_faults: NetFaults,
    /// Stream semantics: when the last message on each link arrives, so the next comes after.
    link_clock: BTreeMap<(NodeId, NodeId), Time>,
    stats: Stats,
    trace: trace::TraceHash,
    /// The event recorder, when tracing.
    tracer: Option<Tracer>,
    buf: Vec<u8>,
    pub(crate) observer: Observer,
    /// The cluster's applied command sequence, as first seen on any node.
    oracle: Vec<Command>,
    /// Nodes that applied something other than the oracle at some point, with the first case.
    diverged: BTreeMap<NodeId, String>,
    /// How many commands the state machine holds in a snapshot taken at each position (a
    /// restored snapshot says only its position).
    snapshot_counts: BTreeMap<Position, u64>,
    pub(crate) workload: Option<Workload>,
    nemesis: Option<faults::NemesisState>,
    /// The next id for a read served outside the log.
    next_read: u64,
    /// Answers to reads a test asked for directly ([`Sim::read`]), by read id.
    direct_reads: BTreeMap<u64, Reply>,
    /// Faults injected by a nemesis that has stopped, by kind.
    faults_done: BTreeMap<&'static str, u64>,
    /// The fault windows of a stopped nemesis.
    windows_done: Vec<crate::nemesis::FaultWindow>,
}

impl<R: Replica> Sim<R> {
    /// A cluster of `cfg.nodes` fresh nodes built by `factory`.
    pub fn new(cfg: SimConfig, factory: Factory<R>) -> Self {
        assert!(cfg.nodes >= 1, "a cluster needs at least one node");
        let mut sim = Sim {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            timeouts: VecDeque::new(),
            slots: Vec::new(),
            free: Vec::new(),
            nodes: Vec::with_capacity(cfg.nodes),
            factory,
            blocked: BTreeSet::new(),
            net_faults: NetFaults::NONE,
            link_clock: BTreeMap::new(),
            stats: Stats::default(),
            trace: trace::TraceHash::default(),
            tracer: None,
            buf: Vec::with_capacity(1024),
            observer: Observer::new(cfg.nodes),
            oracle: Vec::new(),
            next_read: 1,
            direct_reads: BTreeMap::new(),
            diverged: BTreeMap::new(),
            // The empty state, which a sync may install, holds nothing.
            snapshot_counts: BTreeMap::from([(Position::ZERO, 0)]),
            workload: None,
            nemesis: None,
            faults_done: BTreeMap::new(),
            windows_done: Vec::new(),
            cfg,
        };
        // Clock rates come from their own generator, so that runs without drift draw exactly
        // what they always drew.
        let mut clocks = ChaCha8Rng::seed_from_u64(sim.cfg.seed ^ 0xC10C_C10C);
        let drift = sim.cfg.clock_drift.clamp(0.0, 0.9);
        for id in 1..=sim.cfg.nodes as NodeId {
            let rate = if drift > 0.0 {
                clocks.random_range(1.0 - drift..=1.0 + drift)
            } else {
                1.0
            };
            let replica = (sim.factory)(id, Recovered::default(), sim.now);
            sim.nodes.push(Node {
                replica: Some(replica),
                store: MemLogStore::new(),
                sm: sim.cfg.app.get().machine(),
                applied_base: 0,
                applied: Vec::new(),
                inc: 0,
                sync_start: Duration::ZERO,
                sync_done: Duration::ZERO,
                tick_at: None,
                releases_queued: 0,
                waiting: Waiters::default(),
                reads: PendingReads::default(),
                applied_at: Position::ZERO,
                rate,
                clock_base: (Duration::ZERO, Duration::ZERO),
            });
            sim.after_input(id);
        }
        sim
    }

    /// The configuration the cluster was built with.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Network and disk counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// A hash of every event processed and every message sent so far.
    pub fn trace_hash(&self) -> u64 {
        self.trace.finish()
    }

    fn node(&self, id: NodeId) -> &Node<R> {
        &self.nodes[id as usize - 1]
    }

    fn node_mut(&mut self, id: NodeId) -> &mut Node<R> {
        &mut self.nodes[id as usize - 1]
    }

    fn valid(&self, id: NodeId) -> bool {
        id >= 1 && id as usize <= self.nodes.len()
    }

    pub(crate) fn schedule(&mut self, at: Time, event: Event<R::Message>) {
        self.seq += 1;
        let in_order = matches!(event, Event::ClientTimeout { .. });
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(event);
                i
            }
            None => {
                self.slots.push(Some(event));
                self.slots.len() - 1
            }
        };
        let nanos =
            u64::try_from(at.max(self.now).as_nanos()).expect("virtual time stays below 584 years");
        let key = Key {
            nanos,
            seq: self.seq,
            slot,
        };
        if in_order
            && self
                .timeouts
                .back()
                .is_none_or(|b| b.order() <= key.order())
        {
            self.timeouts.push_back(key);
        } else {
            self.queue.push(key);
        }
    }

    /// True when the next event is the first of the timeouts rather than the heap's first.
    fn timeout_first(&self) -> bool {
        self.timeouts
            .front()
            .is_some_and(|t| self.queue.peek().is_none_or(|h| t.order() < h.order()))
    }

    /// The next event's key: the earlier of the heap's first and the timeouts' first.
    fn next_key(&self) -> Option<&Key> {
        if self.timeout_first() {
            self.timeouts.front()
        } else {
            self.queue.peek()
        }
    }

    /// Takes the next event out of the queue, with its time.
    fn pop_event(&mut self) -> Option<(Time, Event<R::Message>)> {
        let Key { nanos, slot, .. } = if self.timeout_first() {
            self.timeouts.pop_front()?
        } else {
            self.queue.pop()?
        };
        let time = Duration::from_nanos(nanos);
        self.free.push(slot);
        let event = self.slots[slot]
            .take()
            .expect("a queued slot holds its event");
        Some((time, event))
    }

    /// A one-way network delay drawn from the configured range.
    pub(crate) fn delay(&mut self) -> Duration {
        let min = self.cfg.net.min_delay.as_nanos() as u64;
        let max = self.cfg.net.max_delay.as_nanos() as u64;
        Duration::from_nanos(if max > min {
            self.rng.random_range(min..=max)
        } else {
            min
        })
    }

    /// Runs events until virtual time `until` (inclusive), then sets the clock there.
    pub fn run_until(&mut self, until: Time) {
        while let Some(key) = self.next_key() {
            if Duration::from_nanos(key.nanos) > until {
                break;
            }
            let (time, event) = self.pop_event().expect("peeked");
            self.now = time;
            self.stats.events += 1;
            self.process(event);
        }
        self.now = self.now.max(until);
    }

    /// Runs events for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Processes the next event; false when the queue is empty.
    pub(crate) fn step_one(&mut self) -> bool {
        let Some((time, event)) = self.pop_event() else {
            return false;
        };
        self.now = time;
        self.stats.events += 1;
        self.process(event);
        true
    }

    // ---- the test-facing cluster API ----

    /// The status of every live node.
    pub fn statuses(&self) -> Vec<Status> {
        self.nodes
            .iter()
            .filter_map(|n| n.replica.as_ref().map(|r| r.status()))
            .collect()
    }

    /// The status of one node (None while it is crashed).
    pub fn status(&self, id: NodeId) -> Option<Status> {
        self.node(id).replica.as_ref().map(|r| r.status())
    }

    /// The live leader of the highest era, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.statuses()
            .into_iter()
            .filter(|s| s.role == consensus_core::Role::Leader)
            .max_by_key(|s| s.era)
            .map(|s| s.id)
    }

    /// Proposes a command directly at a node.
    pub fn propose(&mut self, id: NodeId, command: Command) -> Result<Position, ProposeError> {
        let now = self.clock(id);
        let op = self
            .tracer
            .is_some()
            .then(|| self.cfg.app.get().describe_command(&command));
        let r = self
            .node_mut(id)
            .replica
            .as_mut()
            .ok_or(ProposeError::NotLeader { leader: None })?;
        let res = r.propose(now, command);
        if let (Some(tr), Some(op)) = (self.tracer.as_mut(), op) {
            tr.cause = format!("client {op}");
            tr.events.push(TraceEvent::Client {
                t: now.as_micros() as u64,
                node: id,
                op,
                result: match &res {
                    Ok(p) => format!("proposed at {p}"),
                    Err(e) => format!("refused: {e}"),
                },
            });
        }
        self.after_input(id);
        res
    }

    /// Starts recording a trace of everything that happens from now on.
    pub fn enable_trace(&mut self, title: &str, protocol: &str, era: &str) {
        let mut tr = Tracer::new(self.nodes.len());
        tr.events.push(TraceEvent::Meta {
            protocol: protocol.to_string(),
            era: era.to_string(),
            nodes: self.nodes.len() as u64,
            seed: self.cfg.seed,
            title: title.to_string(),
        });
        let t = self.now.as_micros() as u64;
        for n in &self.nodes {
            if let Some(r) = &n.replica {
                tr.status(t, &r.status(), r.next_deadline().as_micros() as u64);
            }
        }
        self.tracer = Some(tr);
    }

    /// The trace recorded so far (empty when tracing is off).
    pub fn trace_events(&self) -> &[TraceEvent] {
        self.tracer.as_ref().map_or(&[], |t| &t.events)
    }

    /// Adds a line of narration to the trace at the current time.
    pub fn note(&mut self, text: &str) {
        let t = self.now.as_micros() as u64;
        if let Some(tr) = self.tracer.as_mut() {
            tr.events.push(TraceEvent::Note {
                t,
                text: text.to_string(),
            });
        }
    }

    fn trace_event(&mut self, f: impl FnOnce(u64) -> TraceEvent) {
        let t = self.now.as_micros() as u64;
        if let Some(tr) = self.tracer.as_mut() {
            tr.events.push(f(t));
        }
    }

    /// Installs a workload; clients start now.
    pub(crate) fn start_workload(&mut self, cfg: WorkloadConfig) {
        let clients = cfg.clients;
        self.workload = Some(Workload::new(
            cfg,
            self.cfg.app.clone(),
            self.cfg.seed,
            self.cfg.nodes,
        ));
        for c in 0..clients {
            let at = self.now + Duration::from_micros(c as u64 * 37);
            self.schedule(at, Event::ClientStart { client: c });
        }
    }

    /// Starts injecting faults of the nemesis' kind.
    pub(crate) fn start_nemesis(&mut self, nemesis: Nemesis) {
        self.nemesis = Some(faults::NemesisState::new(nemesis));
        let at = self.now + Duration::from_millis(500);
        self.schedule(at, Event::Nemesis);
    }

    /// Stops the nemesis and repairs everything it broke.
    pub(crate) fn stop_nemesis(&mut self) {
        self.faults_done = self.faults_injected();
        if let Some(st) = self.nemesis.as_mut() {
            st.close_window(self.now);
            self.windows_done = st.windows.clone();
        }
        self.nemesis = None;
        self.heal();
        self.set_unreliable(NetFaults::NONE);
        for id in 1..=self.nodes.len() as NodeId {
            self.restart(id);
        }
    }

    /// True once every client has finished.
    pub(crate) fn workload_done(&self) -> bool {
        self.workload.as_ref().is_none_or(|w| w.done())
    }
}
