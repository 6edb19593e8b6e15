//! Client protocols of other systems, served over this project's replicated state machine:
//! etcd's v3 gRPC API ([`etcd`]) and ZooKeeper's binary client protocol ([`zk`]), each over
//! either consensus protocol, next to the HTTP API.
//!
//! Each front-end proposes through a [`Gateway`]: at the leader straight into the log, at a
//! follower forwarded to the leader's HTTP API (`POST /internal/propose`, the encoded command
//! in, the state machine's output back), as etcd's and ZooKeeper's followers hand writes to
//! their leader. Reads are served by the node the client is connected to, at the read level
//! the client's protocol asks for.

pub mod etcd;
pub mod etcd_store;
pub mod store;
pub mod zk;
pub mod zk_store;

/// Code generated from `harness/proto` (etcd's package names, so its clients interoperate).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    /// etcd's `etcdserverpb` package: the services and their messages.
    pub mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
    /// etcd's `mvccpb` package: the stored key-value record.
    pub mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
}

use bytes::Bytes;
use consensus_core::{Command, NodeId, Position, ReadLevel, Status};
use consensus_node::runtime::{ClientError, NodeHandle};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a front-end's request waits for its command to commit or its read to be served.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a leader to be elected before it fails.
const LEADER_WAIT: Duration = Duration::from_secs(3);
/// How long a leadership transfer waits to see the new leader.
pub const TRANSFER_WAIT: Duration = Duration::from_secs(3);
/// Pause between attempts at a command or read that found no leader.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// The leader's HTTP path that takes an encoded command from a follower's front-end.
pub const PROPOSE_PATH: &str = "/internal/propose";

/// Why a front-end request failed before the state machine answered it.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No leader, or the leader could not be reached: nothing was applied.
    #[error("{0}")]
    Unavailable(String),
    /// The command or read did not finish in time; a command may still take effect.
    #[error("{0}")]
    Timeout(String),
}

/// A front-end's way into the replicated service on this node.
#[derive(Clone)]
pub struct Gateway {
    id: NodeId,
    handle: NodeHandle,
    peer_http: crate::net::directory::Directory,
    tls: Option<tokio_rustls::TlsConnector>,
    /// Idle connections to the leader's HTTP API.
    idle: Arc<Mutex<Vec<(SocketAddr, crate::net::Client)>>>,
}

