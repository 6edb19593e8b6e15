//! The ZAB server: roles, connections, liveness, and the `Replica` contract.

use crate::broadcast::Outstanding;
use crate::election::{Decision, ElectionConfig, FastLeaderElection, ServerState, Vote};
use crate::log::ZabLog;
use crate::message::{Message, Packet};
use crate::zxid::Zxid;
use consensus_core::{
    node_seed, Command, Envelope, NodeId, PersistOp, Position, ProposeError, Quorum, Ready,
    Recovered, Replica, Role, Snapshot, Snapshots, Status, Time,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// Tunables of a ZAB server, named as in ZooKeeper's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The basic time unit (`tickTime`); the leader pings every half tick.
    pub tick_time: Duration,
    /// Ticks allowed for discovery and synchronization (`initLimit`).
    pub init_limit: u32,
    /// Ticks a follower may stay silent before the leader drops it, and the leader before a
    /// follower gives up on it (`syncLimit`).
    pub sync_limit: u32,
    /// Fast Leader Election timing.
    pub election: ElectionConfig,
    /// Committed proposals the leader keeps in memory for DIFF (`commitLogCount`).
    pub commit_log_count: usize,
    /// The on-disk log serves a lagging follower only while it is under this fraction of the
    /// snapshot's size (`snapshotSizeFactor`).
    pub snapshot_size_factor: f64,
    /// Applied proposals beyond the last snapshot that trigger a new one; 0 never snapshots.
    pub snapshot_threshold: u64,
    /// A leader never proposes a counter at or past this; it gives up instead, so that a new
    /// epoch starts (ZooKeeper: 0xffffffff; lower it to test the rollover).
    pub counter_limit: u32,
    /// How long a new follower waits for its leader to answer before connecting again
    /// (`leaderConnectDelayDuringRetryMs`, 100 ms).
    pub leader_connect_retry: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tick_time: Duration::from_millis(100),
            init_limit: 10,
            sync_limit: 3,
            election: ElectionConfig::default(),
            commit_log_count: 500,
            snapshot_size_factor: 0.33,
            snapshot_threshold: 10_000,
            counter_limit: Zxid::COUNTER_LIMIT,
            leader_connect_retry: Duration::from_millis(100),
        }
    }
}

/// ZAB's durable state besides the log: the epoch files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The last epoch this server promised to follow (`acceptedEpoch`, the paper's f.p).
    pub accepted_epoch: u64,
    /// The epoch whose NEWLEADER this server accepted (`currentEpoch`, the paper's f.a).
    pub current_epoch: u64,
}

/// One direction-numbered connection between the leader and a learner.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    pub id: u64,
    pub send_seq: u64,
    pub recv_seq: u64,
}

/// What a packet's sequence number says about the connection.
pub(crate) enum Arrival {
    /// The next packet: handle it.
    InOrder,
    /// Seen before: ignore it.
    Duplicate,
    /// Packets went missing: the connection broke.
    Gap,
}

impl Conn {
    pub fn new(id: u64) -> Self {
        Conn {
            id,
            send_seq: 0,
            recv_seq: 0,
        }
    }

    /// Wraps `packet` as the next message on this connection.
    pub fn packet(&mut self, packet: Packet) -> Message {
        let seq = self.send_seq;
        self.send_seq += 1;
        Message::Quorum {
            conn: self.id,
            seq,
            packet,
        }
    }

    pub fn arrive(&mut self, seq: u64) -> Arrival {
        if seq == self.recv_seq {
            self.recv_seq += 1;
            Arrival::InOrder
        } else if seq < self.recv_seq {
            Arrival::Duplicate
        } else {
            Arrival::Gap
        }
    }
}

/// Where a learner stands with the leader (`LearnerHandler`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HandlerState {
    /// FOLLOWERINFO received; no epoch to offer yet.
    Connected,
    /// LEADERINFO sent.
    EpochSent,
    /// ACKEPOCH received; waiting for the leader's epoch to be settled by a quorum.
    AckedEpoch { last_zxid: Zxid },
    /// History and NEWLEADER sent; proposals are forwarded.
    Syncing,
    /// NEWLEADER acknowledged.
    Synced,
}

#[derive(Clone, Debug)]
pub(crate) struct LearnerHandler {
    pub conn: Conn,
    pub state: HandlerState,
    pub accepted_epoch: u64,
    pub last_heard: Time,
}

