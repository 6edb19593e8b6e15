//! The test-friendly cluster API, the same for every protocol.
//!
//! `Cluster::new(protocol::RAFT, SimConfig::default())` builds a simulated cluster whose
//! nodes are numbered `1..=n`; tests then run virtual time, cut links, crash nodes and look at
//! what each node applied, without naming the protocol again.

use crate::history::History;
use crate::metrics::Observer;
use crate::nemesis::{Nemesis, NetFaults};
use crate::protocol::Protocol;
use crate::sim::TraceEvent;
use crate::sim::{Semantics, Sim, SimConfig, Stats};
use crate::workload::WorkloadConfig;
use consensus_core::{
    Command, Entry, NodeId, Position, ProposeError, ReadLevel, Recovered, Replica, Status, Time,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// What the harness needs from a simulator, whatever protocol it runs; a protocol's
/// [`crate::protocol::ProtocolDef::simulate`] builds one with [`simulated`].
pub trait Backend {
    fn run_until(&mut self, t: Time);
    fn step_one(&mut self) -> bool;
    fn now(&self) -> Time;
    fn leader(&self) -> Option<NodeId>;
    fn status(&self, id: NodeId) -> Option<Status>;
    fn propose(&mut self, id: NodeId, cmd: Command) -> Result<Position, ProposeError>;
    fn applied(&self, id: NodeId) -> &[Command];
    fn applied_base(&self, id: NodeId) -> u64;
    fn committed_sequence(&self) -> &[Command];
    fn diverged(&self) -> &BTreeMap<NodeId, String>;
    fn state(&mut self, id: NodeId) -> bytes::Bytes;
    fn query(&mut self, id: NodeId, command: &Command) -> bytes::Bytes;
    fn durable_entries(&self, id: NodeId) -> &[Entry];
    fn durable_hard_state(&self, id: NodeId) -> serde_json::Value;
    fn is_crashed(&self, id: NodeId) -> bool;
    fn disconnect(&mut self, id: NodeId);
    fn connect(&mut self, id: NodeId);
    fn block_one_way(&mut self, from: NodeId, to: NodeId);
    fn partition(&mut self, groups: &[Vec<NodeId>]);
    fn heal(&mut self);
    fn set_unreliable(&mut self, f: NetFaults);
    fn crash(&mut self, id: NodeId);
    fn restart(&mut self, id: NodeId);
    fn stats(&self) -> Stats;
    fn trace_hash(&self) -> u64;
    fn observer(&self) -> &Observer;
    fn start_workload(&mut self, cfg: WorkloadConfig);
    fn start_nemesis(&mut self, n: Nemesis);
    fn stop_nemesis(&mut self);
    fn workload_done(&self) -> bool;
    fn converged(&self) -> bool;
    fn final_state_problems(&mut self) -> Vec<String>;
    fn final_prefix(&self) -> usize;
    fn faults_injected(&self) -> BTreeMap<&'static str, u64>;
    fn fault_windows(&self) -> Vec<crate::nemesis::FaultWindow>;
    fn history(&self) -> Option<&History>;
    fn enable_trace(&mut self, title: &str, protocol: &str, era: &str);
    fn trace_events(&self) -> &[TraceEvent];
    fn note(&mut self, text: &str);
    fn read(&mut self, id: NodeId, level: ReadLevel, command: Command)
        -> Result<u64, ProposeError>;
    fn read_result(&self, read: u64) -> Option<Result<bytes::Bytes, Option<NodeId>>>;
    fn set_clock_rate(&mut self, id: NodeId, rate: f64);
    fn transfer_leadership(&mut self, id: NodeId, to: NodeId) -> Result<(), ProposeError>;
    fn change_membership(
        &mut self,
        id: NodeId,
        changes: &[consensus_core::ConfChange],
    ) -> Result<consensus_core::Position, ProposeError>;
    fn membership(&self, id: NodeId) -> Option<consensus_core::Membership>;
}

/// A simulator of nodes built by `make` (from an id, what the node recovered from its disk,
/// and the time), shaped by `cfg`.
pub fn simulated<R>(
    cfg: SimConfig,
    make: impl Fn(NodeId, Recovered<R::HardState>, Time) -> R + Send + 'static,
) -> Box<dyn Backend>
where
    R: Replica + 'static,
{
    Box::new(Sim::new(cfg, Box::new(make)))
}

impl<R: Replica> Backend for Sim<R> {
    fn run_until(&mut self, t: Time) {
        Sim::run_until(self, t)
    }
    fn step_one(&mut self) -> bool {
        Sim::step_one(self)
    }
    fn now(&self) -> Time {
        Sim::now(self)
    }
    fn leader(&self) -> Option<NodeId> {
        Sim::leader(self)
    }
    fn status(&self, id: NodeId) -> Option<Status> {
        Sim::status(self, id)
    }
    fn propose(&mut self, id: NodeId, cmd: Command) -> Result<Position, ProposeError> {
        Sim::propose(self, id, cmd)
    }
    fn applied(&self, id: NodeId) -> &[Command] {
        Sim::applied(self, id)
    }
    fn applied_base(&self, id: NodeId) -> u64 {
        Sim::applied_base(self, id)
    }
    fn committed_sequence(&self) -> &[Command] {
        Sim::committed_sequence(self)
    }
    fn diverged(&self) -> &BTreeMap<NodeId, String> {
        Sim::diverged(self)
    }
    fn state(&mut self, id: NodeId) -> bytes::Bytes {
        Sim::state(self, id)
    }
    fn query(&mut self, id: NodeId, command: &Command) -> bytes::Bytes {
        Sim::query(self, id, command)
    }
    fn durable_entries(&self, id: NodeId) -> &[Entry] {
        &Sim::durable(self, id).entries
    }
    fn durable_hard_state(&self, id: NodeId) -> serde_json::Value {
        serde_json::to_value(&Sim::durable(self, id).hard_state).unwrap_or_default()
    }
    fn is_crashed(&self, id: NodeId) -> bool {
        Sim::is_crashed(self, id)
    }
    fn disconnect(&mut self, id: NodeId) {
        Sim::disconnect(self, id)
    }
    fn connect(&mut self, id: NodeId) {
        Sim::connect(self, id)
    }
    fn block_one_way(&mut self, from: NodeId, to: NodeId) {
        Sim::block_one_way(self, from, to)
    }
    fn partition(&mut self, groups: &[Vec<NodeId>]) {
        Sim::partition(self, groups)
    }
    fn heal(&mut self) {
        Sim::heal(self)
    }
    fn set_unreliable(&mut self, f: NetFaults) {
        Sim::set_unreliable(self, f)
    }
    fn crash(&mut self, id: NodeId) {
        Sim::crash(self, id)
    }
    fn restart(&mut self, id: NodeId) {
        Sim::restart(self, id)
    }
    fn stats(&self) -> Stats {
        Sim::stats(self)
    }
    fn trace_hash(&self) -> u64 {
        Sim::trace_hash(self)
    }
    fn observer(&self) -> &Observer {
        &self.observer
    }
    fn start_workload(&mut self, cfg: WorkloadConfig) {
        Sim::start_workload(self, cfg)
    }
    fn start_nemesis(&mut self, n: Nemesis) {
        Sim::start_nemesis(self, n)
    }
    fn stop_nemesis(&mut self) {
        Sim::stop_nemesis(self)
    }
    fn workload_done(&self) -> bool {
        Sim::workload_done(self)
    }
    fn converged(&self) -> bool {
        Sim::converged(self)
    }
    fn final_state_problems(&mut self) -> Vec<String> {
        Sim::final_state_problems(self)
    }
    fn final_prefix(&self) -> usize {
        Sim::final_prefix(self)
    }
    fn faults_injected(&self) -> BTreeMap<&'static str, u64> {
        Sim::faults_injected(self)
    }
    fn fault_windows(&self) -> Vec<crate::nemesis::FaultWindow> {
        Sim::fault_windows(self)
    }
    fn history(&self) -> Option<&History> {
        self.workload.as_ref().map(|w| &w.history)
    }
    fn enable_trace(&mut self, title: &str, protocol: &str, era: &str) {
        Sim::enable_trace(self, title, protocol, era)
    }
    fn trace_events(&self) -> &[TraceEvent] {
        Sim::trace_events(self)
    }
    fn note(&mut self, text: &str) {
        Sim::note(self, text)
    }
    fn read(
        &mut self,
        id: NodeId,
        level: ReadLevel,
        command: Command,
    ) -> Result<u64, ProposeError> {
        Sim::read(self, id, level, command)
    }
    fn transfer_leadership(&mut self, id: NodeId, to: NodeId) -> Result<(), ProposeError> {
        Sim::transfer_leadership(self, id, to)
    }
    fn change_membership(
        &mut self,
        id: NodeId,
        changes: &[consensus_core::ConfChange],
    ) -> Result<consensus_core::Position, ProposeError> {
        Sim::change_membership(self, id, changes)
    }
    fn membership(&self, id: NodeId) -> Option<consensus_core::Membership> {
        Sim::membership(self, id)
    }
    fn read_result(&self, read: u64) -> Option<Result<bytes::Bytes, Option<NodeId>>> {
        Sim::read_result(self, read)
    }
    fn set_clock_rate(&mut self, id: NodeId, rate: f64) {
        Sim::set_clock_rate(self, id, rate)
    }
}

