//! Raft as in the extended paper (Ongaro & Ousterhout, sections 5 and 6), as a sans-IO core.
//!
//! [`RaftReplica`] implements [`consensus_core::Replica`]: the driver feeds it time, messages
//! and proposals, and collects what to persist, send and apply from `take_ready`. Modules follow
//! the paper: [`election`] (5.2, 5.4.1, plus pre-vote and check-quorum from the dissertation),
//! [`replication`] (5.3, 5.4.2), [`snapshot`] (7), [`log`], [`progress`] and [`message`].
//!
//! # A tour
//!
//! Three nodes on the in-memory driver ([`consensus_core::Direct`]: messages handed over at
//! once, every append durable at once). Time moves only when the driver moves it; the
//! election timeouts are drawn from the seed, so the same seed elects the same node.
//!
//! ```
//! use bytes::Bytes;
//! use consensus_core::{Direct, Recovered, Replica, Role};
//! use raft::{Config, RaftReplica};
//! use std::time::Duration;
//!
//! let voters = [1, 2, 3];
//! let nodes = voters
//!     .iter()
//!     .map(|&id| {
//!         // id, every voter, tunables, seed, what the disk held (nothing yet), the time
//!         RaftReplica::new(id, &voters, Config::default(), 7, Recovered::default(), Duration::ZERO)
//!     })
//!     .collect();
//! let mut cluster = Direct::new(nodes);
//!
//! // Nobody leads until an election timeout (150-300 ms) fires and a candidate wins.
//! assert_eq!(cluster.leader(), None);
//! let leader = cluster.elect(Duration::from_secs(1)).expect("a leader within a second");
//! let term = cluster.node(leader).hard_state().current_term;
//! assert!(term >= 1);
//!
//! // A follower refuses proposals and names the leader.
//! let follower = voters.into_iter().find(|&id| id != leader).unwrap();
//! let now = cluster.now();
//! let refused = cluster.node_mut(follower).propose(now, Bytes::from_static(b"x"));
//! assert!(refused.is_err());
//!
//! // The leader logs the command in its term, replicates it, and commits it once a majority
//! // holds it.
//! let pos = cluster.node_mut(leader).propose(now, Bytes::from_static(b"x")).unwrap();
//! assert_eq!(pos.era, term);
//! cluster.pump();
//! assert!(cluster.node(leader).commit_index() >= pos.seq);
//!
//! // The followers learn of the commit from the leader's next AppendEntries (leaderCommit):
//! // a heartbeat, at the latest 50 ms later.
//! cluster.run_for(Duration::from_millis(60));
//! for id in voters {
//!     assert!(cluster.node(id).commit_index() >= pos.seq);
//!     assert_eq!(cluster.node(id).status().leader, Some(leader));
//! }
//! assert_eq!(cluster.node(leader).status().role, Role::Leader);
//! ```

pub mod election;
pub mod log;
pub mod membership;
pub mod message;
pub mod progress;
pub mod read;
pub mod replication;
pub mod snapshot;
pub mod transfer;

