//! The one way to carry out a [`Ready`], shared by every driver (the tokio runtime, the
//! simulator, the in-memory [`crate::direct::Direct`]): what must be durable first, then the
//! steps that follow the fsync, in the contract's order, and the rule that answers the clients
//! waiting for the entries they proposed.
//!
//! A driver carries out the [`Early`] part (the messages and the applies that need nothing
//! durable first), writes [`Ready::persist`] and syncs it (at once, or after a simulated
//! fsync), then walks [`Release::steps`], doing each step with its own IO and handing applied
//! commands to [`Waiters::applied`].

use crate::replica::{Envelope, ReadState, Ready};
use crate::types::{Command, Entry, NodeId, Payload, Position, Snapshot};
use std::collections::BTreeMap;

/// The part of a [`Ready`] that needs nothing of its persist operations: carried out before
/// they are durable, after every step of earlier Readys.
#[derive(Clone, Debug, PartialEq)]
pub struct Early<M> {
    /// Messages to send at once (a leader's replication; see [`Ready::early`]).
    pub messages: Vec<Envelope<M>>,
    /// Committed entries to apply at once, in order, then hand to [`Waiters::applied`].
    pub committed: Vec<Entry>,
}

impl<M> Early<M> {
    /// True when there is nothing to send or apply.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.committed.is_empty()
    }
}

/// The part of a [`Ready`] that waits until its persist operations are durable.
#[derive(Clone, Debug, PartialEq)]
pub struct Release<M> {
    /// The last position the Ready appended: tell the core once it is durable.
    pub appended: Option<Position>,
    /// Messages to send.
    pub messages: Vec<Envelope<M>>,
    /// Read indexes the core answered.
    pub reads: Vec<ReadState>,
    /// A snapshot to restore the state machine from, before `committed`.
    pub restore: Option<Snapshot>,
    /// Committed entries to apply, in order.
    pub committed: Vec<Entry>,
    /// Where to snapshot the state machine once `committed` is applied.
    pub snapshot_at: Option<Position>,
}

/// One thing a driver does after the fsync, in this order.
#[derive(Clone, Debug, PartialEq)]
pub enum Step<M> {
    /// Call [`crate::Replica::persisted`] with this position.
    Persisted(Position),
    /// Send this message.
    Send(Envelope<M>),
    /// A read may be served once the state machine applied through its position.
    Read(ReadState),
    /// Restore the state machine from this snapshot (then [`Waiters::restored`]).
    Restore(Snapshot),
    /// Apply this committed entry (then [`Waiters::applied`]).
    Apply(Entry),
    /// Snapshot the state machine at this position and hand it to [`crate::Replica::compact`].
    Snapshot(Position),
}

impl<M, H> Ready<M, H> {
    /// Splits the Ready into what needs nothing durable first, what to persist, and what
    /// follows once it is durable.
    ///
    /// A Ready that changes the hard state (a term, a vote, an epoch) sends nothing before
    /// it is durable: its `early` messages wait with the rest. Committed entries are applied
    /// early, before the fsync of this Ready's own appends: they are already durable on a
    /// majority and can never change, and the state machine is rebuilt from the durable
    /// log and snapshot after a crash, so applying them needs nothing of this node's
    /// persist. A leader answers its clients one fsync sooner (docs/performance.md). They
    /// wait only when the Ready restores a snapshot, which comes first.
    pub fn split(mut self) -> (Early<M>, Vec<crate::PersistOp<H>>, Release<M>) {
        let appended = self.appended_through();
        if self
            .persist
            .iter()
            .any(|op| matches!(op, crate::PersistOp::HardState(_)))
        {
            self.early.append(&mut self.messages);
            self.messages = std::mem::take(&mut self.early);
        }
        let committed_early = if self.restore.is_none() {
            std::mem::take(&mut self.committed)
        } else {
            Vec::new()
        };
        (
            Early {
                messages: self.early,
                committed: committed_early,
            },
            self.persist,
            Release {
                appended,
                messages: self.messages,
                reads: self.reads,
                restore: self.restore,
                committed: self.committed,
                snapshot_at: self.snapshot_at,
            },
        )
    }
}

