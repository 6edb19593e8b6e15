//! The packets of synchronization, on both sides of a learner connection.

use super::{choose, History, SyncPlan};
use crate::broadcast::Outstanding;
use crate::message::Packet;
use crate::replica::{FollowerPhase, HandlerState, HardState, LeaderPhase, ZabReplica, ZabRole};
use crate::zxid::Zxid;
use consensus_core::chunks::Received;
use consensus_core::{Entry, NodeId, PersistOp, Position, Snapshot};

impl ZabReplica {
    /// Once a quorum (the leader included) acknowledged the epoch: persist currentEpoch,
    /// then synchronize every learner that is waiting.
    pub(crate) fn maybe_settle_epoch(&mut self) {
        let ZabRole::Leading(l) = &mut self.role else {
            return;
        };
        let Some(e) = l.epoch() else {
            return;
        };
        if l.epoch_settled() || !self.quorum.is_reached(l.epoch_acks.iter().copied()) {
            return;
        }
        l.phase = LeaderPhase::Synchronization(e);
        l.last_proposed = Zxid::epoch_marker(e as u32);
        let waiting: Vec<NodeId> = l
            .handlers
            .iter()
            .filter(|(_, h)| matches!(h.state, HandlerState::AckedEpoch { .. }))
            .map(|(&id, _)| id)
            .collect();
        // currentEpoch is durable before the first synchronization packet leaves.
        let hard = HardState {
            current_epoch: e,
            ..self.hard.clone()
        };
        self.set_hard(hard);
        for p in waiting {
            self.sync_learner(p);
        }
        self.maybe_establish();
    }

    /// Sends one learner what it lacks (DIFF / TRUNC / SNAP and the proposals with their
    /// commits), the proposals still outstanding, then NEWLEADER, on its FIFO connection.
    pub(crate) fn sync_learner(&mut self, peer: NodeId) {
        let ZabRole::Leading(l) = &self.role else {
            return;
        };
        let Some(h) = l.handlers.get(&peer) else {
            return;
        };
        let HandlerState::AckedEpoch { last_zxid } = h.state else {
            return;
        };
        let epoch = l.epoch().expect("an epoch is fixed before syncing");
        // Before it is established, the leader's whole history is what it will commit.
        let commit_point = if l.established() {
            self.last_committed
        } else {
            self.log.last_zxid()
        };
        let committed: Vec<(Zxid, usize)> = self
            .log
            .range(Zxid::default(), commit_point)
            .iter()
            .filter_map(|e| Some((Zxid::from_position(e.pos)?, payload_size(e))))
            .collect();
        let plan = choose(
            &History {
                committed: &committed,
                log_start: self.log.snapshot_zxid(),
                snapshot_bytes: self.applied.snapshots().latest().map(|s| s.data.len()),
                window: self.config.commit_log_count,
                snapshot_size_factor: self.config.snapshot_size_factor,
                last_processed: commit_point,
            },
            last_zxid,
        );
        let mut packets = Vec::new();
        let from = match plan {
            SyncPlan::Diff { after } => {
                packets.push(Packet::Diff { zxid: commit_point });
                after
            }
            SyncPlan::Trunc { to } | SyncPlan::TruncDiff { to } => {
                packets.push(Packet::Trunc { zxid: to });
                to
            }
            SyncPlan::Snap => {
                let snapshot = self
                    .applied
                    .snapshots()
                    .latest()
                    .cloned()
                    .unwrap_or(Snapshot::new(Position::ZERO, Default::default()));
                let at = Zxid::from_position(snapshot.last).unwrap_or_default();
                let mut offset = 0;
                loop {
                    let (data, done) = consensus_core::chunks::chunk(
                        &snapshot.data,
                        offset,
                        self.config.max_bytes_per_message,
                    );
                    let len = data.len() as u64;
                    packets.push(Packet::Snap {
                        last: snapshot.last,
                        offset,
                        data,
                        done,
                        members: if done { snapshot.members.clone() } else { None },
                    });
                    if done {
                        break;
                    }
                    offset += len;
                }
                at
            }
        };
        for e in self.log.range(from, commit_point) {
            let zxid = Zxid::from_position(e.pos).expect("logged zxids fit");
            packets.push(Packet::Proposal {
                zxid,
                data: e.payload.clone(),
            });
            packets.push(Packet::Commit { zxid });
        }
        for e in self.log.range(commit_point, self.log.last_zxid()) {
            let zxid = Zxid::from_position(e.pos).expect("logged zxids fit");
            packets.push(Packet::Proposal {
                zxid,
                data: e.payload.clone(),
            });
        }
        packets.push(Packet::NewLeader {
            zxid: Zxid::epoch_marker(epoch as u32),
        });
        let votes = self.quorum.contains(peer);
        if let ZabRole::Leading(l) = &mut self.role {
            if let Some(h) = l.handlers.get_mut(&peer) {
                h.state = HandlerState::Syncing;
                // A voter gets every later PROPOSAL; an observer gets INFORMs instead.
                h.proposed_from = votes.then(Zxid::default);
            }
        }
        for p in packets {
            self.send_to_learner(peer, p);
        }
    }