use consensus_core::{
    node_seed, ApplyCursor, Command, ConfChange, Entry, Envelope, Membership, MembershipLog,
    NodeId, PersistOp, Position, ProposeError, Quorum, ReadLevel, Ready, Recovered, Replica, Role,
    Snapshot, Status, Time,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub use log::RaftLog;
pub use message::Message;
pub use progress::{Progress, ProgressState};

/// Tunables of a Raft node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min: Duration,
    /// Upper bound (exclusive) of the randomized election timeout.
    pub election_timeout_max: Duration,
    /// How often a leader sends AppendEntries to idle followers.
    pub heartbeat_interval: Duration,
    /// Run a pre-vote round before incrementing the term (dissertation 9.6).
    pub pre_vote: bool,
    /// A leader steps down if it has not heard from a majority within an election timeout,
    /// and a node that hears from a leader ignores vote requests for that long (dissertation 6.2, 4.2.3).
    pub check_quorum: bool,
    /// Most entries carried by one AppendEntries.
    pub max_entries_per_message: usize,
    /// Most payload bytes one message carries: the entries of an AppendEntries (at least one,
    /// however large) and the chunk of an InstallSnapshot, so that any backlog and any
    /// snapshot reach a follower in frames well under the transport's limit.
    pub max_bytes_per_message: usize,
    /// Most pipelined AppendEntries outstanding to one follower.
    pub max_inflight: usize,
    /// Applied entries beyond the last snapshot that make the node ask for a new one
    /// (section 7); 0 never compacts.
    pub snapshot_threshold: u64,
    /// Serve lease reads (section 6.4.1); with it on, a node that starts refuses votes for
    /// `election_timeout_min`, since it forgot whose lease it may be part of.
    pub lease_reads: bool,
    /// How much shorter than `election_timeout_min` the leader's lease is: the bound on how
    /// far the nodes' clocks may drift apart over one lease.
    pub lease_clock_drift: Duration,
    /// The fix to single-server membership changes (Ongaro, raft-dev, 2015): a leader starts
    /// a change only once it has committed an entry of its own term. Off only to show the bug.
    #[serde(default = "yes")]
    pub change_after_own_term_commit: bool,
}

fn yes() -> bool {
    true
}

impl Default for Config {
    fn default() -> Self {
        Config {
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            pre_vote: true,
            check_quorum: true,
            max_entries_per_message: 256,
            max_bytes_per_message: consensus_core::chunks::DEFAULT_CHUNK_BYTES,
            max_inflight: 64,
            snapshot_threshold: 10_000,
            lease_reads: false,
            lease_clock_drift: Duration::from_millis(15),
            change_after_own_term_commit: true,
        }
    }
}

impl Config {
    /// The defaults with lease reads on: what a node that serves clients runs (the real
    /// cluster, the library, the lease benchmarks).
    pub fn serving_leases() -> Self {
        Config {
            lease_reads: true,
            ..Config::default()
        }
    }
}

/// Raft's persistent state besides the log (Figure 2): currentTerm and votedFor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// Latest term the server has seen.
    pub current_term: u64,
    /// Candidate that received this server's vote in the current term.
    pub voted_for: Option<NodeId>,
}

/// A Raft server's role (Figure 4), with the pre-vote stage made explicit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaftRole {
    /// Answers RPCs from leaders and candidates.
    Follower,
    /// Asking whether an election could be won, without changing term.
    PreCandidate,
    /// Campaigning in a new term.
    Candidate,
    /// Handling client requests and replicating the log.
    Leader,
}

impl RaftRole {
    /// The name the paper uses.
    pub fn name(self) -> &'static str {
        match self {
            RaftRole::Follower => "Follower",
            RaftRole::PreCandidate => "PreCandidate",
            RaftRole::Candidate => "Candidate",
            RaftRole::Leader => "Leader",
        }
    }
}

/// One Raft server.
pub struct RaftReplica {
    pub(crate) id: NodeId,
    /// The configurations in the log; the latest is in force (section 4.1 of the thesis).
    pub(crate) members: MembershipLog,
    /// The configuration the node started with (what a snapshot without one stands for).
    pub(crate) initial: Membership,
    /// Every voter of the configuration in force, sorted (this node too, if it votes).
    pub(crate) voters: Vec<NodeId>,
    /// Every other member, voters and learners, sorted: whom a leader replicates to.
    pub(crate) others: Vec<NodeId>,
    /// The voters' quorum: who must agree for a vote, a commit, or check-quorum.
    pub(crate) quorum: Quorum,
    pub(crate) config: Config,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) role: RaftRole,
    pub(crate) hard: HardState,
    pub(crate) log: RaftLog,
    /// Index of highest log entry known to be committed.
    pub(crate) commit_index: u64,
    pub(crate) leader_id: Option<NodeId>,
    pub(crate) now: Time,
    pub(crate) election_deadline: Time,
    pub(crate) heartbeat_deadline: Time,
    pub(crate) check_quorum_deadline: Time,
    /// When this node last heard from a current leader (for the pre-vote and lease checks).
    pub(crate) last_leader_contact: Option<Time>,
    pub(crate) votes: BTreeSet<NodeId>,
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) broadcast_pending: bool,
    pub(crate) hard_state_dirty: bool,
    /// How far the state machine applied, and the snapshots behind it.
    pub(crate) applied: ApplyCursor,
    pub(crate) ready: Ready<Message, HardState>,
    /// Reads waiting for their index, and the leader's lease.
    pub(crate) reads: read::Reads,
    /// When this incarnation started.
    pub(crate) started_at: Time,
    /// The leader's snapshot as far as its chunks have arrived.
    pub(crate) snapshot_in: consensus_core::chunks::Assembly,
    /// At a leader handing over leadership: the target and when the attempt lapses.
    pub(crate) transferee: Option<(NodeId, Time)>,
}

