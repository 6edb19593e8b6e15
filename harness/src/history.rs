//! The record of what clients asked and what they were told, with virtual times.

use consensus_core::kv::{KvOp, KvOutput};
use consensus_core::Time;
use serde::Serialize;

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// Still running (only seen mid-run).
    Pending,
    /// The cluster answered with this output.
    Ok(KvOutput),
    /// The operation certainly never took effect (no node ever accepted it).
    Fail,
    /// The client gave up without knowing whether it took effect.
    Unknown,
}

/// One client operation.
#[derive(Clone, Debug, Serialize)]
pub struct OpRecord {
    /// The client.
    pub client: u64,
    /// The client's sequence number.
    pub seq: u64,
    /// What was asked.
    pub op: KvOp,
    /// When the client invoked it.
    pub invoke: Time,
    /// When the client learned the outcome (None while pending).
    pub complete: Option<Time>,
    /// How it ended.
    pub outcome: Outcome,
}

impl OpRecord {
    /// True for an acknowledged operation that changed the store (a put, a CAS or create that
    /// matched, a delete that removed a key).
    pub fn is_acknowledged_write(&self) -> bool {
        matches!(
            (&self.op, &self.outcome),
            (KvOp::Put { .. }, Outcome::Ok(KvOutput::Written))
                | (KvOp::Cas { .. }, Outcome::Ok(KvOutput::CasResult(true)))
                | (KvOp::Create { .. }, Outcome::Ok(KvOutput::CasResult(true)))
                | (KvOp::Delete { .. }, Outcome::Ok(KvOutput::Deleted(true)))
        )
    }
}

/// Every operation of a run, in invocation order.
#[derive(Clone, Debug, Default, Serialize)]
pub struct History {
    /// The operations.
    pub ops: Vec<OpRecord>,
}

impl History {
    /// Records an invocation and returns its index.
    pub fn invoke(&mut self, client: u64, seq: u64, op: KvOp, at: Time) -> usize {
        self.ops.push(OpRecord {
            client,
            seq,
            op,
            invoke: at,
            complete: None,
            outcome: Outcome::Pending,
        });
        self.ops.len() - 1
    }

    /// Records how operation `index` ended.
    pub fn complete(&mut self, index: usize, outcome: Outcome, at: Time) {
        let r = &mut self.ops[index];
        r.outcome = outcome;
        r.complete = Some(at);
    }

    /// Counts of (ok, fail, unknown) operations.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for r in &self.ops {
            match r.outcome {
                Outcome::Ok(_) => c.0 += 1,
                Outcome::Fail => c.1 += 1,
                Outcome::Unknown | Outcome::Pending => c.2 += 1,
            }
        }
        c
    }
}
