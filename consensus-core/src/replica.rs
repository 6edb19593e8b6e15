//! The sans-IO contract between a consensus protocol and the world that drives it.

use crate::membership::{ChangeError, ConfChange, Membership};
use crate::types::{Command, Entry, NodeId, Position, Snapshot, Time};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// The seed of node `id`'s own generator, from the run's `seed`: distinct per node, and, with
/// `salt` (for example the start time), per incarnation.
pub fn node_seed(seed: u64, id: NodeId, salt: u64) -> u64 {
    seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.rotate_left(17)
}

/// A wire message that names itself as its paper or system does ("AppendEntries", "DIFF"), for
/// traces and people.
pub trait MessageName {
    /// The message's name; a frame carrying several messages joins theirs with `+`.
    fn name(&self) -> std::borrow::Cow<'static, str>;
    /// True for a message (or frame) that carries nothing but reads outside the log (a read
    /// index asked, confirmed or answered): what the read levels cost in messages.
    fn only_for_reads(&self) -> bool {
        false
    }
}

impl ReadState {
    /// A read index: serve read `id` once the state machine applied through `pos`.
    pub fn at(id: u64, pos: Position) -> ReadState {
        ReadState { id, at: Ok(pos) }
    }

    /// Read `id` cannot be served here; `leader` is the node's guess of who leads.
    pub fn refused(id: u64, leader: Option<NodeId>) -> ReadState {
        ReadState {
            id,
            at: Err(ProposeError::NotLeader { leader }),
        }
    }
}

/// A plain text message (a test core's) is named by its text.
impl MessageName for String {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        self.clone().into()
    }
}

impl ProposeError {
    /// The leader the refusing node named, if any.
    pub fn leader_hint(&self) -> Option<NodeId> {
        match self {
            ProposeError::NotLeader { leader } => *leader,
            ProposeError::Unsupported | ProposeError::NotVoter(_) | ProposeError::Membership(_) => {
                None
            }
        }
    }
}

/// A core that never sends anything (a test's) has messages of no name.
impl MessageName for () {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "()".into()
    }
}

/// A protocol message addressed to one peer.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope<M> {
    /// The receiving node.
    pub to: NodeId,
    /// The message itself.
    pub msg: M,
}

/// One change the driver must make durable before it sends the messages of the same [`Ready`].
#[derive(Clone, Debug, PartialEq)]
pub enum PersistOp<H> {
    /// Replace the protocol's hard state (Raft: term and vote; ZAB: acceptedEpoch, currentEpoch).
    HardState(H),
    /// Append entries after the current last entry of the durable log.
    Append(Vec<Entry>),
    /// Drop every durable entry whose position is greater than the given one.
    TruncateAfter(Position),
    /// Store this snapshot and drop every durable entry at or before its last position (a
    /// snapshot older than the stored one is ignored).
    Snapshot(Snapshot),
}

/// What a core asks its driver to do: persist, send, apply.
///
/// The driver makes `persist` durable (fsync) before it sends any of `messages`; it never
/// reorders two `Ready`s of the same core. Two parts need nothing of `persist` and come
/// before it is durable ([`Ready::split`]): `early` messages (a leader writes its own log
/// while its followers write theirs: the Raft thesis, section 10.2.1) and the applies of
/// `committed` entries, which are durable on a majority already, unless `restore` is set.
/// Applying means, in order: restore the state machine from `restore` if set, apply
/// `committed`, then, if `snapshot_at` is set and once `persist` is durable, take a snapshot
/// of the state machine and hand it back with [`Replica::compact`].
#[derive(Clone, Debug, PartialEq)]
pub struct Ready<M, H> {
    /// Durable changes, in the order they happened.
    pub persist: Vec<PersistOp<H>>,
    /// Messages that may go out before `persist` is durable (a leader's replication): sent
    /// before `messages`, and after every message of an earlier Ready. Fill with
    /// [`Ready::send_early`], which keeps each peer's messages in order.
    pub early: Vec<Envelope<M>>,
    /// Messages to send once `persist` is durable.
    pub messages: Vec<Envelope<M>>,
    /// A snapshot that replaces the state machine before `committed` is applied.
    pub restore: Option<Snapshot>,
    /// Newly committed entries, in log order, to apply (before `persist` is durable, unless
    /// `restore` is set).
    pub committed: Vec<Entry>,
    /// Once `committed` is applied, the state machine stands at this position: snapshot it
    /// and pass the snapshot to [`Replica::compact`].
    pub snapshot_at: Option<Position>,
    /// Safety invariants the core found broken (for example, a truncation below the commit
    /// point): the driver reports them; a core never panics on them.
    pub violations: Vec<String>,
    /// Answers to [`Replica::read_index`]: each read may be served once the state machine has
    /// applied through its position (handed over after `persist` is durable, like messages).
    pub reads: Vec<ReadState>,
}

