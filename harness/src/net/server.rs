//! `consensus-lab serve`: one node of a replicated key-value service, with a file log, the TCP
//! transport and an HTTP+JSON API.
//!
//! - `PUT /kv/{key}` (body: the value, UTF-8) → `{"ok":true}`
//! - `GET /kv/{key}` → `{"key":..,"value":..}` or 404. `?consistency=` picks how: `log`
//!   (default: through the log, linearizable), `index` (Raft: ReadIndex, linearizable, also at
//!   a follower, which asks the leader; ZAB: ZooKeeper's sync, then the read), `lease` (Raft: the
//!   leader's lease, linearizable while clocks drift less than the bound; ZAB: as `index`),
//!   `local` (this node's own state at once: possibly stale)
//! - `DELETE /kv/{key}` → `{"ok":true,"existed":true|false}`
//! - `POST /cas/{key}` (body: `{"expected":..,"new":..}`; `"expected": null` creates the key
//!   only if it is absent) → `{"ok":true|false}`
//!
//! A key is everything after `/kv/` or `/cas/`, percent-decoded: it may contain any bytes,
//! `/` included (`/kv/a/b` is the key `a/b`), 1 to 1,024 of them.
//! - `GET /status` → role, era, leader, commit and last positions, protocol
//! - `GET /cluster/members` → every member (id, peer and HTTP addresses, voter or learner), the
//!   configuration and the leader
//! - `POST /cluster/members` (body: `{"changes": [{"action": "add-learner" | "add-voter" |
//!   "remove", "id": N, "peer": ADDR, "http": ADDR}]}`) → the new configuration, once the change
//!   is committed and in force (409 when refused, 307 at a follower; docs/membership.md)
//! - `POST /cluster/transfer-leader` (body: `{"to": N}`) → `{"ok":true,"leader":N,"era":..}`
//!   once node N leads (Raft; ZAB answers 501)
//!
//! A node that does not lead forwards writes and reads through the log to the leader and relays
//! its answer, when it knows the leader's HTTP address (`peer_http`); with `redirect` it answers
//! `307 Temporary Redirect` to that address instead (also for a request with the header
//! `x-consensus-lab-no-forward`), and without a known leader `503` with a JSON error. Errors are always JSON:
//! `{"error": "..."}`.

// Handlers return early with a ready `Response` as the error; it is built once per request.
#![allow(clippy::result_large_err)]

use crate::front::store::ServiceCommand;
use crate::net::node::{check_protocol_marker, NodeRun, RealNode};
pub use crate::net::serve_config::{default_cluster_id, parse_members, ServeConfig};
use crate::protocol::Protocol;
use anyhow::{bail, Context};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use consensus_core::codec;
use consensus_core::kv::{KvCommand, KvOp, KvOutput};
use consensus_core::{NodeId, Position, ReadLevel, Status};
use consensus_node::runtime::{ClientError, NodeHandle};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

/// How long a request waits for its command to commit before answering 504.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Session numbers for the commands this server proposes: one (client, seq) stream per
/// concurrent request, so a retried command takes effect at most once and sessions stay few.
struct Sessions {
    free: Mutex<Vec<(u64, u64)>>,
}

impl Sessions {
    fn take(&self) -> (u64, u64) {
        self.free
            .lock()
            .expect("sessions lock")
            .pop()
            .unwrap_or_else(|| (rand::rng().random::<u64>() | 1, 1))
    }

    fn give_back(&self, client: u64, next_seq: u64) {
        self.free
            .lock()
            .expect("sessions lock")
            .push((client, next_seq));
    }
}

