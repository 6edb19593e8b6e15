//! A deterministic discrete-event simulator for any [`Replica`].
//!
//! One thread, a virtual clock, and an event queue ordered by (time, sequence number). All
//! randomness comes from one ChaCha generator seeded from the run's seed, so the same seed
//! yields the same run, byte for byte. The network delays, drops, duplicates, reorders and
//! partitions messages; each node has a simulated disk with an fsync latency and group commit,
//! and a crash loses whatever was not synced.

mod clients;
mod faults;
#[cfg(test)]
mod tests;
pub mod trace;

use crate::metrics::Observer;
use crate::nemesis::{Nemesis, NetFaults};
use crate::protocol::{Knobs, Tuning};
use crate::workload::WorkloadConfig;
use consensus_core::kv::KvStore;
use consensus_core::poll::now_or_never;
use consensus_core::{
    codec, Command, Entry, Envelope, LogStore, MemLogStore, NodeId, Payload, Position,
    ProposeError, Recovered, Replica, Snapshot, StateMachine, Status, Time,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;
pub use trace::{TraceEvent, Tracer};

pub(crate) use clients::Workload;

/// Message delays of the simulated network.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NetConfig {
    /// Shortest one-way delay.
    pub min_delay: Duration,
    /// Longest one-way delay (before faults add spikes).
    pub max_delay: Duration,
    /// Whether links behave like datagrams or like TCP connections.
    pub semantics: Semantics,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            min_delay: Duration::from_micros(500),
            max_delay: Duration::from_millis(2),
            semantics: Semantics::Datagram,
        }
    }
}

/// How the simulated network treats the messages on one link (one direction between two nodes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Semantics {
    /// Each message on its own, like UDP: loss faults drop it, duplicate it, reorder it.
    Datagram,
    /// Like a TCP connection: messages arrive in order and exactly once; a loss fault costs a
    /// retransmission timeout instead of the message; only a partition or a crash loses what
    /// is in flight (the connection breaks).
    Stream,
}

/// Delay a stream pays for each lost transmission (TCP's minimum retransmission timeout).
pub const RETRANSMISSION_TIMEOUT: Duration = Duration::from_millis(200);

/// Everything that shapes a simulated cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Number of nodes, numbered `1..=nodes`.
    pub nodes: usize,
    /// The run's seed: every random choice derives from it.
    pub seed: u64,
    /// Network delays.
    pub net: NetConfig,
    /// Time one fsync takes on every node's disk.
    pub fsync_latency: Duration,
    /// Disks that acknowledge fsync but keep nothing across a crash: breaks every protocol's
    /// persistence assumption; used to show that the checks catch what follows.
    pub lying_disks: bool,
    /// Tunables every protocol maps onto its own configuration.
    pub knobs: Knobs,
    /// Protocol-specific configurations, for callers that know the protocol.
    pub tuning: Tuning,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 5,
            seed: 1,
            net: NetConfig::default(),
            fsync_latency: Duration::from_millis(1),
            lying_disks: false,
            knobs: Knobs::default(),
            tuning: Tuning::default(),
        }
    }
}

impl SimConfig {
    /// Every node's id: `1..=nodes`.
    pub fn voters(&self) -> Vec<NodeId> {
        (1..=self.nodes as NodeId).collect()
    }
}

/// Counters of what the simulated network and disks saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Messages nodes sent to each other.
    pub messages: u64,
    /// Encoded bytes of those messages.
    pub bytes: u64,
    /// Messages lost to crashes, partitions or drops.
    pub dropped: u64,
    /// Fsyncs performed.
    pub fsyncs: u64,
}

/// What a client hears back from a node.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// The command was applied; the state machine's encoded output.
    Done(bytes::Bytes),
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
        apply: Apply<M>,
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

/// The part of a Ready that waits for its fsync: messages to send, then what to apply.
pub(crate) struct Apply<M> {
    /// The last position this Ready appended, reported to the core once it is durable.
    appended: Option<Position>,
    messages: Vec<Envelope<M>>,
    restore: Option<Snapshot>,
    committed: Vec<Entry>,
    snapshot_at: Option<Position>,
}

struct Scheduled<M> {
    time: Time,
    seq: u64,
    event: Event<M>,
}

