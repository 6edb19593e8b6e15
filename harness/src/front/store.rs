//! The state machine every `serve` node replicates: three keyspaces side by side, one per
//! client protocol, each written only through its own front-end.

use super::etcd_store::{EtcdReply, EtcdStore};
use super::zk_store::{ZkOutput, ZkRead, ZkTree, ZkTxn};
use async_trait::async_trait;
use bytes::Bytes;
use consensus_core::codec;
use consensus_core::kv::{KvCommand, KvOp, KvOutput, KvStore};
use consensus_core::state_machine::{RestoreError, SnapshotJob};
use consensus_core::{Command, Position, StateMachine};
use serde::{Deserialize, Serialize};

/// A command of the replicated service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceCommand {
    /// The HTTP API's key-value store (output: an encoded `KvOutput`).
    Kv(KvCommand),
    /// An etcd `RequestOp`, protobuf-encoded (output: an encoded [`EtcdReply`]).
    Etcd(Vec<u8>),
    /// A ZooKeeper transaction (output: an encoded [`ZkOutput`]).
    Zk(ZkTxn),
    /// A ZooKeeper read (served outside the log; through it, the same answer).
    ZkRead(ZkRead),
}

impl ServiceCommand {
    /// Encodes the command for proposing.
    pub fn encode(&self) -> Command {
        Bytes::from(codec::encode(self).expect("a ServiceCommand always encodes"))
    }
}

/// The three keyspaces.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStore {
    kv: KvStore,
    etcd: EtcdStore,
    zk: ZkTree,
}

fn encode<T: Serialize>(t: &T) -> Bytes {
    Bytes::from(codec::encode(t).expect("an output always encodes"))
}

impl ServiceStore {
    /// The HTTP API's store.
    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    /// etcd's keyspace.
    pub fn etcd(&self) -> &EtcdStore {
        &self.etcd
    }

    /// ZooKeeper's tree.
    pub fn zk(&self) -> &ZkTree {
        &self.zk
    }

    /// Applies one encoded command committed at `pos`; what cannot be decoded changes nothing.
    pub fn apply_bytes(&mut self, pos: Position, command: &[u8]) -> Bytes {
        match codec::decode::<ServiceCommand>(command) {
            Ok(ServiceCommand::Kv(c)) => self.kv.apply_at(pos, c).encode(),
            Ok(ServiceCommand::Etcd(r)) => encode(&self.etcd.apply(&r)),
            Ok(ServiceCommand::Zk(t)) => encode(&self.zk.apply(pos, &t)),
            Ok(ServiceCommand::ZkRead(r)) => encode(&self.zk.read(&r)),
            Err(e) => KvOutput::Malformed(e.to_string()).encode(),
        }
    }

    /// The whole state, encoded (a snapshot's data).
    fn encoded(&self) -> Bytes {
        Bytes::from(codec::encode_state(self).expect("a ServiceStore always encodes"))
    }

    /// Answers a read-only command from the current state.
    pub fn query_bytes(&self, command: &[u8]) -> Bytes {
        match codec::decode::<ServiceCommand>(command) {
            Ok(ServiceCommand::Kv(KvCommand {
                op: KvOp::Get { key },
                ..
            })) => KvOutput::Value(self.kv.get(&key).map(str::to_string)).encode(),
            Ok(ServiceCommand::Etcd(r)) => encode::<EtcdReply>(&self.etcd.read(&r)),
            Ok(ServiceCommand::ZkRead(r)) => encode::<ZkOutput>(&self.zk.read(&r)),
            Ok(_) => KvOutput::Malformed("only a read is served outside the log".into()).encode(),
            Err(e) => KvOutput::Malformed(e.to_string()).encode(),
        }
    }
}

#[async_trait]
impl StateMachine for ServiceStore {
    async fn apply(&mut self, pos: Position, command: &Command) -> Bytes {
        self.apply_bytes(pos, command)
    }

    async fn snapshot(&mut self) -> Bytes {
        self.encoded()
    }

    async fn snapshot_job(&mut self) -> SnapshotJob {
        let copy = self.clone();
        Box::new(move || copy.encoded())
    }

    async fn query(&mut self, command: &Command) -> Bytes {
        self.query_bytes(command)
    }

    async fn restore(&mut self, data: &[u8]) -> Result<(), RestoreError> {
        *self = if data.is_empty() {
            ServiceStore::default()
        } else {
            codec::decode_state(data)?
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consensus_core::poll::now_or_never;

    #[test]
    fn each_keyspace_answers_its_own_commands_and_snapshots_carry_all_three() {
        let mut s = ServiceStore::default();
        let put = ServiceCommand::Kv(KvCommand {
            client: 1,
            seq: 1,
            op: KvOp::Put {
                key: "k".into(),
                value: "v".into(),
            },
        });
        let out = s.apply_bytes(Position::new(1, 1), &put.encode());
        assert_eq!(codec::decode::<KvOutput>(&out).unwrap(), KvOutput::Written);
        let etcd_put = super::super::proto::etcdserverpb::RequestOp {
            request: Some(
                super::super::proto::etcdserverpb::request_op::Request::RequestPut(
                    super::super::proto::etcdserverpb::PutRequest {
                        key: b"k".to_vec(),
                        value: b"e".to_vec(),
                        ..Default::default()
                    },
                ),
            ),
        };
        let out = s.apply_bytes(
            Position::new(1, 2),
            &ServiceCommand::Etcd(prost::Message::encode_to_vec(&etcd_put)).encode(),
        );
        assert_eq!(codec::decode::<EtcdReply>(&out).unwrap().revision, 2);
        // The keyspaces are separate: the HTTP store's "k" kept its value.
        assert_eq!(s.kv().get("k"), Some("v"));
        assert_eq!(s.etcd().len(), 1);
        let snap = now_or_never(s.snapshot()).unwrap();
        let mut t = ServiceStore::default();
        now_or_never(t.restore(&snap)).unwrap().unwrap();
        assert_eq!(s, t);
        // Garbage changes nothing.
        let before = s.clone();
        let out = s.apply_bytes(Position::new(1, 3), b"\xff\xff\xff\xff");
        assert!(matches!(
            codec::decode::<KvOutput>(&out).unwrap(),
            KvOutput::Malformed(_)
        ));
        assert_eq!(s.etcd(), before.etcd());
        assert_eq!(s.zk(), before.zk());
    }
}
