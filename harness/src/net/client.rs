//! A small HTTP/1.1 client for the key-value API: keep-alive connections, following the
//! servers' redirects to the leader and retrying while no leader is known.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpStream;

/// Redirects and retries one [`Client::call`] may take before it returns the last reply.
const MAX_ATTEMPTS: usize = 50;
/// Pause before retrying a node that has no leader or cannot be reached.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// Longest wait for a single HTTP exchange.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP response.
#[derive(Clone, Debug)]
pub struct HttpReply {
    /// Status code.
    pub status: StatusCode,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The whole body.
    pub body: Bytes,
}

impl HttpReply {
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// An HTTP/1.1 client connection over `io` (plain or TLS), its driver spawned.
async fn http1<IO>(io: IO) -> anyhow::Result<SendRequest<Full<Bytes>>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    authority: String,
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(
        authority: &str,
        tls: Option<&tokio_rustls::TlsConnector>,
    ) -> anyhow::Result<Conn> {
        let stream = tokio::time::timeout(EXCHANGE_TIMEOUT, TcpStream::connect(authority))
            .await
            .map_err(|_| anyhow::anyhow!("connecting to {authority} timed out"))??;
        stream.set_nodelay(true)?;
        let sender = match tls {
            None => http1(stream).await?,
            Some(tls) => {
                // The host part names the server: an IP address or a DNS name its
                // certificate must hold.
                let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| anyhow::anyhow!("{host} cannot name a TLS server: {e}"))?;
                let stream = tokio::time::timeout(EXCHANGE_TIMEOUT, tls.connect(name, stream))
                    .await
                    .map_err(|_| anyhow::anyhow!("TLS handshake with {authority} timed out"))?
                    .map_err(|e| anyhow::anyhow!("TLS handshake with {authority} failed: {e}"))?;
                http1(stream).await?
            }
        };
        Ok(Conn {
            authority: authority.to_string(),
            sender,
        })
    }

    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
        forwarded: bool,
    ) -> anyhow::Result<HttpReply> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority);
        if forwarded {
            req = req.header(NO_FORWARD_HEADER, "1");
        }
        let req = req.body(Full::new(body))?;
        let fut = async {
            self.sender.ready().await?;
            let resp = self.sender.send_request(req).await?;
            let status = resp.status();
            let location = resp
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>(HttpReply {
                status,
                location,
                body,
            })
        };
        tokio::time::timeout(EXCHANGE_TIMEOUT, fut)
            .await
            .map_err(|_| anyhow::anyhow!("request to {} timed out", self.authority))?
    }
}

/// Asks a follower to answer with a redirect rather than forward the request to its leader:
/// sent by a follower that forwards (one hop only) and by clients that follow redirects to
/// the leader and stay there (`load`).
pub const NO_FORWARD_HEADER: &str = "x-consensus-lab-no-forward";

/// The `host:port` part of an `http://host:port/...` URL.
fn authority_of(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// A client of a cluster's HTTP API that finds the leader by itself.
pub struct Client {
    endpoints: Vec<String>,
    current: usize,
    conn: Option<Conn>,
    /// Redirects followed so far.
    pub redirects: u64,
    /// Ask followers for redirects instead of forwarding ([`NO_FORWARD_HEADER`]).
    forwarding: bool,
    /// HTTPS with this connector (the cluster's CA, and a client certificate if any).
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Client {
    /// A client of the nodes at `endpoints` (`host:port`), starting with `endpoints[start]`.
    pub fn new(endpoints: Vec<String>, start: usize) -> Client {
        assert!(
            !endpoints.is_empty(),
            "a client needs at least one endpoint"
        );
        let current = start % endpoints.len();
        Client {
            endpoints,
            current,
            conn: None,
            redirects: 0,
            forwarding: false,
            tls: None,
        }
    }

    /// This client, speaking HTTPS with `tls` (plain HTTP with `None`).
    pub fn with_tls(mut self, tls: Option<tokio_rustls::TlsConnector>) -> Client {
        self.tls = tls;
        self
    }

    /// The endpoint the client currently talks to.
    pub fn endpoint(&self) -> &str {
        &self.endpoints[self.current]
    }

    fn switch_to(&mut self, authority: &str) {
        self.conn = None;
        match self.endpoints.iter().position(|e| e == authority) {
            Some(i) => self.current = i,
            None => {
                self.endpoints.push(authority.to_string());
                self.current = self.endpoints.len() - 1;
            }
        }
    }

    fn next_endpoint(&mut self) {
        self.conn = None;
        self.current = (self.current + 1) % self.endpoints.len();
    }

    /// Opens the connection to the current endpoint unless one is open: after this succeeds,
    /// a request that fails may have reached the node.
    pub async fn connect(&mut self) -> anyhow::Result<()> {
        if self.conn.is_none() {
            self.conn = Some(Conn::open(&self.endpoints[self.current], self.tls.as_ref()).await?);
        }
        Ok(())
    }

    /// Drops the connection (after a request was abandoned half-way).
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    /// Sends one request to the current endpoint only: no redirects, no retries.
    pub async fn call_once(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<HttpReply> {
        self.connect().await?;
        let conn = self.conn.as_mut().expect("connected above");
        match conn.exchange(method, path, body, self.forwarding).await {
            Ok(r) => Ok(r),
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    /// A client a follower uses to forward requests to its leader at `leader`.
    pub fn forwarder(leader: String) -> Client {
        Client::new(vec![leader], 0).preferring_redirects()
    }

    /// This client, asking followers to redirect it to the leader (where it then stays)
    /// instead of forwarding each request.
    pub fn preferring_redirects(mut self) -> Client {
        self.forwarding = true;
        self
    }

    /// Sends a request, following redirects to the leader and retrying on 503 and on
    /// connection failures; returns the first other reply, or the last error.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<HttpReply> {
        let mut last_err = None;
        for _ in 0..MAX_ATTEMPTS {
            match self.call_once(method.clone(), path, body.clone()).await {
                Ok(r) if r.status == StatusCode::TEMPORARY_REDIRECT => {
                    match r.location.as_deref().and_then(authority_of) {
                        Some(a) => {
                            let a = a.to_string();
                            self.redirects += 1;
                            self.switch_to(&a);
                        }
                        None => return Ok(r),
                    }
                }
                Ok(r) if r.status == StatusCode::SERVICE_UNAVAILABLE => {
                    let hint = r.json()["leader_http"].as_str().map(str::to_string);
                    match hint {
                        Some(a) => self.switch_to(&a),
                        None => self.next_endpoint(),
                    }
                    last_err = Some(anyhow::anyhow!(
                        "service unavailable: {}",
                        String::from_utf8_lossy(&r.body)
                    ));
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Ok(r) => return Ok(r),
                Err(e) => {
                    last_err = Some(e);
                    self.next_endpoint();
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("too many redirects")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_is_taken_from_a_location() {
        assert_eq!(
            authority_of("http://127.0.0.1:8001/kv/a"),
            Some("127.0.0.1:8001")
        );
        assert_eq!(
            authority_of("http://127.0.0.1:8001"),
            Some("127.0.0.1:8001")
        );
        assert_eq!(authority_of("/kv/a"), None);
    }
}
