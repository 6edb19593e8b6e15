//! The clients of a torture run: each sends one put, get or compare-and-set at a time to a
//! random node (a follower forwards it to the leader) and records what it asked, when, and
//! what it learned, telling apart what certainly did not happen from what may have.

use crate::net::Client;
use bytes::Bytes;
use consensus_core::kv::{KvOp, KvOutput};
use hyper::{Method, StatusCode};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait to connect to a node: a refused or unanswered connection sent nothing.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest wait for an answer once the request may have left (then: unknown).
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// What a client learned of one operation.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Learned {
    /// The cluster answered.
    Ok(KvOutput),
    /// It certainly did not take effect (the node could not be reached, or refused it before
    /// proposing it: no leader, or a redirect).
    Fail,
    /// It may or may not have taken effect (a timeout, a lost connection, an error after it
    /// may have been proposed).
    Unknown,
}

/// One operation as a client saw it.
#[derive(Clone, Debug)]
pub(super) struct Record {
    pub client: u64,
    pub seq: u64,
    pub op: KvOp,
    pub invoke: Duration,
    pub complete: Duration,
    pub learned: Learned,
}

/// The shared keys every client reads and writes (the linearizability check's subject).
pub(super) fn shared_key(k: usize) -> String {
    format!("t{k}")
}

/// The key of a client's own that its write number `seq` creates (nothing overwrites it).
fn own_key(client: u64, seq: u64) -> String {
    format!("{OWN_PREFIX}{client}.{seq}")
}

/// What every key of a client's own starts with (shared keys start with `t`).
const OWN_PREFIX: &str = "u";

impl Record {
    /// The key and value of an acknowledged write to a key of the client's own: what every
    /// node must hold at the end.
    pub(super) fn acknowledged_own_write(&self) -> Option<(&str, &str)> {
        match (&self.op, &self.learned) {
            (KvOp::Put { key, value }, Learned::Ok(_)) if key.starts_with(OWN_PREFIX) => {
                Some((key, value))
            }
            _ => None,
        }
    }
}

/// Runs one client until `stop`; returns its operations.
pub(super) async fn client(
    id: u64,
    endpoints: Vec<String>,
    keys: usize,
    seed: u64,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Record> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ id);
    let mut conns: Vec<Client> = (0..endpoints.len())
        .map(|i| Client::new(vec![endpoints[i].clone()], 0))
        .collect();
    // The last value this client wrote or read under each shared key: what its CAS expects.
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut records = Vec::new();
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let value = format!("c{id}.{seq}");
        let key = shared_key(rng.random_range(0..keys.max(1)));
        let roll: f64 = rng.random();
        let op = if roll < 0.45 {
            KvOp::Get { key }
        } else if roll < 0.75 {
            KvOp::Put { key, value }
        } else if roll < 0.9 {
            match seen.get(&key) {
                Some(expected) => KvOp::Cas {
                    expected: expected.clone(),
                    key,
                    new: value,
                },
                None => KvOp::Create { key, value },
            }
        } else {
            // A key of its own, never overwritten: it must be on every node at the end.
            KvOp::Put {
                key: own_key(id, seq),
                value,
            }
        };
        let node = rng.random_range(0..conns.len());
        let invoke = start.elapsed();
        let learned = attempt(&mut conns[node], &op).await;
        let complete = start.elapsed();
        if let Learned::Ok(out) = &learned {
            match (&op, out) {
                (KvOp::Get { key }, KvOutput::Value(Some(v))) => {
                    seen.insert(key.clone(), v.clone());
                }
                (KvOp::Put { key, value }, _)
                | (
                    KvOp::Cas {
                        key, new: value, ..
                    },
                    KvOutput::CasResult(true),
                )
                | (KvOp::Create { key, value }, KvOutput::CasResult(true)) => {
                    seen.insert(key.clone(), value.clone());
                }
                _ => {}
            }
        }
        records.push(Record {
            client: id,
            seq,
            op,
            invoke,
            complete,
            learned,
        });
    }
    records
}

/// Sends `op` once to `conn`'s node.
pub(super) async fn attempt(conn: &mut Client, op: &KvOp) -> Learned {
    match tokio::time::timeout(CONNECT_TIMEOUT, conn.connect()).await {
        Ok(Ok(())) => {}
        _ => {
            conn.disconnect();
            return Learned::Fail;
        }
    }
    let (method, path, body) = request(op);
    match tokio::time::timeout(REQUEST_TIMEOUT, conn.call_once(method, &path, body)).await {
        Ok(Ok(reply)) => classify(op, reply.status, &reply.json()),
        Ok(Err(_)) => Learned::Unknown,
        Err(_) => {
            conn.disconnect();
            Learned::Unknown
        }
    }
}

