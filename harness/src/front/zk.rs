//! ZooKeeper's binary client protocol over this node (jute records, length-prefixed frames):
//! sessions with timeouts, pings and reconnects; create (persistent, ephemeral, sequential),
//! delete, exists, getData, setData, getChildren, getChildren2, getACL, sync, multi and close;
//! and the `srvr` and `ruok` four-letter words. Anything else, watches included, is answered
//! with ZooKeeper's UNIMPLEMENTED error (-6); a malformed frame closes its connection.
//!
//! As in ZooKeeper, reads are served by the connected node from its own state (sequentially
//! consistent: a session never reads older than a zxid it has seen, here or at another node),
//! `sync` first brings the node up to the leader's commit, and writes go to the leader.
//! Sessions are replicated state (created and closed by transactions), so ephemeral znodes die
//! with their session on every replica. The leader expires a session when no node has heard
//! from its client for the session timeout: each node reports the sessions it hosts to the
//! leader ([`SessionTracker`]); a new leader gives every session a full timeout, as ZooKeeper's.

use super::store::ServiceCommand;
use super::zk_store::{self, code, Acl, Stat, ZkOutput, ZkRead, ZkResult, ZkTxn, ZkWrite};
use super::{Gateway, GatewayError};
use bytes::{BufMut, Bytes, BytesMut};
use consensus_core::{codec, Position, ReadLevel, Role};
use rand::RngExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest frame accepted (ZooKeeper's default `jute.maxbuffer`, 1 MiB, and room for a header).
pub const MAX_FRAME: usize = 0xfffff + 1024;
/// The negotiated session timeout's bounds: ZooKeeper's 2 and 20 ticks of 2 s.
const MIN_TIMEOUT_MS: i32 = 4_000;
const MAX_TIMEOUT_MS: i32 = 40_000;
/// How often nodes report their hosted sessions and the leader looks for expired ones.
const TRACK_EVERY: Duration = Duration::from_millis(500);
/// The leader's HTTP path that takes a node's hosted sessions.
pub const TOUCH_PATH: &str = "/internal/zk/touch";

/// ZooKeeper's op codes handled here.
mod op {
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// A malformed record.
#[derive(Debug)]
struct Malformed;

/// Reads jute records (big-endian numbers, length-prefixed buffers, strings and vectors).
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.buf.len() < n {
            return Err(Malformed);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn int(&mut self) -> Result<i32, Malformed> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn long(&mut self) -> Result<i64, Malformed> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn bool(&mut self) -> Result<bool, Malformed> {
        Ok(self.take(1)?[0] != 0)
    }
    fn buffer(&mut self) -> Result<Vec<u8>, Malformed> {
        let n = self.int()?;
        if n < 0 {
            return Ok(Vec::new());
        }
        Ok(self.take(n as usize)?.to_vec())
    }
    fn string(&mut self) -> Result<String, Malformed> {
        String::from_utf8(self.buffer()?).map_err(|_| Malformed)
    }
    fn acls(&mut self) -> Result<Vec<Acl>, Malformed> {
        let n = self.int()?;
        let mut out = Vec::new();
        for _ in 0..n.max(0) {
            let perms = self.int()?;
            let scheme = self.string()?;
            let id = self.string()?;
            out.push(Acl { perms, scheme, id });
        }
        Ok(out)
    }
}

/// Writes jute records.
trait JuteWrite {
    fn jute_buffer(&mut self, b: &[u8]);
    fn jute_string(&mut self, s: &str) {
        self.jute_buffer(s.as_bytes());
    }
    fn jute_stat(&mut self, s: &Stat);
    fn jute_bool(&mut self, b: bool);
}

impl JuteWrite for BytesMut {
    fn jute_buffer(&mut self, b: &[u8]) {
        self.put_i32(b.len() as i32);
        self.put_slice(b);
    }
    fn jute_stat(&mut self, s: &Stat) {
        self.put_i64(s.czxid);
        self.put_i64(s.mzxid);
        self.put_i64(s.ctime);
        self.put_i64(s.mtime);
        self.put_i32(s.version);
        self.put_i32(s.cversion);
        self.put_i32(s.aversion);
        self.put_i64(s.ephemeral_owner);
        self.put_i32(s.data_length);
        self.put_i32(s.num_children);
        self.put_i64(s.pzxid);
    }
    fn jute_bool(&mut self, b: bool) {
        self.put_u8(u8::from(b));
    }
}

/// Which sessions this node hosts (a live connection) and, at the leader, when each session
/// was last heard of anywhere.
#[derive(Default)]
pub struct SessionTracker {
    /// Sessions with a connection to this node, by how many connections.
    hosted: Mutex<BTreeMap<i64, usize>>,
    /// At the leader: the last time each session was reported.
    heard: Mutex<BTreeMap<i64, Instant>>,
}

impl SessionTracker {
    /// Marks sessions as heard of now (a report from a node, or this node's own).
    pub fn touch(&self, sessions: &[i64]) {
        let now = Instant::now();
        let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        for s in sessions {
            heard.insert(*s, now);
        }
    }

    fn host(&self, id: i64) {
        *self
            .hosted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id)
            .or_default() += 1;
    }

    fn unhost(&self, id: i64) {
        let mut hosted = self.hosted.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = hosted.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                hosted.remove(&id);
            }
        }
    }

    fn hosted(&self) -> Vec<i64> {
        self.hosted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Runs the node's part forever: report hosted sessions to the leader, and while leading,
    /// close the sessions no node has reported for their timeout.
    pub async fn run(self: Arc<Self>, gw: Gateway) {
        let mut leading_since: Option<Instant> = None;
        loop {
            tokio::time::sleep(TRACK_EVERY).await;
            let status = gw.handle().status();
            let hosted = self.hosted();
            if status.role != Role::Leader || status.leader != Some(gw.id()) {
                leading_since = None;
                self.heard.lock().unwrap_or_else(|e| e.into_inner()).clear();
                let Some(addr) = status.leader.and_then(|l| gw.http_of(l)) else {
                    continue;
                };
                if hosted.is_empty() {
                    continue;
                }
                let mut client = gw.leader_client(addr);
                let body = Bytes::from(codec::encode(&hosted).expect("ids encode"));
                let call = client.call_once(axum::http::Method::POST, TOUCH_PATH, body);
                if let Ok(Ok(_)) = tokio::time::timeout(TRACK_EVERY, call).await {
                    gw.keep_client(addr, client);
                }
                continue;
            }
            let since = *leading_since.get_or_insert_with(Instant::now);
            self.touch(&hosted);
            let sessions = match gw
                .read(
                    ReadLevel::Local,
                    ServiceCommand::ZkRead(ZkRead::Sessions).encode(),
                    Position::ZERO,
                )
                .await
                .ok()
                .and_then(|b| codec::decode::<ZkOutput>(&b).ok())
                .and_then(|o| o.results.into_iter().next())
            {
                Some(ZkResult::Sessions(s)) => s,
                _ => continue,
            };
            let now = Instant::now();
            let expired: Vec<i64> = {
                let heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
                sessions
                    .iter()
                    .filter(|(id, timeout)| {
                        let last = heard.get(id).copied().unwrap_or(since).max(since);
                        now.duration_since(last) > Duration::from_millis(*timeout as u64)
                    })
                    .map(|(id, _)| *id)
                    .collect()
            };
            for id in expired {
                tracing::info!(session = format!("{id:#x}"), "session expired");
                let _ = gw
                    .submit(ServiceCommand::Zk(ZkTxn::CloseSession { id }).encode())
                    .await;
                self.heard
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
            }
        }
    }
}

