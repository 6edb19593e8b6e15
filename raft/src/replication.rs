//! Log replication (section 5.3) and the commitment rule (5.4.2).

use crate::{Message, ProgressState, RaftReplica, RaftRole};
use consensus_core::{Entry, NodeId, Payload, PersistOp, Position};

impl RaftReplica {
    /// Appends a new entry of the current term to the leader's log.
    pub(crate) fn append_new_entry(&mut self, payload: Payload) -> Position {
        let pos = Position::new(self.hard.current_term, self.log.last_index() + 1);
        let entry = Entry { pos, payload };
        self.log.push(entry.clone());
        if matches!(entry.payload, Payload::Config(_)) {
            self.members.appended(std::slice::from_ref(&entry));
            self.membership_changed();
        }
        self.persist_append(vec![entry]);
        self.broadcast_pending = true;
        self.maybe_commit();
        pos
    }

    /// Sends whatever each follower is ready to take.
    pub(crate) fn broadcast_append(&mut self) {
        let peers: Vec<NodeId> = self.peers().collect();
        for p in peers {
            self.send_append(p, false);
        }
    }

    /// The heartbeat: probe or keep the pipeline moving; an empty AppendEntries otherwise.
    pub(crate) fn send_heartbeats(&mut self) {
        let last = self.log.last_index();
        let peers: Vec<NodeId> = self.peers().collect();
        for p in peers {
            let pr = self.progress.get_mut(&p).expect("leader tracks every peer");
            // A pipeline that made no progress for a whole heartbeat interval lost a message:
            // fall back to probing from the last known match.
            if pr.state == ProgressState::Replicate
                && pr.match_index < last
                && pr.match_index == pr.match_at_last_heartbeat
                && !pr.inflight.is_empty()
            {
                let m = pr.match_index;
                pr.become_probe(m + 1);
            }
            pr.match_at_last_heartbeat = pr.match_index;
            // A probe whose answer came back was not lost: the answer already sent the next
            // one, and a second probe would only double the traffic for good.
            let probe_in_flight = pr.state != ProgressState::Replicate
                && pr.probe_sent
                && pr.answered_since_heartbeat;
            pr.answered_since_heartbeat = false;
            if probe_in_flight {
                continue;
            }
            self.send_append(p, true);
        }
    }

    /// The last index of a batch from `next`: at most `max_batch` entries and, beyond the
    /// first, at most the configured bytes.
    fn batch_end(&self, next: u64, max_batch: u64, last: u64) -> u64 {
        let end = (next + max_batch - 1).min(last);
        let entries = self.log.slice(next, end);
        let n = consensus_core::chunks::fitting(
            entries.iter().map(|e| &e.payload),
            self.config.max_bytes_per_message,
        );
        // An empty batch (next past the end) keeps its shape: prevLogIndex = last.
        if n == 0 {
            end
        } else {
            next + n as u64 - 1
        }
    }

    fn append_message(&self, from_index: u64, to_index: u64, prev_log_index: u64) -> Message {
        Message::AppendEntries {
            term: self.hard.current_term,
            prev_log_index,
            prev_log_term: self
                .log
                .term_at(prev_log_index)
                .expect("prevLogIndex is within the leader's log"),
            entries: self.log.slice(from_index, to_index).to_vec(),
            leader_commit: self.commit_index,
        }
    }

    /// Sends AppendEntries to one follower according to its progress state.
    pub(crate) fn send_append(&mut self, peer: NodeId, heartbeat: bool) {
        let last = self.log.last_index();
        let max_batch = self.config.max_entries_per_message.max(1) as u64;
        let max_inflight = self.config.max_inflight.max(1);
        let Some(pr) = self.progress.get(&peer) else {
            return;
        };
        // The follower needs entries the log no longer holds: only a snapshot can help.
        let next_prev = pr.next_index.min(last + 1) - 1;
        if pr.state == ProgressState::Snapshot || self.log.term_at(next_prev).is_none() {
            self.send_snapshot(peer, heartbeat);
            return;
        }
        match pr.state {
            ProgressState::Probe => {
                if pr.probe_sent && !heartbeat {
                    return;
                }
                let next = pr.next_index.min(last + 1);
                let end = self.batch_end(next, max_batch, last);
                let msg = self.append_message(next, end, next - 1);
                let pr = self.progress.get_mut(&peer).expect("checked above");
                pr.next_index = next;
                pr.probe_sent = true;
                self.send(peer, msg);
            }
            ProgressState::Snapshot => unreachable!("handled above"),
            ProgressState::Replicate => {
                let mut sent = false;
                loop {
                    let pr = &self.progress[&peer];
                    if pr.next_index > last || pr.inflight.len() >= max_inflight {
                        break;
                    }
                    let next = pr.next_index;
                    let end = self.batch_end(next, max_batch, last);
                    let msg = self.append_message(next, end, next - 1);
                    let pr = self.progress.get_mut(&peer).expect("checked above");
                    pr.next_index = end + 1;
                    pr.inflight.push_back(end);
                    self.send(peer, msg);
                    sent = true;
                }
                if heartbeat && !sent {
                    // matchIndex is known to match, so this heartbeat can never be rejected,
                    // unless the entry there is compacted: then the snapshot goes instead.
                    let m = self.progress[&peer].match_index;
                    if self.log.term_at(m).is_none() {
                        self.send_snapshot(peer, true);
                        return;
                    }
                    let msg = self.append_message(m + 1, m, m);
                    self.send(peer, msg);
                }
            }
        }
    }

