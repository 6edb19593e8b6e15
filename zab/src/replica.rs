//! The ZAB server: roles, connections, liveness, and the `Replica` contract.

use crate::broadcast::Outstanding;
use crate::election::{Decision, FastLeaderElection, ServerState, Vote};
use crate::log::ZabLog;
use crate::message::{Message, Packet};
use crate::zxid::Zxid;
use consensus_core::{
    node_seed, ApplyCursor, Command, ConfChange, Envelope, Membership, MembershipLog, NodeId,
    PersistOp, Position, ProposeError, Quorum, ReadLevel, Ready, Recovered, Replica, Role,
    Snapshot, Status, Time,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

pub(crate) use crate::roles::{
    Arrival, Conn, FollowerPhase, Following, HandlerState, LeaderPhase, Leading, LearnerHandler,
    ZabRole,
};

pub use crate::config::{Config, HardState};

/// One ZooKeeper server running ZAB.
pub struct ZabReplica {
    pub(crate) id: NodeId,
    pub(crate) voters: Vec<NodeId>,
    /// The voters' quorum, for every count ZAB makes (epoch, NEWLEADER, liveness, ACKs):
    /// the committed configuration's, joint with a proposed one until it commits.
    pub(crate) quorum: Quorum,
    /// The configurations in the log (in force once committed).
    pub(crate) members: MembershipLog,
    /// The configuration the server started with (what a snapshot without one stands for).
    pub(crate) initial: Membership,
    /// Every member of the committed or the proposed configuration: whom this server hears.
    pub(crate) known: Vec<NodeId>,
    pub(crate) config: Config,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) hard: HardState,
    pub(crate) log: ZabLog,
    pub(crate) last_committed: Zxid,
    pub(crate) fle: FastLeaderElection,
    pub(crate) role: ZabRole,
    pub(crate) now: Time,
    /// How far the state machine applied, and the snapshots behind it.
    pub(crate) applied: ApplyCursor,
    pub(crate) ready: Ready<Message, HardState>,
    /// The leader's snapshot as far as its SNAP chunks have arrived.
    pub(crate) snapshot_in: consensus_core::chunks::Assembly,
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
        Self::with_membership(
            id,
            Membership::of_voters(voters),
            config,
            seed,
            recovered,
            now,
        )
    }

    /// Builds a server that starts from configuration `initial` (its snapshot and log, if
    /// they hold one, take precedence). A server outside it, or an observer, never proposes
    /// itself as leader; it finds the leader from the voters' answers.
    pub fn with_membership(
        id: NodeId,
        initial: Membership,
        config: Config,
        seed: u64,
        recovered: Recovered<HardState>,
        now: Time,
    ) -> Self {
        let members = MembershipLog::recovered(&initial, &recovered);
        // Only a snapshot is known to be committed: until synchronization settles the log,
        // a configuration in it counts as proposed.
        let quorum = Quorum::majority(&[]);
        let voters = Vec::new();
        let snap_zxid = recovered
            .snapshot
            .as_ref()
            .and_then(|s| Zxid::from_position(s.last))
            .unwrap_or_default();
        let fle = FastLeaderElection::new(id, &[id], config.election.clone());
        let threshold = config.snapshot_threshold;
        // Connection ids must differ across restarts: mix in the start time.
        let rng = ChaCha8Rng::seed_from_u64(node_seed(seed, id, now.as_nanos() as u64));
        let mut z = ZabReplica {
            id,
            voters,
            quorum,
            members,
            initial,
            known: Vec::new(),
            config,
            rng,
            hard: recovered.hard_state,
            log: ZabLog::from_parts(snap_zxid, recovered.entries),
            // Only a snapshot is known to be committed; the log is settled by synchronization.
            last_committed: snap_zxid,
            fle,
            role: ZabRole::Looking,
            now,
            applied: ApplyCursor::new(threshold, recovered.snapshot),
            ready: Ready::default(),
            snapshot_in: Default::default(),
        };
        z.membership_changed();
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
        self.hard.clone()
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
        matches!(&self.role, ZabRole::Leading(l) if l.established())
    }

    /// Why this server takes no proposal: it is not the established leader (a follower names
    /// its leader).
    pub(crate) fn not_leader(&self) -> ProposeError {
        ProposeError::NotLeader {
            leader: match &self.role {
                ZabRole::Following(f) => Some(f.leader),
                _ => None,
            },
        }
    }

    /// The zxid of the last proposal handed to the state machine.
    pub(crate) fn last_applied(&self) -> Zxid {
        Zxid::from_position(self.applied.applied()).unwrap_or_default()
    }

    pub(crate) fn set_hard(&mut self, hard: HardState) {
        if hard != self.hard {
            self.hard = hard.clone();
            self.ready.persist.push(PersistOp::HardState(hard));
        }
    }

    pub(crate) fn own_vote(&self) -> Vote {
        if !self.voters.contains(&self.id) {
            // An observer (or a server outside the ensemble) proposes nobody: any voter's
            // vote beats this one (ZooKeeper's `Long.MIN_VALUE` for non-participants).
            return Vote {
                leader: 0,
                zxid: Zxid::default(),
                peer_epoch: 0,
            };
        }
        Vote {
            leader: self.id,
            zxid: self.log.last_zxid(),
            peer_epoch: self.hard.current_epoch,
        }
    }

    /// Drops whatever role this server had and starts an election.
    pub(crate) fn go_looking(&mut self) {
        self.fail_syncs();
        self.role = ZabRole::Looking;
        let vote = self.own_vote();
        self.fle.look_for_leader(self.now, vote);
        self.flush_election();
    }

    pub(crate) fn flush_election(&mut self) {
        let config = self.hard.config.clone();
        for (to, n) in self.fle.take_messages() {
            self.ready.messages.push(Envelope {
                to,
                msg: Message::Notification(n),
            });
            // ZooKeeper's notifications carry the sender's configuration, so that a server
            // that missed a reconfig's COMMIT learns it while looking.
            if let Some((at, members)) = &config {
                self.ready.messages.push(Envelope {
                    to,
                    msg: Message::Config {
                        at: *at,
                        members: Box::new(members.clone()),
                    },
                });
            }
        }
    }

    pub(crate) fn on_decision(&mut self, d: Decision) {
        match d.state {
            ServerState::Leading => self.become_leader(),
            ServerState::Following => self.become_follower(d.vote.leader),
            ServerState::Looking => {}
        }
    }

    pub(crate) fn become_leader(&mut self) {
        let now = self.now;
        let mut l = Leading {
            phase: LeaderPhase::Discovery,
            handlers: BTreeMap::new(),
            epoch_acks: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            outstanding: Outstanding::new(&self.quorum, Zxid::default()),
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
            syncs: Vec::new(),
        }));
        let accepted_epoch = self.hard.accepted_epoch;
        self.send_to_leader(Packet::FollowerInfo { accepted_epoch });
    }

    /// A follower whose leader has not answered on this connection yet connects again
    /// (ZooKeeper's `Learner.connectToLeader` retries while the leader is not yet listening).
    pub(crate) fn retry_connect(&mut self) {
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
        self.packet_to_learner(peer, packet, false);
    }

    /// Sends a broadcast packet (PROPOSAL, COMMIT) to one learner without waiting for the
    /// leader's own disk, as ZooKeeper's leader does: it logs a proposal while its followers
    /// log theirs, and counts its own ACK only once its copy is durable.
    pub(crate) fn broadcast_to_learner(&mut self, peer: NodeId, packet: Packet) {
        self.packet_to_learner(peer, packet, true);
    }

    fn packet_to_learner(&mut self, peer: NodeId, packet: Packet, early: bool) {
        let ZabRole::Leading(l) = &mut self.role else {
            return;
        };
        let Some(h) = l.handlers.get_mut(&peer) else {
            return;
        };
        let env = Envelope {
            to: peer,
            msg: h.conn.packet(packet),
        };
        if early {
            self.ready.send_early(env);
        } else {
            self.ready.messages.push(env);
        }
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
                if l.established() {
                    l.next_ping
                } else {
                    l.next_ping.min(l.init_deadline)
                }
            }
        }
    }

    fn receive(&mut self, now: Time, from: NodeId, msg: Message) {
        self.now = self.now.max(now);
        if from == self.id {
            return;
        }
        if !self.known.contains(&from) && !matches!(msg, Message::Config { .. }) {
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
            Message::Config { at, members } => self.on_config(at, *members),
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
        !self.ready.is_empty() || self.applied.has_ready(self.last_committed.position())
    }

    fn take_ready(&mut self) -> Ready<Message, HardState> {
        let mut ready = std::mem::take(&mut self.ready);
        let max = self.config.max_bytes_per_message;
        ready.early = crate::message::coalesce(std::mem::take(&mut ready.early), max);
        ready.messages = crate::message::coalesce(std::mem::take(&mut ready.messages), max);
        let log = &self.log;
        self.applied.fill(
            &mut ready,
            self.last_committed.position(),
            |after, through| {
                let z = |p| Zxid::from_position(p).unwrap_or_default();
                log.range(z(after), z(through)).to_vec()
            },
        );
        ready
    }

    fn compact(&mut self, now: Time, snapshot: Snapshot) {
        self.now = self.now.max(now);
        self.applied.answered();
        let Some(at) = Zxid::from_position(snapshot.last) else {
            return;
        };
        if at <= self.log.snapshot_zxid() || at > self.last_applied() {
            return;
        }
        self.log.compact(at);
        self.members.compacted(at.position());
        let mut snapshot = snapshot;
        snapshot.members = Some(Box::new(self.members.base().clone()));
        self.ready
            .persist
            .push(PersistOp::Snapshot(snapshot.clone()));
        self.applied.compacted(snapshot);
    }

    fn persisted(&mut self, now: Time, through: Position) {
        self.now = self.now.max(now);
        if let Some(z) = Zxid::from_position(through) {
            self.leader_self_ack(z);
        }
    }

    fn read_index(&mut self, now: Time, id: u64, level: ReadLevel) -> Result<(), ProposeError> {
        self.now = self.now.max(now);
        self.request_sync(id, level)
    }

    fn change_membership(
        &mut self,
        now: Time,
        changes: &[ConfChange],
    ) -> Result<Position, ProposeError> {
        self.now = self.now.max(now);
        self.start_reconfig(changes)
    }

    fn membership(&self) -> Option<Membership> {
        Some(self.committed_config().1)
    }

    fn inspect(&self) -> Vec<(String, String)> {
        let kv = |k: &str, v: String| (k.to_string(), v);
        let mut out = vec![
            kv("acceptedEpoch", self.hard.accepted_epoch.to_string()),
            kv("currentEpoch", self.hard.current_epoch.to_string()),
            kv("lastLoggedZxid", self.log.last_zxid().to_string()),
            kv("lastCommittedZxid", self.last_committed.to_string()),
            kv("configuration", {
                let (at, committed) = self.committed_config();
                match self.members.latest_position() {
                    Some(p) if p > at => {
                        format!("{committed} (proposed: {})", self.members.latest())
                    }
                    _ => committed.to_string(),
                }
            }),
        ];
        match &self.role {
            ZabRole::Looking => {
                let v = self.fle.proposed();
                out.push(kv(
                    "FLE vote",
                    format!("n{} (zxid {}, epoch {})", v.leader, v.zxid, v.peer_epoch),
                ));
            }
            ZabRole::Following(f) => {
                out.push(kv("phase", format!("{:?}", f.phase)));
                out.push(kv("leader", format!("n{}", f.leader)));
                out.push(kv("proposals awaiting COMMIT", f.pending.len().to_string()));
            }
            ZabRole::Leading(l) => {
                out.push(kv("phase", format!("{:?}", l.phase)));
                out.push(kv("last proposed", l.last_proposed.to_string()));
                for (id, h) in &l.handlers {
                    out.push((
                        format!("n{id} learner"),
                        format!("{:?}, acceptedEpoch {}", h.state, h.accepted_epoch),
                    ));
                }
            }
        }
        out
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
            ZabRole::Leading(l) if l.established() => (
                Role::Leader,
                "Leading",
                l.epoch().unwrap_or(self.hard.current_epoch),
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