    /// The leader's side of the ACK of NEWLEADER.
    pub(crate) fn on_newleader_ack(&mut self, from: NodeId, zxid: Zxid) {
        let ZabRole::Leading(l) = &mut self.role else {
            return;
        };
        if l.epoch() != Some(zxid.epoch() as u64) {
            return;
        }
        let Some(h) = l.handlers.get_mut(&from) else {
            return;
        };
        if h.state != HandlerState::Syncing {
            return;
        }
        h.state = HandlerState::Synced;
        l.newleader_acks.insert(from);
        if l.established() {
            self.send_to_learner(from, Packet::UpToDate);
        } else {
            self.maybe_establish();
        }
    }

    /// A quorum acknowledged NEWLEADER: the leader's history is committed and it serves.
    pub(crate) fn maybe_establish(&mut self) {
        let quorum = self.quorum.clone();
        let ZabRole::Leading(l) = &mut self.role else {
            return;
        };
        if l.established()
            || !l.epoch_settled()
            || !self.quorum.is_reached(l.newleader_acks.iter().copied())
        {
            return;
        }
        let e = l.epoch().expect("settled epochs are fixed");
        l.phase = LeaderPhase::Broadcast(e);
        l.outstanding = Outstanding::new(&quorum, Zxid::epoch_marker(e as u32));

        let synced: Vec<NodeId> = l
            .handlers
            .iter()
            .filter(|(_, h)| h.state == HandlerState::Synced)
            .map(|(&id, _)| id)
            .collect();
        // ZooKeeper applies the new leader's log when it starts leading; here applied
        // commands are final, so they are applied once a quorum holds them.
        let before = self.last_committed;
        self.last_committed = self.last_committed.max(self.log.last_zxid());
        self.fle.update_election_vote(e);
        for p in synced {
            self.send_to_learner(p, Packet::UpToDate);
        }
        self.commit_moved(before);
    }

    /// The follower's side of synchronization.
    pub(crate) fn sync_packet(&mut self, packet: Packet) {
        match packet {
            Packet::Diff { zxid } => self.note_sync_committed(zxid),
            Packet::Trunc { zxid } => {
                self.truncate_log(zxid);
                self.note_sync_committed(zxid);
            }
            Packet::Snap {
                last,
                offset,
                data,
                done,
                members,
            } => {
                // Chunks arrive back to back; a resumed transfer (the same leader and
                // snapshot after a reconnect) skips what is already held.
                let era = self.hard.accepted_epoch;
                let snapshot = match self.snapshot_in.receive(
                    era,
                    last,
                    offset,
                    &data,
                    done,
                    members.as_deref(),
                ) {
                    Received::Complete(s) => s,
                    Received::NeedFrom(_) => return,
                };
                let at = Zxid::from_position(snapshot.last).unwrap_or_default();
                let own = self.log.snapshot_zxid();
                if at < own {
                    // Our own snapshot is newer and holds only committed state, which the
                    // leader's history contains: keep it, drop the log after it, and let
                    // the proposals that follow fill in. (Installing the older one would
                    // leave a gap between it and our log if a crash came in between.)
                    self.log.truncate_after(own);
                    self.members.truncated_after(own.position());
                    self.ready
                        .persist
                        .push(PersistOp::TruncateAfter(own.position()));
                    self.reload_from_snapshot();
                    self.last_committed = own;
                    self.note_sync_committed(own);
                    return;
                }
                self.log.reset_to(at);
                let m = snapshot
                    .members
                    .as_deref()
                    .cloned()
                    .unwrap_or_else(|| self.initial.clone());
                self.members.installed(m);
                // The snapshot first, then drop the log after it: a crash between the two
                // leaves the old log behind a valid snapshot, never neither (ZooKeeper
                // never deletes its log on SNAP either).
                self.ready
                    .persist
                    .push(PersistOp::Snapshot(snapshot.clone()));
                self.ready
                    .persist
                    .push(PersistOp::TruncateAfter(at.position()));
                // A snapshot holds only state its leader applied, which a quorum committed.
                self.last_committed = at;
                self.applied.installed(snapshot);
                self.note_sync_committed(at);
                self.membership_changed();
            }
            Packet::Proposal { zxid, data } => {
                if let ZabRole::Following(f) = &mut self.role {
                    f.not_committed.push_back(Entry {
                        pos: zxid.position(),
                        payload: data,
                    });
                }
            }
            Packet::Commit { zxid } => {
                let ZabRole::Following(f) = &mut self.role else {
                    return;
                };
                if f.not_committed.front().map(|e| e.pos) == Some(zxid.position()) {
                    let e = f.not_committed.pop_front().expect("checked");
                    f.committed_in_sync.push(e);
                    self.note_sync_committed(zxid);
                } else {
                    self.go_looking();
                }
            }
            Packet::Inform { zxid, data } => {
                // An observer: the proposal arrives with its commit.
                let ZabRole::Following(f) = &mut self.role else {
                    return;
                };
                let entry = match f.not_committed.front() {
                    Some(e) if e.pos == zxid.position() => f.not_committed.pop_front(),
                    Some(e) if e.pos > zxid.position() => None,
                    _ => Some(Entry {
                        pos: zxid.position(),
                        payload: data,
                    }),
                };
                if let Some(e) = entry {
                    f.committed_in_sync.push(e);
                    self.note_sync_committed(zxid);
                }
            }
            Packet::NewLeader { zxid } => self.on_new_leader(zxid),
            Packet::UpToDate => self.on_up_to_date(),
            _ => self.go_looking(),
        }
    }

