//! etcd's keyspace as a replicated state machine: a flat map of byte keys, a global revision
//! advanced by every write (one revision per transaction, whatever it writes), and per key the
//! revision that created it, the one that last changed it and its version (changes since it was
//! created). Requests and responses are etcd's own protobuf messages, as etcd's log holds them.
//!
//! No history is kept: a read at an older revision is answered as etcd answers a compacted one.

use super::proto::etcdserverpb::{
    compare, range_request, request_op, response_op, Compare, DeleteRangeRequest,
    DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp,
    ResponseOp, TxnRequest, TxnResponse,
};
use super::proto::mvccpb::KeyValue;
use imbl::OrdMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ops::Bound;

/// One key's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    value: Vec<u8>,
}

/// An error etcd answers with: a gRPC status code and etcd's message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdError {
    /// The gRPC status code (`tonic::Code` as a number).
    pub code: i32,
    /// etcd's message for it.
    pub message: String,
}

impl EtcdError {
    fn new(code: tonic::Code, message: &str) -> Self {
        EtcdError {
            code: code as i32,
            message: message.to_string(),
        }
    }
}

/// What applying (or reading) one request gave: the store's revision afterwards and the
/// protobuf-encoded `ResponseOp`, or etcd's error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdReply {
    /// The store's revision after the request.
    pub revision: i64,
    /// The encoded `ResponseOp`, or the error.
    pub result: Result<Vec<u8>, EtcdError>,
}

/// etcd's keyspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdStore {
    revision: i64,
    /// Copy-on-write: a snapshot's copy shares it (see `ServiceStore::snapshot_job`).
    keys: OrdMap<Vec<u8>, Record>,
}

impl Default for EtcdStore {
    /// An empty keyspace at revision 1, as a new etcd cluster starts.
    fn default() -> Self {
        EtcdStore {
            revision: 1,
            keys: OrdMap::new(),
        }
    }
}

/// A range of keys, as `OrdMap::range` takes it.
type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The keys a (key, range_end) pair names, as etcd reads it: no end is the key alone, an end
/// of `\0` is every key from `key` on, otherwise `[key, range_end)`.
fn bounds(key: &[u8], end: &[u8]) -> Option<KeyRange> {
    if end.is_empty() {
        return Some((Bound::Included(key.to_vec()), Bound::Included(key.to_vec())));
    }
    if end == [0] {
        return Some((Bound::Included(key.to_vec()), Bound::Unbounded));
    }
    if key >= end {
        return None;
    }
    Some((Bound::Included(key.to_vec()), Bound::Excluded(end.to_vec())))
}

fn kv(key: &[u8], r: &Record, keys_only: bool) -> KeyValue {
    KeyValue {
        key: key.to_vec(),
        create_revision: r.create_revision,
        mod_revision: r.mod_revision,
        version: r.version,
        value: if keys_only {
            Vec::new()
        } else {
            r.value.clone()
        },
        lease: 0,
    }
}

const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
const FUTURE: &str = "etcdserver: mvcc: required revision is a future revision";
const NO_KEY: &str = "etcdserver: key is not provided";
const NO_LEASE: &str = "etcdserver: requested lease not found";
const DUPLICATE: &str = "etcdserver: duplicate key given in txn request";
const KEY_NOT_FOUND: &str = "etcdserver: key not found";

