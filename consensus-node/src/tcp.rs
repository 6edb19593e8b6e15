//! A [`Transport`] over TCP: length-delimited frames of the codec, a handshake that names the
//! cluster and the sending node, and reconnection with backoff.
//!
//! Every node dials each peer once for the messages it sends and accepts the peers'
//! connections for the messages it receives. A connection starts with a [`Hello`] frame; one
//! from another cluster or from a node that is not a peer is refused (closed). A frame over
//! the size limit, or one that does not decode, closes that connection and is logged; the
//! node keeps running. Sending is best effort, like the network: while a peer is unreachable
//! its messages queue up to a bound and are then dropped; the protocols retransmit.

use bytes::Bytes;
use consensus_core::codec;
use consensus_core::{NodeId, Transport, TransportError};
use futures_util::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tracing::Instrument;

/// Identifies consensus-lab peer connections (ASCII "CLAB").
pub const HELLO_MAGIC: u32 = 0x434c_4142;
/// Version of the peer protocol.
pub const PROTOCOL_VERSION: u32 = 1;
/// Messages queued for one peer before further ones are dropped.
const PEER_QUEUE: usize = 65_536;
/// Messages received from all peers that may wait for the node's task.
const INBOX: usize = 65_536;
/// How long a new connection may take to present its [`Hello`].
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(20);
// Short, so that a peer whose link comes back is reached again well within a second (a ZAB
// node rejoins within 1 s of a heal: docs/zab.md).
const BACKOFF_MAX: Duration = Duration::from_millis(250);
/// Frames written before one flush.
const MAX_FRAMES_PER_FLUSH: usize = 4096;

/// The first frame on every peer connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`HELLO_MAGIC`].
    pub magic: u32,
    /// Always [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The cluster the sender belongs to.
    pub cluster_id: String,
    /// The sending node.
    pub node_id: NodeId,
}

impl Hello {
    /// The handshake of node `node_id` of cluster `cluster_id`, in this version.
    pub fn new(cluster_id: &str, node_id: NodeId) -> Hello {
        Hello {
            magic: HELLO_MAGIC,
            version: PROTOCOL_VERSION,
            cluster_id: cluster_id.to_string(),
            node_id,
        }
    }

    /// The handshake frame: magic and codec format as plain little-endian u32s (readable
    /// whatever the encoding), then the encoded hello.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&self.magic.to_le_bytes());
        b.extend_from_slice(&codec::FORMAT_VERSION.to_le_bytes());
        codec::encode_into(self, &mut b).expect("a Hello always encodes");
        b
    }

    /// Reads a handshake frame, refusing other programs, other codec formats and other
    /// protocol versions with a one-line reason.
    pub fn from_frame(frame: &[u8]) -> Result<Hello, String> {
        let word = |i: usize| {
            frame
                .get(i..i + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        };
        if word(0) != Some(HELLO_MAGIC) {
            return Err("refused: not a consensus-lab peer of format 2 or later".into());
        }
        let format = word(4).unwrap_or(0);
        if format != codec::FORMAT_VERSION {
            return Err(format!(
                "refused: the peer speaks codec format {format}, this node {}",
                codec::FORMAT_VERSION
            ));
        }
        let hello: Hello =
            codec::decode(&frame[8..]).map_err(|e| format!("handshake does not decode: {e}"))?;
        if hello.magic != HELLO_MAGIC || hello.version != PROTOCOL_VERSION {
            return Err(format!(
                "refused: peer protocol version {}, this node {PROTOCOL_VERSION}",
                hello.version
            ));
        }
        Ok(hello)
    }
}

/// Where a node listens and who its peers are.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// This node.
    pub id: NodeId,
    /// Connections from another cluster are refused.
    pub cluster_id: String,
    /// Address to accept peer connections on.
    pub listen: SocketAddr,
    /// Every other member and its peer address.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Mutual TLS on every peer link (both ends show a certificate from the cluster's CA that
    /// names them); `None`: plain TCP.
    pub tls: Option<crate::tls::Tls>,
}

/// A peer connection's byte stream: plain TCP or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// The frame codec for peer connections, with the codec's size limit.
pub fn frame_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(codec::MAX_FRAME_BYTES)
        .length_field_length(4)
        .new_codec()
}

