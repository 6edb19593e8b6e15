//! A replicated key-value store: put, get and compare-and-set on string keys.
//!
//! Commands carry a client id and a per-client sequence number; the store remembers each
//! client's last sequence number and output, so a retried command takes effect at most once
//! and a command older than the client's latest is ignored (Raft dissertation, section 6.3).

use crate::codec;
use crate::state_machine::StateMachine;
use crate::types::{Command, Position};
use async_trait::async_trait;
use bytes::Bytes;
use imbl::{ordmap, OrdMap};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// One operation on the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Read `key`.
    Get {
        /// The key.
        key: String,
    },
    /// Set `key` to `new` if it currently holds `expected`.
    Cas {
        /// The key.
        key: String,
        /// The value the key must hold.
        expected: String,
        /// The value to store on success.
        new: String,
    },
    /// Remove `key` (a no-op if it is absent).
    Delete {
        /// The key.
        key: String,
    },
    /// Set `key` to `value` only if it is absent (a compare-and-set against "no value").
    Create {
        /// The key.
        key: String,
        /// The value to store if the key is absent.
        value: String,
    },
}

impl KvOp {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            KvOp::Put { key, .. }
            | KvOp::Get { key }
            | KvOp::Cas { key, .. }
            | KvOp::Delete { key }
            | KvOp::Create { key, .. } => key,
        }
    }
}

/// A client's operation with its session identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvCommand {
    /// The issuing client.
    pub client: u64,
    /// The client's sequence number for this command, starting at 1.
    pub seq: u64,
    /// The operation.
    pub op: KvOp,
}

impl KvCommand {
    /// Encodes the command for proposing.
    pub fn encode(&self) -> Command {
        Bytes::from(codec::encode(self).expect("a KvCommand always encodes"))
    }
}

/// What a command did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOutput {
    /// A put was applied.
    Written,
    /// The value a get read (`None`: no such key).
    Value(Option<String>),
    /// Whether a compare-and-set matched and wrote.
    CasResult(bool),
    /// The command is older than the client's latest and was ignored.
    Stale,
    /// The command could not be decoded; the store is unchanged.
    Malformed(String),
    /// A delete was applied; whether the key was there.
    Deleted(bool),
}

/// The outputs without data, in the order [`KvOutput::encode`] indexes their shared encodings.
const DATALESS: [KvOutput; 6] = [
    KvOutput::Written,
    KvOutput::Stale,
    KvOutput::CasResult(false),
    KvOutput::CasResult(true),
    KvOutput::Deleted(false),
    KvOutput::Deleted(true),
];

impl KvOutput {
    /// Encodes the output for the client.
    pub fn encode(&self) -> Bytes {
        // The answers that carry no data (every put's) are the same bytes each time: they are
        // encoded once and shared, which spares two allocations per applied command.
        static CONSTANT: OnceLock<[Bytes; 6]> = OnceLock::new();
        let constant =
            |i: usize| CONSTANT.get_or_init(|| DATALESS.map(|out| out.encode_fresh()))[i].clone();
        match self {
            KvOutput::Written => constant(0),
            KvOutput::Stale => constant(1),
            KvOutput::CasResult(b) => constant(2 + usize::from(*b)),
            KvOutput::Deleted(b) => constant(4 + usize::from(*b)),
            KvOutput::Value(_) | KvOutput::Malformed(_) => self.encode_fresh(),
        }
    }

    fn encode_fresh(&self) -> Bytes {
        Bytes::from(codec::encode(self).expect("a KvOutput always encodes"))
    }
}

/// The in-memory key-value store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    /// Copy-on-write: a snapshot's copy shares it ([`StateMachine::snapshot_job`]).
    data: OrdMap<String, String>,
    sessions: BTreeMap<u64, (u64, KvOutput)>,
    applied: Position,
    applied_count: u64,
}

