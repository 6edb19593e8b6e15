//! A tokio driver that runs any [`Replica`] over a [`LogStore`], a [`Transport`] and a
//! [`StateMachine`]: real timers, peer messages, client requests and group commit.
//!
//! One task owns the core. Each turn it waits for the first input (a client request, a peer
//! message or the core's next deadline), then takes every further input that is already
//! waiting, so a burst of proposals becomes one [`Ready`] with one append and one fsync (group
//! commit). It sends the messages that need nothing durable (a leader's replication), applies
//! committed entries and answers the clients whose entries they are, then persists and
//! syncs, tells the core what became durable and sends the other messages.

use bytes::Bytes;
use consensus_core::poll::now_or_never;
use consensus_core::{
    Command, ConfChange, LogStore, Membership, NodeId, Outcome, Payload, PendingReads, PersistOp,
    Position, ReadLevel, Ready, Recovered, Replica, Snapshot, StateMachine, Status, Step,
    StorageError, Time, Transport, Waiters,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Most inputs taken in one turn before the core's output is processed.
const MAX_INPUTS_PER_TURN: usize = 4096;
/// Client requests that may wait for the node's task before submitters are slowed down.
const REQUEST_QUEUE: usize = 65_536;

/// Why a client request got no result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// This node does not lead; `leader` is its best guess of who does.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this node believes in, if any.
        leader: Option<NodeId>,
    },
    /// The command's log slot was taken by another entry after a change of leader: it was not
    /// applied at that position (a retry with the same session is safe).
    #[error("leadership changed before the command committed")]
    Superseded,
    /// The node replaced its log with a leader's snapshot before the command's entry was
    /// applied here: the command may or may not have taken effect.
    #[error("outcome unknown: the log was replaced by a snapshot")]
    Unknown,
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// The protocol does not do what was asked (a leadership transfer, in ZAB).
    #[error("not supported by this protocol")]
    Unsupported,
    /// The core refused the request for a reason of its own (a leadership transfer to a node
    /// that does not vote).
    #[error("{0}")]
    Refused(String),
}

/// Why a node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The log could not be read or written; the node cannot continue safely.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A snapshot from the log or a peer could not be restored.
    #[error("snapshot at {at} does not restore: {reason}")]
    Restore {
        /// The snapshot's last position.
        at: Position,
        /// Why.
        reason: String,
    },
}

type Reply = oneshot::Sender<Result<Bytes, ClientError>>;