struct AppState {
    id: NodeId,
    /// Every member's peer address.
    peers: BTreeMap<NodeId, SocketAddr>,
    protocol: Protocol,
    handle: NodeHandle,
    /// Every member's peer and HTTP addresses, kept up to date with the configuration.
    peer_http: crate::net::directory::Directory,
    sessions: Sessions,
    /// Answer with a 307 instead of forwarding to the leader.
    redirect: bool,
    /// The way to the leader: its pool of connections serves the forwards of the HTTP API
    /// too, and it hands over leadership.
    gateway: crate::front::Gateway,
    /// The ZooKeeper sessions this node hosts and, leading, hears of.
    sessions_heard: Arc<crate::front::zk::SessionTracker>,
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

impl AppState {
    /// The answer of a node that does not lead.
    fn not_leader(&self, leader: Option<NodeId>, path: &str) -> Response {
        match leader {
            Some(l) if l != self.id => match self.peer_http.http(l) {
                Some(addr) => {
                    let location = format!("http://{addr}{path}");
                    (
                        StatusCode::TEMPORARY_REDIRECT,
                        [(header::LOCATION, location.clone())],
                        Json(json!({
                            "error": "not the leader",
                            "leader": l,
                            "leader_http": addr.to_string(),
                            "location": location,
                        })),
                    )
                        .into_response()
                }
                None => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({ "error": "not the leader", "leader": l })),
                )
                    .into_response(),
            },
            _ => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no leader is elected yet; retry shortly",
            ),
        }
    }

    /// Serves the read `op` at `level` on this node (a follower asks the leader for the read
    /// index itself), and waits for its output.
    async fn read(&self, level: ReadLevel, op: KvOp, path: &str) -> Result<KvOutput, Response> {
        let command = ServiceCommand::Kv(KvCommand {
            client: 0,
            seq: 0,
            op,
        })
        .encode();
        let read = self.handle.read(level, command, Position::ZERO);
        let bytes = match tokio::time::timeout(COMMIT_TIMEOUT, read).await {
            Err(_) => {
                return Err(error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the read index was not confirmed in time",
                ))
            }
            Ok(Err(ClientError::NotLeader { leader })) => return Err(self.not_leader(leader, path)),
            Ok(Err(e)) => return Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
            Ok(Ok(b)) => b,
        };
        codec::decode::<KvOutput>(&bytes)
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }

    /// Proposes `op` and waits for its output.
    async fn execute(&self, op: KvOp, path: &str) -> Result<KvOutput, Response> {
        let status = self.handle.status();
        if status.leader != Some(self.id) {
            return Err(self.not_leader(status.leader, path));
        }
        let (client, seq) = self.sessions.take();
        let command = ServiceCommand::Kv(KvCommand { client, seq, op }).encode();
        let result = tokio::time::timeout(COMMIT_TIMEOUT, self.handle.submit(command)).await;
        self.sessions.give_back(client, seq + 1);
        let bytes = match result {
            Err(_) => {
                return Err(error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the command did not commit in time; it may still take effect",
                ))
            }
            Ok(Err(ClientError::NotLeader { leader })) => return Err(self.not_leader(leader, path)),
            Ok(Err(e)) => return Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
            Ok(Ok(b)) => b,
        };
        match codec::decode::<KvOutput>(&bytes) {
            Ok(KvOutput::Malformed(why)) | Err(codec::CodecError::Decode(why)) => Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the state machine refused the command: {why}"),
            )),
            Ok(KvOutput::Stale) => Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the command was older than its session's latest",
            )),
            Ok(out) => Ok(out),
            Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        }
    }
}

type Shared = State<Arc<AppState>>;

/// The request's path and query as the client sent them.
fn raw_path(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string())
}

fn key_of(path: Result<Path<String>, PathRejection>) -> Result<String, Response> {
    let Path(key) = path.map_err(|e| error(StatusCode::BAD_REQUEST, e.body_text()))?;
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("a key has 1 to {MAX_KEY_BYTES} bytes"),
        ));
    }
    Ok(key)
}

async fn put_kv(
    State(st): Shared,
    uri: axum::http::Uri,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let key = match key_of(path) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return error(e.status(), e.body_text()),
    };
    let Ok(value) = String::from_utf8(body.to_vec()) else {
        return error(StatusCode::BAD_REQUEST, "the value must be UTF-8 text");
    };
    // A redirect repeats the request exactly as it came (still percent-encoded): rebuilding
    // it from the decoded key would send `q%3Fx` as `q?x`, a write to key `q`.
    let path = raw_path(&uri);
    match st.execute(KvOp::Put { key, value }, &path).await {
        Ok(_) => Json(json!({ "ok": true })).into_response(),
        Err(r) => r,
    }
}