impl Gateway {
    /// A gateway of node `id`, which forwards to the leader at its address in `peer_http`.
    pub fn new(
        id: NodeId,
        handle: NodeHandle,
        peer_http: crate::net::directory::Directory,
        tls: Option<tokio_rustls::TlsConnector>,
    ) -> Gateway {
        Gateway {
            id,
            handle,
            peer_http,
            tls,
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// This node.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The HTTP address of member `id`, when known.
    pub(crate) fn http_of(&self, id: NodeId) -> Option<SocketAddr> {
        self.peer_http.http(id)
    }

    /// Member `id`'s peer and HTTP addresses, as far as this node knows them.
    pub(crate) fn addresses_of(&self, id: NodeId) -> crate::net::directory::Addrs {
        self.peer_http.get(id)
    }

    /// The node's handle.
    pub fn handle(&self) -> &NodeHandle {
        &self.handle
    }

    /// The leader, waiting a little for one to be elected.
    async fn leader(&self) -> Result<NodeId, GatewayError> {
        let mut status = self.handle.watch_status();
        let found = tokio::time::timeout(LEADER_WAIT, status.wait_for(|s| s.leader.is_some()))
            .await
            .ok()
            .and_then(|r| r.ok().and_then(|s| s.leader));
        found.ok_or_else(|| GatewayError::Unavailable("no leader is elected".into()))
    }

    /// Commits `command` (here if this node leads, else at the leader) and returns the state
    /// machine's output. A refusal that proposed nothing (no leader yet, a leader that just
    /// stepped down) is retried until [`REQUEST_TIMEOUT`].
    pub async fn submit(&self, command: Command) -> Result<Bytes, GatewayError> {
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        loop {
            match self.submit_once(command.clone()).await {
                Err(Refusal::NotProposed(why)) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(GatewayError::Unavailable(why));
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(Refusal::Failed(e)) => return Err(e),
                Ok(out) => return Ok(out),
            }
        }
    }

    async fn submit_once(&self, command: Command) -> Result<Bytes, Refusal> {
        let leader = self
            .leader()
            .await
            .map_err(|e| Refusal::NotProposed(e.to_string()))?;
        if leader == self.id {
            return match tokio::time::timeout(REQUEST_TIMEOUT, self.handle.submit(command)).await {
                Err(_) => Err(Refusal::Failed(GatewayError::Timeout(
                    "the command did not commit in time; it may still take effect".into(),
                ))),
                Ok(Ok(out)) => Ok(out),
                Ok(Err(ClientError::NotLeader { .. })) => Err(Refusal::NotProposed(
                    "the leader stepped down before proposing".into(),
                )),
                Ok(Err(e)) => Err(Refusal::Failed(GatewayError::Unavailable(e.to_string()))),
            };
        }
        let Some(addr) = self.peer_http.http(leader) else {
            return Err(Refusal::Failed(GatewayError::Unavailable(format!(
                "the leader n{leader}'s HTTP address is not known here (serve --peer-http)"
            ))));
        };
        self.forward(leader, addr, command).await
    }

    /// An idle connection to the leader's HTTP API at `addr`, or a new one (HTTPS with TLS):
    /// the one pool behind every forward of this node (front-ends, the HTTP API, session
    /// reports). Give it back with [`Gateway::keep_client`] after a clean exchange.
    pub(crate) fn leader_client(&self, addr: SocketAddr) -> crate::net::Client {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        match idle.iter().position(|(a, _)| *a == addr) {
            Some(i) => idle.swap_remove(i).1,
            None => crate::net::Client::forwarder(addr.to_string()).with_tls(self.tls.clone()),
        }
    }

    /// Returns a connection to the pool for the next forward to `addr`.
    pub(crate) fn keep_client(&self, addr: SocketAddr, client: crate::net::Client) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((addr, client));
    }

    /// Asks this node, if it leads, to hand leadership to `to`, and waits until this node sees
    /// `to` lead: the status then, or why not.
    pub async fn transfer_leadership(&self, to: NodeId) -> Result<Status, TransferError> {
        let now = self.handle.status();
        if now.leader == Some(to) {
            return Ok(now);
        }
        let mut status = self.handle.watch_status();
        match self.handle.transfer_leadership(to).await {
            Ok(()) => {}
            Err(ClientError::NotLeader { leader }) => return Err(TransferError::NotLeader(leader)),
            Err(ClientError::Unsupported) => return Err(TransferError::Unsupported),
            Err(ClientError::Refused(why)) => return Err(TransferError::Refused(why)),
            Err(e) => return Err(TransferError::Unavailable(e.to_string())),
        }
        let moved = tokio::time::timeout(TRANSFER_WAIT, status.wait_for(|s| s.leader == Some(to)))
            .await
            .ok()
            .and_then(|r| r.ok().map(|s| s.clone()));
        moved.ok_or_else(|| TransferError::TimedOut {
            to,
            leader: self.handle.status().leader,
        })
    }

    async fn forward(
        &self,
        leader: NodeId,
        addr: SocketAddr,
        command: Command,
    ) -> Result<Bytes, Refusal> {
        let mut client = self.leader_client(addr);
        if let Err(e) = client.connect().await {
            return Err(Refusal::NotProposed(format!(
                "cannot reach the leader n{leader} at {addr}: {e}"
            )));
        }
        let call = client.call_once(axum::http::Method::POST, PROPOSE_PATH, command);
        match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
            Err(_) => Err(Refusal::Failed(GatewayError::Timeout(format!(
                "the leader n{leader} did not answer in time; the command may still take effect"
            )))),
            Ok(Err(e)) => Err(Refusal::Failed(GatewayError::Timeout(format!(
                "the leader n{leader} did not answer: {e}; the command may still take effect"
            )))),
            Ok(Ok(reply)) if reply.status == axum::http::StatusCode::OK => {
                self.keep_client(addr, client);
                Ok(reply.body)
            }
            Ok(Ok(reply)) => {
                let why = reply.json()["error"]
                    .as_str()
                    .unwrap_or("refused")
                    .to_string();
                match reply.status {
                    axum::http::StatusCode::GATEWAY_TIMEOUT => {
                        Err(Refusal::Failed(GatewayError::Timeout(why)))
                    }
                    // Not the leader (any more): nothing was proposed.
                    axum::http::StatusCode::TEMPORARY_REDIRECT
                    | axum::http::StatusCode::SERVICE_UNAVAILABLE
                        if why.contains("not the leader") || why.contains("no leader") =>
                    {
                        Err(Refusal::NotProposed(why))
                    }
                    _ => Err(Refusal::Failed(GatewayError::Unavailable(why))),
                }
            }
        }
    }

    /// Serves the read-only `command` at `level` on this node, once it applied `min`; while
    /// no leader can confirm a read index, retried until [`REQUEST_TIMEOUT`].
    pub async fn read(
        &self,
        level: ReadLevel,
        command: Command,
        min: Position,
    ) -> Result<Bytes, GatewayError> {
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        loop {
            let read = self.handle.read(level, command.clone(), min);
            match tokio::time::timeout_at(deadline, read).await {
                Err(_) => {
                    return Err(GatewayError::Timeout(
                        "the read was not served in time".into(),
                    ))
                }
                Ok(Ok(b)) => return Ok(b),
                Ok(Err(ClientError::NotLeader { .. })) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(GatewayError::Unavailable(
                            "no leader to confirm the read".into(),
                        ));
                    }
                    let _ = self.leader().await;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Ok(Err(e)) => return Err(GatewayError::Unavailable(e.to_string())),
            }
        }
    }
}

/// Why a leadership transfer did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// This node does not lead; the leader it believes in.
    #[error("not the leader (leader hint: {0:?})")]
    NotLeader(Option<NodeId>),
    /// The protocol has no leadership transfer (ZAB, like ZooKeeper).
    #[error("this protocol has no leadership transfer (ZooKeeper has none either)")]
    Unsupported,
    /// The core refused (the target does not vote).
    #[error("{0}")]
    Refused(String),
    /// The node could not be asked.
    #[error("{0}")]
    Unavailable(String),
    /// The target did not lead within [`TRANSFER_WAIT`] (the attempt lapses after an election
    /// timeout).
    #[error("n{to} did not take over within {TRANSFER_WAIT:?} (the leader is {leader:?}); the attempt lapses after an election timeout")]
    TimedOut {
        /// The target.
        to: NodeId,
        /// Who leads instead, as this node sees it.
        leader: Option<NodeId>,
    },
}

/// How a single attempt at a command failed.
enum Refusal {
    /// Nothing was proposed: safe to try again.
    NotProposed(String),
    /// The command may have been proposed, or cannot be: final.
    Failed(GatewayError),
}