impl<M> PartialEq for Scheduled<M> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl<M> Eq for Scheduled<M> {}
impl<M> PartialOrd for Scheduled<M> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<M> Ord for Scheduled<M> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

/// Who waits for an entry a node accepted: (client, seq, attempt) and the command it proposed.
type Waiter = (usize, u64, u32, Command);

pub(crate) struct Node<R: Replica> {
    replica: Option<R>,
    store: MemLogStore<R::HardState>,
    sm: KvStore,
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
    waiting: BTreeMap<Position, Waiter>,
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
    queue: BinaryHeap<Reverse<Scheduled<R::Message>>>,
    rng: ChaCha8Rng,
    nodes: Vec<Node<R>>,
    factory: Factory<R>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    net_faults: NetFaults,
    /// Stream semantics: when the last message on each link arrives, so the next comes after.
    link_clock: BTreeMap<(NodeId, NodeId), Time>,
    stats: Stats,
    trace: DefaultHasher,
    /// The event recorder, when tracing.
    tracer: Option<Tracer>,
    buf: Vec<u8>,
    pub(crate) observer: Observer,
    /// The cluster's applied command sequence, as first seen on any node.
    oracle: Vec<Command>,
    /// Nodes that applied something other than the oracle at some point, with the first case.
    diverged: BTreeMap<NodeId, String>,
    pub(crate) workload: Option<Workload>,
    nemesis: Option<faults::NemesisState>,
    /// Faults injected by a nemesis that has stopped, by kind.
    faults_done: BTreeMap<&'static str, u64>,
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
            nodes: Vec::with_capacity(cfg.nodes),
            factory,
            blocked: BTreeSet::new(),
            net_faults: NetFaults::NONE,
            link_clock: BTreeMap::new(),
            stats: Stats::default(),
            trace: DefaultHasher::new(),
            tracer: None,
            buf: Vec::with_capacity(1024),
            observer: Observer::new(cfg.nodes),
            oracle: Vec::new(),
            diverged: BTreeMap::new(),
            workload: None,
            nemesis: None,
            faults_done: BTreeMap::new(),
            cfg,
        };
        for id in 1..=sim.cfg.nodes as NodeId {
            let replica = (sim.factory)(id, Recovered::default(), sim.now);
            sim.nodes.push(Node {
                replica: Some(replica),
                store: MemLogStore::new(),
                sm: KvStore::new(),
                applied_base: 0,
                applied: Vec::new(),
                inc: 0,
                sync_start: Duration::ZERO,
                sync_done: Duration::ZERO,
                tick_at: None,
                releases_queued: 0,
                waiting: BTreeMap::new(),
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
        self.queue.push(Reverse(Scheduled {
            time: at.max(self.now),
            seq: self.seq,
            event,
        }));
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
        while let Some(Reverse(top)) = self.queue.peek() {
            if top.time > until {
                break;
            }
            let Reverse(s) = self.queue.pop().expect("peeked");
            self.now = s.time;
            self.stats.events += 1;
            self.process(s.event);
        }
        self.now = self.now.max(until);
    }

    /// Runs events for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Processes the next event; false when the queue is empty.
    pub(crate) fn step_one(&mut self) -> bool {
        let Some(Reverse(s)) = self.queue.pop() else {
            return false;
        };
        self.now = s.time;
        self.stats.events += 1;
        self.process(s.event);
        true
    }

    fn process(&mut self, event: Event<R::Message>) {
        let t = self.now.as_nanos() as u64;
        match event {
            Event::Deliver {
                from,
                to,
                to_inc,
                msg,
                id,
            } => {
                (t, 1u8, from, to).hash(&mut self.trace);
                let n = self.node(to);
                if n.inc != to_inc || n.replica.is_none() || self.blocked.contains(&(from, to)) {
                    self.stats.dropped += 1;
                    if self.tracer.is_some() {
                        let why = if self.blocked.contains(&(from, to)) {
                            "link cut"
                        } else {
                            "receiver crashed"
                        };
                        let msg = trace::describe(&msg).0;
                        self.trace_event(|t| TraceEvent::Drop {
                            t,
                            from,
                            to,
                            id,
                            msg,
                            why: why.into(),
                        });
                    }
                    return;
                }
                if let Some(tr) = self.tracer.as_mut() {
                    let name = trace::describe(&msg).0;
                    tr.cause = format!("{name} from n{from}");
                    tr.events.push(TraceEvent::Recv {
                        t: t / 1000,
                        from,
                        to,
                        id,
                        msg: name,
                    });
                }
                let now = self.now;
                if let Some(r) = self.node_mut(to).replica.as_mut() {
                    r.receive(now, from, msg);
                }
                self.after_input(to);
            }
            Event::Tick { node, inc } => {
                (t, 2u8, node).hash(&mut self.trace);
                let now = self.now;
                let n = self.node_mut(node);
                if n.inc != inc {
                    return;
                }
                if n.tick_at == Some(now) {
                    n.tick_at = None;
                }
                if let Some(tr) = self.tracer.as_mut() {
                    tr.cause = "timer fired".into();
                }
                let n = self.node_mut(node);
                if let Some(r) = n.replica.as_mut() {
                    r.tick(now);
                }
                self.after_input(node);
            }
            Event::Release {
                node,
                inc,
                sync,
                apply,
            } => {
                (t, 3u8, node).hash(&mut self.trace);
                if let Some(tr) = self.tracer.as_mut() {
                    tr.cause = "its disk write completed".into();
                }
                if self.node(node).inc == inc {
                    self.node_mut(node).releases_queued -= 1;
                    self.release(node, sync, apply);
                }
            }
            Event::ClientStart { client } => {
                (t, 4u8, client).hash(&mut self.trace);
                self.client_next_op(client);
            }
            Event::ClientArrive {
                client,
                node,
                seq,
                attempt,
            } => {
                (t, 5u8, client, node, seq, attempt).hash(&mut self.trace);
                self.client_arrive(client, node, seq, attempt);
            }
            Event::ClientReply {
                client,
                seq,
                attempt,
                reply,
            } => {
                (t, 6u8, client, seq, attempt).hash(&mut self.trace);
                self.client_reply(client, seq, attempt, reply);
            }
            Event::ClientTimeout {
                client,
                seq,
                attempt,
            } => {
                (t, 7u8, client, seq, attempt).hash(&mut self.trace);
                self.client_timeout(client, seq, attempt);
            }
            Event::ClientRetry { client, seq } => {
                (t, 8u8, client, seq).hash(&mut self.trace);
                self.client_retry(client, seq);
            }
            Event::Nemesis => {
                (t, 9u8).hash(&mut self.trace);
                self.nemesis_step();
            }
            Event::Chaos { generation } => {
                (t, 10u8).hash(&mut self.trace);
                self.chaos_step(generation);
            }
            Event::ChaosAim {
                generation,
                node,
                inc,
                window,
            } => {
                (t, 11u8, node).hash(&mut self.trace);
                self.chaos_aim(generation, node, inc, window);
            }
        }
    }

    /// Collects a node's Ready after an input and hands it to the disk and network.
    fn after_input(&mut self, id: NodeId) {
        let now = self.now;
        let fsync = self.cfg.fsync_latency;
        let n = &mut self.nodes[id as usize - 1];
        let Some(r) = n.replica.as_mut() else {
            return;
        };
        let status = r.status();
        let ready = if r.has_ready() {
            Some(r.take_ready())
        } else {
            None
        };
        let deadline = r.next_deadline().max(now);
        if n.tick_at.is_none_or(|t| deadline < t) {
            n.tick_at = Some(deadline);
            let inc = n.inc;
            self.schedule(deadline, Event::Tick { node: id, inc });
        }
        if ready.as_ref().is_some_and(|r| r.restore.is_some()) {
            // The state machine is reloaded from a snapshot: the commit point starts over
            // from it (a ZAB SNAP may bring an older one; the leader's history follows).
            self.observer.state_reloaded(id);
        }
        self.observer.observe(now, id, Some(&status));
        if let Some(tr) = self.tracer.as_mut() {
            let t = now.as_micros() as u64;
            tr.status(t, &status, deadline.as_micros() as u64);
            for op in ready.iter().flat_map(|r| &r.persist) {
                match op {
                    consensus_core::PersistOp::Append(es) if !es.is_empty() => {
                        tr.events.push(TraceEvent::Append {
                            t,
                            node: id,
                            entries: es.iter().map(|e| trace::pos(e.pos)).collect(),
                        })
                    }
                    consensus_core::PersistOp::TruncateAfter(p) => {
                        tr.events.push(TraceEvent::Truncate {
                            t,
                            node: id,
                            after: trace::pos(*p),
                        })
                    }
                    consensus_core::PersistOp::Snapshot(snap) => {
                        tr.events.push(TraceEvent::Snapshot {
                            t,
                            node: id,
                            last: trace::pos(snap.last),
                        })
                    }
                    _ => {}
                }
            }
        }
        let Some(ready) = ready else {
            return;
        };
        for v in &ready.violations {
            self.observer.violation(v.clone());
        }
        if let Some(w) = faults::Window::of(&status, &ready) {
            self.chaos_window(id, w);
        }
        let n = &mut self.nodes[id as usize - 1];
        let sync = !ready.persist.is_empty();
        let appended = ready.appended_through();
        let apply = Apply {
            appended,
            messages: ready.messages,
            restore: ready.restore,
            committed: ready.committed,
            snapshot_at: ready.snapshot_at,
        };
        let release_at = if sync {
            if let Some(Err(e)) = now_or_never(n.store.write(&ready.persist)) {
                self.observer
                    .violation(format!("node {id}: storage write failed: {e}"));
            }
            if now < n.sync_start {
                // A queued fsync has not started yet: join it (group commit).
                n.sync_done
            } else {
                n.sync_start = now.max(n.sync_done);
                n.sync_done = n.sync_start + fsync;
                self.stats.fsyncs += 1;
                n.sync_done
            }
        } else {
            // Nothing to persist, but keep the order behind an fsync still in flight.
            now.max(n.sync_done)
        };
        if release_at == now && n.releases_queued == 0 {
            self.release(id, sync, apply);
        } else {
            n.releases_queued += 1;
            let inc = n.inc;
            self.schedule(
                release_at,
                Event::Release {
                    node: id,
                    inc,
                    sync,
                    apply,
                },
            );
        }
    }

    /// The persist part of a Ready is durable: send its messages, then apply (restore a
    /// snapshot, apply commits, take a snapshot if asked).
    fn release(&mut self, id: NodeId, sync: bool, apply: Apply<R::Message>) {
        if sync {
            match now_or_never(self.node_mut(id).store.sync()) {
                Some(Ok(())) => {}
                Some(Err(e)) => self
                    .observer
                    .violation(format!("node {id}: storage sync failed: {e}")),
                None => unreachable!("the in-memory store never waits"),
            }
        }
        if let Some(through) = apply.appended {
            let now = self.now;
            if let Some(r) = self.node_mut(id).replica.as_mut() {
                r.persisted(now, through);
            }
        }
        for env in apply.messages {
            self.send(id, env);
        }
        if let Some(snap) = apply.restore {
            let n = self.node_mut(id);
            match now_or_never(n.sm.restore(&snap.data)).expect("the KV store never waits") {
                Ok(()) => {
                    n.applied_base = n.sm.applied_count();
                    n.applied.clear();
                }
                Err(e) => self.observer.violation(format!(
                    "node {id}: snapshot at {} does not restore: {e}",
                    snap.last
                )),
            }
        }
        for entry in apply.committed {
            self.apply(id, entry);
        }
        if let Some(last) = apply.snapshot_at {
            let now = self.now;
            let n = self.node_mut(id);
            let data = now_or_never(n.sm.snapshot()).expect("the KV store never waits");
            if let Some(r) = n.replica.as_mut() {
                r.compact(now, Snapshot { last, data });
            }
        }
        if apply.appended.is_some() || apply.snapshot_at.is_some() {
            // What `persisted` or `compact` produced (a leader's commits, a snapshot to
            // persist) goes out now.
            self.after_input(id);
        }
    }

    fn send(&mut self, from: NodeId, env: Envelope<R::Message>) {
        self.stats.messages += 1;
        self.buf.clear();
        match codec::encode_into(&env.msg, &mut self.buf) {
            Ok(len) => self.stats.bytes += len as u64,
            Err(e) => {
                self.observer
                    .violation(format!("node {from}: message failed to encode: {e}"));
                return;
            }
        }
        self.buf.hash(&mut self.trace);
        let to = env.to;
        let cut = !self.valid(to) || self.blocked.contains(&(from, to));
        // The message's trace id and type name (0 and empty when not tracing).
        let (mut id, mut name) = (0, String::new());
        if let Some(tr) = self.tracer.as_mut() {
            id = tr.next_id();
            let (msg, fields) = trace::describe(&env.msg);
            name = msg.clone();
            tr.events.push(TraceEvent::Send {
                t: self.now.as_micros() as u64,
                from,
                to,
                id,
                msg,
                fields,
                bytes: self.buf.len() as u64,
            });
        }
        if cut {
            self.stats.dropped += 1;
            self.trace_event(|t| TraceEvent::Drop {
                t,
                from,
                to,
                id,
                msg: name,
                why: "link cut".into(),
            });
            return;
        }
        let f = self.net_faults;
        if self.cfg.net.semantics == Semantics::Stream {
            // Lost transmissions are retransmitted after a timeout; order and uniqueness hold.
            let mut at = self.now + self.faulty_delay();
            let mut tries = 0;
            while f.drop > 0.0 && tries < 8 && self.rng.random_bool(f.drop) {
                at += RETRANSMISSION_TIMEOUT;
                tries += 1;
            }
            let link = self.link_clock.entry((from, to)).or_default();
            let at = at.max(*link);
            *link = at;
            self.deliver_at(at, from, to, env.msg, id);
            return;
        }
        if f.drop > 0.0 && self.rng.random_bool(f.drop) {
            self.stats.dropped += 1;
            self.trace_event(|t| TraceEvent::Drop {
                t,
                from,
                to,
                id,
                msg: name,
                why: "lost".into(),
            });
            return;
        }
        if f.duplicate > 0.0 && self.rng.random_bool(f.duplicate) {
            self.deliver_later(from, to, env.msg.clone(), id);
        }
        self.deliver_later(from, to, env.msg, id);
    }

    /// Schedules `msg` to reach `to` after a (possibly faulty) network delay.
    fn deliver_later(&mut self, from: NodeId, to: NodeId, msg: R::Message, id: u64) {
        let at = self.now + self.faulty_delay();
        self.deliver_at(at, from, to, msg, id);
    }

    /// Schedules `msg` to reach `to` at `at`, unless `to` restarts before then.
    fn deliver_at(&mut self, at: Time, from: NodeId, to: NodeId, msg: R::Message, id: u64) {
        let to_inc = self.node(to).inc;
        self.schedule(
            at,
            Event::Deliver {
                from,
                to,
                to_inc,
                msg,
                id,
            },
        );
    }

    /// A network delay, plus a random spike for a message the faults reorder.
    fn faulty_delay(&mut self) -> Duration {
        let mut d = self.delay();
        let f = self.net_faults;
        if f.reorder > 0.0 && self.rng.random_bool(f.reorder) {
            let spike = f.spike.as_nanos() as u64;
            d += Duration::from_nanos(self.rng.random_range(0..=spike));
        }
        d
    }

    fn apply(&mut self, id: NodeId, entry: Entry) {
        let Payload::Command(cmd) = entry.payload else {
            return;
        };
        let n = &mut self.nodes[id as usize - 1];
        let out = now_or_never(n.sm.apply(entry.pos, &cmd)).expect("the KV store never waits");
        // Check the command against the cluster's sequence as first seen on any node.
        let index = (n.applied_base + n.applied.len() as u64) as usize;
        match self.oracle.get(index) {
            Some(c) if *c == cmd => {}
            Some(_) => {
                self.diverged.entry(id).or_insert_with(|| {
                    format!(
                        "node {id} applied a different command as command #{index} (at {})",
                        entry.pos
                    )
                });
            }
            None if index == self.oracle.len() => self.oracle.push(cmd.clone()),
            None => self.observer.violation(format!(
                "node {id} applied command #{index} before anyone applied #{}",
                self.oracle.len()
            )),
        }
        let n = &mut self.nodes[id as usize - 1];
        n.applied.push(cmd.clone());
        // Entries accepted at an earlier position that were never applied are gone for good.
        let mut replies = Vec::new();
        while let Some((&pos, _)) = n.waiting.first_key_value() {
            if pos > entry.pos {
                break;
            }
            let (pos, (client, seq, attempt, proposed)) = n.waiting.pop_first().expect("non-empty");
            // The entry at the client's position may be another leader's: only the client's
            // own command answers it (as the real runtime checks).
            let reply = if pos == entry.pos && proposed == cmd {
                Reply::Done(out.clone())
            } else {
                Reply::Retry
            };
            replies.push((client, seq, attempt, reply));
        }
        for (client, seq, attempt, reply) in replies {
            let at = self.now + self.delay();
            self.schedule(
                at,
                Event::ClientReply {
                    client,
                    seq,
                    attempt,
                    reply,
                },
            );
        }
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
        let now = self.now;
        let op = self.tracer.is_some().then(|| describe_command(&command));
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

    /// The commands node `id` applied since it last started or restored a snapshot, in order.
    pub fn applied(&self, id: NodeId) -> &[Command] {
        &self.node(id).applied
    }

    /// How many commands node `id`'s state machine held before [`Sim::applied`] began.
    pub fn applied_base(&self, id: NodeId) -> u64 {
        self.node(id).applied_base
    }

    /// The cluster's applied command sequence, as first seen on any node.
    pub fn committed_sequence(&self) -> &[Command] {
        &self.oracle
    }

    /// Nodes that ever applied a command different from the cluster's sequence, with the
    /// first such case explained.
    pub fn diverged(&self) -> &BTreeMap<NodeId, String> {
        &self.diverged
    }

    /// The node's key-value store.
    pub fn kv(&self, id: NodeId) -> &KvStore {
        &self.node(id).sm
    }

    /// The node's durable state on its simulated disk.
    pub fn durable(&self, id: NodeId) -> &Recovered<R::HardState> {
        self.node(id).store.durable()
    }

    /// True while the node is crashed.
    pub fn is_crashed(&self, id: NodeId) -> bool {
        self.node(id).replica.is_none()
    }

    /// Cuts every link to and from `id`.
    pub fn disconnect(&mut self, id: NodeId) {
        self.trace_event(|t| TraceEvent::Disconnect { t, node: id });
        for p in 1..=self.nodes.len() as NodeId {
            if p != id {
                self.blocked.insert((id, p));
                self.blocked.insert((p, id));
            }
        }
    }

    /// Restores every link to and from `id`.
    pub fn connect(&mut self, id: NodeId) {
        self.trace_event(|t| TraceEvent::Connect { t, node: id });
        self.blocked.retain(|&(a, b)| a != id && b != id);
    }

    /// Cuts the link from `from` to `to` only.
    pub fn block_one_way(&mut self, from: NodeId, to: NodeId) {
        self.blocked.insert((from, to));
    }

    /// Splits the cluster: nodes in different groups cannot talk; nodes in no group are isolated.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        self.trace_event(|t| TraceEvent::Partition {
            t,
            groups: groups.to_vec(),
        });
        self.blocked = faults::links_between(self.nodes.len(), groups);
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.trace_event(|t| TraceEvent::Heal { t });
        self.blocked.clear();
    }

    /// Sets message-level faults (drop, duplicate, reorder with delay spikes).
    pub fn set_unreliable(&mut self, faults: NetFaults) {
        self.net_faults = faults;
    }

    /// Crashes a node: its memory, unsynced writes and in-flight messages to it are lost.
    pub fn crash(&mut self, id: NodeId) {
        let now = self.now;
        let lying = self.cfg.lying_disks;
        if self.node(id).replica.is_none() {
            return;
        }
        let n = &mut self.nodes[id as usize - 1];
        n.replica = None;
        // Power fails partway through whatever the disk was doing: a prefix of the unsynced
        // writes survives, the last one possibly cut inside an append (the LogStore contract).
        let ops = n.store.pending_ops();
        let keep = self.rng.random_range(0..=ops);
        let entries = self.rng.random_range(0..=n.store.pending_entries(keep));
        n.store.crash_keeping(keep, entries);
        if lying {
            n.store = MemLogStore::new();
        }
        n.inc += 1;
        n.tick_at = None;
        n.releases_queued = 0;
        n.sync_start = Duration::ZERO;
        n.sync_done = Duration::ZERO;
        n.waiting.clear();
        self.observer.observe(now, id, None);
        self.trace_event(|t| TraceEvent::Crash { t, node: id });
        if let Some(tr) = self.tracer.as_mut() {
            tr.forget(id);
        }
    }

    /// Restarts a crashed node from its durable state, with an empty state machine.
    pub fn restart(&mut self, id: NodeId) {
        if self.node(id).replica.is_some() {
            return;
        }
        let recovered = match now_or_never(self.node_mut(id).store.recover()) {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                self.observer
                    .violation(format!("node {id}: recovery failed: {e}"));
                return;
            }
            None => unreachable!("the in-memory store never waits"),
        };
        let replica = (self.factory)(id, recovered, self.now);
        self.trace_event(|t| TraceEvent::Restart { t, node: id });
        if let Some(tr) = self.tracer.as_mut() {
            tr.cause = "restart from disk".into();
        }
        let n = self.node_mut(id);
        n.replica = Some(replica);
        n.sm = KvStore::new();
        n.applied_base = 0;
        n.applied.clear();
        self.after_input(id);
    }

    /// Installs a workload; clients start now.
    pub(crate) fn start_workload(&mut self, cfg: WorkloadConfig) {
        let clients = cfg.clients;
        self.workload = Some(Workload::new(cfg, self.cfg.seed, self.cfg.nodes));
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
        self.nemesis = None;
        self.heal();
        self.set_unreliable(NetFaults::NONE);
        for id in 1..=self.nodes.len() as NodeId {
            self.restart(id);
        }
    }

    /// The end-of-run check of every replica against the cluster's sequence: each node holds
    /// the whole sequence (not a prefix of it), its applied commands are the sequence's, and
    /// its store equals a replay of the sequence. Returns the problems found.
    pub(crate) fn final_state_problems(&self) -> Vec<String> {
        let mut reference = KvStore::new();
        for cmd in &self.oracle {
            reference.apply_bytes(Position::ZERO, cmd);
        }
        let mut problems = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let id = i as NodeId + 1;
            let total = n.total_applied();
            if total != self.oracle.len() as u64 {
                problems.push(format!(
                    "node {id} ends with {total} commands applied; the cluster's sequence has {}",
                    self.oracle.len()
                ));
            } else if self.oracle[n.applied_base as usize..] != n.applied[..] {
                problems.push(format!(
                    "node {id}'s applied commands differ from the sequence"
                ));
            } else if !n.sm.same_contents(&reference) {
                problems.push(format!(
                    "node {id}'s store differs from a replay of the cluster's sequence"
                ));
            }
        }
        problems
    }

    /// Commands every node's final state holds: the shortest prefix of the cluster's
    /// sequence that all nodes applied.
    pub(crate) fn final_prefix(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| n.total_applied() as usize)
            .min()
            .unwrap_or(0)
            .min(self.oracle.len())
    }

    /// True once every client has finished.
    pub(crate) fn workload_done(&self) -> bool {
        self.workload.as_ref().is_none_or(|w| w.done())
    }

    /// True when all nodes are up, one leads, and every node applied everything it committed
    /// up to the leader's last position.
    pub(crate) fn converged(&self) -> bool {
        let Some(leader) = self.leader() else {
            return false;
        };
        let Some(ls) = self.status(leader) else {
            return false;
        };
        let leader_total = self.node(leader).total_applied();
        self.nodes.iter().all(|n| match &n.replica {
            Some(r) => {
                let s = r.status();
                s.commit == ls.last && s.last == ls.last && n.total_applied() == leader_total
            }
            None => false,
        })
    }
}

/// A client command in words: "put x=1", "get x", "cas x: 1 -> 2".
pub fn describe_command(command: &Command) -> String {
    use consensus_core::kv::{KvCommand, KvOp};
    match consensus_core::codec::decode::<KvCommand>(command) {
        Ok(KvCommand { op, .. }) => match op {
            KvOp::Put { key, value } => format!("put {key}={value}"),
            KvOp::Get { key } => format!("get {key}"),
            KvOp::Cas { key, expected, new } => format!("cas {key}: {expected} -> {new}"),
        },
        Err(_) => format!("command of {} bytes", command.len()),
    }
}