/// The query of `GET /kv/{key}`.
#[derive(Debug, Deserialize)]
pub struct ReadQuery {
    /// `log` (default), `index`, `lease` or `local`.
    consistency: Option<String>,
}

async fn get_kv(
    State(st): Shared,
    uri: axum::http::Uri,
    path: Result<Path<String>, PathRejection>,
    query: Query<ReadQuery>,
) -> Response {
    let key = match key_of(path) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let level = match query.consistency.as_deref() {
        None => ReadLevel::Log,
        Some(name) => match ReadLevel::parse(name) {
            Ok(l) => l,
            Err(why) => return error(StatusCode::BAD_REQUEST, why),
        },
    };
    let path = raw_path(&uri);
    let op = KvOp::Get { key: key.clone() };
    let result = if level == ReadLevel::Log {
        st.execute(op, &path).await
    } else {
        st.read(level, op, &path).await
    };
    match result {
        Ok(KvOutput::Value(Some(v))) => Json(json!({ "key": key, "value": v })).into_response(),
        Ok(KvOutput::Value(None)) => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such key", "key": key })),
        )
            .into_response(),
        Ok(other) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected output {other:?}"),
        ),
        Err(r) => r,
    }
}

/// The body of `POST /cas/{key}`.
#[derive(Debug, Deserialize, Serialize)]
pub struct CasBody {
    /// The value the key must hold; `null`: the key must be absent (create only).
    pub expected: Option<String>,
    /// The value to store if it does.
    pub new: String,
}

async fn cas_kv(
    State(st): Shared,
    uri: axum::http::Uri,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let key = match key_of(path) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return error(e.status(), e.body_text()),
    };
    // Any content type: the body must simply be the JSON object, with `expected` present
    // (a forgotten field must not turn a compare-and-set into a create).
    let parsed = serde_json::from_slice::<serde_json::Value>(&body)
        .map_err(|e| e.to_string())
        .and_then(|v| {
            if v.get("expected").is_none() {
                return Err("missing field `expected`".to_string());
            }
            serde_json::from_value::<CasBody>(v).map_err(|e| e.to_string())
        });
    let body = match parsed {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"expected\": \"..\" or null, \"new\": \"..\"}}: {e}"),
            )
        }
    };
    let path = raw_path(&uri);
    let op = match body.expected {
        Some(expected) => KvOp::Cas {
            key,
            expected,
            new: body.new,
        },
        None => KvOp::Create {
            key,
            value: body.new,
        },
    };
    match st.execute(op, &path).await {
        Ok(KvOutput::CasResult(ok)) => Json(json!({ "ok": ok })).into_response(),
        Ok(other) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected output {other:?}"),
        ),
        Err(r) => r,
    }
}

async fn delete_kv(
    State(st): Shared,
    uri: axum::http::Uri,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let key = match key_of(path) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let path = raw_path(&uri);
    match st.execute(KvOp::Delete { key }, &path).await {
        Ok(KvOutput::Deleted(existed)) => {
            Json(json!({ "ok": true, "existed": existed })).into_response()
        }
        Ok(other) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected output {other:?}"),
        ),
        Err(r) => r,
    }
}

/// What `GET /status` returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusBody {
    /// This node.
    pub id: NodeId,
    /// "raft" or "zab".
    pub protocol: String,
    /// Leader, Follower or Candidate.
    pub role: String,
    /// The protocol's own name for the role.
    pub role_name: String,
    /// Raft term or ZAB epoch.
    pub era: u64,
    /// The leader this node believes in.
    pub leader: Option<NodeId>,
    /// The leader's HTTP address, when known.
    pub leader_http: Option<String>,
    /// Last committed position.
    pub commit: consensus_core::Position,
    /// Last position in the log.
    pub last: consensus_core::Position,
    /// The serving process (so that a test or `load --kill-leader-at` can kill it).
    #[serde(default)]
    pub pid: u32,
}

