//! The words a protocol lends the stories and the narrator: what it calls things, which
//! messages play which part, and the sentences that explain its choices.
//!
//! Sentence templates name their blanks in braces: `{leader}`, `{era}`, `{at}`, `{lag}`,
//! `{rejections}`, `{old}`, `{sync}`, `{result}`, `{own_era}`.

use serde_json::Value;
use std::time::Duration;

/// How a protocol's elections resolve competing candidates.
#[derive(Clone, Copy, Debug)]
pub enum SplitVotes {
    /// Candidates can split the votes; the split-vote story searches seeds for a first
    /// election that splits, with election timeouts drawn from `timeout` to make it likely.
    Split {
        /// The role name of a node that asks for votes.
        candidate_role: &'static str,
        /// The narrow election timeout range of the search.
        timeout: (Duration, Duration),
    },
    /// Votes converge on the best candidate within one round; the sentence explains why.
    Converge(&'static str),
}

/// How a lagging follower catches up: the messages that tell the mechanisms apart.
#[derive(Clone, Copy, Debug)]
pub struct CatchUp {
    /// Message names to look for among those sent to the follower, in order, each with the
    /// sentence that explains the mechanism (`{lag}`: the follower).
    pub mechanisms: &'static [(&'static str, &'static str)],
    /// The mechanism when none of those was sent, and its sentence.
    pub otherwise: (&'static str, &'static str),
    /// The sentence for `otherwise` when the follower rejected the leader's first attempts
    /// (`{rejections}`), if the protocol can do that.
    pub after_rejections: &'static str,
    /// Whether a message the follower sent rejects the leader's attempt.
    pub is_rejection: fn(&str, &Value) -> bool,
}

/// How the stale-proposal story reports the rollback.
#[derive(Clone, Copy, Debug)]
pub struct StaleRollback {
    /// Messages one of which repairs the returning node's log, in order of preference; when
    /// none is seen the story names `otherwise`.
    pub repair: &'static [&'static str],
    /// The repair's name when no message of `repair` is seen.
    pub otherwise: &'static str,
    /// The sentence: `{old}`, `{sync}`, `{result}`, `{own_era}`.
    pub sentence: &'static str,
    /// `{result}` when the stale entry is gone, and when it is still there.
    pub results: (&'static str, &'static str),
}

/// The words of one protocol.
#[derive(Clone, Copy, Debug)]
pub struct Words {
    /// The protocol's name for people ("Raft").
    pub title: &'static str,
    /// A member that receives the log without voting ("learner", "observer").
    pub learner: &'static str,
    /// What it calls a leader's reign ("term").
    pub era: &'static str,
    /// What the nodes are when the cluster starts ("followers").
    pub starting_role: &'static str,
    /// How the first election starts.
    pub election_start: &'static str,
    /// The sentence for an election in which votes converged (`{leader}`, `{era}`, `{at}`);
    /// `None`: the story names the node that moved first instead.
    pub elected: Option<&'static str>,
    /// The message a leader sends to keep its followers ("AppendEntries").
    pub heartbeat_message: &'static str,
    /// Those messages, for people ("heartbeats (empty AppendEntries)").
    pub heartbeats: &'static str,
    /// How competing candidates are resolved.
    pub split_votes: SplitVotes,
    /// Whether a sent message (name, fields) carries the write at `[era, seq]`, its
    /// acknowledgement or its commit.
    pub carries_write: fn(&str, &Value, [u64; 2]) -> bool,
    /// The only message that tells followers of a commit, if the protocol has one to single
    /// out from the others that carry the write.
    pub commit_message: Option<&'static str>,
    /// How followers learn of a commit, for people.
    pub commit_notice: &'static str,
    /// Whether a sent message (name, fields) is worth a line of narration (routine traffic,
    /// heartbeats and the like, is not).
    pub interesting: fn(&str, &Value) -> bool,
    /// The few fields of a message that matter to a reader, for its line of narration.
    pub brief: fn(&str, &Value) -> String,
    /// How a lagging follower catches up.
    pub catch_up: CatchUp,
    /// Added to the sentence of a rejoin that caused no election.
    pub rejoin_aside: &'static str,
    /// How a stale proposal is rolled back.
    pub stale: StaleRollback,
    /// How a read index is obtained, for people.
    pub read_index: &'static str,
    /// Why a cut-off leader could answer a lease read, for people.
    pub lease_read: &'static str,
}

/// Parts of a message's summary, joined by commas (empty parts left out).
pub fn join(parts: Vec<String>) -> String {
    parts
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fills a template's `{name}` blanks.
pub(crate) fn fill(template: &str, blanks: &[(&str, String)]) -> String {
    let mut s = template.to_string();
    for (name, value) in blanks {
        s = s.replace(&format!("{{{name}}}"), value);
    }
    s
}