/// The HTTP request of an operation.
fn request(op: &KvOp) -> (Method, String, Bytes) {
    let path = |prefix: &str, key: &str| format!("/{prefix}/{key}");
    match op {
        KvOp::Get { key } => (Method::GET, path("kv", key), Bytes::new()),
        KvOp::Put { key, value } => (Method::PUT, path("kv", key), Bytes::from(value.clone())),
        KvOp::Delete { key } => (Method::DELETE, path("kv", key), Bytes::new()),
        KvOp::Cas { key, expected, new } => (
            Method::POST,
            path("cas", key),
            Bytes::from(serde_json::json!({ "expected": expected, "new": new }).to_string()),
        ),
        KvOp::Create { key, value } => (
            Method::POST,
            path("cas", key),
            Bytes::from(serde_json::json!({ "expected": null, "new": value }).to_string()),
        ),
    }
}

/// What an HTTP answer says about an operation.
pub(super) fn classify(op: &KvOp, status: StatusCode, body: &serde_json::Value) -> Learned {
    let error = body["error"].as_str().unwrap_or("");
    match (op, status) {
        (KvOp::Get { .. }, StatusCode::OK) => match body["value"].as_str() {
            Some(v) => Learned::Ok(KvOutput::Value(Some(v.to_string()))),
            None => Learned::Unknown,
        },
        (KvOp::Get { .. }, StatusCode::NOT_FOUND) if error == "no such key" => {
            Learned::Ok(KvOutput::Value(None))
        }
        (KvOp::Put { .. }, StatusCode::OK) => Learned::Ok(KvOutput::Written),
        (KvOp::Cas { .. } | KvOp::Create { .. }, StatusCode::OK) => match body["ok"].as_bool() {
            Some(ok) => Learned::Ok(KvOutput::CasResult(ok)),
            None => Learned::Unknown,
        },
        (KvOp::Delete { .. }, StatusCode::OK) => match body["existed"].as_bool() {
            Some(existed) => Learned::Ok(KvOutput::Deleted(existed)),
            None => Learned::Unknown,
        },
        // Refused before anything was proposed: a node that does not lead and knows no
        // leader, one that redirects, or a follower that could not reach the leader.
        (_, StatusCode::TEMPORARY_REDIRECT) => Learned::Fail,
        (_, StatusCode::SERVICE_UNAVAILABLE)
            if error.starts_with("no leader")
                || error == "not the leader"
                || error.starts_with("cannot reach the leader") =>
        {
            Learned::Fail
        }
        // Anything else may have been proposed (a commit timeout, a forward that got no
        // answer, a leader that stepped down while it waited).
        _ => Learned::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put() -> KvOp {
        KvOp::Put {
            key: "t1".into(),
            value: "v".into(),
        }
    }

    #[test]
    fn only_refusals_before_proposing_count_as_failed() {
        let no_leader = json!({ "error": "no leader is elected yet; retry shortly" });
        assert_eq!(
            classify(&put(), StatusCode::SERVICE_UNAVAILABLE, &no_leader),
            Learned::Fail
        );
        let not_leader = json!({ "error": "not the leader", "leader": 2 });
        assert_eq!(
            classify(&put(), StatusCode::SERVICE_UNAVAILABLE, &not_leader),
            Learned::Fail
        );
        let unreachable = json!({ "error": "cannot reach the leader n2 at 127.0.0.1:1: refused" });
        assert_eq!(
            classify(&put(), StatusCode::SERVICE_UNAVAILABLE, &unreachable),
            Learned::Fail
        );
        let forward = json!({ "error": "the leader n2 at 127.0.0.1:1 did not answer the forwarded request: x" });
        assert_eq!(
            classify(&put(), StatusCode::SERVICE_UNAVAILABLE, &forward),
            Learned::Unknown
        );
        let timeout =
            json!({ "error": "the command did not commit in time; it may still take effect" });
        assert_eq!(
            classify(&put(), StatusCode::GATEWAY_TIMEOUT, &timeout),
            Learned::Unknown
        );
    }

    #[test]
    fn answers_become_outputs() {
        let get = KvOp::Get { key: "t1".into() };
        assert_eq!(
            classify(&get, StatusCode::OK, &json!({ "key": "t1", "value": "a" })),
            Learned::Ok(KvOutput::Value(Some("a".into())))
        );
        assert_eq!(
            classify(
                &get,
                StatusCode::NOT_FOUND,
                &json!({ "error": "no such key" })
            ),
            Learned::Ok(KvOutput::Value(None))
        );
        // A 404 that is not the store's "no such key" (a wrong route) says nothing.
        assert_eq!(
            classify(&get, StatusCode::NOT_FOUND, &json!({ "error": "no route" })),
            Learned::Unknown
        );
        assert_eq!(
            classify(&put(), StatusCode::OK, &json!({ "ok": true })),
            Learned::Ok(KvOutput::Written)
        );
        let cas = KvOp::Cas {
            key: "t1".into(),
            expected: "a".into(),
            new: "b".into(),
        };
        assert_eq!(
            classify(&cas, StatusCode::OK, &json!({ "ok": false })),
            Learned::Ok(KvOutput::CasResult(false))
        );
    }
}
