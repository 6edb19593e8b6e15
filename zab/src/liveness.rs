//! Timers of every role: Fast Leader Election rounds while LOOKING, a follower that stops
//! hearing from its leader (initLimit, syncLimit), a leader that does not establish in time
//! or loses its quorum, and the leader's PINGs.

use crate::message::Packet;
use crate::replica::{FollowerPhase, HandlerState, ZabReplica, ZabRole};
use consensus_core::NodeId;

impl ZabReplica {
    /// Runs the timers that are due at `self.now`.
    pub(crate) fn liveness(&mut self) {
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
                if !l.established() && now >= l.init_deadline {
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
                if l.established() && !alive {
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