/// One node's TCP endpoint: a listener plus one dialer per peer.
pub struct TcpTransport<M> {
    cfg: Arc<TcpConfig>,
    /// Members whose connections are accepted: the configured peers and those added since.
    accepted: Arc<std::sync::RwLock<std::collections::BTreeSet<NodeId>>>,
    outboxes: BTreeMap<NodeId, mpsc::Sender<Bytes>>,
    inbox: mpsc::Receiver<(NodeId, M)>,
    local_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    /// Messages that do not encode (too large for a frame) repeat at every retry of the
    /// core: their error is logged at most once per [`ERROR_EVERY`].
    encode_errors: std::sync::Mutex<RateLimit>,
    _m: PhantomData<fn() -> M>,
}

/// How often a repeated error is logged.
pub const ERROR_EVERY: Duration = Duration::from_secs(10);

/// Lets a repeated error through once per period, counting the ones held back.
#[derive(Debug, Default)]
pub struct RateLimit {
    last: Option<std::time::Instant>,
    held: u64,
}

impl RateLimit {
    /// At `now`: `Some(n)` to log (n: occurrences held back since the last one logged), or
    /// `None` to stay quiet.
    pub fn allow(&mut self, now: std::time::Instant, every: Duration) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < every => {
                self.held += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held))
            }
        }
    }
}

impl<M> TcpTransport<M>
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    /// Binds the listener and starts dialing the peers.
    pub async fn bind(cfg: TcpConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(cfg.listen).await?;
        let local_addr = listener.local_addr()?;
        let (in_tx, inbox) = mpsc::channel(INBOX);
        let cfg = Arc::new(cfg);
        let accepted = Arc::new(std::sync::RwLock::new(cfg.peers.keys().copied().collect()));
        let mut tasks = Vec::new();
        let span = tracing::info_span!("node", id = cfg.id);
        tasks.push(tokio::spawn(
            accept_loop::<M>(listener, Arc::clone(&cfg), Arc::clone(&accepted), in_tx)
                .instrument(span.clone()),
        ));
        let mut t = TcpTransport {
            cfg: Arc::clone(&cfg),
            accepted,
            outboxes: BTreeMap::new(),
            inbox,
            local_addr,
            tasks,
            encode_errors: Default::default(),
            _m: PhantomData,
        };
        for (&peer, &addr) in &cfg.peers {
            t.dial(peer, addr);
        }
        Ok(t)
    }

    /// Starts the connection that carries this node's messages to `peer`.
    fn dial(&mut self, peer: NodeId, addr: SocketAddr) {
        if peer == self.cfg.id || self.outboxes.contains_key(&peer) {
            return;
        }
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        self.outboxes.insert(peer, tx);
        self.accepted
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer);
        let hello = Hello::new(&self.cfg.cluster_id, self.cfg.id);
        let span = tracing::info_span!("node", id = self.cfg.id);
        self.tasks.push(tokio::spawn(
            dial_loop(peer, addr, hello, self.cfg.tls.clone(), rx).instrument(span),
        ));
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl<M> Drop for TcpTransport<M> {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[async_trait::async_trait]
impl<M> Transport<M> for TcpTransport<M>
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    async fn send(&self, to: NodeId, msg: M) -> Result<(), TransportError> {
        let tx = self
            .outboxes
            .get(&to)
            .ok_or(TransportError::UnknownNode(to))?;
        let bytes = codec::encode(&msg).map_err(|e| {
            let allow = self
                .encode_errors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .allow(std::time::Instant::now(), ERROR_EVERY);
            if let Some(held) = allow {
                tracing::error!(
                    to,
                    "message does not encode: {e} ({held} more since the last report; reported at most every {ERROR_EVERY:?})"
                );
            }
            TransportError::Unreachable(to)
        })?;
        tx.try_send(Bytes::from(bytes))
            .map_err(|_| TransportError::Unreachable(to))
    }

    async fn recv(&mut self) -> Option<(NodeId, M)> {
        self.inbox.recv().await
    }

    fn add_peer(&mut self, id: NodeId, addr: &str) -> Result<(), TransportError> {
        if self.outboxes.contains_key(&id) || id == self.cfg.id {
            return Ok(());
        }
        let peer = peer_address(addr).ok_or(TransportError::Unreachable(id))?;
        self.dial(id, peer);
        Ok(())
    }
}

