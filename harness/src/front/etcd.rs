//! etcd's v3 gRPC API over this node: `KV` (Range, Put, DeleteRange, Txn, Compact),
//! `Maintenance.Status` and `Maintenance.MoveLeader` (Raft's leadership transfer), and
//! `Cluster.MemberList`; every other etcd method and service answers gRPC's UNIMPLEMENTED.
//!
//! Reads map onto the read levels as etcd's own do: a linearizable `Range` (etcd's default) is
//! served at a read index (Raft: ReadIndex; ZAB: `sync`, then the read), a serializable one
//! from this node's own state at once. Writes go through the log, forwarded to the leader when
//! this node does not lead. Every response header carries the cluster id, this member's id,
//! the store's revision and the era (Raft term or ZAB epoch) as `raft_term`.

use super::etcd_store::EtcdReply;
use super::proto::etcdserverpb::{
    cluster_server, kv_server, maintenance_server, request_op, response_op, CompactionRequest,
    CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, Member, MemberListRequest,
    MemberListResponse, MoveLeaderRequest, MoveLeaderResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, RequestOp, ResponseHeader, ResponseOp, StatusRequest,
    StatusResponse, TxnRequest, TxnResponse,
};
use super::store::ServiceCommand;
use super::{Gateway, GatewayError, TransferError};
use consensus_core::{codec, NodeId, Position, ReadLevel};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use tonic::{Request, Response, Status};

/// The etcd front-end of one node.
#[derive(Clone)]
pub struct EtcdFront {
    gw: Gateway,
    cluster_id: u64,
    peers: BTreeMap<NodeId, SocketAddr>,
    listen: SocketAddr,
}

/// etcd's numeric cluster id for a cluster name (FNV-1a of it: the same on every node).
pub fn numeric_cluster_id(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn status_of(e: GatewayError) -> Status {
    match e {
        GatewayError::Unavailable(m) => Status::unavailable(format!("etcdserver: {m}")),
        GatewayError::Timeout(m) => Status::deadline_exceeded(format!("etcdserver: {m}")),
    }
}

/// Fills the headers of a response and of every response nested in it.
fn fill(op: &mut ResponseOp, header: &ResponseHeader) {
    match op.response.as_mut() {
        Some(response_op::Response::ResponseRange(r)) => r.header = Some(*header),
        Some(response_op::Response::ResponsePut(r)) => r.header = Some(*header),
        Some(response_op::Response::ResponseDeleteRange(r)) => r.header = Some(*header),
        Some(response_op::Response::ResponseTxn(t)) => {
            t.header = Some(*header);
            for r in &mut t.responses {
                fill(r, header);
            }
        }
        None => {}
    }
}

impl EtcdFront {
    /// The front-end of the node behind `gw`, listening at `listen`, in the cluster named
    /// `cluster` whose members' peer addresses are `peers`.
    pub fn new(
        gw: Gateway,
        cluster: &str,
        peers: BTreeMap<NodeId, SocketAddr>,
        listen: SocketAddr,
    ) -> Self {
        EtcdFront {
            gw,
            cluster_id: numeric_cluster_id(cluster),
            peers,
            listen,
        }
    }

    fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.gw.id(),
            revision,
            raft_term: self.gw.handle().status().era,
        }
    }

    /// Decodes the state machine's reply into the response, headers filled.
    fn answer(&self, out: &[u8]) -> Result<response_op::Response, Status> {
        let reply = codec::decode::<EtcdReply>(out)
            .map_err(|e| Status::internal(format!("etcdserver: unexpected output: {e}")))?;
        let bytes = reply
            .result
            .map_err(|e| Status::new(tonic::Code::from(e.code), e.message))?;
        let mut op = <ResponseOp as prost::Message>::decode(bytes.as_slice())
            .map_err(|e| Status::internal(format!("etcdserver: unexpected output: {e}")))?;
        fill(&mut op, &self.header(reply.revision));
        op.response
            .ok_or_else(|| Status::internal("etcdserver: an empty response"))
    }

    async fn write(&self, request: request_op::Request) -> Result<response_op::Response, Status> {
        let op = RequestOp {
            request: Some(request),
        };
        let command = ServiceCommand::Etcd(prost::Message::encode_to_vec(&op)).encode();
        let out = self.gw.submit(command).await.map_err(status_of)?;
        self.answer(&out)
    }

    async fn range_at(&self, r: RangeRequest) -> Result<RangeResponse, Status> {
        let level = if r.serializable {
            ReadLevel::Local
        } else {
            ReadLevel::Index
        };
        let op = RequestOp {
            request: Some(request_op::Request::RequestRange(r)),
        };
        let command = ServiceCommand::Etcd(prost::Message::encode_to_vec(&op)).encode();
        let out = self
            .gw
            .read(level, command, Position::ZERO)
            .await
            .map_err(status_of)?;
        match self.answer(&out)? {
            response_op::Response::ResponseRange(r) => Ok(r),
            _ => Err(Status::internal("etcdserver: not a range response")),
        }
    }
}

fn unexpected() -> Status {
    Status::internal("etcdserver: unexpected response type")
}