fn status_body(st: &AppState, s: &Status) -> StatusBody {
    StatusBody {
        id: s.id,
        protocol: st.protocol.name().to_string(),
        role: format!("{:?}", s.role),
        role_name: s.role_name.to_string(),
        era: s.era,
        leader: s.leader,
        leader_http: s
            .leader
            .and_then(|l| st.peer_http.http(l))
            .map(|a| a.to_string()),
        commit: s.commit,
        last: s.last,
        pid: std::process::id(),
    }
}

async fn get_status(State(st): Shared) -> Response {
    let s = st.handle.status();
    Json(status_body(&st, &s)).into_response()
}

/// `POST /internal/propose`: a follower's front-end hands the leader an encoded command; the
/// answer is the state machine's output, as bytes.
async fn propose_raw(State(st): Shared, body: Bytes) -> Response {
    let status = st.handle.status();
    if status.leader != Some(st.id) {
        return st.not_leader(status.leader, crate::front::PROPOSE_PATH);
    }
    match tokio::time::timeout(COMMIT_TIMEOUT, st.handle.submit(body)).await {
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "the command did not commit in time; it may still take effect",
        ),
        Ok(Err(ClientError::NotLeader { leader })) => {
            st.not_leader(leader, crate::front::PROPOSE_PATH)
        }
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Ok(Ok(out)) => ([(header::CONTENT_TYPE, "application/octet-stream")], out).into_response(),
    }
}

/// One member, as `GET /cluster/members` lists it.
#[derive(Debug, Deserialize, Serialize)]
pub struct Member {
    /// Its id.
    pub id: NodeId,
    /// Its peer address, when this node knows it.
    pub peer: String,
    /// Its HTTP address, when this node knows it.
    pub http: Option<String>,
    /// Whether it votes.
    pub voter: bool,
    /// Whether it is a learner (Raft) or observer (ZAB): it receives the log without voting.
    #[serde(default)]
    pub learner: bool,
}

/// What `GET /cluster/members` returns.
#[derive(Debug, Deserialize, Serialize)]
pub struct MembersBody {
    /// The node that answered.
    pub answered_by: NodeId,
    /// The leader it believes in.
    pub leader: Option<NodeId>,
    /// Raft term or ZAB epoch.
    pub era: u64,
    /// Every member.
    pub members: Vec<Member>,
    /// The configuration as one line ("voters {n1,n2,n3} learners {n4}"; joint while a
    /// Raft change is half done).
    #[serde(default)]
    pub configuration: String,
}

impl AppState {
    /// The configuration as this node knows it.
    fn members_body(&self) -> MembersBody {
        let s = self.handle.status();
        let m = self.handle.membership().unwrap_or_else(|| {
            consensus_core::Membership::of_voters(&self.peers.keys().copied().collect::<Vec<_>>())
        });
        let members = m
            .members()
            .into_iter()
            .map(|id| {
                let a = self.peer_http.get(id);
                Member {
                    id,
                    peer: a.peer.map(|p| p.to_string()).unwrap_or_default(),
                    http: a.http.map(|h| h.to_string()),
                    voter: m.is_voter(id),
                    learner: m.is_learner(id),
                }
            })
            .collect();
        MembersBody {
            answered_by: self.id,
            leader: s.leader,
            era: s.era,
            members,
            configuration: m.to_string(),
        }
    }
}

/// `GET /cluster/members`: the configuration as this node knows it.
async fn get_members(State(st): Shared) -> Response {
    Json(st.members_body()).into_response()
}

/// What a membership change does to one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeAction {
    /// Add it as a learner (Raft) or observer (ZAB): it receives the log but does not vote.
    AddLearner,
    /// Make it a voter: promote a learner, or add a new node directly.
    AddVoter,
    /// Remove it, voter or learner.
    Remove,
}