impl RaftReplica {
    /// Builds a node from what it recovered from disk; `voters` lists every member, itself included.
    pub fn new(
        id: NodeId,
        voters: &[NodeId],
        config: Config,
        seed: u64,
        recovered: Recovered<HardState>,
        now: Time,
    ) -> Self {
        assert!(voters.contains(&id), "node {id} must be one of the voters");
        Self::with_membership(
            id,
            Membership::of_voters(voters),
            config,
            seed,
            recovered,
            now,
        )
    }

    /// Builds a node that starts from configuration `initial` (its log and snapshot, if they
    /// hold one, take precedence); a node outside it waits for a leader to add it.
    pub fn with_membership(
        id: NodeId,
        initial: Membership,
        config: Config,
        seed: u64,
        recovered: Recovered<HardState>,
        now: Time,
    ) -> Self {
        assert!(
            config.election_timeout_min < config.election_timeout_max,
            "election timeout range must be non-empty"
        );
        let snapshot_last = recovered
            .snapshot
            .as_ref()
            .map_or(Position::ZERO, |s| s.last);
        let members = MembershipLog::recovered(&initial, &recovered);
        let config_threshold = config.snapshot_threshold;
        let mut node = RaftReplica {
            id,
            members,
            initial,
            voters: Vec::new(),
            others: Vec::new(),
            quorum: Quorum::majority(&[]),
            config,
            rng: ChaCha8Rng::seed_from_u64(node_seed(seed, id, 0)),
            role: RaftRole::Follower,
            hard: recovered.hard_state,
            log: RaftLog::from_parts(snapshot_last, recovered.entries),
            // A snapshot holds only committed entries, and the state machine restarts from it.
            commit_index: snapshot_last.seq,
            leader_id: None,
            now,
            election_deadline: now,
            heartbeat_deadline: now,
            check_quorum_deadline: now,
            last_leader_contact: None,
            votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            broadcast_pending: false,
            hard_state_dirty: false,
            applied: ApplyCursor::new(config_threshold, recovered.snapshot),
            ready: Ready::default(),
            reads: read::Reads::default(),
            started_at: now,
            snapshot_in: Default::default(),
            transferee: None,
        };
        node.membership_changed();
        node.reset_election_timer();
        node
    }

    /// The node's role, with the pre-candidate stage visible.
    pub fn raft_role(&self) -> RaftRole {
        self.role
    }

    /// currentTerm and votedFor.
    pub fn hard_state(&self) -> HardState {
        self.hard
    }

    /// The node's log.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    /// commitIndex.
    pub fn commit_index(&self) -> u64 {
        self.commit_index
    }

    /// The leader's view of a follower (leaders only).
    pub fn progress(&self, peer: NodeId) -> Option<&Progress> {
        self.progress.get(&peer)
    }

    /// Votes needed to win: a majority of the voters.
    pub fn quorum(&self) -> usize {
        self.quorum.incoming().size()
    }

