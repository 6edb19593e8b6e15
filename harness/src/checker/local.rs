//! The guarantee of local reads (ZooKeeper's): a client never reads a value older than one
//! it already wrote or read under the same key; reads may be stale otherwise. And how stale.
//!
//! Versions come from the cluster's committed sequence: replaying it gives, for each key, the
//! order of the writes that took effect (puts, and compare-and-sets that matched). A read's
//! version is the position of the write whose value it returned (values are unique per write);
//! its staleness is the number of later writes to the key that some client had already seen
//! acknowledged when the read was invoked.

use crate::history::{History, Outcome};
use consensus_core::codec;
use consensus_core::kv::{KvCommand, KvOp, KvOutput, KvStore};
use consensus_core::Command;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// What the local-read check found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LocalReads {
    /// Reads answered.
    pub reads: usize,
    /// Reads that returned a value older than the newest write acknowledged before they
    /// were invoked.
    pub stale: usize,
    /// Mean staleness in writes behind, over all reads.
    pub staleness_mean: f64,
    /// Largest staleness seen.
    pub staleness_max: usize,
    /// Reads that went back in time for their client (must be empty), explained.
    pub violations: Vec<String>,
}

/// Checks every acknowledged get of `history` as a local read against the committed `order`.
pub fn check(history: &History, order: &[Command]) -> LocalReads {
    // Each key's effective writes, in commit order: value -> version, and version -> value.
    let mut store = KvStore::new();
    let mut version_of: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut writes: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let mut applied: std::collections::BTreeSet<(u64, u64)> = Default::default();
    // Keys some delete emptied: an empty read of one could follow any of its deletes, so it
    // has no version to order (it is still checked for linearizability at the other levels).
    let mut deleted: std::collections::BTreeSet<String> = Default::default();
    for bytes in order {
        let Ok(cmd) = codec::decode::<KvCommand>(bytes) else {
            continue;
        };
        // A retried command committed twice takes effect once (its session answers the
        // second from memory): only the first is a write.
        if !applied.insert((cmd.client, cmd.seq)) {
            continue;
        }
        let out = store.apply_command(&cmd);
        let (key, value) = match (&cmd.op, out) {
            (KvOp::Put { key, value }, KvOutput::Written) => (key, Some(value)),
            (KvOp::Cas { key, new, .. }, KvOutput::CasResult(true)) => (key, Some(new)),
            (KvOp::Create { key, value }, KvOutput::CasResult(true)) => (key, Some(value)),
            (KvOp::Delete { key }, KvOutput::Deleted(true)) => {
                deleted.insert(key.clone());
                (key, None)
            }
            _ => continue,
        };
        let w = writes.entry(key.clone()).or_default();
        if let Some(value) = value {
            version_of.insert((key.clone(), value.clone()), w.len() + 1);
        }
        w.push((cmd.client, cmd.seq));
    }
    // When each write was first acknowledged to its client.
    let acked_at: BTreeMap<(u64, u64), Duration> = history
        .ops
        .iter()
        .filter(|r| r.is_acknowledged_write())
        .filter_map(|r| Some(((r.client, r.seq), r.complete?)))
        .collect();
    let version = |key: &str, value: &Option<String>| -> Option<usize> {
        match value {
            None => Some(0),
            Some(v) => version_of.get(&(key.to_string(), v.clone())).copied(),
        }
    };

    let mut out = LocalReads::default();
    let mut total_staleness = 0usize;
    // Per client and key: the newest version it wrote or read, in invocation order.
    let mut by_client: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, r) in history.ops.iter().enumerate() {
        by_client.entry(r.client).or_default().push(i);
    }
    for ops in by_client.values() {
        let mut newest: BTreeMap<String, usize> = BTreeMap::new();
        for &i in ops {
            let r = &history.ops[i];
            let Outcome::Ok(result) = &r.outcome else {
                continue;
            };
            let (Ok(KvCommand { op, .. }), Ok(result)) = (
                codec::decode::<KvCommand>(&r.command),
                codec::decode::<KvOutput>(result),
            ) else {
                continue;
            };
            let key = op.key();
            let seen = match (&op, &result) {
                (KvOp::Get { .. }, KvOutput::Value(None)) if deleted.contains(key) => {
                    out.reads += 1;
                    None
                }
                (KvOp::Get { .. }, KvOutput::Value(v)) => {
                    let Some(ver) = version(key, v) else {
                        out.violations.push(format!(
                            "client {} seq {} read {key}={v:?}, a value never committed",
                            r.client, r.seq
                        ));
                        continue;
                    };
                    out.reads += 1;
                    if let Some(&before) = newest.get(key) {
                        if ver < before {
                            out.violations.push(format!(
                                "client {} seq {} read {key} at version {ver} after it had seen version {before}",
                                r.client, r.seq
                            ));
                        }
                    }
                    let behind = writes.get(key).map_or(0, |w| {
                        w[ver.min(w.len())..]
                            .iter()
                            .filter(|id| acked_at.get(id).is_some_and(|&t| t <= r.invoke))
                            .count()
                    });
                    if behind > 0 {
                        out.stale += 1;
                    }
                    total_staleness += behind;
                    out.staleness_max = out.staleness_max.max(behind);
                    Some(ver)
                }
                (KvOp::Put { value, .. }, KvOutput::Written) => version(key, &Some(value.clone())),
                (KvOp::Cas { new, .. }, KvOutput::CasResult(true)) => {
                    version(key, &Some(new.clone()))
                }
                (KvOp::Create { value, .. }, KvOutput::CasResult(true)) => {
                    version(key, &Some(value.clone()))
                }
                _ => None,
            };
            if let Some(v) = seen {
                let e = newest.entry(key.to_string()).or_insert(0);
                *e = (*e).max(v);
            }
        }
    }
    if out.reads > 0 {
        out.staleness_mean = total_staleness as f64 / out.reads as f64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Kv;
    use crate::history::History;
    use std::time::Duration;

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    fn put(client: u64, seq: u64, v: &str) -> (KvCommand, KvOp) {
        let op = KvOp::Put {
            key: "k".into(),
            value: v.into(),
        };
        (
            KvCommand {
                client,
                seq,
                op: op.clone(),
            },
            op,
        )
    }

    fn get() -> KvOp {
        KvOp::Get { key: "k".into() }
    }

    /// Client 1 writes a then b; client 2 reads.
    fn history(reads: &[(u64, Option<&str>)]) -> (History, Vec<Command>) {
        let mut h = History::default();
        let mut order = Vec::new();
        for (seq, v, t) in [(1, "a", 0), (2, "b", 10)] {
            let (cmd, op) = put(1, seq, v);
            let i = Kv::invoke(&mut h, 1, seq, op, ms(t));
            h.complete(i, Kv::answer(KvOutput::Written), ms(t + 5));
            order.push(cmd.encode());
        }
        for (n, &(t, v)) in reads.iter().enumerate() {
            let i = Kv::invoke(&mut h, 2, n as u64 + 1, get(), ms(t));
            h.complete(
                i,
                Kv::answer(KvOutput::Value(v.map(str::to_string))),
                ms(t + 1),
            );
        }
        (h, order)
    }

    #[test]
    fn a_stale_read_is_counted_but_allowed() {
        let (h, order) = history(&[(20, Some("a"))]);
        let r = check(&h, &order);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!((r.reads, r.stale, r.staleness_max), (1, 1, 1));
    }

    #[test]
    fn a_client_that_reads_back_in_time_is_a_violation() {
        let (h, order) = history(&[(20, Some("b")), (30, Some("a"))]);
        let r = check(&h, &order);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].contains("version 1 after it had seen version 2"));
    }

    #[test]
    fn a_read_of_a_value_never_committed_is_a_violation() {
        let (h, order) = history(&[(20, Some("zzz"))]);
        assert_eq!(check(&h, &order).violations.len(), 1);
    }

    #[test]
    fn a_retried_write_committed_twice_is_one_version() {
        let (mut h, mut order) = history(&[]);
        // Client 1's first write is committed again after b (a retry).
        order.push(order[0].clone());
        let i = Kv::invoke(&mut h, 2, 1, get(), ms(20));
        h.complete(i, Kv::answer(KvOutput::Value(Some("b".into()))), ms(21));
        let r = check(&h, &order);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.stale, 0, "b is still the newest value");
    }

    #[test]
    fn a_fresh_read_is_not_stale() {
        let (h, order) = history(&[(1, None)]);
        let r = check(&h, &order);
        assert!(r.violations.is_empty());
        assert_eq!(
            r.stale, 0,
            "the read at 1 ms preceded every acknowledgement"
        );
    }
}
