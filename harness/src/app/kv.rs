//! The built-in app: the key-value store of `consensus_core::kv`, its workload (puts, gets and
//! compare-and-sets over a few keys) and its model (one register per key).

use super::{App, OpSource, Request};
use crate::checker::local::{self, LocalReads};
use crate::history::{History, Outcome};
use crate::workload::{OpGenerator, WorkloadConfig};
use consensus_core::kv::{KvCommand, KvOp, KvOutput, KvStore};
use consensus_core::{codec, Command, StateMachine, Time};
use rand_chacha::ChaCha8Rng;

/// The key-value store as an [`App`]: the default of every command.
#[derive(Clone, Copy, Debug, Default)]
pub struct Kv;

impl Kv {
    /// Records in `history` that `client` invoked `op` as its number `seq` at `at` (for
    /// histories written by hand, as in the checker's tests).
    pub fn invoke(history: &mut History, client: u64, seq: u64, op: KvOp, at: Time) -> usize {
        let read = Kv.is_read(&op);
        let command = KvCommand { client, seq, op }.encode();
        history.invoke(client, seq, command, read, at)
    }

    /// The outcome of an operation answered with `out`.
    pub fn answer(out: KvOutput) -> Outcome {
        Outcome::Ok(out.encode())
    }
}

impl App for Kv {
    type Op = KvOp;
    type Output = KvOutput;
    /// One key's value.
    type State = Option<String>;

    fn name(&self) -> &'static str {
        "kv"
    }

    fn about(&self) -> &'static str {
        "the built-in key-value store: put, get, compare-and-set, create, delete"
    }

    fn machine(&self) -> Box<dyn StateMachine> {
        Box::new(KvStore::new())
    }

    fn ops(&self, client: u64, rng: ChaCha8Rng, cfg: &WorkloadConfig) -> OpSource<KvOp> {
        let mut gen = OpGenerator::with_rng(client, rng, cfg);
        Box::new(move |seq| gen.next_op(seq))
    }

    fn encode(&self, r: &Request<KvOp>) -> Command {
        KvCommand {
            client: r.client,
            seq: r.seq,
            op: r.op.clone(),
        }
        .encode()
    }

    fn decode(&self, command: &[u8]) -> Option<Request<KvOp>> {
        let c = codec::decode::<KvCommand>(command).ok()?;
        Some(Request {
            client: c.client,
            seq: c.seq,
            op: c.op,
        })
    }

    fn output(&self, bytes: &[u8]) -> Option<KvOutput> {
        match codec::decode::<KvOutput>(bytes) {
            Ok(KvOutput::Stale) | Ok(KvOutput::Malformed(_)) | Err(_) => None,
            Ok(o) => Some(o),
        }
    }

    fn is_read(&self, op: &KvOp) -> bool {
        matches!(op, KvOp::Get { .. })
    }

    fn initial(&self) -> Option<String> {
        None
    }

    fn step(&self, s: &Option<String>, op: &KvOp) -> (Option<String>, KvOutput) {
        match op {
            KvOp::Put { value, .. } => (Some(value.clone()), KvOutput::Written),
            KvOp::Get { .. } => (s.clone(), KvOutput::Value(s.clone())),
            KvOp::Cas { expected, new, .. } => {
                if s.as_ref() == Some(expected) {
                    (Some(new.clone()), KvOutput::CasResult(true))
                } else {
                    (s.clone(), KvOutput::CasResult(false))
                }
            }
            KvOp::Delete { .. } => (None, KvOutput::Deleted(s.is_some())),
            KvOp::Create { value, .. } => match s {
                None => (Some(value.clone()), KvOutput::CasResult(true)),
                Some(_) => (s.clone(), KvOutput::CasResult(false)),
            },
        }
    }

    fn partition(&self, op: &KvOp) -> String {
        op.key().to_string()
    }

    fn describe(&self, op: &KvOp) -> String {
        match op {
            KvOp::Put { key, value } => format!("put {key}={value}"),
            KvOp::Get { key } => format!("get {key}"),
            KvOp::Delete { key } => format!("delete {key}"),
            KvOp::Create { key, value } => format!("create {key}={value}"),
            KvOp::Cas { key, expected, new } => format!("cas {key}: {expected} -> {new}"),
        }
    }

    /// Equal keys, values and sessions (the position of the last command aside: a replay
    /// does not know it).
    fn same_state(&self, a: &[u8], b: &[u8]) -> bool {
        match (
            codec::decode_state::<KvStore>(a).ok(),
            codec::decode_state::<KvStore>(b).ok(),
        ) {
            (Some(a), Some(b)) => a.same_contents(&b),
            _ => a == b,
        }
    }

    fn check_local_reads(&self, history: &History, order: &[Command]) -> Option<LocalReads> {
        Some(local::check(history, order))
    }
}