/// The ZooKeeper front-end of one node.
#[derive(Clone)]
pub struct ZkFront {
    gw: Gateway,
    tracker: Arc<SessionTracker>,
    protocol: &'static str,
    /// Requests served, for `srvr`.
    counters: Arc<Mutex<(u64, u64, usize)>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One request's outcome: the reply header's error and zxid, and the body.
struct Reply {
    err: i32,
    zxid: i64,
    body: BytesMut,
}

impl Reply {
    fn error(err: i32, zxid: i64) -> Reply {
        Reply {
            err,
            zxid,
            body: BytesMut::new(),
        }
    }
}

fn gateway_code(e: &GatewayError) -> i32 {
    match e {
        // ConnectionLoss: the client retries or reconnects.
        GatewayError::Unavailable(_) => -4,
        // OperationTimeout.
        GatewayError::Timeout(_) => -7,
    }
}

/// The create flags ZooKeeper's `CreateMode` encodes: (ephemeral, sequential), or `None` for
/// the modes not served here (container, TTL).
fn create_mode(flags: i32) -> Option<(bool, bool)> {
    match flags {
        0 => Some((false, false)),
        1 => Some((true, false)),
        2 => Some((false, true)),
        3 => Some((true, true)),
        _ => None,
    }
}

/// A create request's record as a write; `Ok(None)` for a mode not served here (container,
/// TTL).
fn read_create(r: &mut Reader) -> Result<Option<ZkWrite>, Malformed> {
    let (path, data, acl, flags) = (r.string()?, r.buffer()?, r.acls()?, r.int()?);
    Ok(
        create_mode(flags).map(|(ephemeral, sequential)| ZkWrite::Create {
            path,
            data,
            acl,
            ephemeral,
            sequential,
        }),
    )
}

impl ZkFront {
    /// The front-end of the node behind `gw`, whose sessions `tracker` reports.
    pub fn new(gw: Gateway, tracker: Arc<SessionTracker>, protocol: &'static str) -> Self {
        ZkFront {
            gw,
            tracker,
            protocol,
            counters: Arc::new(Mutex::new((0, 0, 0))),
        }
    }

