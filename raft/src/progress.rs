//! What a leader knows about each follower: nextIndex, matchIndex, and how it sends to it.

/// How the leader currently sends entries to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Where the follower's log matches is unknown: one AppendEntries at a time.
    Probe,
    /// The logs match up to matchIndex: AppendEntries are pipelined.
    Replicate,
    /// The entries the follower needs are compacted: an InstallSnapshot is out.
    Snapshot,
}

/// The leader's volatile state for one follower (Figure 2, "volatile state on leaders").
#[derive(Clone, Debug)]
pub struct Progress {
    /// Index of the next log entry to send to that server.
    pub next_index: u64,
    /// Index of the highest log entry known to be replicated on that server.
    pub match_index: u64,
    /// Probe or Replicate.
    pub state: ProgressState,
    /// In Probe: an AppendEntries is out and we wait for its answer or the next heartbeat.
    pub probe_sent: bool,
    /// In Replicate: last index of each pipelined AppendEntries not yet acknowledged.
    pub inflight: std::collections::VecDeque<u64>,
    /// Heard from this follower since the last check-quorum round.
    pub recent_active: bool,
    /// matchIndex at the previous heartbeat, to notice a stalled pipeline.
    pub match_at_last_heartbeat: u64,
    /// An answer arrived since the previous heartbeat, so an outstanding probe was not lost.
    pub answered_since_heartbeat: bool,
    /// In Snapshot: the snapshot being sent (its last index) and the offset of its next chunk.
    pub snapshot_sending: Option<(u64, u64)>,
}

impl Progress {
    /// Progress for a follower of a new leader whose last index is `last_index`.
    pub fn new(last_index: u64) -> Self {
        Progress {
            next_index: last_index + 1,
            match_index: 0,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: Default::default(),
            recent_active: false,
            match_at_last_heartbeat: 0,
            answered_since_heartbeat: false,
            snapshot_sending: None,
        }
    }

    /// Switches to probing from `next_index`.
    pub fn become_probe(&mut self, next_index: u64) {
        self.state = ProgressState::Probe;
        self.next_index = next_index.max(self.match_index + 1);
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Records a successful append up to `match_index`; returns true if it was news.
    pub fn on_success(&mut self, match_index: u64) -> bool {
        let advanced = match_index > self.match_index;
        if advanced {
            self.match_index = match_index;
        }
        self.next_index = self.next_index.max(match_index + 1);
        while self.inflight.front().is_some_and(|&i| i <= match_index) {
            self.inflight.pop_front();
        }
        if self.state != ProgressState::Replicate {
            self.state = ProgressState::Replicate;
            self.probe_sent = false;
            self.inflight.clear();
            self.next_index = self.match_index + 1;
        }
        advanced
    }
}