/// A simulated cluster of any protocol.
pub struct Cluster {
    protocol: Protocol,
    nodes: usize,
    inner: Box<dyn Backend>,
}

impl Cluster {
    /// Builds a cluster of `cfg.nodes` fresh nodes running `protocol`. A protocol that needs
    /// FIFO links (ZAB) always gets stream links, whatever `cfg.net.semantics` says.
    pub fn new(protocol: Protocol, cfg: SimConfig) -> Cluster {
        let nodes = cfg.nodes;
        let mut cfg = cfg;
        if protocol.def().needs_fifo().is_some() {
            cfg.net.semantics = Semantics::Stream;
        }
        let inner = protocol.def().simulate(&cfg);
        Cluster {
            protocol,
            nodes,
            inner,
        }
    }

    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Number of nodes.
    pub fn size(&self) -> usize {
        self.nodes
    }

    /// Every node id.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> {
        1..=self.nodes as NodeId
    }

    /// Runs `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.inner.now() + d;
        self.inner.run_until(t);
    }

    /// Runs until `pred` holds (checked every millisecond of virtual time) or `limit` passes;
    /// returns whether it held.
    pub fn run_until(&mut self, limit: Duration, mut pred: impl FnMut(&Cluster) -> bool) -> bool {
        let end = self.now() + limit;
        while self.now() < end {
            if pred(self) {
                return true;
            }
            self.run_for(Duration::from_millis(1));
        }
        pred(self)
    }

    /// Runs one event at a time until `pred` holds (checked after every event, so a test can
    /// act between two steps of a protocol) or `limit` passes; returns whether it held.
    pub fn step_until(&mut self, limit: Duration, mut pred: impl FnMut(&Cluster) -> bool) -> bool {
        let end = self.now() + limit;
        while self.now() < end {
            if pred(self) {
                return true;
            }
            if !self.inner.step_one() {
                self.run_for(Duration::from_millis(1));
            }
        }
        pred(self)
    }

    /// Current virtual time.
    pub fn now(&self) -> Time {
        self.inner.now()
    }

    /// The live leader of the highest era, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.inner.leader()
    }

    /// A node's status, or None while it is crashed.
    pub fn status(&self, id: NodeId) -> Option<Status> {
        self.inner.status(id)
    }

    /// Proposes `command` at node `id` directly (a leader accepts, others refuse).
    pub fn propose(
        &mut self,
        id: NodeId,
        command: impl Into<Command>,
    ) -> Result<Position, ProposeError> {
        self.inner.propose(id, command.into())
    }

    /// Commands node `id` applied since it last started or restored a snapshot, in order.
    pub fn applied(&self, id: NodeId) -> &[Command] {
        self.inner.applied(id)
    }

    /// How many commands node `id`'s state machine held before [`Cluster::applied`] began
    /// (nonzero after it restored a snapshot).
    pub fn applied_base(&self, id: NodeId) -> u64 {
        self.inner.applied_base(id)
    }

    /// The cluster's applied command sequence, as first seen on any node; every node's
    /// applied commands are checked against it as they happen.
    pub fn committed_sequence(&self) -> &[Command] {
        self.inner.committed_sequence()
    }

    /// Nodes that applied a command differing from [`Cluster::committed_sequence`], each with
    /// the first such case explained.
    pub fn diverged(&self) -> &BTreeMap<NodeId, String> {
        self.inner.diverged()
    }

    /// A snapshot of node `id`'s state machine (what two replicas compare equal on when they
    /// hold the same state).
    pub fn state(&mut self, id: NodeId) -> bytes::Bytes {
        self.inner.state(id)
    }

    /// Node `id`'s state machine's answer to a read-only command, from its current state.
    pub fn query(&mut self, id: NodeId, command: &Command) -> bytes::Bytes {
        self.inner.query(id, command)
    }

    /// The entries on node `id`'s simulated disk (synced only).
    pub fn durable_entries(&self, id: NodeId) -> &[Entry] {
        self.inner.durable_entries(id)
    }

    /// The hard state on node `id`'s simulated disk, as JSON (Raft: term and vote; ZAB:
    /// acceptedEpoch and currentEpoch), in the protocol's own field names.
    pub fn durable_hard_state(&self, id: NodeId) -> serde_json::Value {
        self.inner.durable_hard_state(id)
    }

    /// True while node `id` is crashed.
    pub fn is_crashed(&self, id: NodeId) -> bool {
        self.inner.is_crashed(id)
    }

    /// Cuts every link to and from `id`.
    pub fn disconnect(&mut self, id: NodeId) {
        self.inner.disconnect(id)
    }

    /// Restores every link to and from `id`.
    pub fn connect(&mut self, id: NodeId) {
        self.inner.connect(id)
    }

    /// Cuts only the link from `from` to `to`.
    pub fn block_one_way(&mut self, from: NodeId, to: NodeId) {
        self.inner.block_one_way(from, to)
    }

    /// Splits the cluster into groups that cannot talk to each other.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        self.inner.partition(groups)
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.inner.heal()
    }

    /// Sets message-level faults.
    pub fn set_unreliable(&mut self, faults: NetFaults) {
        self.inner.set_unreliable(faults)
    }

    /// Crashes node `id`, losing its memory and unsynced writes.
    pub fn crash(&mut self, id: NodeId) {
        self.inner.crash(id)
    }

    /// Restarts node `id` from its disk.
    pub fn restart(&mut self, id: NodeId) {
        self.inner.restart(id)
    }

    /// Messages, bytes, events, drops and fsyncs so far.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// A hash of the whole run so far: equal hashes mean identical runs.
    pub fn trace_hash(&self) -> u64 {
        self.inner.trace_hash()
    }

    /// Leadership metrics and invariant violations.
    pub fn observer(&self) -> &Observer {
        self.inner.observer()
    }

    /// Broken invariants seen so far (election safety, storage order, ...).
    pub fn violations(&self) -> &[String] {
        self.inner.observer().violations()
    }

    pub(crate) fn start_workload(&mut self, cfg: WorkloadConfig) {
        self.inner.start_workload(cfg)
    }

    pub(crate) fn start_nemesis(&mut self, n: Nemesis) {
        self.inner.start_nemesis(n)
    }

    pub(crate) fn stop_nemesis(&mut self) {
        self.inner.stop_nemesis()
    }

    pub(crate) fn workload_done(&self) -> bool {
        self.inner.workload_done()
    }

    pub(crate) fn converged(&self) -> bool {
        self.inner.converged()
    }

    /// What is wrong with the replicas' final state (see `Sim::final_state_problems`).
    pub(crate) fn final_state_problems(&mut self) -> Vec<String> {
        self.inner.final_state_problems()
    }

    /// Length of the prefix of the cluster's sequence every node's final state holds.
    pub(crate) fn final_prefix(&self) -> usize {
        self.inner.final_prefix()
    }

    /// Faults the nemesis injected, by kind.
    pub fn faults_injected(&self) -> BTreeMap<&'static str, u64> {
        self.inner.faults_injected()
    }

    /// When each fault of the nemesis was in force.
    pub fn fault_windows(&self) -> Vec<crate::nemesis::FaultWindow> {
        self.inner.fault_windows()
    }

    pub(crate) fn step_one(&mut self) -> bool {
        self.inner.step_one()
    }

    /// The client history, when a workload ran.
    pub fn history(&self) -> Option<&History> {
        self.inner.history()
    }

    /// Starts recording every event (messages, state changes, log changes, faults) from now on.
    pub fn enable_trace(&mut self, title: &str) {
        let (name, era) = (self.protocol.name(), self.protocol.words().era);
        self.inner.enable_trace(title, name, era)
    }

    /// The events recorded since [`Cluster::enable_trace`].
    pub fn trace_events(&self) -> &[TraceEvent] {
        self.inner.trace_events()
    }

    /// Asks node `id` to serve the read-only `command` (an encoded get) at `level` (`Index`,
    /// `Lease` or `Local`); returns the read's id for [`Cluster::read_result`].
    pub fn read(
        &mut self,
        id: NodeId,
        level: ReadLevel,
        command: impl Into<Command>,
    ) -> Result<u64, ProposeError> {
        self.inner.read(id, level, command.into())
    }

    /// A read's answer: the state machine's output once served, the leader hint if refused,
    /// `None` while it waits.
    pub fn read_result(&self, read: u64) -> Option<Result<bytes::Bytes, Option<NodeId>>> {
        self.inner.read_result(read)
    }

    /// Asks node `id`, if it leads, to hand leadership to `to` (Raft's TimeoutNow); a protocol
    /// without leadership transfer answers [`ProposeError::Unsupported`].
    pub fn transfer_leadership(&mut self, id: NodeId, to: NodeId) -> Result<(), ProposeError> {
        self.inner.transfer_leadership(id, to)
    }

    /// Asks node `id`, if it leads, to change the membership (the position of the
    /// configuration entry on success).
    pub fn change_membership(
        &mut self,
        id: NodeId,
        changes: &[consensus_core::ConfChange],
    ) -> Result<consensus_core::Position, ProposeError> {
        self.inner.change_membership(id, changes)
    }

    /// The configuration node `id` acts on: Raft's latest, ZAB's committed (None while it
    /// is crashed).
    pub fn membership(&self, id: NodeId) -> Option<consensus_core::Membership> {
        self.inner.membership(id)
    }

    /// Makes node `id`'s clock run at `rate` times true time from now on.
    pub fn set_clock_rate(&mut self, id: NodeId, rate: f64) {
        self.inner.set_clock_rate(id, rate)
    }

    /// Adds a line of narration to the trace.
    pub fn note(&mut self, text: &str) {
        self.inner.note(text)
    }
}