impl KvStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.data.get(key).map(String::as_str)
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Position of the last command applied.
    pub fn applied(&self) -> Position {
        self.applied
    }

    /// Number of commands applied since the store was empty, snapshots included.
    pub fn applied_count(&self) -> u64 {
        self.applied_count
    }

    /// True when both stores hold the same keys, values, sessions and command count (the
    /// position of the last command aside): what a replay of the same sequence must give.
    pub fn same_contents(&self, other: &KvStore) -> bool {
        self.data == other.data
            && self.sessions == other.sessions
            && self.applied_count == other.applied_count
    }

    /// Applies a decoded command, honouring the client's session.
    pub fn apply_command(&mut self, cmd: &KvCommand) -> KvOutput {
        self.apply_owned(cmd.clone())
    }

    /// Applies a command it owns: keys and values move into the store instead of being copied.
    fn apply_owned(&mut self, cmd: KvCommand) -> KvOutput {
        if let Some((last_seq, last_out)) = self.sessions.get(&cmd.client) {
            if cmd.seq == *last_seq {
                return last_out.clone();
            }
            if cmd.seq < *last_seq {
                return KvOutput::Stale;
            }
        }
        let out = match cmd.op {
            KvOp::Put { key, value } => {
                self.set(key, value);
                KvOutput::Written
            }
            KvOp::Get { key } => KvOutput::Value(self.data.get(&key).cloned()),
            KvOp::Cas { key, expected, new } => {
                if self.data.get(&key) == Some(&expected) {
                    self.set(key, new);
                    KvOutput::CasResult(true)
                } else {
                    KvOutput::CasResult(false)
                }
            }
            KvOp::Delete { key } => KvOutput::Deleted(self.data.remove(&key).is_some()),
            KvOp::Create { key, value } => {
                if let ordmap::Entry::Vacant(e) = self.data.entry(key) {
                    e.insert(value);
                    KvOutput::CasResult(true)
                } else {
                    KvOutput::CasResult(false)
                }
            }
        };
        self.sessions.insert(cmd.client, (cmd.seq, out.clone()));
        out
    }

    /// Stores `value` under `key`, reusing the stored key when there is one.
    fn set(&mut self, key: String, value: String) {
        match self.data.get_mut(&key) {
            Some(v) => *v = value,
            None => {
                self.data.insert(key, value);
            }
        }
    }

    /// Answers a get from the current state without applying it; anything else is refused.
    pub fn read_bytes(&self, command: &[u8]) -> KvOutput {
        match codec::decode::<KvCommand>(command) {
            Ok(KvCommand {
                op: KvOp::Get { key },
                ..
            }) => KvOutput::Value(self.get(&key).map(str::to_string)),
            Ok(_) => KvOutput::Malformed("only a get is served outside the log".into()),
            Err(e) => KvOutput::Malformed(e.to_string()),
        }
    }

    /// Decodes and applies raw command bytes; malformed bytes leave the store unchanged.
    pub fn apply_bytes(&mut self, pos: Position, command: &[u8]) -> KvOutput {
        match codec::decode::<KvCommand>(command) {
            Ok(cmd) => self.apply_at(pos, cmd),
            Err(e) => {
                self.applied = pos;
                self.applied_count += 1;
                KvOutput::Malformed(e.to_string())
            }
        }
    }

    /// The whole state, encoded (a snapshot's data).
    fn encoded(&self) -> Bytes {
        Bytes::from(codec::encode_state(self).expect("a KvStore always encodes"))
    }

    /// Applies a decoded command committed at `pos` (as [`KvStore::apply_bytes`] does); its
    /// key and value move into the store.
    pub fn apply_at(&mut self, pos: Position, cmd: KvCommand) -> KvOutput {
        self.applied = pos;
        self.applied_count += 1;
        self.apply_owned(cmd)
    }
}

#[async_trait]
impl StateMachine for KvStore {
    async fn apply(&mut self, pos: Position, command: &Command) -> Bytes {
        self.apply_bytes(pos, command).encode()
    }

    async fn snapshot(&mut self) -> Bytes {
        self.encoded()
    }

    async fn snapshot_job(&mut self) -> crate::state_machine::SnapshotJob {
        let copy = self.clone();
        Box::new(move || copy.encoded())
    }

    async fn query(&mut self, command: &Command) -> Bytes {
        self.read_bytes(command).encode()
    }

