//! Raft's RPCs, with the paper's field names (Figure 2, plus the pre-vote of section 9.6 of the
//! dissertation and the conflict hint of section 5.3).

use bytes::Bytes;
use consensus_core::Entry;
use serde::{Deserialize, Serialize};

/// A Raft message; the sender is known from the envelope, so `candidateId` and `leaderId`
/// are implicit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Invoked by candidates to gather votes; with `pre_vote`, asks whether a vote would be
    /// granted for `term` without anyone changing term.
    RequestVote {
        /// Candidate's term (for a pre-vote: the term it would campaign in).
        term: u64,
        /// Index of candidate's last log entry.
        last_log_index: u64,
        /// Term of candidate's last log entry.
        last_log_term: u64,
        /// True for a pre-vote round.
        pre_vote: bool,
    },
    /// The answer to [`Message::RequestVote`].
    RequestVoteResponse {
        /// Voter's current term (for a granted pre-vote: the term asked about).
        term: u64,
        /// True means the candidate received the vote.
        vote_granted: bool,
        /// True when answering a pre-vote.
        pre_vote: bool,
    },
    /// Invoked by the leader to replicate log entries; also the heartbeat.
    AppendEntries {
        /// Leader's term.
        term: u64,
        /// Index of the log entry immediately preceding the new ones.
        prev_log_index: u64,
        /// Term of the `prev_log_index` entry.
        prev_log_term: u64,
        /// Log entries to store (empty for a heartbeat).
        entries: Vec<Entry>,
        /// Leader's commitIndex.
        leader_commit: u64,
    },
    /// The answer to [`Message::AppendEntries`].
    AppendEntriesResponse {
        /// Follower's current term.
        term: u64,
        /// True if the follower contained an entry matching prevLogIndex and prevLogTerm.
        success: bool,
        /// On success, the index of the last entry known to match the leader's log; on
        /// failure, the `prev_log_index` that was rejected.
        match_index: u64,
        /// On failure, where the leader should retry from (the conflict hint).
        conflict_index: u64,
        /// On failure, the term of the follower's conflicting entry, if it has one there.
        conflict_term: Option<u64>,
    },
    /// Invoked by the leader to send a follower the snapshot that replaced the entries it
    /// needs, one chunk at a time (section 7, Figure 13).
    InstallSnapshot {
        /// Leader's term.
        term: u64,
        /// The snapshot replaces all entries up through and including this index.
        last_included_index: u64,
        /// Term of `last_included_index`.
        last_included_term: u64,
        /// Byte offset of this chunk in the snapshot.
        offset: u64,
        /// The chunk of the state machine's encoded state.
        data: Bytes,
        /// True for the last chunk.
        done: bool,
        /// On the last chunk, the configuration in force at `last_included_index`.
        members: Option<Box<consensus_core::Membership>>,
    },
    /// The answer to [`Message::InstallSnapshot`].
    InstallSnapshotResponse {
        /// Follower's current term.
        term: u64,
        /// The index up to which the follower's log now matches the leader's (once the
        /// snapshot is installed).
        match_index: u64,
        /// The snapshot the answer is about.
        last_included_index: u64,
        /// `None`: installed; `Some(offset)`: send the chunk that starts there next.
        next_offset: Option<u64>,
    },
    /// A follower asks the leader for a read index (dissertation 6.4).
    ReadIndex {
        /// Follower's current term.
        term: u64,
        /// The follower's id for the read.
        id: u64,
        /// Whether a lease may answer it without a round.
        lease: bool,
    },
    /// The leader's answer to [`Message::ReadIndex`].
    ReadIndexResponse {
        /// Leader's current term.
        term: u64,
        /// The follower's id for the read.
        id: u64,
        /// The read index as (term, index), or `None`: ask again (this node does not lead).
        index: Option<(u64, u64)>,
    },
    /// The leader confirms it still leads, for the reads waiting on round `round`.
    ReadProbe {
        /// Leader's term.
        term: u64,
        /// The confirming round.
        round: u64,
    },
    /// The answer to [`Message::ReadProbe`].
    ReadProbeResponse {
        /// Follower's current term.
        term: u64,
        /// The round acknowledged.
        round: u64,
    },
    /// The leader tells the target of a leadership transfer, whose log it brought up to date,
    /// to start an election at once (dissertation 3.10).
    TimeoutNow {
        /// Leader's term.
        term: u64,
    },
    /// A RequestVote from the target of a leadership transfer: the dissertation's flag that
    /// lets voters disregard the leader they still hear (4.2.3), since that leader asked for it.
    TransferVote {
        /// Candidate's term.
        term: u64,
        /// Index of candidate's last log entry.
        last_log_index: u64,
        /// Term of candidate's last log entry.
        last_log_term: u64,
    },
}

impl consensus_core::MessageName for Message {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        Message::name(self).into()
    }

    fn only_for_reads(&self) -> bool {
        matches!(
            self,
            Message::ReadIndex { .. }
                | Message::ReadIndexResponse { .. }
                | Message::ReadProbe { .. }
                | Message::ReadProbeResponse { .. }
        )
    }
}

impl Message {
    /// The term the message carries.
    pub fn term(&self) -> u64 {
        match self {
            Message::RequestVote { term, .. }
            | Message::RequestVoteResponse { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendEntriesResponse { term, .. }
            | Message::InstallSnapshot { term, .. }
            | Message::InstallSnapshotResponse { term, .. }
            | Message::ReadIndex { term, .. }
            | Message::ReadIndexResponse { term, .. }
            | Message::ReadProbe { term, .. }
            | Message::ReadProbeResponse { term, .. }
            | Message::TimeoutNow { term }
            | Message::TransferVote { term, .. } => *term,
        }
    }

    /// The message's name as the paper spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Message::RequestVote { pre_vote: true, .. } => "PreVote",
            Message::RequestVote { .. } => "RequestVote",
            Message::RequestVoteResponse { pre_vote: true, .. } => "PreVoteResponse",
            Message::RequestVoteResponse { .. } => "RequestVoteResponse",
            Message::AppendEntries { .. } => "AppendEntries",
            Message::AppendEntriesResponse { .. } => "AppendEntriesResponse",
            Message::InstallSnapshot { .. } => "InstallSnapshot",
            Message::InstallSnapshotResponse { .. } => "InstallSnapshotResponse",
            Message::ReadIndex { .. } => "ReadIndex",
            Message::ReadIndexResponse { .. } => "ReadIndexResponse",
            Message::ReadProbe { .. } => "ReadProbe",
            Message::ReadProbeResponse { .. } => "ReadProbeResponse",
            Message::TimeoutNow { .. } => "TimeoutNow",
            Message::TransferVote { .. } => "TransferVote",
        }
    }
}
