//! Fast Leader Election (`FastLeaderElection.lookForLeader` and its `WorkerReceiver`), as a
//! deterministic sub-state-machine: the ZAB core feeds it notifications and time, and takes
//! the notifications it wants sent and, eventually, a [`Decision`].

use crate::zxid::Zxid;
use consensus_core::{NodeId, Quorum, Time};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `QuorumPeer.ServerState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServerState {
    /// Searching for a leader.
    Looking,
    /// Following an elected leader.
    Following,
    /// Leading.
    Leading,
}

/// A vote for a leader, judged by (peer epoch, zxid, server id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vote {
    /// The proposed leader.
    pub leader: NodeId,
    /// The proposed leader's last logged zxid.
    pub zxid: Zxid,
    /// The proposed leader's currentEpoch.
    pub peer_epoch: u64,
}

impl Vote {
    /// ZooKeeper's `totalOrderPredicate`: true if `self` is a better leader than `other`.
    pub fn beats(&self, other: &Vote) -> bool {
        (self.peer_epoch, self.zxid, self.leader) > (other.peer_epoch, other.zxid, other.leader)
    }
}

/// An election message (`FastLeaderElection.Notification` / `ToSend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The sender's state.
    pub state: ServerState,
    /// The leader the sender votes for (or follows).
    pub leader: NodeId,
    /// That leader's zxid as the sender knows it.
    pub zxid: Zxid,
    /// The sender's election round (`logicalclock`).
    pub election_epoch: u64,
    /// That leader's epoch.
    pub peer_epoch: u64,
}

impl Notification {
    /// The vote the notification carries.
    pub fn vote(&self) -> Vote {
        Vote {
            leader: self.leader,
            zxid: self.zxid,
            peer_epoch: self.peer_epoch,
        }
    }
}

/// Timing of Fast Leader Election: ZooKeeper's defaults scaled by the same factor as the
/// project's `tickTime` (100 ms against ZooKeeper's usual 2,000 ms: 20x), except the resend cap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElectionConfig {
    /// How long to wait for a better vote once a quorum agrees (`finalizeWait`).
    pub finalize_wait: Duration,
    /// First resend interval when nothing arrives.
    pub min_notification_interval: Duration,
    /// Cap of the doubling resend interval (`maxNotificationInterval`).
    pub max_notification_interval: Duration,
}

impl Default for ElectionConfig {
    fn default() -> Self {
        ElectionConfig {
            // ZooKeeper: 200 ms, i.e. a tenth of a 2 s tick.
            finalize_wait: Duration::from_millis(10),
            min_notification_interval: Duration::from_millis(10),
            // ZooKeeper: 60 s (3 s scaled). A looking server that was cut off retries at
            // this pace once the network heals, so the cap bounds how long it takes to find
            // the leader again: 500 ms keeps a rejoin under 1 s (docs/zab.md, deviations).
            max_notification_interval: Duration::from_millis(500),
        }
    }
}

/// The end of an election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Leading or Following.
    pub state: ServerState,
    /// The winning vote.
    pub vote: Vote,
    /// The round it was decided in.
    pub election_epoch: u64,
}

/// One server's Fast Leader Election.
#[derive(Clone, Debug)]
pub struct FastLeaderElection {
    id: NodeId,
    voters: Vec<NodeId>,
    quorum: Quorum,
    /// While a configuration proposed in this server's log is pending: the committed
    /// configuration's quorum and the epoch of that proposal (see `term_predicate_settled`).
    pending: Option<(Quorum, u64)>,
    config: ElectionConfig,
    logical_clock: u64,
    state: ServerState,
    /// This server's own vote at the start of the round.
    initial: Vote,
    proposed: Vote,
    recv_set: BTreeMap<NodeId, Vote>,
    out_of_election: BTreeMap<NodeId, (Vote, ServerState, u64)>,
    finalize_at: Option<Time>,
    resend_at: Option<Time>,
    resend_interval: Duration,
    outbox: Vec<(NodeId, Notification)>,
}

impl FastLeaderElection {
    /// The election of server `id` among `voters` (itself included); it starts settled, not
    /// looking, until [`FastLeaderElection::look_for_leader`].
    pub fn new(id: NodeId, voters: &[NodeId], config: ElectionConfig) -> Self {
        let quorum = Quorum::majority(voters);
        let voters = quorum.voters();
        let own = Vote {
            leader: id,
            zxid: Zxid::default(),
            peer_epoch: 0,
        };
        FastLeaderElection {
            id,
            voters,
            quorum,
            pending: None,
            resend_interval: config.min_notification_interval,
            config,
            logical_clock: 0,
            state: ServerState::Looking,
            initial: own,
            proposed: own,
            recv_set: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            finalize_at: None,
            resend_at: None,
            outbox: Vec::new(),
        }
    }