    /// Every other member, learners included.
    pub(crate) fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.others.iter().copied()
    }

    /// Every other voter: whom a candidate asks for votes.
    pub(crate) fn voter_peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.id;
        self.voters.iter().copied().filter(move |&p| p != me)
    }

    pub(crate) fn send(&mut self, to: NodeId, msg: Message) {
        // A leader's replication needs nothing of its own disk: it goes out while the leader
        // writes the same entries (thesis 10.2.1), which count for it once durable.
        let replication = matches!(
            msg,
            Message::AppendEntries { .. } | Message::InstallSnapshot { .. }
        );
        if replication && self.role == RaftRole::Leader {
            self.ready.send_early(Envelope { to, msg });
        } else {
            self.ready.messages.push(Envelope { to, msg });
        }
    }

    pub(crate) fn persist_append(&mut self, entries: Vec<Entry>) {
        self.ready.append(entries);
    }

    /// The latest snapshot this node holds.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.applied.snapshots().latest()
    }

    /// Where the committed log ends: commitIndex with its term.
    fn commit_position(&self) -> Position {
        self.log
            .position_at(self.commit_index)
            .unwrap_or(Position::new(0, self.commit_index))
    }

    pub(crate) fn set_hard_state(&mut self, hard: HardState) {
        if hard != self.hard {
            self.hard = hard;
            self.hard_state_dirty = true;
        }
    }
}

impl Replica for RaftReplica {
    type Message = Message;
    type HardState = HardState;

    fn id(&self) -> NodeId {
        self.id
    }

    fn tick(&mut self, now: Time) {
        self.now = self.now.max(now);
        match self.role {
            RaftRole::Leader => {
                self.expire_transfer();
                if self.config.check_quorum && self.now >= self.check_quorum_deadline {
                    self.check_quorum();
                }
                if self.role == RaftRole::Leader && self.now >= self.heartbeat_deadline {
                    self.heartbeat_deadline = self.now + self.config.heartbeat_interval;
                    self.send_heartbeats();
                }
            }
            _ => {
                self.expire_forwarded_reads();
                if self.now >= self.election_deadline {
                    self.on_election_timeout();
                }
            }
        }
    }

    fn next_deadline(&self) -> Time {
        match self.role {
            RaftRole::Leader if self.config.check_quorum => {
                self.heartbeat_deadline.min(self.check_quorum_deadline)
            }
            RaftRole::Leader => self.heartbeat_deadline,
            _ => self
                .forwarded_reads_deadline()
                .map_or(self.election_deadline, |d| d.min(self.election_deadline)),
        }
    }

    fn receive(&mut self, now: Time, from: NodeId, msg: Message) {
        self.now = self.now.max(now);
        // Messages from outside the configuration are not dropped: a node being added
        // hears from the leader before its log says it is a member, and terms fence off
        // a removed node (with pre-vote and check-quorum, it cannot disrupt).
        if from == self.id {
            return;
        }
        self.step(from, msg);
    }

