//! The record of what clients asked and what they were told, with virtual times.

use bytes::Bytes;
use consensus_core::{Command, Time};
use serde::Serialize;

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// Still running (only seen mid-run).
    Pending,
    /// The cluster answered with this output (the state machine's bytes).
    Ok(Bytes),
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
    /// What was asked: the command as the app encoded it.
    pub command: Command,
    /// Whether the app calls it a read.
    pub read: bool,
    /// When the client invoked it.
    pub invoke: Time,
    /// When the client learned the outcome (None while pending).
    pub complete: Option<Time>,
    /// How it ended.
    pub outcome: Outcome,
}

impl OpRecord {
    /// True for an acknowledged operation other than a read: the log holds it (whether or not
    /// it changed the state: a compare-and-set that did not match was applied too).
    pub fn is_acknowledged_write(&self) -> bool {
        !self.read && matches!(self.outcome, Outcome::Ok(_))
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
    pub fn invoke(
        &mut self,
        client: u64,
        seq: u64,
        command: Command,
        read: bool,
        at: Time,
    ) -> usize {
        self.ops.push(OpRecord {
            client,
            seq,
            command,
            read,
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