/// One change of `POST /cluster/members`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ChangeItem {
    /// What to do.
    pub action: ChangeAction,
    /// To which node.
    pub id: NodeId,
    /// A new node's peer address.
    #[serde(default)]
    pub peer: Option<SocketAddr>,
    /// A new node's HTTP address.
    #[serde(default)]
    pub http: Option<SocketAddr>,
}

/// The body of `POST /cluster/members`: changes made together (more than one voter at once
/// goes through Raft's joint consensus; ZAB's reconfig takes them in one transaction).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ChangeBody {
    /// The changes.
    pub changes: Vec<ChangeItem>,
}

impl ChangeItem {
    /// The core's form of the change.
    pub fn to_conf_change(&self) -> consensus_core::ConfChange {
        use consensus_core::ConfChange;
        let addr = crate::net::directory::Addrs {
            peer: self.peer,
            http: self.http,
        }
        .encode();
        match self.action {
            ChangeAction::AddLearner => ConfChange::AddLearner { id: self.id, addr },
            ChangeAction::AddVoter => ConfChange::AddVoter { id: self.id, addr },
            ChangeAction::Remove => ConfChange::Remove { id: self.id },
        }
    }

    /// True once `m` shows the change made.
    fn done_in(&self, m: &consensus_core::Membership) -> bool {
        match self.action {
            ChangeAction::AddLearner => m.contains(self.id),
            ChangeAction::AddVoter => m.voters.contains(&self.id),
            ChangeAction::Remove => !m.contains(self.id),
        }
    }
}

/// How long `POST /cluster/members` waits for a change to take effect.
const CHANGE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `POST /cluster/members`: the leader changes the membership and answers once the change is
/// committed and in force (Raft: after leaving the joint configuration), with the new
/// configuration. A follower redirects to the leader.
async fn change_members(State(st): Shared, body: Bytes) -> Response {
    let body = match serde_json::from_slice::<ChangeBody>(&body) {
        Ok(b) if !b.changes.is_empty() => b,
        Ok(_) => return error(StatusCode::BAD_REQUEST, "no change given"),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body must be {{\"changes\": [{{\"action\": \"add-learner\" | \"add-voter\" | \"remove\", \"id\": N, \"peer\": ADDR, \"http\": ADDR}}]}}: {e}"
                ),
            )
        }
    };
    let changes: Vec<_> = body
        .changes
        .iter()
        .map(ChangeItem::to_conf_change)
        .collect();
    let pos = match st.handle.change_membership(changes).await {
        Ok(pos) => pos,
        Err(ClientError::NotLeader { leader }) => return st.not_leader(leader, "/cluster/members"),
        Err(ClientError::Unsupported) => {
            return error(
                StatusCode::NOT_IMPLEMENTED,
                format!("{} has a fixed membership", st.protocol.name()),
            )
        }
        Err(e) => return error(StatusCode::CONFLICT, e.to_string()),
    };
    let deadline = tokio::time::Instant::now() + CHANGE_WAIT;
    loop {
        let done = st
            .handle
            .membership()
            .is_some_and(|m| !m.is_joint() && body.changes.iter().all(|c| c.done_in(&m)))
            && st.handle.status().commit >= pos;
        if done {
            return Json(st.members_body()).into_response();
        }
        if tokio::time::Instant::now() >= deadline {
            return error(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the change (entry at {pos}) did not take effect within {} s; it may still: see GET /cluster/members",
                    CHANGE_WAIT.as_secs()
                ),
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The body of `POST /cluster/transfer-leader`.
#[derive(Debug, Deserialize, Serialize)]
pub struct TransferBody {
    /// The voter that should lead.
    pub to: NodeId,
}

/// `POST /cluster/transfer-leader` (`{"to": N}`): the leader hands leadership to voter N (Raft's
/// TimeoutNow, dissertation 3.10) and the answer comes once N leads, or says why not. A
/// follower redirects to the leader; ZAB answers 501: ZooKeeper has no leadership transfer.
async fn transfer_leader(State(st): Shared, body: Bytes) -> Response {
    use crate::front::TransferError;
    let to = match serde_json::from_slice::<TransferBody>(&body) {
        Ok(b) => b.to,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"to\": <node id>}}: {e}"),
            )
        }
    };
    match st.gateway.transfer_leadership(to).await {
        Ok(s) => Json(json!({ "ok": true, "leader": to, "era": s.era })).into_response(),
        Err(TransferError::NotLeader(leader)) => st.not_leader(leader, "/cluster/transfer-leader"),
        Err(e @ TransferError::Unsupported) => error(
            StatusCode::NOT_IMPLEMENTED,
            format!("{}: {e}", st.protocol.name()),
        ),
        Err(e @ TransferError::Refused(_)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e @ TransferError::Unavailable(_)) => {
            error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(e @ TransferError::TimedOut { .. }) => {
            error(StatusCode::GATEWAY_TIMEOUT, e.to_string())
        }
    }
}