/// How a read is served: the consistency it buys and what it costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadLevel {
    /// Through the log, like a write: linearizable, one replication round and an fsync.
    Log,
    /// At a read index: the leader's commit point, confirmed still current (Raft's ReadIndex:
    /// a heartbeat round; ZAB's `sync`: the leader's last proposal, without confirmation).
    Index,
    /// At the leader's commit point while its lease holds (Raft, bounded clock drift); a
    /// protocol without leases serves it as [`ReadLevel::Index`].
    Lease,
    /// From the serving node's own state, at once: never older than what the client already
    /// saw, but possibly stale (ZooKeeper's reads).
    Local,
}

impl ReadLevel {
    /// Every level, in order of cost.
    pub const ALL: [ReadLevel; 4] = [
        ReadLevel::Log,
        ReadLevel::Index,
        ReadLevel::Lease,
        ReadLevel::Local,
    ];

    /// The level's name on command lines and in URLs ("log", "index", "lease", "local").
    pub fn name(self) -> &'static str {
        match self {
            ReadLevel::Log => "log",
            ReadLevel::Index => "index",
            ReadLevel::Lease => "lease",
            ReadLevel::Local => "local",
        }
    }

    /// The level of a name, or a one-line error that lists the names.
    pub fn parse(name: &str) -> Result<ReadLevel, String> {
        ReadLevel::ALL
            .into_iter()
            .find(|l| l.name() == name)
            .ok_or_else(|| format!("`{name}` is not a read level (log, index, lease, local)"))
    }
}

/// A read the core answered: serve it once the state machine applied through `at`, or tell
/// the client why not.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadState {
    /// The driver's id for the read.
    pub id: u64,
    /// The position to wait for, or why the read cannot be served here.
    pub at: Result<Position, ProposeError>,
}

impl<M, H> Default for Ready<M, H> {
    fn default() -> Self {
        Ready {
            persist: Vec::new(),
            early: Vec::new(),
            messages: Vec::new(),
            restore: None,
            committed: Vec::new(),
            snapshot_at: None,
            violations: Vec::new(),
            reads: Vec::new(),
        }
    }
}

impl<M, H> Ready<M, H> {
    /// The position of the last entry `persist` appends: what to pass to
    /// [`Replica::persisted`] once it is durable (`None` when nothing is appended).
    pub fn appended_through(&self) -> Option<Position> {
        self.persist.iter().rev().find_map(|op| match op {
            PersistOp::Append(es) => es.last().map(|e| e.pos),
            _ => None,
        })
    }

    /// Asks for `entries` to be appended, joining an append that is the last persist operation
    /// so far (one write for consecutive appends; order with other operations is kept).
    pub fn append(&mut self, entries: Vec<Entry>) {
        if let Some(PersistOp::Append(pending)) = self.persist.last_mut() {
            pending.extend(entries);
        } else {
            self.persist.push(PersistOp::Append(entries));
        }
    }

    /// Queues a message that needs nothing of `persist`: it joins `early`, unless a message
    /// to the same peer already waits in `messages` (then it waits too: each peer's
    /// messages keep the order they were sent in).
    pub fn send_early(&mut self, env: Envelope<M>) {
        if self.messages.iter().any(|m| m.to == env.to) {
            self.messages.push(env);
        } else {
            self.early.push(env);
        }
    }

    /// Every message of the Ready in the order it goes out: `early`, then `messages`.
    pub fn all_messages(&self) -> impl Iterator<Item = &Envelope<M>> {
        self.early.iter().chain(&self.messages)
    }

    /// True when there is nothing to persist, send or apply.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.early.is_empty()
            && self.messages.is_empty()
            && self.restore.is_none()
            && self.committed.is_empty()
            && self.snapshot_at.is_none()
            && self.violations.is_empty()
            && self.reads.is_empty()
    }
}

/// A protocol-neutral role, so a harness can treat Raft and ZAB alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader (Raft Follower, ZAB Following).
    Follower,
    /// Trying to become or find a leader (Raft PreCandidate/Candidate, ZAB Looking).
    Candidate,
    /// Leads the cluster (Raft Leader, ZAB Leading).
    Leader,
}

/// A snapshot of a core's state, for drivers, tests and people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Protocol-neutral role.
    pub role: Role,
    /// The protocol's own name for the role (e.g. "PreCandidate", "Looking").
    pub role_name: &'static str,
    /// Current era: Raft term or ZAB epoch.
    pub era: u64,
    /// The leader this node currently believes in, if any.
    pub leader: Option<NodeId>,
    /// Whom this node's vote goes to: Raft's votedFor in the current term, ZAB's current
    /// Fast Leader Election vote (the leader, once one is found).
    pub vote: Option<NodeId>,
    /// Position of the last committed entry.
    pub commit: Position,
    /// Position of the last entry in the log.
    pub last: Position,
}