    /// Follows `from` as the leader of the current term; false if this node leads it itself.
    pub(crate) fn accept_leader(&mut self, from: NodeId) -> bool {
        if self.role == RaftRole::Leader {
            // Two leaders in one term cannot happen; refuse rather than corrupt the log.
            return false;
        }
        if self.role != RaftRole::Follower || self.leader_id != Some(from) {
            self.become_follower(self.hard.current_term, Some(from));
        } else {
            self.last_leader_contact = Some(self.now);
            self.reset_election_timer();
        }
        true
    }

    /// The receiver's side of AppendEntries (Figure 2, steps 2-5).
    pub(crate) fn handle_append_entries(
        &mut self,
        from: NodeId,
        prev_log_index: u64,
        prev_log_term: u64,
        entries: Vec<Entry>,
        leader_commit: u64,
    ) {
        if !self.accept_leader(from) {
            return;
        }
        let term = self.hard.current_term;
        let (mut prev_log_index, mut prev_log_term, mut entries) =
            (prev_log_index, prev_log_term, entries);
        if self.log.is_compacted(prev_log_index) {
            // Entries up to our snapshot are committed, so they match the leader's: skip them.
            let skip = ((self.log.snapshot_index() - prev_log_index) as usize).min(entries.len());
            if skip > 0 {
                prev_log_term = entries[skip - 1].pos.era;
                prev_log_index += skip as u64;
                entries.drain(..skip);
            }
            if self.log.is_compacted(prev_log_index) {
                let msg = Message::AppendEntriesResponse {
                    term,
                    success: true,
                    match_index: prev_log_index,
                    conflict_index: 0,
                    conflict_term: None,
                };
                self.send(from, msg);
                return;
            }
        }
        let reject = |conflict_index, conflict_term| Message::AppendEntriesResponse {
            term,
            success: false,
            match_index: prev_log_index,
            conflict_index,
            conflict_term,
        };
        match self.log.term_at(prev_log_index) {
            None => {
                let msg = reject(self.log.last_index() + 1, None);
                self.send(from, msg);
                return;
            }
            Some(t) if t != prev_log_term => {
                let first = self.log.first_index_of_term(t, prev_log_index);
                let msg = reject(first, Some(t));
                self.send(from, msg);
                return;
            }
            Some(_) => {}
        }
        // Skip entries already present; truncate at the first conflict; append the rest.
        let config_before = self.members.latest_position();
        let mut first_new = entries.len();
        for (i, e) in entries.iter().enumerate() {
            match self.log.term_at(e.pos.seq) {
                Some(t) if t == e.pos.era => continue,
                Some(_) => {
                    let keep = e.pos.seq - 1;
                    if keep < self.commit_index {
                        // Log Matching says this cannot happen; if it does, say so and keep
                        // the committed prefix rather than rewrite it.
                        self.ready.violations.push(format!(
                            "node {}: AppendEntries from {from} conflicts at index {}, at or \
                             below its commit index {}",
                            self.id, e.pos.seq, self.commit_index
                        ));
                        return;
                    }
                    let at = self.log.position_at(keep).expect("keep is inside the log");
                    self.log.truncate_after(keep);
                    self.members.truncated_after_seq(keep);
                    self.ready.persist.push(PersistOp::TruncateAfter(at));
                    first_new = i;
                    break;
                }
                None => {
                    first_new = i;
                    break;
                }
            }
        }
        let last_new = prev_log_index + entries.len() as u64;
        if first_new < entries.len() {
            let fresh: Vec<Entry> = entries.into_iter().skip(first_new).collect();
            for e in &fresh {
                self.log.push(e.clone());
            }
            self.members.appended(&fresh);
            self.persist_append(fresh);
        }
        self.track_membership(config_before);
        if leader_commit > self.commit_index {
            self.commit_index = self.commit_index.max(leader_commit.min(last_new));
        }
        self.send(
            from,
            Message::AppendEntriesResponse {
                term,
                success: true,
                match_index: last_new,
                conflict_index: 0,
                conflict_term: None,
            },
        );
    }

    /// The leader's side of an AppendEntries answer.
    pub(crate) fn handle_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        match_index: u64,
        conflict_index: u64,
        conflict_term: Option<u64>,
    ) {
        if self.role != RaftRole::Leader {
            return;
        }
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.answered_since_heartbeat = true;
        if success {
            if pr.on_success(match_index) {
                self.maybe_commit();
            }
            self.send_append(from, false);
            self.maybe_timeout_now(from);
            return;
        }
        // A rejection of an AppendEntries older than what we already know is stale.
        let stale = match pr.state {
            ProgressState::Replicate => match_index <= pr.match_index,
            ProgressState::Probe => match_index + 1 != pr.next_index,
            ProgressState::Snapshot => true,
        };
        if stale {
            return;
        }
        let hinted = match conflict_term {
            Some(t) => match self.log.last_index_of_term(t) {
                Some(i) => i + 1,
                None => conflict_index,
            },
            None => conflict_index,
        };
        let next = hinted.min(match_index).clamp(pr.match_index + 1, last + 1);
        pr.become_probe(next);
        self.send_append(from, false);
    }

    /// Commits the highest index stored on a majority, if it is of the current term (5.4.2).
    pub(crate) fn maybe_commit(&mut self) {
        if self.role != RaftRole::Leader {
            return;
        }
        let n = self.quorum.committed(|id| {
            if id == self.id {
                self.log.durable_index()
            } else {
                self.progress.get(&id).map_or(0, |p| p.match_index)
            }
        });
        if n > self.commit_index && self.log.term_at(n) == Some(self.hard.current_term) {
            self.commit_index = n;
            self.after_commit();
        }
    }
}