/// A client request on its way to the node's task.
enum Request {
    /// Change the membership.
    Change {
        changes: Vec<ConfChange>,
        reply: oneshot::Sender<Result<Position, ClientError>>,
    },
    /// Hand leadership to another voter.
    Transfer {
        to: NodeId,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    /// A command for the log.
    Submit { command: Command, reply: Reply },
    /// A read-only command served at `level` (`Log`: through the log like a command), once
    /// the state machine applied through `min` at least.
    Read {
        level: ReadLevel,
        command: Command,
        min: Position,
        reply: Reply,
    },
}

/// A client-side handle to a running [`Node`]: submit commands and watch its status.
#[derive(Clone)]
pub struct NodeHandle {
    requests: mpsc::Sender<Request>,
    status: watch::Receiver<Status>,
    members: watch::Receiver<Option<Membership>>,
}

impl NodeHandle {
    /// Proposes `command` and waits until it is committed and applied here; returns the state
    /// machine's output.
    pub async fn submit(&self, command: Command) -> Result<Bytes, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request::Submit { command, reply })
            .await
            .map_err(|_| ClientError::Stopped)?;
        rx.await.map_err(|_| ClientError::Stopped)?
    }

    /// Serves the read-only `command` at `level`, from a state that has applied through
    /// `min` at least (a position the client saw before: its reads never go back); returns
    /// the state machine's answer.
    pub async fn read(
        &self,
        level: ReadLevel,
        command: Command,
        min: Position,
    ) -> Result<Bytes, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request::Read {
                level,
                command,
                min,
                reply,
            })
            .await
            .map_err(|_| ClientError::Stopped)?;
        rx.await.map_err(|_| ClientError::Stopped)?
    }

    /// Asks this node, if it leads, to hand leadership to the voter `to`; `Ok` once the
    /// transfer started (watch the status for the new leader).
    pub async fn transfer_leadership(&self, to: NodeId) -> Result<(), ClientError> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request::Transfer { to, reply })
            .await
            .map_err(|_| ClientError::Stopped)?;
        rx.await.map_err(|_| ClientError::Stopped)?
    }

    /// Asks this node, if it leads, to change the membership; `Ok` with the position of the
    /// configuration entry once it is proposed (watch [`NodeHandle::membership`] for the
    /// change to take effect).
    pub async fn change_membership(
        &self,
        changes: Vec<ConfChange>,
    ) -> Result<Position, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request::Change { changes, reply })
            .await
            .map_err(|_| ClientError::Stopped)?;
        rx.await.map_err(|_| ClientError::Stopped)?
    }

    /// The configuration the node acts on (`None` for a protocol with a fixed membership).
    pub fn membership(&self) -> Option<Membership> {
        self.members.borrow().clone()
    }

    /// A receiver that changes whenever the node's configuration does.
    pub fn watch_membership(&self) -> watch::Receiver<Option<Membership>> {
        self.members.clone()
    }

    /// The node's latest status (role, era, leader, commit and last positions).
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// A receiver that changes whenever the node's status does.
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }
}

/// Counters a node keeps about its own work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Readys processed.
    pub readies: u64,
    /// Storage syncs (fsyncs of the log or hard state).
    pub syncs: u64,
    /// Entries appended to the log.
    pub appended: u64,
    /// Messages handed to the transport.
    pub sent: u64,
}

/// The driver of one replica: owns the core, its storage, its transport and its state machine.
pub struct Node<R: Replica, L, T, S> {
    replica: R,
    store: L,
    transport: T,
    sm: S,
    requests: mpsc::Receiver<Request>,
    status: watch::Sender<Status>,
    members: watch::Sender<Option<Membership>>,
    /// A Ready touched the configuration: publish it and reach new members.
    members_dirty: bool,
    start: Instant,
    waiters: Waiters<Reply>,
    reads: PendingReads<Reply>,
    next_read: u64,
    /// The position of the last entry the state machine applied (commands and no-ops).
    applied: Position,
    /// A snapshot the core asked for, being encoded away from the loop.
    snapshotting: Option<Snapshotting>,
    stats: NodeStats,
}

/// A snapshot of the state machine at `last`, being encoded on a blocking thread.
struct Snapshotting {
    last: Position,
    job: tokio::task::JoinHandle<Bytes>,
}