impl<M> Release<M> {
    /// The steps, in the order the contract requires: the core learns what is durable, the
    /// messages go out, then the state machine restores, applies and snapshots.
    pub fn steps(self) -> Steps<M> {
        Steps {
            appended: self.appended,
            messages: self.messages.into_iter(),
            reads: self.reads.into_iter(),
            restore: self.restore,
            committed: self.committed.into_iter(),
            snapshot_at: self.snapshot_at,
        }
    }

    /// True when a step hands the core new input (a durable append or a snapshot), so that
    /// the driver must look for a new Ready afterwards.
    pub fn feeds_core(&self) -> bool {
        self.appended.is_some() || self.snapshot_at.is_some()
    }
}

/// The steps of a [`Release`], in order (see [`Release::steps`]).
pub struct Steps<M> {
    appended: Option<Position>,
    messages: std::vec::IntoIter<Envelope<M>>,
    reads: std::vec::IntoIter<ReadState>,
    restore: Option<Snapshot>,
    committed: std::vec::IntoIter<Entry>,
    snapshot_at: Option<Position>,
}

impl<M> Iterator for Steps<M> {
    type Item = Step<M>;

    fn next(&mut self) -> Option<Step<M>> {
        if let Some(p) = self.appended.take() {
            return Some(Step::Persisted(p));
        }
        if let Some(m) = self.messages.next() {
            return Some(Step::Send(m));
        }
        if let Some(r) = self.reads.next() {
            return Some(Step::Read(r));
        }
        if let Some(s) = self.restore.take() {
            return Some(Step::Restore(s));
        }
        if let Some(e) = self.committed.next() {
            return Some(Step::Apply(e));
        }
        self.snapshot_at.take().map(Step::Snapshot)
    }
}

/// What a client hears about the entry it proposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<O> {
    /// Its command was applied at its position; the state machine's output.
    Done(O),
    /// Another entry took its position, or the committed log moved past it: the command was
    /// not applied there (retrying with the same session is safe).
    Superseded,
    /// The state machine was replaced by a snapshot that covers its position: the command may
    /// or may not have taken effect.
    Unknown,
}

/// Clients waiting for the entries they proposed, keyed by position: the one rule by which
/// every driver answers them.
#[derive(Clone, Debug)]
pub struct Waiters<T> {
    waiting: BTreeMap<Position, (Command, T)>,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Waiters {
            waiting: BTreeMap::new(),
        }
    }
}

impl<T> Waiters<T> {
    /// Records that `token`'s command was proposed at `pos`; a waiter displaced from the same
    /// position is returned, superseded.
    pub fn insert(&mut self, pos: Position, command: Command, token: T) -> Option<T> {
        self.waiting.insert(pos, (command, token)).map(|(_, t)| t)
    }

    /// Number of clients waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// True when nobody waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The state machine restored a snapshot through `last`: whoever waits at or before it
    /// cannot know whether its command took effect.
    pub fn restored<O>(&mut self, last: Position) -> Vec<(T, Outcome<O>)> {
        let mut out = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            if *entry.key() > last {
                break;
            }
            out.push((entry.remove().1, Outcome::Unknown));
        }
        out
    }

    /// The entry at `pos` was applied (with the state machine's `output` when it carried a
    /// command): its waiter is answered, and whoever waits before it was superseded.
    pub fn applied<O>(
        &mut self,
        pos: Position,
        payload: &Payload,
        output: Option<O>,
    ) -> Vec<(T, Outcome<O>)> {
        let mut out = Vec::new();
        let mut output = output;
        while let Some(entry) = self.waiting.first_entry() {
            if *entry.key() > pos {
                break;
            }
            let at = *entry.key();
            let (proposed, token) = entry.remove();
            let outcome = match payload {
                Payload::Command(cmd) if at == pos && *cmd == proposed => {
                    output.take().map_or(Outcome::Superseded, Outcome::Done)
                }
                _ => Outcome::Superseded,
            };
            out.push((token, outcome));
        }
        out
    }
}