#[tonic::async_trait]
impl kv_server::Kv for EtcdFront {
    async fn range(
        &self,
        request: Request<RangeRequest>,
    ) -> Result<Response<RangeResponse>, Status> {
        Ok(Response::new(self.range_at(request.into_inner()).await?))
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        match self
            .write(request_op::Request::RequestPut(request.into_inner()))
            .await?
        {
            response_op::Response::ResponsePut(r) => Ok(Response::new(r)),
            _ => Err(unexpected()),
        }
    }

    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        match self
            .write(request_op::Request::RequestDeleteRange(
                request.into_inner(),
            ))
            .await?
        {
            response_op::Response::ResponseDeleteRange(r) => Ok(Response::new(r)),
            _ => Err(unexpected()),
        }
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        match self
            .write(request_op::Request::RequestTxn(request.into_inner()))
            .await?
        {
            response_op::Response::ResponseTxn(r) => Ok(Response::new(r)),
            _ => Err(unexpected()),
        }
    }

    /// No history is kept, so every revision up to the current one is compacted already.
    async fn compact(
        &self,
        request: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        let now = self
            .range_at(RangeRequest {
                key: vec![0],
                count_only: true,
                serializable: true,
                ..Default::default()
            })
            .await?;
        let revision = now.header.map_or(0, |h| h.revision);
        if request.into_inner().revision > revision {
            return Err(Status::out_of_range(
                "etcdserver: mvcc: required revision is a future revision",
            ));
        }
        Ok(Response::new(CompactionResponse {
            header: Some(self.header(revision)),
        }))
    }
}

#[tonic::async_trait]
impl maintenance_server::Maintenance for EtcdFront {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let now = self
            .range_at(RangeRequest {
                key: vec![0],
                range_end: vec![0],
                count_only: true,
                serializable: true,
                ..Default::default()
            })
            .await?;
        let s = self.gw.handle().status();
        Ok(Response::new(StatusResponse {
            header: now.header,
            version: format!("consensus-lab {}", env!("CARGO_PKG_VERSION")),
            db_size: now.count,
            leader: s.leader.unwrap_or(0),
            raft_index: s.last.seq,
            raft_term: s.era,
            raft_applied_index: s.commit.seq,
            errors: Vec::new(),
            db_size_in_use: now.count,
            is_learner: false,
        }))
    }

    /// Leadership transfer (Raft's TimeoutNow), as `etcdctl move-leader` asks the leader for
    /// it; answered once the target leads.
    async fn move_leader(
        &self,
        request: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        let to = request.into_inner().target_id;
        match self.gw.transfer_leadership(to).await {
            Ok(s) => Ok(Response::new(MoveLeaderResponse {
                header: Some(ResponseHeader {
                    cluster_id: self.cluster_id,
                    member_id: self.gw.id(),
                    revision: 0,
                    raft_term: s.era,
                }),
            })),
            Err(TransferError::NotLeader(_)) => {
                Err(Status::failed_precondition("etcdserver: not leader"))
            }
            Err(TransferError::Unsupported) => Err(Status::unimplemented(
                "etcdserver: this protocol has no leadership transfer (ZAB, like ZooKeeper)",
            )),
            Err(TransferError::Refused(why)) => {
                Err(Status::invalid_argument(format!("etcdserver: {why}")))
            }
            Err(TransferError::Unavailable(why)) => {
                Err(Status::unavailable(format!("etcdserver: {why}")))
            }
            Err(TransferError::TimedOut { .. }) => Err(Status::deadline_exceeded(
                "etcdserver: the leadership transfer did not complete in time",
            )),
        }
    }
}

#[tonic::async_trait]
impl cluster_server::Cluster for EtcdFront {
    async fn member_list(
        &self,
        _: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        // The configuration in force (members added or removed since the start included).
        let m = self.gw.handle().membership().unwrap_or_else(|| {
            consensus_core::Membership::of_voters(&self.peers.keys().copied().collect::<Vec<_>>())
        });
        let members = m
            .members()
            .into_iter()
            .map(|id| Member {
                id,
                name: format!("n{id}"),
                peer_ur_ls: self
                    .gw
                    .addresses_of(id)
                    .peer
                    .or_else(|| self.peers.get(&id).copied())
                    .map(|a| format!("http://{a}"))
                    .into_iter()
                    .collect(),
                client_ur_ls: if id == self.gw.id() {
                    vec![format!("http://{}", self.listen)]
                } else {
                    Vec::new()
                },
                is_learner: m.is_learner(id),
            })
            .collect();
        Ok(Response::new(MemberListResponse {
            header: Some(self.header(0)),
            members,
        }))
    }
}

/// Serves the etcd API on `listener` until `shutdown` completes.
pub async fn serve(
    front: EtcdFront,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let incoming = tokio_stream_wrapper(listener);
    let routes = tonic::service::Routes::new(kv_server::KvServer::new(front.clone()))
        .add_service(maintenance_server::MaintenanceServer::new(front.clone()))
        .add_service(cluster_server::ClusterServer::new(front))
        .into_axum_router()
        .fallback(not_served);
    tonic::transport::Server::builder()
        .add_routes(tonic::service::Routes::from(routes))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// gRPC's UNIMPLEMENTED for a method or service not served here, naming it and what is.
async fn not_served(uri: axum::http::Uri) -> axum::response::Response<tonic::body::Body> {
    let status = Status::unimplemented(format!(
        "etcdserver: {} is not served by consensus-lab (served: KV Range, Put, DeleteRange, \
         Txn, Compact; Maintenance Status, MoveLeader; Cluster MemberList)",
        uri.path()
    ));
    let (parts, ()) = status.into_http::<()>().into_parts();
    axum::response::Response::from_parts(parts, tonic::body::Body::empty())
}

/// The accepted connections of `listener` as the stream tonic serves.
fn tokio_stream_wrapper(
    listener: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |l| async move {
        let next = l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            s
        });
        Some((next, l))
    })
}