impl LearnerHandler {
    /// Receives the proposals and commits the leader broadcasts.
    pub fn forwarding(&self) -> bool {
        matches!(self.state, HandlerState::Syncing | HandlerState::Synced)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Leading {
    /// The new epoch, once a quorum's acceptedEpochs fixed it.
    pub epoch: Option<u64>,
    /// currentEpoch = epoch is persisted: a quorum acknowledged the epoch.
    pub epoch_settled: bool,
    /// A quorum acknowledged NEWLEADER: the leader serves.
    pub established: bool,
    pub handlers: BTreeMap<NodeId, LearnerHandler>,
    pub epoch_acks: BTreeSet<NodeId>,
    pub newleader_acks: BTreeSet<NodeId>,
    pub outstanding: Outstanding,
    pub last_proposed: Zxid,
    pub init_deadline: Time,
    pub next_ping: Time,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FollowerPhase {
    Discovery,
    Synchronization,
    Broadcast,
}

#[derive(Clone, Debug)]
pub(crate) struct Following {
    pub leader: NodeId,
    pub conn: Conn,
    pub phase: FollowerPhase,
    pub new_epoch: u64,
    pub last_heard: Time,
    /// Proposals received during synchronization and not yet committed.
    pub not_committed: VecDeque<consensus_core::Entry>,
    /// Proposals committed during synchronization, logged at NEWLEADER.
    pub committed_in_sync: Vec<consensus_core::Entry>,
    /// Logged proposals waiting for their COMMIT, in order.
    pub pending: VecDeque<Zxid>,
    /// How far the history synchronized so far is the leader's committed history (DIFF's,
    /// TRUNC's or SNAP's zxid, then each COMMIT during sync). It becomes this follower's
    /// commit point only at UPTODATE, once the leader is established: a leader that never
    /// reaches its NEWLEADER quorum commits nothing, and a later epoch may drop that history.
    pub sync_committed: Zxid,
    /// When to connect again if the leader has not answered yet.
    pub retry_at: Time,
}

#[derive(Clone, Debug)]
pub(crate) enum ZabRole {
    Looking,
    Following(Box<Following>),
    Leading(Box<Leading>),
}

/// One ZooKeeper server running ZAB.
pub struct ZabReplica {
    pub(crate) id: NodeId,
    pub(crate) voters: Vec<NodeId>,
    /// The voters' quorum, for every count ZAB makes (epoch, NEWLEADER, liveness).
    pub(crate) quorum: Quorum,
    pub(crate) config: Config,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) hard: HardState,
    pub(crate) log: ZabLog,
    pub(crate) last_committed: Zxid,
    pub(crate) last_applied: Zxid,
    pub(crate) applied_since_snapshot: u64,
    pub(crate) fle: FastLeaderElection,
    pub(crate) role: ZabRole,
    pub(crate) now: Time,
    pub(crate) snapshots: Snapshots,
    pub(crate) ready: Ready<Message, HardState>,
}

impl ZabReplica {
    /// Builds a server from what it recovered from disk; `voters` lists every member, itself
    /// included. The server starts LOOKING.
    pub fn new(
        id: NodeId,
        voters: &[NodeId],
        config: Config,
        seed: u64,
        recovered: Recovered<HardState>,
        now: Time,
    ) -> Self {
        assert!(
            voters.contains(&id),
            "server {id} must be one of the voters"
        );
        let quorum = Quorum::majority(voters);
        let voters = quorum.voters();
        let snap_zxid = recovered
            .snapshot
            .as_ref()
            .and_then(|s| Zxid::from_position(s.last))
            .unwrap_or_default();
        let fle = FastLeaderElection::new(id, &voters, config.election.clone());
        let threshold = config.snapshot_threshold;
        // Connection ids must differ across restarts: mix in the start time.
        let rng = ChaCha8Rng::seed_from_u64(node_seed(seed, id, now.as_nanos() as u64));
        let mut z = ZabReplica {
            id,
            voters,
            quorum,
            config,
            rng,
            hard: recovered.hard_state,
            log: ZabLog::from_parts(snap_zxid, recovered.entries),
            // Only a snapshot is known to be committed; the log is settled by synchronization.
            last_committed: snap_zxid,
            last_applied: snap_zxid,
            applied_since_snapshot: 0,
            fle,
            role: ZabRole::Looking,
            now,
            snapshots: Snapshots::new(threshold, recovered.snapshot),
            ready: Ready::default(),
        };
        z.go_looking();
        z
    }

    /// `QuorumPeer.ServerState` as ZooKeeper reports it.
    pub fn server_state(&self) -> ServerState {
        match self.role {
            ZabRole::Looking => ServerState::Looking,
            ZabRole::Following(_) => ServerState::Following,
            ZabRole::Leading(_) => ServerState::Leading,
        }
    }

    /// acceptedEpoch and currentEpoch.
    pub fn hard_state(&self) -> HardState {
        self.hard
    }

    /// The transaction log.
    pub fn log(&self) -> &ZabLog {
        &self.log
    }

    /// The last committed zxid.
    pub fn last_committed(&self) -> Zxid {
        self.last_committed
    }

    /// True for a leader that a quorum acknowledged and that takes proposals.
    pub fn is_established_leader(&self) -> bool {
        matches!(&self.role, ZabRole::Leading(l) if l.established)
    }

    pub(crate) fn set_hard(&mut self, hard: HardState) {
        if hard != self.hard {
            self.hard = hard;
            self.ready.persist.push(PersistOp::HardState(hard));
        }
    }

    pub(crate) fn own_vote(&self) -> Vote {
        Vote {
            leader: self.id,
            zxid: self.log.last_zxid(),
            peer_epoch: self.hard.current_epoch,
        }
    }

    /// Drops whatever role this server had and starts an election.
    pub(crate) fn go_looking(&mut self) {
        self.role = ZabRole::Looking;
        let vote = self.own_vote();
        self.fle.look_for_leader(self.now, vote);
        self.flush_election();
    }

    pub(crate) fn flush_election(&mut self) {
        for (to, n) in self.fle.take_messages() {
            self.ready.messages.push(Envelope {
                to,
                msg: Message::Notification(n),
            });
        }
    }

    fn on_decision(&mut self, d: Decision) {
        match d.state {
            ServerState::Leading => self.become_leader(),
            ServerState::Following => self.become_follower(d.vote.leader),
            ServerState::Looking => {}
        }
    }

    pub(crate) fn become_leader(&mut self) {
        let now = self.now;
        let mut l = Leading {
            epoch: None,
            epoch_settled: false,
            established: false,
            handlers: BTreeMap::new(),
            epoch_acks: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            outstanding: Outstanding::new(&self.voters, Zxid::default()),
            last_proposed: self.log.last_zxid(),
            init_deadline: now + self.config.tick_time * self.config.init_limit,
            next_ping: now + self.config.tick_time / 2,
        };
        l.epoch_acks.insert(self.id);
        l.newleader_acks.insert(self.id);
        self.role = ZabRole::Leading(Box::new(l));
        self.maybe_fix_epoch();
    }

    pub(crate) fn become_follower(&mut self, leader: NodeId) {
        let conn = Conn::new(self.rng.random());
        self.role = ZabRole::Following(Box::new(Following {
            leader,
            conn,
            phase: FollowerPhase::Discovery,
            new_epoch: 0,
            last_heard: self.now,
            not_committed: VecDeque::new(),
            committed_in_sync: Vec::new(),
            pending: VecDeque::new(),
            sync_committed: Zxid::default(),
            retry_at: self.now + self.config.leader_connect_retry,
        }));
        let accepted_epoch = self.hard.accepted_epoch;
        self.send_to_leader(Packet::FollowerInfo { accepted_epoch });
    }

    /// A follower whose leader has not answered on this connection yet connects again
    /// (ZooKeeper's `Learner.connectToLeader` retries while the leader is not yet listening).
    fn retry_connect(&mut self) {
        let now = self.now;
        let retry = self.config.leader_connect_retry;
        let fresh = self.rng.random();
        let ZabRole::Following(f) = &mut self.role else {
            return;
        };
        if f.phase != FollowerPhase::Discovery || f.conn.recv_seq > 0 || now < f.retry_at {
            return;
        }
        f.conn = Conn::new(fresh);
        f.retry_at = now + retry;
        let accepted_epoch = self.hard.accepted_epoch;
        self.send_to_leader(Packet::FollowerInfo { accepted_epoch });
    }

    /// Sends a packet on this follower's connection to its leader.
    pub(crate) fn send_to_leader(&mut self, packet: Packet) {
        let ZabRole::Following(f) = &mut self.role else {
            return;
        };
        let msg = f.conn.packet(packet);
        let to = f.leader;
        self.ready.messages.push(Envelope { to, msg });
    }

    /// Sends a packet on the leader's connection to one learner.
    pub(crate) fn send_to_learner(&mut self, peer: NodeId, packet: Packet) {
        let ZabRole::Leading(l) = &mut self.role else {
            return;
        };
        let Some(h) = l.handlers.get_mut(&peer) else {
            return;
        };
        let msg = h.conn.packet(packet);
        self.ready.messages.push(Envelope { to: peer, msg });
    }

    /// Learners that receive broadcast proposals and commits.
    pub(crate) fn forwarding_learners(&self) -> Vec<NodeId> {
        match &self.role {
            ZabRole::Leading(l) => l
                .handlers
                .iter()
                .filter(|(_, h)| h.forwarding())
                .map(|(&id, _)| id)
                .collect(),
            _ => Vec::new(),
        }
    }

    fn on_quorum_packet(&mut self, from: NodeId, conn: u64, seq: u64, packet: Packet) {
        match &mut self.role {
            ZabRole::Looking => {}
            ZabRole::Following(f) => {
                if from != f.leader || conn != f.conn.id {
                    return;
                }
                match f.conn.arrive(seq) {
                    Arrival::InOrder => {
                        f.last_heard = self.now;
                        self.follower_packet(packet);
                    }
                    Arrival::Duplicate => {}
                    Arrival::Gap => self.go_looking(),
                }
            }
            ZabRole::Leading(l) => {
                if let Packet::FollowerInfo { accepted_epoch } = packet {
                    if seq == 0 {
                        self.learner_connected(from, conn, accepted_epoch);
                    }
                    return;
                }
                let Some(h) = l.handlers.get_mut(&from) else {
                    return;
                };
                if h.conn.id != conn {
                    return;
                }
                match h.conn.arrive(seq) {
                    Arrival::InOrder => {
                        h.last_heard = self.now;
                        self.leader_packet(from, packet);
                    }
                    Arrival::Duplicate => {}
                    Arrival::Gap => {
                        l.handlers.remove(&from);
                    }
                }
            }
        }
    }

    fn liveness(&mut self) {
        let now = self.now;
        let tick = self.config.tick_time;
        match &mut self.role {
            ZabRole::Looking => {
                if let Some(d) = self.fle.tick(now) {
                    self.flush_election();
                    self.on_decision(d);
                } else {
                    self.flush_election();
                }
            }
            ZabRole::Following(f) => {
                let limit = if f.phase == FollowerPhase::Broadcast {
                    self.config.sync_limit
                } else {
                    self.config.init_limit
                };
                if now > f.last_heard + tick * limit {
                    self.go_looking();
                } else {
                    self.retry_connect();
                }
            }
            ZabRole::Leading(l) => {
                if !l.established && now >= l.init_deadline {
                    self.go_looking();
                    return;
                }
                if now < l.next_ping {
                    return;
                }
                l.next_ping = now + tick / 2;
                // Drop learners silent for longer than syncLimit; without a quorum, give up.
                let silent = tick * self.config.sync_limit;
                l.handlers.retain(|_, h| now <= h.last_heard + silent);
                let synced = l
                    .handlers
                    .iter()
                    .filter(|(_, h)| h.state == HandlerState::Synced)
                    .map(|(&id, _)| id);
                let alive = self
                    .quorum
                    .is_reached(std::iter::once(self.id).chain(synced));
                if l.established && !alive {
                    self.go_looking();
                    return;
                }
                let peers: Vec<NodeId> = l
                    .handlers
                    .iter()
                    .filter(|(_, h)| h.forwarding())
                    .map(|(&id, _)| id)
                    .collect();
                for p in peers {
                    self.send_to_learner(p, Packet::Ping);
                }
            }
        }
    }
}

impl Replica for ZabReplica {
    type Message = Message;
    type HardState = HardState;

    fn id(&self) -> NodeId {
        self.id
    }

    fn tick(&mut self, now: Time) {
        self.now = self.now.max(now);
        self.liveness();
    }

    fn next_deadline(&self) -> Time {
        let tick = self.config.tick_time;
        let far = self.now + Duration::from_secs(3600);
        match &self.role {
            ZabRole::Looking => self.fle.next_deadline().unwrap_or(far),
            ZabRole::Following(f) => {
                let limit = if f.phase == FollowerPhase::Broadcast {
                    self.config.sync_limit
                } else {
                    self.config.init_limit
                };
                let give_up = f.last_heard + tick * limit + Duration::from_nanos(1);
                if f.phase == FollowerPhase::Discovery && f.conn.recv_seq == 0 {
                    give_up.min(f.retry_at)
                } else {
                    give_up
                }
            }
            ZabRole::Leading(l) => {
                if l.established {
                    l.next_ping
                } else {
                    l.next_ping.min(l.init_deadline)
                }
            }
        }
    }

    fn receive(&mut self, now: Time, from: NodeId, msg: Message) {
        self.now = self.now.max(now);
        if from == self.id || !self.voters.contains(&from) {
            return;
        }
        match msg {
            Message::Notification(n) => {
                let decision = self.fle.receive(self.now, from, n);
                self.flush_election();
                if let (Some(d), ZabRole::Looking) = (decision, &self.role) {
                    self.on_decision(d);
                }
            }
            Message::Quorum { conn, seq, packet } => self.on_quorum_packet(from, conn, seq, packet),
            Message::QuorumBatch { conn, seq, packets } => {
                for (i, packet) in packets.into_iter().enumerate() {
                    self.on_quorum_packet(from, conn, seq + i as u64, packet);
                }
            }
        }
    }

    fn propose(&mut self, now: Time, command: Command) -> Result<Position, ProposeError> {
        self.now = self.now.max(now);
        self.leader_propose(consensus_core::Payload::Command(command))
    }

    fn has_ready(&self) -> bool {
        !self.ready.is_empty()
            || self.last_committed > self.last_applied
            || self.snapshots.has_restore()
            || self.snapshots.due(self.applied_since_snapshot)
    }

    fn take_ready(&mut self) -> Ready<Message, HardState> {
        let mut ready = std::mem::take(&mut self.ready);
        ready.messages = crate::message::coalesce(std::mem::take(&mut ready.messages));
        ready.restore = self.snapshots.take_restore();
        if self.last_committed > self.last_applied {
            let entries = self
                .log
                .range(self.last_applied, self.last_committed)
                .to_vec();
            self.applied_since_snapshot += entries.len() as u64;
            self.last_applied = self.last_committed;
            ready.committed = entries;
        }
        ready.snapshot_at = self
            .snapshots
            .ask(self.applied_since_snapshot, self.last_applied.position());
        ready
    }

    fn compact(&mut self, now: Time, snapshot: Snapshot) {
        self.now = self.now.max(now);
        self.snapshots.answered();
        let Some(at) = Zxid::from_position(snapshot.last) else {
            return;
        };
        if at <= self.log.snapshot_zxid() || at > self.last_applied {
            return;
        }
        self.log.compact(at);
        self.applied_since_snapshot = 0;
        self.ready
            .persist
            .push(PersistOp::Snapshot(snapshot.clone()));
        self.snapshots.taken(snapshot);
    }

    fn persisted(&mut self, now: Time, through: Position) {
        self.now = self.now.max(now);
        if let Some(z) = Zxid::from_position(through) {
            self.leader_self_ack(z);
        }
    }

    fn status(&self) -> Status {
        let (role, role_name, era, leader) = match &self.role {
            ZabRole::Looking => (Role::Candidate, "Looking", self.hard.current_epoch, None),
            ZabRole::Following(f) => (
                Role::Follower,
                "Following",
                self.hard.current_epoch,
                Some(f.leader),
            ),
            ZabRole::Leading(l) if l.established => (
                Role::Leader,
                "Leading",
                l.epoch.unwrap_or(self.hard.current_epoch),
                Some(self.id),
            ),
            ZabRole::Leading(_) => (Role::Candidate, "Leading", self.hard.current_epoch, None),
        };
        Status {
            id: self.id,
            role,
            role_name,
            era,
            leader,
            vote: match &self.role {
                ZabRole::Looking => Some(self.fle.proposed().leader),
                ZabRole::Following(f) => Some(f.leader),
                ZabRole::Leading(_) => Some(self.id),
            },
            commit: self.last_committed.position(),
            last: self.log.last_position(),
        }
    }
}