/// Reads a driver serves outside the log, waiting for their read index (from the core's
/// [`ReadState`]) and then for the state machine to apply through it: the one rule every
/// driver follows for them, in arrival order.
#[derive(Clone, Debug)]
pub struct PendingReads<T> {
    /// (the read's id, its read-only command, who waits, the position to wait for).
    waiting: Vec<(u64, Command, T, Option<Position>)>,
}

impl<T> Default for PendingReads<T> {
    fn default() -> Self {
        PendingReads {
            waiting: Vec::new(),
        }
    }
}

impl<T> PendingReads<T> {
    /// Adds read `id` of `command` for `token`; it waits for `at`, or, when `None`, for the
    /// core to answer its read index.
    pub fn push(&mut self, id: u64, command: Command, token: T, at: Option<Position>) {
        self.waiting.push((id, command, token, at));
    }

    /// True when no read waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The core answered a read index: the read now waits for its position; a refused read is
    /// handed back with the leader hint, for its client to be told.
    pub fn answered(&mut self, read: ReadState) -> Option<(T, Option<NodeId>)> {
        let i = self.waiting.iter().position(|w| w.0 == read.id)?;
        match read.at {
            Ok(at) => {
                self.waiting[i].3 = Some(at);
                None
            }
            Err(e) => {
                let (_, _, token, _) = self.waiting.remove(i);
                Some((token, e.leader_hint()))
            }
        }
    }

