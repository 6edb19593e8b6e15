//! Log compaction and InstallSnapshot (section 7, Figure 13), in chunks: one chunk at a time
//! to each follower, the next sent when the follower says where it stands, so a snapshot of
//! any size goes through in frames of bounded size without crowding out heartbeats, and a
//! transfer cut by a broken connection resumes where the follower stopped.

use crate::{Message, ProgressState, RaftReplica};
use consensus_core::chunks::{self, Received};
use consensus_core::{NodeId, PersistOp, Position};

impl RaftReplica {
    /// Sends the next chunk of the latest snapshot to a follower whose next entry is
    /// compacted; one chunk at a time, re-sent by the heartbeat only when it went unanswered.
    pub(crate) fn send_snapshot(&mut self, peer: NodeId, heartbeat: bool) {
        let Some(snap) = self.applied.snapshots().latest().cloned() else {
            return;
        };
        let max = self.config.max_bytes_per_message;
        let Some(pr) = self.progress.get_mut(&peer) else {
            return;
        };
        if pr.state == ProgressState::Snapshot && pr.probe_sent && !heartbeat {
            return;
        }
        let offset = match pr.snapshot_sending {
            Some((index, offset))
                if pr.state == ProgressState::Snapshot && index == snap.last.seq =>
            {
                offset
            }
            _ => 0,
        };
        pr.state = ProgressState::Snapshot;
        pr.probe_sent = true;
        pr.inflight.clear();
        pr.next_index = snap.last.seq + 1;
        pr.snapshot_sending = Some((snap.last.seq, offset));
        let (data, done) = chunks::chunk(&snap.data, offset, max);
        let term = self.hard.current_term;
        self.send(
            peer,
            Message::InstallSnapshot {
                term,
                last_included_index: snap.last.seq,
                last_included_term: snap.last.era,
                offset,
                data,
                done,
                members: if done { snap.members.clone() } else { None },
            },
        );
    }

    /// The receiver's side of InstallSnapshot: gathers the chunks, installs the whole.
    pub(crate) fn handle_install_snapshot(
        &mut self,
        from: NodeId,
        last: Position,
        offset: u64,
        data: &[u8],
        done: bool,
        members: Option<&consensus_core::Membership>,
    ) {
        if !self.accept_leader(from) {
            return;
        }
        let term = self.hard.current_term;
        let mut next_offset = None;
        if last.seq > self.commit_index {
            match self
                .snapshot_in
                .receive(term, last, offset, data, done, members)
            {
                Received::NeedFrom(n) => next_offset = Some(n),
                Received::Complete(snap) => {
                    if self.log.install(last) {
                        // The log disagreed with the snapshot: nothing after it is kept either.
                        self.ready.persist.push(PersistOp::TruncateAfter(last));
                        let m = snap
                            .members
                            .as_deref()
                            .cloned()
                            .unwrap_or_else(|| self.initial.clone());
                        self.members.installed(m);
                    } else {
                        self.members.compacted(last);
                    }
                    self.membership_changed();
                    self.ready.persist.push(PersistOp::Snapshot(snap.clone()));
                    self.commit_index = last.seq;
                    self.applied.installed(snap);
                }
            }
        } else {
            // What we hold already covers it: a chunk of it is of no use.
            self.snapshot_in.clear();
        }
        // Once installed (or covered), the log matches the leader's up to `last`: committed.
        self.send(
            from,
            Message::InstallSnapshotResponse {
                term,
                match_index: if next_offset.is_none() { last.seq } else { 0 },
                last_included_index: last.seq,
                next_offset,
            },
        );
    }

    /// The leader's side of an InstallSnapshot answer: the next chunk, or on to entries.
    pub(crate) fn handle_install_snapshot_response(
        &mut self,
        from: NodeId,
        match_index: u64,
        last_included_index: u64,
        next_offset: Option<u64>,
    ) {
        if self.role != crate::RaftRole::Leader {
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.answered_since_heartbeat = true;
        match next_offset {
            Some(offset) => {
                // Only an answer about the snapshot being sent moves the transfer on.
                if pr.state == ProgressState::Snapshot
                    && pr
                        .snapshot_sending
                        .is_some_and(|(i, _)| i == last_included_index)
                {
                    pr.snapshot_sending = Some((last_included_index, offset));
                    pr.probe_sent = false;
                    self.send_snapshot(from, false);
                }
            }
            None => {
                pr.snapshot_sending = None;
                if pr.on_success(match_index) {
                    self.maybe_commit();
                }
                self.send_append(from, false);
            }
        }
    }
}