/// Why a proposal was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Only the leader takes proposals; `leader` is the node's best guess of who leads.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this node believes in, if any.
        leader: Option<NodeId>,
    },
    /// The protocol does not serve this request this way (a read index it does not have).
    #[error("not supported by this protocol")]
    Unsupported,
    /// The node named is not a voting member.
    #[error("node {0} is not a voter")]
    NotVoter(NodeId),
    /// A membership change was refused.
    #[error("membership change refused: {0}")]
    Membership(#[from] ChangeError),
}

/// A consensus protocol as a pure, deterministic state machine.
///
/// A core never blocks, never reads a clock and never draws randomness except from a seeded
/// generator it was built with. Every input carries the driver's current time; every output is
/// collected by [`Replica::take_ready`].
pub trait Replica {
    /// The protocol's wire messages.
    type Message: Clone + Debug + Serialize + DeserializeOwned + MessageName + Send + Sync + 'static;
    /// The protocol's durable non-log state.
    type HardState: Clone
        + Debug
        + Default
        + PartialEq
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static;

    /// This node's id.
    fn id(&self) -> NodeId;
    /// Lets timers fire that are due at `now`.
    fn tick(&mut self, now: Time);
    /// The earliest time at which [`Replica::tick`] has work to do.
    fn next_deadline(&self) -> Time;
    /// Handles a message from a peer.
    fn receive(&mut self, now: Time, from: NodeId, msg: Self::Message);
    /// Submits a client command; on the leader returns the position it was given.
    fn propose(&mut self, now: Time, command: Command) -> Result<Position, ProposeError>;
    /// True when [`Replica::take_ready`] would return something.
    fn has_ready(&self) -> bool;
    /// Takes everything the driver must persist, send and apply, in that order.
    fn take_ready(&mut self) -> Ready<Self::Message, Self::HardState>;
    /// Hands over the snapshot a [`Ready::snapshot_at`] asked for: the core may drop the log
    /// up to `snapshot.last` and serve the snapshot to peers that fall behind. It may come
    /// several `Ready`s later (a driver that encodes it away from its loop); a core ignores one
    /// that no longer fits its log, and a driver drops one whose state a `restore` replaced.
    fn compact(&mut self, now: Time, snapshot: Snapshot);
    /// Tells the core that every entry it asked to append, up to `through`, is durable (called
    /// once the fsync covering a `Ready`'s appends completes, before its messages go out).
    fn persisted(&mut self, now: Time, through: Position);
    /// Reports role, era, leader and log positions.
    fn status(&self) -> Status;
    /// The protocol's own state beyond [`Status`], as (name, value) pairs named as in the paper
    /// or ZooKeeper (Raft: votedFor, nextIndex / matchIndex per follower; ZAB: acceptedEpoch,
    /// currentEpoch, phase, each follower's sync state), for viewers and debugging.
    fn inspect(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Asks for a read index (`level` is [`ReadLevel::Index`] or [`ReadLevel::Lease`]); on
    /// `Ok` the answer, under `id`, comes in a later [`Ready::reads`]. A core without read
    /// indexes returns [`ProposeError::Unsupported`], and the driver reads through the log.
    fn read_index(&mut self, now: Time, id: u64, level: ReadLevel) -> Result<(), ProposeError> {
        let _ = (now, id, level);
        Err(ProposeError::Unsupported)
    }
    /// Asks the leader to hand leadership to the voter `to` (Raft: bring its log up to date,
    /// then TimeoutNow; proposals are refused meanwhile, and the attempt is dropped after an
    /// election timeout). `Ok` means the transfer started, not that it succeeded: watch
    /// [`Replica::status`]. A core without leadership transfer returns
    /// [`ProposeError::Unsupported`].
    fn transfer_leadership(&mut self, now: Time, to: NodeId) -> Result<(), ProposeError> {
        let _ = (now, to);
        Err(ProposeError::Unsupported)
    }
    /// Asks the leader to change the membership; on `Ok`, the position of the configuration
    /// entry that carries the change (the change is done once the node reports, through
    /// [`Replica::membership`], a settled configuration that includes it). A core without
    /// membership changes returns [`ProposeError::Unsupported`].
    fn change_membership(
        &mut self,
        now: Time,
        changes: &[ConfChange],
    ) -> Result<Position, ProposeError> {
        let _ = (now, changes);
        Err(ProposeError::Unsupported)
    }
    /// The configuration this node acts on (Raft: the latest in its log; ZAB: the last
    /// committed one), or `None` for a core with a fixed membership.
    fn membership(&self) -> Option<Membership> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn appended_through_is_the_last_entry_of_the_last_append() {
        let e = |s| Entry::command(Position::new(1, s), Bytes::new());
        let mut r: Ready<(), u64> = Ready::default();
        assert_eq!(r.appended_through(), None);
        r.persist = vec![
            PersistOp::Append(vec![e(1), e(2)]),
            PersistOp::HardState(3),
            PersistOp::Append(vec![e(3)]),
            PersistOp::TruncateAfter(Position::new(1, 9)),
        ];
        assert_eq!(r.appended_through(), Some(Position::new(1, 3)));
    }
}