impl<R, L, T, S> Node<R, L, T, S>
where
    R: Replica + Send,
    L: LogStore<R::HardState>,
    T: Transport<R::Message>,
    S: StateMachine,
{
    /// Recovers `store`, restores the state machine from the recovered snapshot and builds the
    /// core with `make` (given what was recovered and the start time).
    pub async fn start(
        mut store: L,
        transport: T,
        mut sm: S,
        make: impl FnOnce(Recovered<R::HardState>, Time) -> R,
    ) -> Result<(Self, NodeHandle), NodeError> {
        let recovered = store.recover().await?;
        if let Some(snap) = &recovered.snapshot {
            sm.restore(&snap.data)
                .await
                .map_err(|e| NodeError::Restore {
                    at: snap.last,
                    reason: e.to_string(),
                })?;
        }
        let start = Instant::now();
        let recovered_at = recovered
            .snapshot
            .as_ref()
            .map_or(Position::ZERO, |s| s.last);
        let replica = make(recovered, Time::ZERO);
        let (status_tx, status_rx) = watch::channel(replica.status());
        let (members_tx, members_rx) = watch::channel(replica.membership());
        let (req_tx, req_rx) = mpsc::channel(REQUEST_QUEUE);
        let node = Node {
            replica,
            store,
            transport,
            sm,
            requests: req_rx,
            status: status_tx,
            members: members_tx,
            members_dirty: true,
            start,
            waiters: Waiters::default(),
            reads: PendingReads::default(),
            next_read: 1,
            applied: recovered_at,
            snapshotting: None,
            stats: NodeStats::default(),
        };
        let handle = NodeHandle {
            requests: req_tx,
            status: status_rx,
            members: members_rx,
        };
        Ok((node, handle))
    }

    fn now(&self) -> Time {
        self.start.elapsed()
    }

    /// Runs until every [`NodeHandle`] is dropped or the transport closes (`Ok`), or storage
    /// fails (`Err`: the node must not go on).
    pub async fn run(mut self) -> Result<NodeStats, NodeError> {
        loop {
            let deadline = self.start + self.replica.next_deadline();
            tokio::select! {
                biased;
                req = self.requests.recv() => match req {
                    Some(r) => self.on_request(r),
                    None => return Ok(self.stats),
                },
                msg = self.transport.recv() => match msg {
                    Some((from, m)) => {
                        let now = self.now();
                        self.replica.receive(now, from, m);
                    }
                    None => return Ok(self.stats),
                },
                _ = tokio::time::sleep_until(deadline) => {}
                done = snapshot_done(&mut self.snapshotting), if self.snapshotting.is_some() => {
                    self.compact(done);
                }
            }
            // Take everything else that is already waiting: one batch, one fsync.
            for _ in 0..MAX_INPUTS_PER_TURN {
                match self.requests.try_recv() {
                    Ok(r) => self.on_request(r),
                    Err(_) => break,
                }
            }
            for _ in 0..MAX_INPUTS_PER_TURN {
                match now_or_never(self.transport.recv()) {
                    Some(Some((from, m))) => {
                        let now = self.now();
                        self.replica.receive(now, from, m);
                    }
                    _ => break,
                }
            }
            // Under a steady load the select above may never pick a finished snapshot.
            if let Some(done) = now_or_never(snapshot_done(&mut self.snapshotting)) {
                self.compact(done);
            }
            let now = self.now();
            if now >= self.replica.next_deadline() {
                self.replica.tick(now);
            }
            self.drive().await?;
            self.serve_reads().await;
            if std::mem::take(&mut self.members_dirty) {
                self.publish_membership();
            }
            let status = self.replica.status();
            self.status.send_if_modified(|s| {
                if (s.role, s.era, s.leader) != (status.role, status.era, status.leader) {
                    tracing::info!(
                        node = status.id,
                        role = status.role_name,
                        era = status.era,
                        leader = ?status.leader,
                        "role, era or leader changed"
                    );
                }
                let changed = *s != status;
                *s = status;
                changed
            });
        }
    }

    /// Hands the core the snapshot encoded away from the loop.
    fn compact(&mut self, done: (Position, Result<Bytes, tokio::task::JoinError>)) {
        self.snapshotting = None;
        match done {
            (last, Ok(data)) => {
                tracing::debug!(node = self.replica.id(), %last, bytes = data.len(), "snapshot taken");
                let now = self.now();
                self.replica.compact(
                    now,
                    Snapshot {
                        last,
                        data,
                        members: None,
                    },
                );
            }
            // Only a panic of the state machine's encoder lands here (an aborted job is
            // never awaited): the node goes on with its log uncompacted.
            (last, Err(e)) => {
                tracing::error!(node = self.replica.id(), %last, "snapshot failed: {e}");
            }
        }
    }

    /// Publishes the configuration if it changed, and dials members not reached yet.
    fn publish_membership(&mut self) {
        let m = self.replica.membership();
        if let Some(m) = &m {
            for (&id, addr) in &m.addrs {
                if id != self.replica.id() {
                    if let Err(e) = self.transport.add_peer(id, addr) {
                        tracing::warn!(node = id, addr, "cannot reach the new member: {e}");
                    }
                }
            }
        }
        self.members.send_if_modified(|old| {
            let changed = *old != m;
            if changed {
                tracing::info!(node = self.replica.id(), members = ?m, "configuration changed");
                *old = m;
            }
            changed
        });
    }

    fn on_request(&mut self, req: Request) {
        let now = self.now();
        let (command, reply) = match req {
            Request::Change { changes, reply } => {
                let answer = self
                    .replica
                    .change_membership(now, &changes)
                    .map_err(refusal);
                self.members_dirty = true;
                let _ = reply.send(answer);
                return;
            }
            Request::Transfer { to, reply } => {
                let answer = self.replica.transfer_leadership(now, to).map_err(refusal);
                let _ = reply.send(answer);
                return;
            }
            Request::Submit { command, reply } => (command, reply),
            Request::Read {
                level: ReadLevel::Log,
                command,
                reply,
                ..
            } => (command, reply),
            Request::Read {
                level: ReadLevel::Local,
                command,
                min,
                reply,
            } => {
                self.add_read(command, reply, Some(min));
                return;
            }
            Request::Read {
                level,
                command,
                reply,
                ..
            } => {
                let id = self.next_read;
                match self.replica.read_index(now, id, level) {
                    Ok(()) => {
                        self.add_read(command, reply, None);
                        return;
                    }
                    Err(consensus_core::ProposeError::NotLeader { leader }) => {
                        let _ = reply.send(Err(ClientError::NotLeader { leader }));
                        return;
                    }
                    // No read index in this protocol: through the log.
                    Err(
                        consensus_core::ProposeError::Unsupported
                        | consensus_core::ProposeError::NotVoter(_)
                        | consensus_core::ProposeError::Membership(_),
                    ) => (command, reply),
                }
            }
        };
        match self.replica.propose(now, command.clone()) {
            Ok(pos) => {
                if let Some(old) = self.waiters.insert(pos, command, reply) {
                    let _ = old.send(Err(ClientError::Superseded));
                }
            }
            Err(consensus_core::ProposeError::NotLeader { leader }) => {
                let _ = reply.send(Err(ClientError::NotLeader { leader }));
            }
            // Proposals are always supported; no core answers these to one.
            Err(
                consensus_core::ProposeError::Unsupported
                | consensus_core::ProposeError::NotVoter(_)
                | consensus_core::ProposeError::Membership(_),
            ) => {
                let _ = reply.send(Err(ClientError::NotLeader { leader: None }));
            }
        }
    }

    fn add_read(&mut self, command: Command, reply: Reply, at: Option<Position>) {
        let id = self.next_read;
        self.next_read += 1;
        self.reads.push(id, command, reply, at);
    }

    /// Serves every read whose position the state machine has applied through.
    async fn serve_reads(&mut self) {
        for (reply, command) in self.reads.ready(self.applied) {
            let out = self.sm.query(&command).await;
            let _ = reply.send(Ok(out));
        }
    }

    /// Processes Readys until the core has nothing more to do.
    async fn drive(&mut self) -> Result<(), NodeError> {
        while self.replica.has_ready() {
            let ready = self.replica.take_ready();
            self.process(ready).await?;
        }
        Ok(())
    }

    async fn send(&mut self, env: consensus_core::Envelope<R::Message>) {
        self.stats.sent += 1;
        if let Err(e) = self.transport.send(env.to, env.msg).await {
            tracing::trace!(to = env.to, "message not sent: {e}");
        }
    }

    /// Applies a committed entry and answers the client waiting for it.
    async fn apply(&mut self, entry: consensus_core::Entry) {
        let out = match &entry.payload {
            Payload::Command(cmd) => Some(self.sm.apply(entry.pos, cmd).await),
            Payload::Noop | Payload::Config(_) => None,
        };
        answer(self.waiters.applied(entry.pos, &entry.payload, out));
        self.applied = entry.pos;
    }

    async fn process(&mut self, ready: Ready<R::Message, R::HardState>) -> Result<(), NodeError> {
        self.stats.readies += 1;
        for v in &ready.violations {
            tracing::error!(node = self.replica.id(), "safety invariant broken: {v}");
        }
        // Raft's configuration changes with its log, ZAB's on commit, which persists it with
        // the hard state: the persist operations tell both.
        self.members_dirty |= persist_touches_members(&ready.persist) || ready.restore.is_some();
        let (early, persist, release) = ready.split();
        // A leader's replication goes out first: its followers write while it writes. Then
        // what is committed is applied and answered, without waiting for this Ready's fsync.
        for env in early.messages {
            self.send(env).await;
        }
        for entry in early.committed {
            self.apply(entry).await;
        }
        if !persist.is_empty() {
            for op in &persist {
                if let PersistOp::Append(es) = op {
                    self.stats.appended += es.len() as u64;
                }
            }
            self.store.write(&persist).await?;
            self.store.sync().await?;
            self.stats.syncs += 1;
        }
        for step in release.steps() {
            match step {
                Step::Persisted(through) => {
                    let now = self.now();
                    self.replica.persisted(now, through);
                }
                Step::Send(env) => self.send(env).await,
                Step::Restore(snap) => {
                    // The state is replaced: a snapshot being encoded is of a past state.
                    if let Some(old) = self.snapshotting.take() {
                        old.job.abort();
                    }
                    self.sm
                        .restore(&snap.data)
                        .await
                        .map_err(|e| NodeError::Restore {
                            at: snap.last,
                            reason: e.to_string(),
                        })?;
                    answer(self.waiters.restored(snap.last));
                    self.applied = snap.last;
                }
                Step::Apply(entry) => self.apply(entry).await,
                Step::Read(read) => {
                    if let Some((reply, leader)) = self.reads.answered(read) {
                        let _ = reply.send(Err(ClientError::NotLeader { leader }));
                    }
                }
                Step::Snapshot(last) => {
                    // Captured here, at `last`; encoded on a blocking thread meanwhile.
                    let job = self.sm.snapshot_job().await;
                    self.snapshotting = Some(Snapshotting {
                        last,
                        job: tokio::task::spawn_blocking(job),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Waits for the snapshot being encoded (pending forever when there is none).
async fn snapshot_done(
    snapshotting: &mut Option<Snapshotting>,
) -> (Position, Result<Bytes, tokio::task::JoinError>) {
    match snapshotting {
        Some(s) => (s.last, (&mut s.job).await),
        None => std::future::pending().await,
    }
}

/// What a client hears when the core refuses an operator's request (a membership change,
/// a leadership transfer).
fn refusal(e: consensus_core::ProposeError) -> ClientError {
    match e {
        consensus_core::ProposeError::NotLeader { leader } => ClientError::NotLeader { leader },
        consensus_core::ProposeError::Unsupported => ClientError::Unsupported,
        e => ClientError::Refused(e.to_string()),
    }
}

/// True if persisting `ops` may change the configuration (an appended or dropped
/// configuration entry, a snapshot, a hard state that carries one).
fn persist_touches_members<H>(ops: &[PersistOp<H>]) -> bool {
    ops.iter().any(|op| match op {
        PersistOp::Append(es) => es.iter().any(|e| matches!(e.payload, Payload::Config(_))),
        PersistOp::HardState(_) | PersistOp::TruncateAfter(_) | PersistOp::Snapshot(_) => true,
    })
}

/// Tells each client what became of its command.
fn answer(outcomes: Vec<(Reply, Outcome<Bytes>)>) {
    for (reply, outcome) in outcomes {
        let _ = reply.send(match outcome {
            Outcome::Done(out) => Ok(out),
            Outcome::Superseded => Err(ClientError::Superseded),
            Outcome::Unknown => Err(ClientError::Unknown),
        });
    }
}

#[cfg(test)]
mod tests;