/// `POST /internal/zk/touch`: a node reports the ZooKeeper sessions it hosts to the leader.
async fn touch_sessions(State(st): Shared, body: Bytes) -> Response {
    match crate::front::zk::decode_touch(&body) {
        Some(ids) => {
            st.sessions_heard.touch(&ids);
            Json(json!({ "ok": true })).into_response()
        }
        None => error(
            StatusCode::BAD_REQUEST,
            "the body must be encoded session ids",
        ),
    }
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint: use /kv/{key}, /cas/{key}, /status, /cluster/members (GET, POST) or /cluster/transfer-leader",
    )
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: PUT, GET or DELETE /kv/{key}, POST /cas/{key}, GET /status",
    )
}

/// Whether a request must be served by the leader: a write, or a read through the log.
fn needs_leader(method: &axum::http::Method, uri: &axum::http::Uri) -> bool {
    let path = uri.path();
    if !(path.starts_with("/kv/") || path.starts_with("/cas/")) {
        return false;
    }
    if *method != axum::http::Method::GET {
        return true;
    }
    let query = uri.query().unwrap_or("");
    !query
        .split('&')
        .any(|kv| kv.starts_with("consistency=") && kv != "consistency=log")
}

/// At a follower, hands a request that needs the leader to the leader and relays its answer
/// (as ZooKeeper's followers forward writes), so that clients may talk to any node. Only one
/// hop: a forwarded request is served, redirected or refused where it lands.
async fn forward_to_leader(
    State(st): Shared,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let status = st.handle.status();
    let leader = match status.leader {
        Some(l) if l != st.id => l,
        _ => return next.run(req).await,
    };
    let Some(addr) = st.peer_http.http(leader) else {
        return next.run(req).await;
    };
    if st.redirect
        || req
            .headers()
            .contains_key(crate::net::client::NO_FORWARD_HEADER)
        || !needs_leader(req.method(), req.uri())
    {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let path = raw_path(req.uri());
    let body = match axum::body::to_bytes(req.into_body(), MAX_VALUE_BYTES + 1).await {
        Ok(b) if b.len() <= MAX_VALUE_BYTES => b,
        Ok(_) | Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {MAX_VALUE_BYTES} bytes"),
            )
        }
    };
    let mut client = st.gateway.leader_client(addr);
    // Not connected: nothing was sent, and the client may take it as a plain refusal.
    if let Err(e) = client.connect().await {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot reach the leader n{leader} at {addr}: {e}"),
        );
    }
    // A leader that stops answering (paused, cut off) is replaced within an election
    // timeout; a forward must not outwait that, so a change of leader ends it.
    let mut status = st.handle.watch_status();
    let leader_changed = async move {
        let _ = status.wait_for(|s| s.leader != Some(leader)).await;
    };
    let answer = tokio::select! {
        r = client.call_once(method, &path, body) => r,
        _ = leader_changed => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the leader n{leader} was replaced while the forwarded request waited; it may still take effect"),
            );
        }
    };
    match answer {
        Ok(reply) => {
            st.gateway.keep_client(addr, client);
            let mut resp = (
                reply.status,
                [(header::CONTENT_TYPE, "application/json")],
                reply.body,
            )
                .into_response();
            if let Some(loc) = reply
                .location
                .and_then(|l| axum::http::HeaderValue::from_str(&l).ok())
            {
                resp.headers_mut().insert(header::LOCATION, loc);
            }
            resp
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the leader n{leader} at {addr} did not answer the forwarded request: {e}"),
        ),
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/kv/{*key}", get(get_kv).put(put_kv).delete(delete_kv))
        .route("/cas/{*key}", post(cas_kv))
        .route("/status", get(get_status))
        .route("/cluster/transfer-leader", post(transfer_leader))
        .route("/cluster/members", get(get_members).post(change_members))
        .route(crate::front::PROPOSE_PATH, post(propose_raw))
        .route(crate::front::zk::TOUCH_PATH, post(touch_sessions))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward_to_leader,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_VALUE_BYTES))
        .with_state(state)
}