    /// Takes the reads the state machine can answer now that it has applied through
    /// `applied`, in arrival order.
    pub fn ready(&mut self, applied: Position) -> Vec<(T, Command)> {
        if self.waiting.is_empty() {
            return Vec::new();
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.3.is_some_and(|at| at <= applied));
        self.waiting = waiting;
        ready.into_iter().map(|(_, c, t, _)| (t, c)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn p(seq: u64) -> Position {
        Position::new(1, seq)
    }

    fn cmd(s: &'static str) -> Payload {
        Payload::Command(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn early_messages_go_before_the_persist_unless_the_hard_state_changes() {
        let env = |to, msg| Envelope { to, msg };
        let mut ready: Ready<&str, u8> = Ready::default();
        ready.append(vec![Entry::command(p(1), Bytes::new())]);
        ready.send_early(env(2, "append to 2"));
        ready.messages.push(env(3, "after the fsync, to 3"));
        // 3 already has a message waiting for the fsync: this one must not overtake it.
        ready.send_early(env(3, "append to 3"));
        ready.send_early(env(2, "second append to 2"));
        let all: Vec<_> = ready.all_messages().map(|e| e.msg).collect();
        assert_eq!(
            all,
            [
                "append to 2",
                "second append to 2",
                "after the fsync, to 3",
                "append to 3"
            ]
        );
        let (early, _, release) = ready.clone().split();
        assert_eq!(
            early.messages,
            [env(2, "append to 2"), env(2, "second append to 2")]
        );
        assert_eq!(release.messages.len(), 2);
        // A new term or vote is durable before this node says anything.
        ready.persist.insert(0, crate::PersistOp::HardState(1));
        let (early, _, release) = ready.split();
        assert!(early.is_empty());
        let msgs: Vec<_> = release.messages.iter().map(|e| e.msg).collect();
        assert_eq!(msgs, all);
    }

    #[test]
    fn the_steps_follow_the_contract_order() {
        let e = Entry::command(p(1), Bytes::new());
        let snap = Snapshot {
            last: p(0),
            data: Bytes::new(),
            members: None,
        };
        let mut ready: Ready<&str, ()> = Ready::default();
        ready.append(vec![e.clone()]);
        ready.messages.push(Envelope { to: 2, msg: "m" });
        ready.restore = Some(snap.clone());
        ready.committed = vec![e.clone()];
        ready.snapshot_at = Some(p(1));
        let (early, persist, release) = ready.split();
        // The snapshot is restored first: the committed entry waits for it.
        assert!(early.is_empty());
        assert_eq!(persist.len(), 1);
        assert!(release.feeds_core());
        let steps: Vec<_> = release.steps().collect();
        assert_eq!(
            steps,
            vec![
                Step::Persisted(p(1)),
                Step::Send(Envelope { to: 2, msg: "m" }),
                Step::Restore(snap),
                Step::Apply(e),
                Step::Snapshot(p(1)),
            ]
        );
    }

    #[test]
    fn committed_entries_are_applied_before_the_fsync_unless_a_snapshot_comes_first() {
        let committed = vec![
            Entry::command(p(1), Bytes::new()),
            Entry::command(p(2), Bytes::new()),
        ];
        let mut ready: Ready<&str, u64> = Ready::default();
        ready.persist.push(crate::PersistOp::HardState(2));
        ready.append(vec![Entry::command(p(3), Bytes::new())]);
        ready.messages.push(Envelope { to: 2, msg: "ack" });
        ready.committed = committed.clone();
        ready.snapshot_at = Some(p(2));
        let (early, persist, release) = ready.clone().split();
        assert_eq!(early.committed, committed);
        assert!(early.messages.is_empty());
        assert_eq!(persist.len(), 2);
        // The snapshot is taken after the fsync, of the state the early applies left.
        let steps: Vec<_> = release.steps().collect();
        assert_eq!(
            steps,
            vec![
                Step::Persisted(p(3)),
                Step::Send(Envelope { to: 2, msg: "ack" }),
                Step::Snapshot(p(2)),
            ]
        );
        ready.restore = Some(Snapshot {
            last: p(0),
            data: Bytes::new(),
            members: None,
        });
        let (early, _, release) = ready.split();
        assert!(early.is_empty());
        assert_eq!(release.committed, committed);
    }

    #[test]
    fn a_read_is_served_once_its_index_is_applied_and_a_refusal_is_handed_back() {
        let mut r: PendingReads<&str> = PendingReads::default();
        let get = Bytes::from_static(b"get");
        r.push(1, get.clone(), "a", None);
        r.push(2, get.clone(), "b", Some(p(3)));
        r.push(3, get.clone(), "c", None);
        assert!(
            r.ready(p(9)).iter().map(|x| x.0).eq(["b"]),
            "1 and 3 wait for an index"
        );
        assert_eq!(r.answered(ReadState::at(1, p(5))), None);
        assert_eq!(
            r.answered(ReadState::refused(3, Some(2))),
            Some(("c", Some(2)))
        );
        assert!(r.ready(p(4)).is_empty());
        assert!(r.ready(p(5)).iter().map(|x| x.0).eq(["a"]));
        assert!(r.is_empty());
    }

    #[test]
    fn a_waiter_is_done_only_by_its_own_command_at_its_position() {
        let mut w: Waiters<u32> = Waiters::default();
        assert_eq!(w.insert(p(1), Bytes::from_static(b"a"), 1), None);
        assert_eq!(w.insert(p(2), Bytes::from_static(b"b"), 2), None);
        assert_eq!(w.insert(p(3), Bytes::from_static(b"c"), 3), None);
        // Another leader's entry took position 2: 1 (before it) and 2 are superseded.
        let got = w.applied(p(2), &cmd("x"), Some("out"));
        assert_eq!(
            got,
            vec![(1, Outcome::Superseded), (2, Outcome::Superseded)]
        );
        let got = w.applied(p(3), &cmd("c"), Some("out"));
        assert_eq!(got, vec![(3, Outcome::Done("out"))]);
        assert!(w.is_empty());
    }

    #[test]
    fn a_noop_supersedes_and_a_restore_leaves_the_outcome_unknown() {
        let mut w: Waiters<u32> = Waiters::default();
        w.insert(p(1), Bytes::from_static(b"a"), 1);
        w.insert(p(5), Bytes::from_static(b"b"), 2);
        w.insert(p(9), Bytes::from_static(b"c"), 3);
        let got = w.applied::<()>(p(1), &Payload::Noop, None);
        assert_eq!(got, vec![(1, Outcome::Superseded)]);
        let got = w.restored::<()>(p(6));
        assert_eq!(got, vec![(2, Outcome::Unknown)]);
        assert_eq!(w.len(), 1);
        assert_eq!(
            w.insert(p(9), Bytes::from_static(b"d"), 4),
            Some(3),
            "a displaced waiter is handed back"
        );
    }
}