    async fn restore(&mut self, data: &[u8]) -> Result<(), crate::state_machine::RestoreError> {
        *self = if data.is_empty() {
            KvStore::new()
        } else {
            codec::decode_state(data)?
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::now_or_never;

    fn cmd(client: u64, seq: u64, op: KvOp) -> KvCommand {
        KvCommand { client, seq, op }
    }
    fn put(k: &str, v: &str) -> KvOp {
        KvOp::Put {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn delete_and_create_change_only_what_they_say() {
        let mut s = KvStore::new();
        let op = |seq, op| KvCommand { client: 1, seq, op };
        let key = || "k".to_string();
        let create = |v: &str| KvOp::Create {
            key: key(),
            value: v.into(),
        };
        assert_eq!(
            s.apply_command(&op(1, create("a"))),
            KvOutput::CasResult(true)
        );
        assert_eq!(
            s.apply_command(&op(2, create("b"))),
            KvOutput::CasResult(false)
        );
        assert_eq!(s.get("k"), Some("a"));
        let delete = || KvOp::Delete { key: key() };
        assert_eq!(s.apply_command(&op(3, delete())), KvOutput::Deleted(true));
        assert_eq!(s.apply_command(&op(4, delete())), KvOutput::Deleted(false));
        assert_eq!(s.get("k"), None);
        // A retried delete is answered from the session, as any command.
        assert_eq!(s.apply_command(&op(4, delete())), KvOutput::Deleted(false));
    }

    #[test]
    fn put_get_and_cas() {
        let mut s = KvStore::new();
        assert_eq!(
            s.apply_command(&cmd(1, 1, KvOp::Get { key: "a".into() })),
            KvOutput::Value(None)
        );
        assert_eq!(
            s.apply_command(&cmd(1, 2, put("a", "x"))),
            KvOutput::Written
        );
        let cas = |seq, e: &str, n: &str| {
            cmd(
                2,
                seq,
                KvOp::Cas {
                    key: "a".into(),
                    expected: e.into(),
                    new: n.into(),
                },
            )
        };
        assert_eq!(
            s.apply_command(&cas(1, "y", "z")),
            KvOutput::CasResult(false)
        );
        assert_eq!(
            s.apply_command(&cas(2, "x", "z")),
            KvOutput::CasResult(true)
        );
        assert_eq!(s.get("a"), Some("z"));
    }

    #[test]
    fn a_retried_command_takes_effect_once() {
        let mut s = KvStore::new();
        s.apply_command(&cmd(1, 1, put("a", "1")));
        s.apply_command(&cmd(2, 1, put("a", "2")));
        // Client 1 retries its first command: same output, no second write.
        assert_eq!(
            s.apply_command(&cmd(1, 1, put("a", "1"))),
            KvOutput::Written
        );
        assert_eq!(s.get("a"), Some("2"));
    }

    #[test]
    fn an_older_command_is_ignored() {
        let mut s = KvStore::new();
        s.apply_command(&cmd(1, 5, put("a", "new")));
        assert_eq!(
            s.apply_command(&cmd(1, 4, put("a", "old"))),
            KvOutput::Stale
        );
        assert_eq!(s.get("a"), Some("new"));
    }

    #[test]
    fn malformed_bytes_do_not_change_the_store() {
        let mut s = KvStore::new();
        let out =
            now_or_never(s.apply(Position::new(1, 1), &Bytes::from_static(b"\xff\xfe"))).unwrap();
        assert!(matches!(
            codec::decode::<KvOutput>(&out).unwrap(),
            KvOutput::Malformed(_)
        ));
        assert!(s.is_empty());
    }

    #[test]
    fn snapshot_and_restore_round_trip_the_whole_state() {
        let mut a = KvStore::new();
        for i in 1..=20u64 {
            a.apply_bytes(
                Position::new(1, i),
                &cmd(i % 4, i, put(&format!("k{}", i % 3), "v")).encode(),
            );
        }
        let snap = now_or_never(a.snapshot()).unwrap();
        let mut b = KvStore::new();
        now_or_never(b.restore(&snap)).unwrap().unwrap();
        assert_eq!(a, b);
        assert_eq!(b.applied_count(), 20);
        // The sessions came along: a retried command is still recognised.
        assert_eq!(
            b.apply_command(&cmd(0, 20, put("k2", "other"))),
            KvOutput::Written
        );
        assert_eq!(b.get("k2"), Some("v"));
    }

    #[test]
    fn an_empty_snapshot_restores_the_empty_store() {
        let mut s = KvStore::new();
        s.apply_command(&cmd(1, 1, put("a", "1")));
        now_or_never(s.restore(b"")).unwrap().unwrap();
        assert_eq!(s, KvStore::new());
    }

    #[test]
    fn a_malformed_snapshot_is_refused_and_changes_nothing() {
        let mut s = KvStore::new();
        s.apply_command(&cmd(1, 1, put("a", "1")));
        let before = s.clone();
        assert!(now_or_never(s.restore(b"\x05garbage")).unwrap().is_err());
        assert_eq!(s, before);
    }

    #[test]
    fn same_commands_same_state() {
        let cmds: Vec<KvCommand> = (1..50)
            .map(|i| cmd(i % 3, i, put(&format!("k{}", i % 5), &i.to_string())))
            .collect();
        let mut a = KvStore::new();
        let mut b = KvStore::new();
        for (i, c) in cmds.iter().enumerate() {
            let bytes = c.encode();
            let p = Position::new(1, i as u64 + 1);
            assert_eq!(a.apply_bytes(p, &bytes), b.apply_bytes(p, &bytes));
        }
        assert_eq!(a, b);
    }

    #[test]
    fn shared_encodings_are_the_fresh_ones_and_decode_back() {
        let with_data = [KvOutput::Value(Some("v".into())), KvOutput::Value(None)];
        for out in DATALESS.into_iter().chain(with_data) {
            assert_eq!(out.encode(), out.encode_fresh(), "{out:?}");
            assert_eq!(codec::decode::<KvOutput>(&out.encode()).unwrap(), out);
        }
    }
}