/// HTTPS: every accepted connection goes through the TLS handshake (a plaintext client or one
/// without an acceptable certificate is refused and logged) and then to the same router.
async fn serve_https(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    while let Some((tcp, addr)) = crate::net::accept_until(&listener, &mut shutdown).await {
        let acceptor = acceptor.clone();
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::warn!(%addr, "HTTPS handshake refused: {e}");
                    return;
                }
                Err(_) => {
                    tracing::warn!(%addr, "HTTPS handshake timed out");
                    return;
                }
            };
            let io = hyper_util::rt::TokioIo::new(tls);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
    Ok(())
}

/// Starts the node and its HTTP API, and runs until `shutdown` completes or the node fails.
pub async fn serve(
    cfg: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    cfg.validate()?;
    // Ports first: a port in use must fail before anything is written to disk.
    let listener = tokio::net::TcpListener::bind(cfg.http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", cfg.http))?;
    let tls = match &cfg.tls {
        Some(t) => Some(consensus_node::tls::Tls::load(&t.files(), &cfg.cluster_id)?),
        None => None,
    };
    let https = match (&tls, &cfg.tls) {
        (Some(tls), Some(t)) => Some(
            tls.http_acceptor(t.client_certs == crate::net::serve_config::ClientCerts::Required)?,
        ),
        _ => None,
    };
    let etcd_listener = bind_if(cfg.etcd_listen, "etcd clients").await?;
    let zk_listener = bind_if(cfg.zk_listen, "ZooKeeper clients").await?;
    let fresh_dir = !cfg.data_dir.exists();
    let started = start(&cfg, &tls).await;
    if started.is_err() && fresh_dir {
        // A data dir this start created holds nothing worth keeping.
        let _ = std::fs::remove_dir_all(&cfg.data_dir);
    }
    let (id, span, run, handle) = started?;
    let node_task = tokio::spawn(run.instrument(span.clone()));
    let directory = crate::net::directory::Directory::new(&cfg.peers, &cfg.peer_http);
    {
        // Members added later bring their addresses in the configuration.
        let directory = directory.clone();
        let mut members = handle.watch_membership();
        tokio::spawn(async move {
            loop {
                if let Some(m) = members.borrow_and_update().clone() {
                    directory.learn(&m);
                }
                if members.changed().await.is_err() {
                    return;
                }
            }
        });
    }
    let gateway = crate::front::Gateway::new(
        id,
        handle.clone(),
        directory.clone(),
        tls.as_ref().map(|t| t.connector()),
    );
    // Every node reports the ZooKeeper sessions it hosts, and the leader expires the silent
    // ones, whether or not this node serves ZooKeeper clients itself.
    let sessions_heard = Arc::new(crate::front::zk::SessionTracker::default());
    tokio::spawn(
        sessions_heard
            .clone()
            .run(gateway.clone())
            .instrument(span.clone()),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut fronts: Vec<
        std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>,
    > = Vec::new();
    if let Some(l) = etcd_listener {
        let listen = l.local_addr()?;
        tracing::info!(parent: &span, %listen, "serving etcd's v3 API");
        let front = crate::front::etcd::EtcdFront::new(
            gateway.clone(),
            &cfg.cluster_id,
            cfg.peers.clone(),
            listen,
        );
        fronts.push(Box::pin(crate::front::etcd::serve(front, l, stopped())));
    }
    if let Some(l) = zk_listener {
        tracing::info!(parent: &span, listen = %l.local_addr()?, "serving ZooKeeper's client protocol");
        let front = crate::front::zk::ZkFront::new(
            gateway.clone(),
            sessions_heard.clone(),
            cfg.protocol.name(),
        );
        fronts.push(Box::pin(front.serve(l, stopped())));
    }
    let fronts = async move {
        let results = futures_util::future::join_all(fronts).await;
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()
    };
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let state = Arc::new(AppState {
        id,
        protocol: cfg.protocol,
        handle,
        peer_http: directory,
        peers: cfg.peers.clone(),
        sessions: Sessions {
            free: Mutex::new(Vec::new()),
        },
        redirect: cfg.redirect,
        gateway,
        sessions_heard,
    });
    tracing::info!(parent: &span, protocol = cfg.protocol.name(), http = %cfg.http, peer = %cfg.peers[&id], data = %cfg.data_dir.display(), "serving");
    let http: std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> =
        match https {
            None => Box::pin(async move {
                axum::serve(listener, router(state))
                    .with_graceful_shutdown(shutdown)
                    .await
            }),
            Some(acceptor) => Box::pin(serve_https(listener, acceptor, router(state), shutdown)),
        };
    tokio::select! {
        r = async move { tokio::join!(http, fronts) } => {
            r.0.context("HTTP server failed")?;
            r.1.context("a client front-end failed")?;
        }
        r = node_task => match r {
            Ok(Ok(_)) => bail!("the node stopped"),
            Ok(Err(e)) => return Err(anyhow::Error::new(e).context("the node stopped")),
            Err(e) => bail!("the node task failed: {e}"),
        },
    }
    Ok(())
}

/// Binds `addr` if one is given (`who`: whom it listens for, for the error).
async fn bind_if(
    addr: Option<SocketAddr>,
    who: &str,
) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    match addr {
        Some(a) => {
            Ok(Some(tokio::net::TcpListener::bind(a).await.with_context(
                || format!("cannot listen for {who} on {a}"),
            )?))
        }
        None => Ok(None),
    }
}

/// Claims the data dir, binds the peer port and recovers the node.
async fn start(
    cfg: &ServeConfig,
    tls: &Option<consensus_node::tls::Tls>,
) -> anyhow::Result<(NodeId, tracing::Span, NodeRun, NodeHandle)> {
    check_protocol_marker(&cfg.data_dir, cfg.protocol)?;
    let span = tracing::info_span!("node", id = cfg.id);
    // A joining node starts outside the configuration: the running members are the voters.
    let voters: Vec<NodeId> = cfg
        .peers
        .keys()
        .copied()
        .filter(|&p| !(cfg.join && p == cfg.id))
        .collect();
    let tcp = crate::net::tcp::TcpConfig {
        id: cfg.id,
        cluster_id: cfg.cluster_id.clone(),
        listen: cfg.peers[&cfg.id],
        peers: cfg.peers.clone(),
        tls: tls.clone(),
    };
    let store_dir = cfg.data_dir.join("log");
    // Seeds only spread election timeouts and connection ids; they differ at every start.
    let seed: u64 = rand::rng().random();
    let id = cfg.id;
    let (run, handle) = cfg
        .protocol
        .def()
        .start_real(RealNode {
            id,
            voters,
            seed,
            tcp,
            store_dir,
            knobs: crate::protocol::Knobs {
                snapshot_threshold: Some(cfg.snapshot_threshold),
                ..Default::default()
            },
        })
        .await?;
    Ok((id, span, run, handle))
}

#[cfg(test)]
mod tests;