/// The peer address in a member's address as a membership change carries it: the address
/// itself, or the `peer=` part of `peer=ADDR http=ADDR`.
pub fn peer_address(addr: &str) -> Option<SocketAddr> {
    addr.split_whitespace()
        .find_map(|part| part.strip_prefix("peer="))
        .unwrap_or(addr)
        .parse()
        .ok()
}

async fn accept_loop<M>(
    listener: TcpListener,
    cfg: Arc<TcpConfig>,
    accepted: Arc<std::sync::RwLock<std::collections::BTreeSet<NodeId>>>,
    inbox: mpsc::Sender<(NodeId, M)>,
) where
    M: DeserializeOwned + Send + 'static,
{
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(BACKOFF_MIN).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let cfg = Arc::clone(&cfg);
        let accepted = Arc::clone(&accepted);
        let inbox = inbox.clone();
        tokio::spawn(
            async move {
                if let Err(why) = serve_inbound::<M>(stream, &cfg, &accepted, inbox).await {
                    tracing::warn!(%addr, "peer connection closed: {why}");
                }
            }
            .in_current_span(),
        );
    }
}

/// Reads one inbound connection: the handshake, then messages until it breaks.
async fn serve_inbound<M>(
    stream: TcpStream,
    cfg: &TcpConfig,
    accepted: &std::sync::RwLock<std::collections::BTreeSet<NodeId>>,
    inbox: mpsc::Sender<(NodeId, M)>,
) -> Result<(), String>
where
    M: DeserializeOwned,
{
    // With TLS, the handshake first: a plaintext peer, or one whose certificate is not from
    // the cluster's CA, goes no further.
    let (io, certs): (
        Box<dyn Io>,
        Option<Vec<rustls::pki_types::CertificateDer<'static>>>,
    ) = match &cfg.tls {
        None => (Box::new(stream), None),
        Some(tls) => match tokio::time::timeout(HELLO_TIMEOUT, tls.accept(stream)).await {
            Err(_) => return Err("no TLS handshake in time".into()),
            Ok(Err(e)) => return Err(format!("TLS handshake refused: {e}")),
            Ok(Ok(s)) => {
                let certs = s.get_ref().1.peer_certificates().map(|c| c.to_vec());
                (Box::new(s), Some(certs.unwrap_or_default()))
            }
        },
    };
    let mut framed = Framed::new(io, frame_codec());
    let first = match tokio::time::timeout(HELLO_TIMEOUT, framed.next()).await {
        Err(_) => return Err("no handshake in time".into()),
        Ok(None) => return Err("closed before the handshake".into()),
        Ok(Some(Err(e))) => return Err(format!("bad handshake frame: {e}")),
        Ok(Some(Ok(frame))) => frame,
    };
    let hello = Hello::from_frame(&first)?;
    if hello.cluster_id != cfg.cluster_id {
        return Err(format!(
            "refused node {}: cluster id {:?} is not ours ({:?})",
            hello.node_id, hello.cluster_id, cfg.cluster_id
        ));
    }
    let from = hello.node_id;
    let known = accepted
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&from);
    if from == cfg.id || !known {
        return Err(format!("refused: node {from} is not a peer"));
    }
    if let (Some(tls), Some(certs)) = (&cfg.tls, &certs) {
        tls.check_peer(Some(certs), from)
            .map_err(|why| format!("refused: {why}"))?;
    }
    tracing::debug!(from, "peer connected");
    loop {
        match framed.next().await {
            None => return Ok(()),
            Some(Err(e)) => return Err(format!("from node {from}: bad frame: {e}")),
            Some(Ok(frame)) => {
                let msg: M = codec::decode(&frame)
                    .map_err(|e| format!("from node {from}: message does not decode: {e}"))?;
                if inbox.send((from, msg)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// Keeps one outbound connection to `peer` and writes its queued messages.
async fn dial_loop(
    peer: NodeId,
    addr: SocketAddr,
    hello: Hello,
    tls: Option<crate::tls::Tls>,
    mut rx: mpsc::Receiver<Bytes>,
) {
    let hello = Bytes::from(hello.to_frame());
    let mut backoff = BACKOFF_MIN;
    loop {
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                tracing::trace!(peer, %addr, "connect failed: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let io: Box<dyn Io> = match &tls {
            None => Box::new(stream),
            Some(tls) => match tokio::time::timeout(HELLO_TIMEOUT, tls.connect(peer, stream)).await
            {
                Ok(Ok(s)) => Box::new(s),
                Ok(Err(e)) => {
                    tracing::warn!(peer, %addr, "TLS handshake failed: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
                Err(_) => {
                    tracing::warn!(peer, %addr, "TLS handshake timed out");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            },
        };
        let mut framed = Framed::new(io, frame_codec());
        if framed.send(hello.clone()).await.is_err() {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
            continue;
        }
        tracing::debug!(peer, %addr, "connected");
        backoff = BACKOFF_MIN;
        let result: std::io::Result<()> = async {
            loop {
                // The peer never writes on this connection: if its read side ends or errs, the
                // connection is gone (closed by the peer, or by whatever sits in between).
                // Notice it now rather than lose the next message to a dead socket.
                let first = tokio::select! {
                    m = rx.recv() => m,
                    _ = framed.next() => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "closed by the peer",
                        ));
                    }
                };
                let Some(first) = first else {
                    return Ok(());
                };
                framed.feed(first).await?;
                for _ in 0..MAX_FRAMES_PER_FLUSH {
                    match rx.try_recv() {
                        Ok(b) => framed.feed(b).await?,
                        Err(_) => break,
                    }
                }
                SinkExt::<Bytes>::flush(&mut framed).await?;
            }
        }
        .await;
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::debug!(peer, %addr, "connection lost: {e}");
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn addr() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    async fn node(
        id: NodeId,
        listen: SocketAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
    ) -> TcpTransport<String> {
        TcpTransport::bind(TcpConfig {
            id,
            cluster_id: "test".into(),
            listen,
            peers,
            tls: None,
        })
        .await
        .unwrap()
    }

    async fn pair() -> (TcpTransport<String>, TcpTransport<String>) {
        // Bind both first on ephemeral ports, then tell each where the other is.
        let l1 = std::net::TcpListener::bind(addr()).unwrap();
        let l2 = std::net::TcpListener::bind(addr()).unwrap();
        let (a1, a2) = (l1.local_addr().unwrap(), l2.local_addr().unwrap());
        drop((l1, l2));
        let peers: BTreeMap<NodeId, SocketAddr> = [(1, a1), (2, a2)].into();
        (node(1, a1, peers.clone()).await, node(2, a2, peers).await)
    }

    async fn recv(t: &mut TcpTransport<String>) -> (NodeId, String) {
        tokio::time::timeout(Duration::from_secs(5), t.recv())
            .await
            .expect("a message arrives in time")
            .expect("transport open")
    }

    #[tokio::test]
    async fn messages_arrive_in_order_with_their_sender() {
        let (t1, mut t2) = pair().await;
        for i in 0..100 {
            t1.send(2, format!("m{i}")).await.unwrap();
        }
        for i in 0..100 {
            assert_eq!(recv(&mut t2).await, (1, format!("m{i}")));
        }
        assert_eq!(
            t1.send(9, "x".into()).await,
            Err(TransportError::UnknownNode(9))
        );
    }

    async fn refused_then_still_serving(bytes: Vec<u8>) {
        let (t1, mut t2) = pair().await;
        let mut s = TcpStream::connect(t2.local_addr()).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        // The peer closes the connection: reading yields end of stream (or a reset).
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut s, &mut buf),
        )
        .await
        .expect("the connection is closed in time");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        t1.send(2, "after".into()).await.unwrap();
        assert_eq!(recv(&mut t2).await, (1, "after".to_string()));
    }

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[tokio::test]
    async fn garbage_bytes_are_refused() {
        refused_then_still_serving(b"GET / HTTP/1.1\r\n\r\n".to_vec()).await;
    }

    #[tokio::test]
    async fn oversized_frame_is_refused() {
        let mut bytes = (u32::MAX).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 64]);
        refused_then_still_serving(bytes).await;
    }

    #[tokio::test]
    async fn wrong_cluster_id_is_refused() {
        let hello = Hello::new("another", 1);
        let mut bytes = framed(&hello.to_frame());
        bytes.extend(framed(&codec::encode(&"sneaky".to_string()).unwrap()));
        refused_then_still_serving(bytes).await;
    }

    #[test]
    fn a_repeated_error_is_let_through_once_per_period_with_a_count() {
        let mut r = RateLimit::default();
        let t0 = std::time::Instant::now();
        let every = Duration::from_secs(10);
        assert_eq!(r.allow(t0, every), Some(0));
        for ms in [50, 100, 9_999] {
            assert_eq!(r.allow(t0 + Duration::from_millis(ms), every), None);
        }
        assert_eq!(r.allow(t0 + Duration::from_secs(10), every), Some(3));
        assert_eq!(r.allow(t0 + Duration::from_secs(11), every), None);
    }

    #[tokio::test]
    async fn a_peer_of_another_codec_format_is_refused() {
        let mut frame = Hello::new("test", 1).to_frame();
        frame[4..8].copy_from_slice(&(codec::FORMAT_VERSION + 1).to_le_bytes());
        assert!(Hello::from_frame(&frame)
            .unwrap_err()
            .contains("codec format"));
        refused_then_still_serving(framed(&frame)).await;
        // A format-1 (bincode) hello starts with a varint, not the plain magic.
        assert!(Hello::from_frame(&[0xfc, 0x42, 0x41, 0x4c, 0x43, 1, 4])
            .unwrap_err()
            .contains("not a consensus-lab peer"));
    }

    #[tokio::test]
    async fn unknown_node_id_is_refused() {
        let hello = Hello::new("test", 77);
        refused_then_still_serving(framed(&hello.to_frame())).await;
    }

    #[tokio::test]
    async fn undecodable_message_after_a_good_handshake_closes_only_that_connection() {
        let hello = Hello::new("test", 1);
        let mut bytes = framed(&hello.to_frame());
        bytes.extend(framed(&[0xff; 9]));
        refused_then_still_serving(bytes).await;
    }

    #[tokio::test]
    async fn a_restarted_peer_is_reached_again() {
        let (t1, t2) = pair().await;
        let a2 = t2.local_addr();
        drop(t2);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let peers: BTreeMap<NodeId, SocketAddr> = [(1, t1.local_addr()), (2, a2)].into();
        let mut t2 = node(2, a2, peers).await;
        // Messages sent while the connection re-establishes may be lost; keep sending.
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            let mut i = 0;
            loop {
                t1.send(2, format!("again{i}")).await.ok();
                i += 1;
                if let Ok(Some(m)) =
                    tokio::time::timeout(Duration::from_millis(50), t2.recv()).await
                {
                    return m;
                }
            }
        })
        .await
        .expect("the dialer reconnects");
        assert_eq!(got.0, 1);
        assert!(got.1.starts_with("again"));
    }

    #[tokio::test]
    async fn a_connection_the_peer_closed_is_replaced_before_the_next_message() {
        // Issue 10, bug 4: a dialer kept writing into a connection the other side had closed,
        // so the next message (a ZAB notification after a heal) was lost to a dead socket.
        // Here the other side first accepts and closes at once (as a cut link or a restarting
        // process does), then the real peer comes up at the same address.
        let raw = tokio::net::TcpListener::bind(addr()).await.unwrap();
        let a2 = raw.local_addr().unwrap();
        let l1 = std::net::TcpListener::bind(addr()).unwrap();
        let a1 = l1.local_addr().unwrap();
        drop(l1);
        let peers: BTreeMap<NodeId, SocketAddr> = [(1, a1), (2, a2)].into();
        let t1 = node(1, a1, peers.clone()).await;
        t1.send(2, "into the void".into()).await.unwrap();
        let (sock, _) = tokio::time::timeout(Duration::from_secs(5), raw.accept())
            .await
            .expect("the dialer connects")
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(sock);
        drop(raw);
        let mut t2 = node(2, a2, peers).await;
        // Time for the dialer to notice the closed connection and dial again.
        tokio::time::sleep(Duration::from_millis(600)).await;
        t1.send(2, "one".into()).await.unwrap();
        assert_eq!(recv(&mut t2).await, (1, "one".to_string()));
    }
}