    fn propose(&mut self, now: Time, command: Command) -> Result<Position, ProposeError> {
        self.now = self.now.max(now);
        if self.role != RaftRole::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader_id,
            });
        }
        if self.transferee.is_some() {
            // Handing over: a new entry would only make the target lag again.
            return Err(ProposeError::NotLeader { leader: None });
        }
        Ok(self.append_new_entry(consensus_core::Payload::Command(command)))
    }

    fn has_ready(&self) -> bool {
        self.hard_state_dirty
            || self.broadcast_pending
            || !self.ready.is_empty()
            || self.reads_need_round()
            || self.applied.has_ready(self.commit_position())
    }

    fn take_ready(&mut self) -> Ready<Message, HardState> {
        self.broadcast_pending_reads();
        self.forward_reads();
        if self.broadcast_pending {
            self.broadcast_pending = false;
            self.broadcast_append();
        }
        let mut ready = std::mem::take(&mut self.ready);
        if self.hard_state_dirty {
            self.hard_state_dirty = false;
            ready.persist.insert(0, PersistOp::HardState(self.hard));
        }
        let commit = self.commit_position();
        let log = &self.log;
        self.applied.fill(&mut ready, commit, |after, through| {
            log.slice(after.seq + 1, through.seq).to_vec()
        });
        ready
    }

    fn persisted(&mut self, now: Time, through: Position) {
        self.now = self.now.max(now);
        self.log.mark_durable(through);
        // The leader's own copy now counts toward a majority.
        self.maybe_commit();
    }

    fn compact(&mut self, now: Time, snapshot: Snapshot) {
        self.now = self.now.max(now);
        self.applied.answered();
        let at = snapshot.last;
        if at.seq <= self.log.snapshot_index()
            || at.seq > self.applied.applied().seq
            || self.log.term_at(at.seq) != Some(at.era)
        {
            return; // stale, or not a snapshot of this log
        }
        self.log.compact(at);
        self.members.compacted(at);
        let mut snapshot = snapshot;
        snapshot.members = Some(Box::new(self.members.base().clone()));
        self.ready
            .persist
            .push(PersistOp::Snapshot(snapshot.clone()));
        self.applied.compacted(snapshot);
    }

    fn read_index(&mut self, now: Time, id: u64, level: ReadLevel) -> Result<(), ProposeError> {
        self.now = self.now.max(now);
        self.request_read(id, level)
    }

    fn transfer_leadership(&mut self, now: Time, to: NodeId) -> Result<(), ProposeError> {
        self.now = self.now.max(now);
        self.start_transfer(to)
    }

    fn change_membership(
        &mut self,
        now: Time,
        changes: &[ConfChange],
    ) -> Result<Position, ProposeError> {
        self.now = self.now.max(now);
        self.start_change(changes)
    }

    fn membership(&self) -> Option<Membership> {
        Some(self.members.latest().clone())
    }

    fn inspect(&self) -> Vec<(String, String)> {
        let mut out = vec![
            (
                "currentTerm".to_string(),
                self.hard.current_term.to_string(),
            ),
            (
                "votedFor".to_string(),
                self.hard
                    .voted_for
                    .map_or("none".into(), |v| format!("n{v}")),
            ),
            ("commitIndex".to_string(), self.commit_index.to_string()),
            (
                "lastApplied".to_string(),
                self.applied.applied().seq.to_string(),
            ),
            (
                "log".to_string(),
                format!(
                    "snapshot through {}, entries {}..={}",
                    self.log.snapshot_index(),
                    self.log.snapshot_index() + 1,
                    self.log.last_index()
                ),
            ),
        ];
        if matches!(self.role, RaftRole::PreCandidate | RaftRole::Candidate) {
            let votes: Vec<String> = self.votes.iter().map(|v| format!("n{v}")).collect();
            out.push(("votes granted".to_string(), votes.join(" ")));
        }
        out.push((
            "configuration".to_string(),
            match self.members.latest_position() {
                Some(p) if p.seq > self.commit_index => {
                    format!("{} (entry {}, not committed)", self.members.latest(), p.seq)
                }
                Some(p) => format!("{} (entry {})", self.members.latest(), p.seq),
                None => self.members.latest().to_string(),
            },
        ));
        if let Some((to, until)) = self.transferee {
            out.push((
                "leadership transfer".to_string(),
                format!("to n{to}, until {:.0} ms", until.as_secs_f64() * 1000.0),
            ));
        }
        if self.role == RaftRole::Leader {
            for (id, p) in &self.progress {
                out.push((
                    format!("n{id} nextIndex / matchIndex"),
                    format!("{} / {} ({:?})", p.next_index, p.match_index, p.state),
                ));
            }
        }
        out
    }

    fn status(&self) -> Status {
        Status {
            id: self.id,
            role: match self.role {
                RaftRole::Follower => Role::Follower,
                RaftRole::PreCandidate | RaftRole::Candidate => Role::Candidate,
                RaftRole::Leader => Role::Leader,
            },
            role_name: self.role.name(),
            era: self.hard.current_term,
            leader: self.leader_id,
            vote: self.hard.voted_for,
            commit: self
                .log
                .position_at(self.commit_index)
                .unwrap_or(Position::ZERO),
            last: self.log.last_position(),
        }
    }
}

#[cfg(test)]
mod tests;