    /// Counts votes in `quorum` from now on (a configuration was proposed or committed).
    pub fn set_quorum(&mut self, quorum: Quorum) {
        self.voters = quorum.voters();
        self.quorum = quorum;
    }

    /// A configuration proposed in `epoch` is pending in this server's log, and `committed` is
    /// the quorum of the configuration in force (`None`: nothing is pending).
    pub fn set_pending(&mut self, pending: Option<(Quorum, u64)>) {
        self.pending = pending;
    }

    /// The election round (`logicalclock`).
    pub fn logical_clock(&self) -> u64 {
        self.logical_clock
    }

    /// The vote this server currently proposes (or decided on).
    pub fn proposed(&self) -> Vote {
        self.proposed
    }

    /// Looking, or the state the last decision put this server in.
    pub fn state(&self) -> ServerState {
        self.state
    }

    fn notification(&self) -> Notification {
        Notification {
            state: self.state,
            leader: self.proposed.leader,
            zxid: self.proposed.zxid,
            election_epoch: self.logical_clock,
            peer_epoch: self.proposed.peer_epoch,
        }
    }

    fn send_notifications(&mut self) {
        let n = self.notification();
        for &p in &self.voters {
            if p != self.id {
                self.outbox.push((p, n));
            }
        }
    }

    /// Starts a new round: increments `logicalclock`, votes for this server's own
    /// (currentEpoch, last logged zxid, id), and tells every peer.
    pub fn look_for_leader(&mut self, now: Time, own: Vote) {
        debug_assert!(own.leader == self.id || own.leader == 0);
        self.state = ServerState::Looking;
        self.logical_clock += 1;
        self.initial = own;
        self.proposed = own;
        self.recv_set.clear();
        self.recv_set.insert(self.id, own);
        self.out_of_election.clear();
        self.finalize_at = None;
        self.resend_interval = self.config.min_notification_interval;
        self.resend_at = Some(now + self.resend_interval);
        self.send_notifications();
        self.check_quorum_of_round(now);
    }

    /// Handles a notification; returns the decision if this one ends the election.
    pub fn receive(&mut self, now: Time, from: NodeId, n: Notification) -> Option<Decision> {
        if from == self.id {
            return None;
        }
        if self.state != ServerState::Looking {
            // A settled server tells a looking one whom it follows (or that it leads): this
            // is how a server that starts late finds the leader.
            if n.state == ServerState::Looking {
                self.outbox.push((from, self.notification()));
            }
            return None;
        }
        let vote = n.vote();
        if !self.voters.contains(&from) || !self.voters.contains(&vote.leader) {
            // Only voters count, and only votes for a voter (`validVoter`, a zero weight).
            return None;
        }
        // Anything heard restarts the silence timer.
        self.resend_at = Some(now + self.resend_interval);
        match n.state {
            ServerState::Looking => {
                if n.election_epoch > self.logical_clock {
                    self.logical_clock = n.election_epoch;
                    self.recv_set.clear();
                    self.proposed = if vote.beats(&self.initial) {
                        vote
                    } else {
                        self.initial
                    };
                    self.recv_set.insert(self.id, self.proposed);
                    self.finalize_at = None;
                    self.send_notifications();
                } else if n.election_epoch < self.logical_clock {
                    // A stale round: answer with ours so the sender catches up.
                    self.outbox.push((from, self.notification()));
                    return None;
                } else if vote.beats(&self.proposed) {
                    self.proposed = vote;
                    self.recv_set.insert(self.id, vote);
                    self.finalize_at = None;
                    self.send_notifications();
                }
                self.recv_set.insert(from, vote);
                self.check_quorum_of_round(now);
                None
            }
            ServerState::Following | ServerState::Leading => {
                if n.election_epoch == self.logical_clock {
                    self.recv_set.insert(from, vote);
                    if self.term_predicate_round(&vote)
                        && self.check_leader(vote.leader, n.election_epoch)
                    {
                        return Some(self.decide(vote));
                    }
                }
                self.out_of_election
                    .insert(from, (vote, n.state, n.election_epoch));
                if self.term_predicate_settled(&vote)
                    && self.check_leader(vote.leader, n.election_epoch)
                {
                    self.logical_clock = n.election_epoch;
                    return Some(self.decide(vote));
                }
                None
            }
        }
    }

