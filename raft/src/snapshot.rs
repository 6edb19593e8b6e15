//! Log compaction and InstallSnapshot (section 7, Figure 13).

use crate::{Message, ProgressState, RaftReplica};
use bytes::Bytes;
use consensus_core::{NodeId, PersistOp, Position, Snapshot};

impl RaftReplica {
    /// Sends the latest snapshot to a follower whose next entry is compacted; one at a time,
    /// re-sent by the heartbeat only when it went unanswered.
    pub(crate) fn send_snapshot(&mut self, peer: NodeId, heartbeat: bool) {
        let Some(snap) = self.applied.snapshots().latest().cloned() else {
            return;
        };
        let Some(pr) = self.progress.get_mut(&peer) else {
            return;
        };
        if pr.state == ProgressState::Snapshot && pr.probe_sent && !heartbeat {
            return;
        }
        pr.state = ProgressState::Snapshot;
        pr.probe_sent = true;
        pr.inflight.clear();
        pr.next_index = snap.last.seq + 1;
        let term = self.hard.current_term;
        self.send(
            peer,
            Message::InstallSnapshot {
                term,
                last_included_index: snap.last.seq,
                last_included_term: snap.last.era,
                data: snap.data,
            },
        );
    }

    /// The receiver's side of InstallSnapshot.
    pub(crate) fn handle_install_snapshot(&mut self, from: NodeId, last: Position, data: Bytes) {
        if !self.accept_leader(from) {
            return;
        }
        let term = self.hard.current_term;
        if last.seq > self.commit_index {
            if self.log.install(last) {
                // The log disagreed with the snapshot: nothing after it is kept either.
                self.ready.persist.push(PersistOp::TruncateAfter(last));
            }
            let snap = Snapshot { last, data };
            self.ready.persist.push(PersistOp::Snapshot(snap.clone()));
            self.commit_index = last.seq;
            self.applied.installed(snap);
        }
        // Either way the log now matches the leader's up to `last`: it is committed.
        self.send(
            from,
            Message::InstallSnapshotResponse {
                term,
                match_index: last.seq,
            },
        );
    }

    /// The leader's side of an InstallSnapshot answer.
    pub(crate) fn handle_install_snapshot_response(&mut self, from: NodeId, match_index: u64) {
        if self.role != crate::RaftRole::Leader {
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.answered_since_heartbeat = true;
        if pr.on_success(match_index) {
            self.maybe_commit();
        }
        self.send_append(from, false);
    }
}