impl EtcdStore {
    /// The current revision.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn select(&self, key: &[u8], end: &[u8]) -> Vec<(&Vec<u8>, &Record)> {
        match bounds(key, end) {
            Some(b) => self.keys.range(b).collect(),
            None => Vec::new(),
        }
    }

    /// Applies one encoded `RequestOp` committed to the log.
    pub fn apply(&mut self, request: &[u8]) -> EtcdReply {
        let result = match <RequestOp as prost::Message>::decode(request) {
            Err(e) => Err(EtcdError::new(
                tonic::Code::InvalidArgument,
                &format!("malformed request: {e}"),
            )),
            Ok(op) => self.check(&op).and_then(|()| {
                let next = self.revision + 1;
                let mut wrote = false;
                let out = self.run(&op, next, &mut wrote);
                if wrote {
                    self.revision = next;
                }
                out
            }),
        };
        self.reply(result)
    }

    /// Answers one encoded `RequestOp` that must be a range, without changing anything.
    pub fn read(&self, request: &[u8]) -> EtcdReply {
        let result = match <RequestOp as prost::Message>::decode(request) {
            Ok(RequestOp {
                request: Some(request_op::Request::RequestRange(r)),
            }) => self.range(&r).map(|r| ResponseOp {
                response: Some(response_op::Response::ResponseRange(r)),
            }),
            Ok(_) => Err(EtcdError::new(
                tonic::Code::InvalidArgument,
                "only a range is served outside the log",
            )),
            Err(e) => Err(EtcdError::new(
                tonic::Code::InvalidArgument,
                &format!("malformed request: {e}"),
            )),
        };
        self.reply(result)
    }

    fn reply(&self, result: Result<ResponseOp, EtcdError>) -> EtcdReply {
        EtcdReply {
            revision: self.revision,
            result: result.map(|r| prost::Message::encode_to_vec(&r)),
        }
    }

    /// The checks etcd makes before it applies anything: a request that fails them changes
    /// nothing.
    fn check(&self, op: &RequestOp) -> Result<(), EtcdError> {
        match &op.request {
            None => Err(EtcdError::new(
                tonic::Code::InvalidArgument,
                "an empty request",
            )),
            Some(request_op::Request::RequestRange(r)) => self.check_revision(r.revision),
            Some(request_op::Request::RequestPut(p)) => {
                if p.key.is_empty() {
                    return Err(EtcdError::new(tonic::Code::InvalidArgument, NO_KEY));
                }
                if p.lease != 0 {
                    return Err(EtcdError::new(tonic::Code::NotFound, NO_LEASE));
                }
                if p.ignore_value && !self.keys.contains_key(&p.key) {
                    return Err(EtcdError::new(tonic::Code::InvalidArgument, KEY_NOT_FOUND));
                }
                Ok(())
            }
            Some(request_op::Request::RequestDeleteRange(d)) => {
                if d.key.is_empty() {
                    return Err(EtcdError::new(tonic::Code::InvalidArgument, NO_KEY));
                }
                Ok(())
            }
            Some(request_op::Request::RequestTxn(t)) => {
                for branch in [&t.success, &t.failure] {
                    let mut puts = BTreeSet::new();
                    for op in branch {
                        self.check(op)?;
                        if let Some(request_op::Request::RequestPut(p)) = &op.request {
                            if !puts.insert(p.key.clone()) {
                                return Err(EtcdError::new(
                                    tonic::Code::InvalidArgument,
                                    DUPLICATE,
                                ));
                            }
                        }
                    }
                    // A delete must not cover a key the same branch puts.
                    for op in branch {
                        if let Some(request_op::Request::RequestDeleteRange(d)) = &op.request {
                            if let Some(b) = bounds(&d.key, &d.range_end) {
                                if puts.range(b).next().is_some() {
                                    return Err(EtcdError::new(
                                        tonic::Code::InvalidArgument,
                                        DUPLICATE,
                                    ));
                                }
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn check_revision(&self, revision: i64) -> Result<(), EtcdError> {
        if revision > self.revision {
            Err(EtcdError::new(tonic::Code::OutOfRange, FUTURE))
        } else if revision > 0 && revision < self.revision {
            Err(EtcdError::new(tonic::Code::OutOfRange, COMPACTED))
        } else {
            Ok(())
        }
    }

    /// Runs a checked request; writes take revision `next` and set `wrote`.
    fn run(
        &mut self,
        op: &RequestOp,
        next: i64,
        wrote: &mut bool,
    ) -> Result<ResponseOp, EtcdError> {
        let response = match op.request.as_ref().expect("checked") {
            request_op::Request::RequestRange(r) => {
                response_op::Response::ResponseRange(self.range(r)?)
            }
            request_op::Request::RequestPut(p) => {
                *wrote = true;
                response_op::Response::ResponsePut(self.put(p, next))
            }
            request_op::Request::RequestDeleteRange(d) => {
                let out = self.delete(d);
                if out.deleted > 0 {
                    *wrote = true;
                }
                response_op::Response::ResponseDeleteRange(out)
            }
            request_op::Request::RequestTxn(t) => {
                response_op::Response::ResponseTxn(self.txn(t, next, wrote)?)
            }
        };
        Ok(ResponseOp {
            response: Some(response),
        })
    }

    /// A range read of the current state.
    pub fn range(&self, r: &RangeRequest) -> Result<RangeResponse, EtcdError> {
        self.check_revision(r.revision)?;
        let mut found: Vec<(&Vec<u8>, &Record)> = self
            .select(&r.key, &r.range_end)
            .into_iter()
            .filter(|(_, rec)| {
                (r.min_mod_revision == 0 || rec.mod_revision >= r.min_mod_revision)
                    && (r.max_mod_revision == 0 || rec.mod_revision <= r.max_mod_revision)
                    && (r.min_create_revision == 0 || rec.create_revision >= r.min_create_revision)
                    && (r.max_create_revision == 0 || rec.create_revision <= r.max_create_revision)
            })
            .collect();
        let count = found.len() as i64;
        use range_request::{SortOrder, SortTarget};
        let order = SortOrder::try_from(r.sort_order).unwrap_or(SortOrder::None);
        let target = SortTarget::try_from(r.sort_target).unwrap_or(SortTarget::Key);
        // Keys come in ascending order; etcd sorts by key ascending when asked for any order
        // of key, and otherwise sorts by the target (stable, so keys break ties).
        match (order, target) {
            (SortOrder::None, _) | (SortOrder::Ascend, SortTarget::Key) => {}
            (SortOrder::Descend, SortTarget::Key) => found.reverse(),
            (order, target) => {
                found.sort_by(|a, b| {
                    let o = match target {
                        SortTarget::Version => a.1.version.cmp(&b.1.version),
                        SortTarget::Create => a.1.create_revision.cmp(&b.1.create_revision),
                        SortTarget::Mod => a.1.mod_revision.cmp(&b.1.mod_revision),
                        SortTarget::Value => a.1.value.cmp(&b.1.value),
                        SortTarget::Key => a.0.cmp(b.0),
                    };
                    if order == SortOrder::Descend {
                        o.reverse()
                    } else {
                        o
                    }
                });
            }
        }
        let more = r.limit > 0 && count > r.limit;
        if r.limit > 0 {
            found.truncate(r.limit as usize);
        }
        let kvs = if r.count_only {
            Vec::new()
        } else {
            found
                .iter()
                .map(|(k, rec)| kv(k, rec, r.keys_only))
                .collect()
        };
        Ok(RangeResponse {
            header: None,
            kvs,
            more,
            count,
        })
    }

    fn put(&mut self, p: &PutRequest, next: i64) -> PutResponse {
        let old = self.keys.get(&p.key).cloned();
        let prev_kv = match (&old, p.prev_kv) {
            (Some(o), true) => Some(kv(&p.key, o, false)),
            _ => None,
        };
        let value = if p.ignore_value {
            old.as_ref().map(|o| o.value.clone()).unwrap_or_default()
        } else {
            p.value.clone()
        };
        let record = match old {
            Some(o) => Record {
                create_revision: o.create_revision,
                mod_revision: next,
                version: o.version + 1,
                value,
            },
            None => Record {
                create_revision: next,
                mod_revision: next,
                version: 1,
                value,
            },
        };
        self.keys.insert(p.key.clone(), record);
        PutResponse {
            header: None,
            prev_kv,
        }
    }

    fn delete(&mut self, d: &DeleteRangeRequest) -> DeleteRangeResponse {
        let doomed: Vec<Vec<u8>> = self
            .select(&d.key, &d.range_end)
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect();
        let mut prev_kvs = Vec::new();
        for k in &doomed {
            if let Some(r) = self.keys.remove(k) {
                if d.prev_kv {
                    prev_kvs.push(kv(k, &r, false));
                }
            }
        }
        DeleteRangeResponse {
            header: None,
            deleted: doomed.len() as i64,
            prev_kvs,
        }
    }

    fn txn(
        &mut self,
        t: &TxnRequest,
        next: i64,
        wrote: &mut bool,
    ) -> Result<TxnResponse, EtcdError> {
        let succeeded = t.compare.iter().all(|c| self.compare(c));
        let branch = if succeeded { &t.success } else { &t.failure };
        let mut responses = Vec::with_capacity(branch.len());
        for op in branch {
            responses.push(self.run(op, next, wrote)?);
        }
        Ok(TxnResponse {
            header: None,
            succeeded,
            responses,
        })
    }

    /// etcd's rule: every key in the compared range must satisfy the comparison; a missing key
    /// compares as version, revisions and lease 0, and fails any comparison of its value.
    fn compare(&self, c: &Compare) -> bool {
        use compare::{CompareResult, CompareTarget, TargetUnion};
        let target = CompareTarget::try_from(c.target).unwrap_or(CompareTarget::Version);
        let result = CompareResult::try_from(c.result).unwrap_or(CompareResult::Equal);
        let holds = |rec: Option<&Record>| -> bool {
            let ord = match (target, &c.target_union) {
                (CompareTarget::Value, Some(TargetUnion::Value(v))) => match rec {
                    Some(r) => r.value.as_slice().cmp(v.as_slice()),
                    None => return false,
                },
                (CompareTarget::Version, Some(TargetUnion::Version(v))) => {
                    rec.map_or(0, |r| r.version).cmp(v)
                }
                (CompareTarget::Create, Some(TargetUnion::CreateRevision(v))) => {
                    rec.map_or(0, |r| r.create_revision).cmp(v)
                }
                (CompareTarget::Mod, Some(TargetUnion::ModRevision(v))) => {
                    rec.map_or(0, |r| r.mod_revision).cmp(v)
                }
                (CompareTarget::Lease, Some(TargetUnion::Lease(v))) => 0i64.cmp(v),
                // A target without its value (or the wrong one): etcd compares against zero.
                (CompareTarget::Value, _) => match rec {
                    Some(r) => r.value.as_slice().cmp(&[][..]),
                    None => return false,
                },
                (CompareTarget::Version, _) => rec.map_or(0, |r| r.version).cmp(&0),
                (CompareTarget::Create, _) => rec.map_or(0, |r| r.create_revision).cmp(&0),
                (CompareTarget::Mod, _) => rec.map_or(0, |r| r.mod_revision).cmp(&0),
                (CompareTarget::Lease, _) => std::cmp::Ordering::Equal,
            };
            match result {
                CompareResult::Equal => ord.is_eq(),
                CompareResult::Greater => ord.is_gt(),
                CompareResult::Less => ord.is_lt(),
                CompareResult::NotEqual => !ord.is_eq(),
            }
        };
        let found = self.select(&c.key, &c.range_end);
        if found.is_empty() {
            holds(None)
        } else {
            found.iter().all(|(_, r)| holds(Some(r)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use compare::{CompareResult, CompareTarget, TargetUnion};

    fn encode(r: request_op::Request) -> Vec<u8> {
        prost::Message::encode_to_vec(&RequestOp { request: Some(r) })
    }
    fn put(k: &str, v: &str) -> request_op::Request {
        request_op::Request::RequestPut(PutRequest {
            key: k.into(),
            value: v.into(),
            prev_kv: true,
            ..Default::default()
        })
    }
    fn get(k: &str, end: &str) -> request_op::Request {
        request_op::Request::RequestRange(RangeRequest {
            key: k.into(),
            range_end: end.into(),
            ..Default::default()
        })
    }
    fn response(reply: &EtcdReply) -> response_op::Response {
        let bytes = reply.result.as_ref().expect("no error");
        <ResponseOp as prost::Message>::decode(bytes.as_slice())
            .unwrap()
            .response
            .unwrap()
    }
    fn range(reply: &EtcdReply) -> RangeResponse {
        match response(reply) {
            response_op::Response::ResponseRange(r) => r,
            other => panic!("not a range: {other:?}"),
        }
    }

    #[test]
    fn revisions_and_versions_follow_etcd() {
        let mut s = EtcdStore::default();
        assert_eq!(s.revision(), 1);
        assert_eq!(s.apply(&encode(put("a", "1"))).revision, 2);
        s.apply(&encode(put("b", "1")));
        let r = s.apply(&encode(put("a", "2")));
        assert_eq!(r.revision, 4);
        match response(&r) {
            response_op::Response::ResponsePut(p) => {
                let prev = p.prev_kv.unwrap();
                assert_eq!((prev.value, prev.mod_revision), (b"1".to_vec(), 2));
            }
            other => panic!("{other:?}"),
        }
        let a = range(&s.read(&encode(get("a", ""))));
        let kv = &a.kvs[0];
        assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 4, 2));
        // A delete that finds nothing writes nothing; one that does takes a revision.
        let d = |k: &str| {
            encode(request_op::Request::RequestDeleteRange(
                DeleteRangeRequest {
                    key: k.into(),
                    ..Default::default()
                },
            ))
        };
        assert_eq!(s.apply(&d("zz")).revision, 4);
        assert_eq!(s.apply(&d("a")).revision, 5);
        // Created again: a new create revision and version 1.
        s.apply(&encode(put("a", "3")));
        let kv = range(&s.read(&encode(get("a", "")))).kvs[0].clone();
        assert_eq!((kv.create_revision, kv.version), (6, 1));
    }

    #[test]
    fn ranges_prefixes_limits_and_counts() {
        let mut s = EtcdStore::default();
        for k in ["a", "b/1", "b/2", "b/3", "c"] {
            s.apply(&encode(put(k, "v")));
        }
        let r = range(&s.read(&encode(get("b/", "b0"))));
        assert_eq!(r.count, 3);
        assert_eq!(r.kvs.len(), 3);
        let all = range(&s.read(&encode(get("\0", "\0"))));
        assert_eq!(all.count, 5);
        let limited = RangeRequest {
            key: b"b/".to_vec(),
            range_end: b"b0".to_vec(),
            limit: 2,
            keys_only: true,
            ..Default::default()
        };
        let r = range(&s.read(&encode(request_op::Request::RequestRange(limited))));
        assert_eq!((r.count, r.more, r.kvs.len()), (3, true, 2));
        assert!(r.kvs[0].value.is_empty());
        let old = RangeRequest {
            key: b"a".to_vec(),
            revision: 2,
            ..Default::default()
        };
        let e = s
            .read(&encode(request_op::Request::RequestRange(old)))
            .result
            .unwrap_err();
        assert_eq!(e.code, tonic::Code::OutOfRange as i32);
    }

    #[test]
    fn a_txn_compares_then_writes_once() {
        let mut s = EtcdStore::default();
        s.apply(&encode(put("k", "old")));
        let cas = |expected: &str, new: &str| {
            encode(request_op::Request::RequestTxn(TxnRequest {
                compare: vec![Compare {
                    result: CompareResult::Equal as i32,
                    target: CompareTarget::Value as i32,
                    key: b"k".to_vec(),
                    target_union: Some(TargetUnion::Value(expected.into())),
                    range_end: vec![],
                }],
                success: vec![
                    RequestOp {
                        request: Some(put("k", new)),
                    },
                    RequestOp {
                        request: Some(put("other", new)),
                    },
                ],
                failure: vec![RequestOp {
                    request: Some(get("k", "")),
                }],
            }))
        };
        let r = s.apply(&cas("wrong", "x"));
        assert_eq!(r.revision, 2, "a failed compare writes nothing");
        match response(&r) {
            response_op::Response::ResponseTxn(t) => {
                assert!(!t.succeeded);
                assert_eq!(t.responses.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        let r = s.apply(&cas("old", "new"));
        assert_eq!(r.revision, 3, "both puts share one revision");
        let kv = range(&s.read(&encode(get("other", "")))).kvs[0].clone();
        assert_eq!(kv.mod_revision, 3);
        // Create-if-absent: compare create_revision = 0.
        let create = encode(request_op::Request::RequestTxn(TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal as i32,
                target: CompareTarget::Create as i32,
                key: b"fresh".to_vec(),
                target_union: Some(TargetUnion::CreateRevision(0)),
                range_end: vec![],
            }],
            success: vec![RequestOp {
                request: Some(put("fresh", "1")),
            }],
            failure: vec![],
        }));
        assert!(
            matches!(response(&s.apply(&create)), response_op::Response::ResponseTxn(t) if t.succeeded)
        );
        assert!(
            matches!(response(&s.apply(&create)), response_op::Response::ResponseTxn(t) if !t.succeeded)
        );
    }

    #[test]
    fn refused_requests_change_nothing() {
        let mut s = EtcdStore::default();
        s.apply(&encode(put("k", "v")));
        let before = s.clone();
        let dup = encode(request_op::Request::RequestTxn(TxnRequest {
            compare: vec![],
            success: vec![
                RequestOp {
                    request: Some(put("x", "1")),
                },
                RequestOp {
                    request: Some(put("x", "2")),
                },
            ],
            failure: vec![],
        }));
        assert_eq!(s.apply(&dup).result.unwrap_err().message, DUPLICATE);
        assert_eq!(
            s.apply(&encode(put("", "v"))).result.unwrap_err().message,
            NO_KEY
        );
        let leased = encode(request_op::Request::RequestPut(PutRequest {
            key: b"k".to_vec(),
            lease: 7,
            ..Default::default()
        }));
        assert_eq!(
            s.apply(&leased).result.unwrap_err().code,
            tonic::Code::NotFound as i32
        );
        assert!(s.apply(b"\xff\xff\xff").result.is_err());
        assert_eq!(s, before);
    }
}