    /// Serves clients on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        while let Some((stream, addr)) = crate::net::accept_until(&listener, &mut shutdown).await {
            let _ = stream.set_nodelay(true);
            let front = self.clone();
            tokio::spawn(async move {
                if let Err(why) = front.connection(stream).await {
                    tracing::debug!(%addr, "ZooKeeper connection closed: {why}");
                }
            });
        }
        Ok(())
    }

    async fn frame(
        stream: &mut (impl AsyncRead + Unpin),
        timeout: Duration,
    ) -> anyhow::Result<Vec<u8>> {
        let len = tokio::time::timeout(timeout, stream.read_i32())
            .await
            .map_err(|_| anyhow::anyhow!("the client was silent for the session timeout"))??;
        if len < 0 || len as usize > MAX_FRAME {
            anyhow::bail!("a frame of {len} bytes");
        }
        let mut buf = vec![0; len as usize];
        tokio::time::timeout(timeout, stream.read_exact(&mut buf))
            .await
            .map_err(|_| anyhow::anyhow!("a frame cut short"))??;
        Ok(buf)
    }

    /// A buffer for one reply frame: room for its length, which [`Self::send`] fills in, and
    /// then `capacity` bytes for the body.
    fn reply_frame(capacity: usize) -> BytesMut {
        let mut out = BytesMut::with_capacity(4 + capacity);
        out.put_i32(0);
        out
    }

    /// Fills in the length of a frame begun by [`Self::reply_frame`] and writes it at once.
    async fn send(
        stream: &mut (impl AsyncWrite + Unpin),
        mut out: BytesMut,
    ) -> std::io::Result<()> {
        let len = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        stream.write_all(&out).await
    }

    async fn connection(&self, mut stream: TcpStream) -> anyhow::Result<()> {
        let mut first = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut first)).await??;
        if first.iter().all(u8::is_ascii_lowercase) {
            return self.four_letter_word(stream, &first).await;
        }
        let len = i32::from_be_bytes(first);
        if len < 0 || len as usize > MAX_FRAME {
            anyhow::bail!("a connect request of {len} bytes");
        }
        let mut buf = vec![0; len as usize];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut buf)).await??;
        let mut r = Reader { buf: &buf };
        let (_version, last_seen, timeout, session, password) =
            (|| Ok::<_, Malformed>((r.int()?, r.long()?, r.int()?, r.long()?, r.buffer()?)))()
                .map_err(|_| anyhow::anyhow!("a malformed connect request"))?;
        let timeout = timeout.clamp(MIN_TIMEOUT_MS, MAX_TIMEOUT_MS);
        let (session, password, timeout, last_zxid) = if session == 0 {
            let id = ((self.gw.id() as i64 & 0x7f) << 56)
                | (rand::rng().random::<i64>() & 0x00ff_ffff_ffff_ffff);
            let password: Vec<u8> = (0..16).map(|_| rand::rng().random()).collect();
            let txn = ZkTxn::CreateSession {
                id,
                timeout_ms: timeout,
                password: password.clone(),
            };
            let out = self
                .gw
                .submit(ServiceCommand::Zk(txn).encode())
                .await
                .map_err(|e| anyhow::anyhow!("cannot open a session: {e}"))?;
            let out = codec::decode::<ZkOutput>(&out)?;
            if !matches!(out.results.first(), Some(ZkResult::Session(Some(_)))) {
                anyhow::bail!("the session id was taken");
            }
            (id, password, timeout, out.zxid)
        } else {
            // A reconnect: this node must have seen what the client saw, and the session must
            // still live, with this password.
            let out = self
                .gw
                .read(
                    ReadLevel::Local,
                    ServiceCommand::ZkRead(ZkRead::Session(session)).encode(),
                    zk_store::position(last_seen),
                )
                .await
                .map_err(|e| anyhow::anyhow!("cannot catch up with the client's zxid: {e}"))?;
            let out = codec::decode::<ZkOutput>(&out)?;
            match out.results.first() {
                Some(ZkResult::Session(Some(s))) if s.password == password => {
                    (session, password, s.timeout_ms, out.zxid.max(last_seen))
                }
                _ => {
                    // Expired: ZooKeeper answers a zero timeout and session, then closes.
                    let mut body = Self::reply_frame(40);
                    body.put_i32(0);
                    body.put_i32(0);
                    body.put_i64(0);
                    body.jute_buffer(&[0; 16]);
                    body.jute_bool(false);
                    Self::send(&mut stream, body).await?;
                    anyhow::bail!("session {session:#x} expired");
                }
            }
        };
        let mut body = Self::reply_frame(24 + password.len());
        body.put_i32(0);
        body.put_i32(timeout);
        body.put_i64(session);
        body.jute_buffer(&password);
        body.jute_bool(false);
        Self::send(&mut stream, body).await?;
        self.tracker.host(session);
        self.tracker.touch(&[session]);
        self.counters.lock().unwrap_or_else(|e| e.into_inner()).2 += 1;
        let result = self
            .requests(&mut stream, session, timeout, last_zxid)
            .await;
        self.tracker.unhost(session);
        self.counters.lock().unwrap_or_else(|e| e.into_inner()).2 -= 1;
        result
    }

    async fn requests(
        &self,
        stream: &mut TcpStream,
        session: i64,
        timeout_ms: i32,
        mut seen: i64,
    ) -> anyhow::Result<()> {
        let timeout = Duration::from_millis(timeout_ms as u64);
        // One receive takes a whole request (and whatever follows it) instead of one for its
        // length and one for its body: a third of the receive calls a busy node made.
        let mut stream = BufReader::with_capacity(16 * 1024, stream);
        loop {
            let frame = Self::frame(&mut stream, timeout).await?;
            let mut r = Reader { buf: &frame };
            let (xid, kind) = match (r.int(), r.int()) {
                (Ok(x), Ok(k)) => (x, k),
                _ => anyhow::bail!("a malformed request header"),
            };
            self.counters.lock().unwrap_or_else(|e| e.into_inner()).0 += 1;
            let close = kind == op::CLOSE_SESSION;
            let reply = match self.request(session, kind, &mut r, seen).await {
                Ok(reply) => reply,
                Err(Malformed) => anyhow::bail!("a malformed request (type {kind})"),
            };
            seen = seen.max(reply.zxid);
            let mut out = Self::reply_frame(16 + reply.body.len());
            out.put_i32(xid);
            out.put_i64(reply.zxid);
            out.put_i32(reply.err);
            if reply.err == 0 {
                out.extend_from_slice(&reply.body);
            }
            Self::send(&mut stream, out).await?;
            self.counters.lock().unwrap_or_else(|e| e.into_inner()).1 += 1;
            if close {
                return Ok(());
            }
            if reply.err == code::SESSION_EXPIRED {
                anyhow::bail!("session {session:#x} expired");
            }
        }
    }

    /// Serves one request of `session`, which has seen `seen`.
    async fn request(
        &self,
        session: i64,
        kind: i32,
        r: &mut Reader<'_>,
        seen: i64,
    ) -> Result<Reply, Malformed> {
        let write = |ops: Vec<ZkWrite>, multi: bool| ZkTxn::Write {
            session,
            time_ms: now_ms(),
            ops,
            multi,
        };
        Ok(match kind {
            op::PING => {
                self.tracker.touch(&[session]);
                Reply::error(0, seen)
            }
            op::CREATE | op::CREATE2 => {
                let Some(op) = read_create(r)? else {
                    return Ok(Reply::error(code::UNIMPLEMENTED, seen));
                };
                if let ZkWrite::Create {
                    path, sequential, ..
                } = &op
                {
                    let checked = if *sequential {
                        format!("{path}1")
                    } else {
                        path.clone()
                    };
                    if !zk_store::valid_path(&checked) {
                        return Ok(Reply::error(code::BAD_ARGUMENTS, seen));
                    }
                }
                self.write(write(vec![op], false), seen, |body, result| {
                    if let ZkResult::Created(p, stat) = result {
                        body.jute_string(p);
                        if kind == op::CREATE2 {
                            body.jute_stat(stat);
                        }
                    }
                })
                .await
            }
            op::DELETE => {
                let (path, version) = (r.string()?, r.int()?);
                self.write(
                    write(vec![ZkWrite::Delete { path, version }], false),
                    seen,
                    |_, _| {},
                )
                .await
            }
            op::SET_DATA => {
                let (path, data, version) = (r.string()?, r.buffer()?, r.int()?);
                let op = ZkWrite::SetData {
                    path,
                    data,
                    version,
                };
                self.write(write(vec![op], false), seen, |body, result| {
                    if let ZkResult::Stat(s) = result {
                        body.jute_stat(s);
                    }
                })
                .await
            }
            op::EXISTS | op::GET_DATA | op::GET_CHILDREN | op::GET_CHILDREN2 => {
                let (path, watch) = (r.string()?, r.bool()?);
                if watch {
                    // Watches are not served: say so rather than never fire.
                    return Ok(Reply::error(code::UNIMPLEMENTED, seen));
                }
                let read = match kind {
                    op::EXISTS => ZkRead::Exists(path),
                    op::GET_DATA => ZkRead::GetData(path),
                    _ => ZkRead::GetChildren(path),
                };
                self.read(ReadLevel::Local, read, seen, |body, result| match result {
                    ZkResult::Stat(s) => body.jute_stat(s),
                    ZkResult::Data(d, s) => {
                        body.jute_buffer(d);
                        body.jute_stat(s);
                    }
                    ZkResult::Children(c, s) => {
                        body.put_i32(c.len() as i32);
                        for name in c {
                            body.jute_string(name);
                        }
                        if kind == op::GET_CHILDREN2 {
                            body.jute_stat(s);
                        }
                    }
                    _ => {}
                })
                .await
            }
            op::GET_ACL => {
                let path = r.string()?;
                self.read(
                    ReadLevel::Local,
                    ZkRead::GetAcl(path),
                    seen,
                    |body, result| {
                        if let ZkResult::Acl(acl, s) = result {
                            body.put_i32(acl.len() as i32);
                            for a in acl {
                                body.put_i32(a.perms);
                                body.jute_string(&a.scheme);
                                body.jute_string(&a.id);
                            }
                            body.jute_stat(s);
                        }
                    },
                )
                .await
            }
            op::SYNC => {
                let path = r.string()?;
                // Catch up with the leader's commit (a read index), then answer the path.
                let mut reply = self
                    .read(
                        ReadLevel::Index,
                        ZkRead::Exists("/".into()),
                        seen,
                        |_, _| {},
                    )
                    .await;
                if reply.err == 0 {
                    reply.body.jute_string(&path);
                }
                reply
            }
            op::MULTI => self.multi(session, r, seen).await?,
            op::CLOSE_SESSION => {
                match self
                    .gw
                    .submit(ServiceCommand::Zk(ZkTxn::CloseSession { id: session }).encode())
                    .await
                {
                    Ok(out) => Reply::error(0, decode(&out).map_or(seen, |o| o.zxid)),
                    Err(e) => Reply::error(gateway_code(&e), seen),
                }
            }
            _ => Reply::error(code::UNIMPLEMENTED, seen),
        })
    }

    /// Commits a write and encodes its single result with `body`.
    async fn write(&self, txn: ZkTxn, seen: i64, body: impl Fn(&mut BytesMut, &ZkResult)) -> Reply {
        match self.gw.submit(ServiceCommand::Zk(txn).encode()).await {
            Err(e) => Reply::error(gateway_code(&e), seen),
            Ok(out) => match decode(&out) {
                None => Reply::error(-1, seen),
                Some(out) => Self::single(out, body),
            },
        }
    }

    async fn read(
        &self,
        level: ReadLevel,
        read: ZkRead,
        seen: i64,
        body: impl Fn(&mut BytesMut, &ZkResult),
    ) -> Reply {
        let command = ServiceCommand::ZkRead(read).encode();
        match self.gw.read(level, command, zk_store::position(seen)).await {
            Err(e) => Reply::error(gateway_code(&e), seen),
            Ok(out) => match decode(&out) {
                None => Reply::error(-1, seen),
                Some(out) => Self::single(out, body),
            },
        }
    }

    fn single(out: ZkOutput, body: impl Fn(&mut BytesMut, &ZkResult)) -> Reply {
        match out.results.first() {
            Some(ZkResult::Error(e)) => Reply::error(*e, out.zxid),
            Some(result) => {
                let mut b = BytesMut::new();
                body(&mut b, result);
                Reply {
                    err: 0,
                    zxid: out.zxid,
                    body: b,
                }
            }
            None => Reply::error(-1, out.zxid),
        }
    }

    async fn multi(&self, session: i64, r: &mut Reader<'_>, seen: i64) -> Result<Reply, Malformed> {
        let mut ops = Vec::new();
        let mut kinds = Vec::new();
        loop {
            let (kind, done, _err) = (r.int()?, r.bool()?, r.int()?);
            if done {
                break;
            }
            let op = match kind {
                op::CREATE | op::CREATE2 => match read_create(r)? {
                    Some(op) => op,
                    None => return Ok(Reply::error(code::UNIMPLEMENTED, seen)),
                },
                op::DELETE => ZkWrite::Delete {
                    path: r.string()?,
                    version: r.int()?,
                },
                op::SET_DATA => ZkWrite::SetData {
                    path: r.string()?,
                    data: r.buffer()?,
                    version: r.int()?,
                },
                op::CHECK => ZkWrite::Check {
                    path: r.string()?,
                    version: r.int()?,
                },
                _ => return Ok(Reply::error(code::UNIMPLEMENTED, seen)),
            };
            ops.push(op);
            kinds.push(kind);
        }
        let txn = ZkTxn::Write {
            session,
            time_ms: now_ms(),
            ops,
            multi: true,
        };
        let out = match self.gw.submit(ServiceCommand::Zk(txn).encode()).await {
            Err(e) => return Ok(Reply::error(gateway_code(&e), seen)),
            Ok(out) => match decode(&out) {
                None => return Ok(Reply::error(-1, seen)),
                Some(o) => o,
            },
        };
        if let [ZkResult::Error(code::SESSION_EXPIRED), ..] = out.results.as_slice() {
            return Ok(Reply::error(code::SESSION_EXPIRED, out.zxid));
        }
        // A failed multi comes back as errors throughout (OK for the operations before the
        // failure, as ZooKeeper answers them), so each result is encoded as it is.
        let mut body = BytesMut::new();
        for (kind, result) in kinds.iter().zip(&out.results) {
            match result {
                ZkResult::Error(e) => {
                    body.put_i32(op::ERROR);
                    body.jute_bool(false);
                    body.put_i32(*e);
                    body.put_i32(*e);
                }
                ZkResult::Created(p, s) => {
                    body.put_i32(*kind);
                    body.jute_bool(false);
                    body.put_i32(0);
                    body.jute_string(p);
                    if *kind == op::CREATE2 {
                        body.jute_stat(s);
                    }
                }
                ZkResult::Stat(s) => {
                    body.put_i32(*kind);
                    body.jute_bool(false);
                    body.put_i32(0);
                    body.jute_stat(s);
                }
                _ => {
                    body.put_i32(*kind);
                    body.jute_bool(false);
                    body.put_i32(0);
                }
            }
        }
        body.put_i32(op::ERROR);
        body.jute_bool(true);
        body.put_i32(-1);
        Ok(Reply {
            err: 0,
            zxid: out.zxid,
            body,
        })
    }

    async fn four_letter_word(&self, mut stream: TcpStream, word: &[u8; 4]) -> anyhow::Result<()> {
        let text = match word {
            b"ruok" => "imok".to_string(),
            b"srvr" => {
                let s = self.gw.handle().status();
                let zxid = match self
                    .gw
                    .read(
                        ReadLevel::Local,
                        ServiceCommand::ZkRead(ZkRead::Exists("/".into())).encode(),
                        Position::ZERO,
                    )
                    .await
                    .ok()
                    .and_then(|b| decode(&b))
                {
                    Some(o) => o.zxid,
                    None => 0,
                };
                let (received, sent, connections) =
                    *self.counters.lock().unwrap_or_else(|e| e.into_inner());
                let mode = if s.leader == Some(s.id) {
                    "leader"
                } else {
                    "follower"
                };
                format!(
                    "Zookeeper version: consensus-lab {} ({} underneath)\n\
                     Latency min/avg/max: 0/0.0/0\nReceived: {received}\nSent: {sent}\n\
                     Connections: {connections}\nOutstanding: 0\nZxid: {zxid:#x}\nMode: {mode}\n",
                    env!("CARGO_PKG_VERSION"),
                    self.protocol
                )
            }
            other => format!(
                "{} is not executed because it is not in the whitelist.\n",
                String::from_utf8_lossy(other)
            ),
        };
        stream.write_all(text.as_bytes()).await?;
        stream.shutdown().await?;
        Ok(())
    }
}

fn decode(out: &[u8]) -> Option<ZkOutput> {
    codec::decode::<ZkOutput>(out).ok()
}

/// The hosted sessions a node reports, decoded (for the leader's `POST /internal/zk/touch`).
pub fn decode_touch(body: &[u8]) -> Option<Vec<i64>> {
    codec::decode::<Vec<i64>>(body).ok()
}