    /// Lets the finalize wait and the resend timer fire.
    pub fn tick(&mut self, now: Time) -> Option<Decision> {
        if self.state != ServerState::Looking {
            return None;
        }
        if self.finalize_at.is_some_and(|t| now >= t) {
            self.finalize_at = None;
            if self.term_predicate_round(&self.proposed) {
                return Some(self.decide(self.proposed));
            }
        }
        if self.resend_at.is_some_and(|t| now >= t) {
            self.send_notifications();
            self.resend_interval =
                (self.resend_interval * 2).min(self.config.max_notification_interval);
            self.resend_at = Some(now + self.resend_interval);
        }
        None
    }

    /// The earliest time [`FastLeaderElection::tick`] has work, while looking.
    pub fn next_deadline(&self) -> Option<Time> {
        if self.state != ServerState::Looking {
            return None;
        }
        match (self.finalize_at, self.resend_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes the notifications to send, in order.
    pub fn take_messages(&mut self) -> Vec<(NodeId, Notification)> {
        std::mem::take(&mut self.outbox)
    }

    /// Reports `new_epoch` as the epoch of this server's settled vote once it actually leads
    /// or follows in it (`QuorumPeer.updateElectionVote`, ZOOKEEPER-1732): otherwise servers
    /// that settled in different rounds report different epochs and a newcomer never sees a
    /// quorum agree.
    pub fn update_election_vote(&mut self, new_epoch: u64) {
        self.proposed.peer_epoch = new_epoch;
    }

    /// Records the state this server settled in (or is told it is in by its core).
    pub fn settle(&mut self, state: ServerState) {
        self.state = state;
        self.finalize_at = None;
        self.resend_at = None;
    }

    /// Once a quorum of this round agrees with our vote, wait `finalizeWait` for a better one.
    fn check_quorum_of_round(&mut self, now: Time) {
        if self.finalize_at.is_none() && self.term_predicate_round(&self.proposed) {
            self.finalize_at = Some(now + self.config.finalize_wait);
        }
    }

    /// A quorum of this round's votes equals `vote` exactly.
    fn term_predicate_round(&self, vote: &Vote) -> bool {
        let agree = self.recv_set.iter().filter(|(_, v)| *v == vote);
        self.quorum.is_reached(agree.map(|(&id, _)| id))
    }

    /// A quorum of settled servers follow the same leader in the same epoch (ZooKeeper's
    /// `Vote.equals` ignores the zxid for servers that are not looking).
    ///
    /// Deviation from ZooKeeper, which counts that quorum in every configuration it has seen,
    /// the proposed one included: when this server's log holds a proposed configuration from
    /// an epoch before the leader's, the committed configuration's quorum is enough. A proposal
    /// the leader of a later epoch does not hold was never committed (the established leader
    /// holds every committed transaction), and one it holds comes with its sync; following a
    /// leader decides nothing, the leader's own quorums do. Counting the dead proposal's
    /// voters kept a restarted voter Looking for good beside a working leader (simulator seed
    /// 13, `--faults chaos --snapshot-threshold 50`: docs/zab.md).
    fn term_predicate_settled(&self, vote: &Vote) -> bool {
        let agree = self
            .out_of_election
            .iter()
            .filter(|(_, (v, _, _))| v.leader == vote.leader && v.peer_epoch == vote.peer_epoch);
        let quorum = match &self.pending {
            Some((committed, epoch)) if vote.peer_epoch > *epoch => committed,
            _ => &self.quorum,
        };
        quorum.is_reached(agree.map(|(&id, _)| id))
    }

    /// ZooKeeper's `checkLeader`: never follow a leader that has not said it leads; never lead
    /// on a vote from another round.
    fn check_leader(&self, leader: NodeId, election_epoch: u64) -> bool {
        if leader != self.id {
            matches!(
                self.out_of_election.get(&leader),
                Some((_, ServerState::Leading, _))
            )
        } else {
            self.logical_clock == election_epoch
        }
    }

    fn decide(&mut self, vote: Vote) -> Decision {
        let state = if vote.leader == self.id {
            ServerState::Leading
        } else {
            ServerState::Following
        };
        self.proposed = vote;
        self.settle(state);
        self.recv_set.clear();
        self.out_of_election.clear();
        Decision {
            state,
            vote,
            election_epoch: self.logical_clock,
        }
    }
}

#[cfg(test)]
mod tests;