    fn note_sync_committed(&mut self, zxid: Zxid) {
        if let ZabRole::Following(f) = &mut self.role {
            f.sync_committed = f.sync_committed.max(zxid);
        }
    }

    /// TRUNC: drop every logged proposal after `to` (`ZKDatabase.truncateLog`). Nothing
    /// applied may be dropped; if it was, the state machine is rebuilt from the durable
    /// snapshot and the log, as ZooKeeper reloads its database, and the broken invariant
    /// is reported.
    pub(crate) fn truncate_log(&mut self, to: Zxid) {
        if to >= self.log.last_zxid() {
            return;
        }
        if self.last_committed > to {
            self.ready.violations.push(format!(
                "server {}: TRUNC to {to} drops committed {}",
                self.id, self.last_committed
            ));
        }
        self.log.truncate_after(to);
        self.members.truncated_after(to.position());
        self.ready
            .persist
            .push(PersistOp::TruncateAfter(to.position()));
        if self.last_applied() > to {
            let base = self.log.snapshot_zxid();
            if base > to {
                self.ready.violations.push(format!(
                    "server {}: TRUNC to {to} is below the snapshot at {base}",
                    self.id
                ));
            }
            self.reload_from_snapshot();
        }
        self.last_committed = self.last_committed.min(to).max(self.last_applied());
        self.membership_changed();
    }

    /// Rebuilds the state machine from the latest snapshot (the empty state without one);
    /// the log after it is applied again as it commits.
    fn reload_from_snapshot(&mut self) {
        self.applied.reload();
    }

    /// NEWLEADER, in ZooKeeper's order: the SNAP/TRUNC result is already logged; log the
    /// transactions committed during sync, then currentEpoch, then ACK (all durable first).
    fn on_new_leader(&mut self, zxid: Zxid) {
        let ZabRole::Following(f) = &mut self.role else {
            return;
        };
        let new_epoch = f.new_epoch;
        let committed = std::mem::take(&mut f.committed_in_sync);
        // Logged and durable before the ACK, but not applied: the leader may still fail
        // to reach its NEWLEADER quorum. UPTODATE makes this history committed.
        self.log_entries(committed);
        let hard = HardState {
            current_epoch: new_epoch,
            ..self.hard.clone()
        };
        self.set_hard(hard);
        self.send_to_leader(crate::message::Packet::Ack { zxid });
    }

    /// UPTODATE: log what was committed since NEWLEADER, then the outstanding proposals,
    /// acknowledging each; broadcast begins.
    fn on_up_to_date(&mut self) {
        let ZabRole::Following(f) = &mut self.role else {
            return;
        };
        f.phase = FollowerPhase::Broadcast;
        let new_epoch = f.new_epoch;
        let committed = std::mem::take(&mut f.committed_in_sync);
        let pending: Vec<Entry> = f.not_committed.drain(..).collect();
        let sync_committed = f.sync_committed;
        self.fle.update_election_vote(new_epoch);
        self.log_entries(committed);
        // The leader is established: the synchronized history is committed.
        let before = self.last_committed;
        self.last_committed = self
            .last_committed
            .max(sync_committed.min(self.log.last_zxid()));
        self.commit_moved(before);
        for e in pending {
            let zxid = Zxid::from_position(e.pos).expect("logged zxids fit");
            self.log_entries(vec![e]);
            if let ZabRole::Following(f) = &mut self.role {
                f.pending.push_back(zxid);
            }
            self.send_to_leader(Packet::Ack { zxid });
        }
    }

    /// Appends entries newer than the log's last to the log and to the disk.
    pub(crate) fn log_entries(&mut self, entries: Vec<Entry>) {
        let last = self.log.last_position();
        let fresh: Vec<Entry> = entries.into_iter().filter(|e| e.pos > last).collect();
        if fresh.is_empty() {
            return;
        }
        for e in &fresh {
            self.log.push(e.clone());
        }
        let configs = fresh
            .iter()
            .any(|e| matches!(e.payload, consensus_core::Payload::Config(_)));
        if configs {
            self.members.appended(&fresh);
        }
        self.ready.append(fresh);
        if configs {
            self.membership_changed();
        }
    }
}

fn payload_size(e: &Entry) -> usize {
    match &e.payload {
        consensus_core::Payload::Command(c) => c.len() + 16,
        consensus_core::Payload::Noop => 16,
        consensus_core::Payload::Config(m) => 16 * m.members().len() + 16,
    }
}
