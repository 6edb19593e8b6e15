//! A fault-injecting TCP proxy for one direction of a peer link.
//!
//! Peers dial each other once per direction (node A's messages to B travel on the connection A
//! dialled), so a proxy in front of B that only A dials carries exactly A -> B. Closing it cuts
//! the connections it carries and refuses new ones (accepted, then closed at once): a one-way
//! partition. No root and no packet filter needed, so `torture` runs anywhere.

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One direction of one peer link, passed through or cut.
pub struct LinkProxy {
    addr: SocketAddr,
    open: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl LinkProxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `target`.
    pub async fn start(target: String) -> std::io::Result<LinkProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (open, rx) = watch::channel(true);
        let task = tokio::spawn(accept_loop(listener, target, rx));
        Ok(LinkProxy { addr, open, task })
    }

    /// The address the dialling node is given for its peer.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Passes traffic (`true`) or cuts it (`false`): closing ends the connections it carries.
    pub fn set_open(&self, open: bool) {
        self.open.send_replace(open);
    }

    /// True while traffic passes.
    pub fn is_open(&self) -> bool {
        *self.open.borrow()
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: String, open: watch::Receiver<bool>) {
    let mut pipes = tokio::task::JoinSet::new();
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        while pipes.try_join_next().is_some() {}
        if !*open.borrow() {
            drop(inbound); // cut: the dialler sees its connection end and retries later
            continue;
        }
        pipes.spawn(pipe(inbound, target.clone(), open.clone()));
    }
}

/// Copies both ways between `inbound` and a new connection to `target` until either side
/// ends or the link is cut.
async fn pipe(mut inbound: TcpStream, target: String, mut open: watch::Receiver<bool>) {
    let Ok(mut outbound) = TcpStream::connect(&target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = open.wait_for(|open| !open) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(addr: SocketAddr) -> Option<Vec<u8>> {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(b"ping").await.ok()?;
        let mut buf = [0u8; 4];
        tokio::time::timeout(std::time::Duration::from_secs(2), s.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(buf.to_vec())
    }

    #[tokio::test]
    async fn an_open_link_passes_and_a_cut_one_ends_connections_and_refuses_new_ones() {
        let target = echo_server().await;
        let proxy = LinkProxy::start(target.to_string()).await.unwrap();
        assert_eq!(
            round_trip(proxy.addr()).await.as_deref(),
            Some(&b"ping"[..])
        );

        // A connection carried when the link is cut ends.
        let mut carried = TcpStream::connect(proxy.addr()).await.unwrap();
        carried.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        carried.read_exact(&mut one).await.unwrap();
        proxy.set_open(false);
        let mut rest = Vec::new();
        let ended = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            carried.read_to_end(&mut rest),
        )
        .await;
        assert!(
            ended.is_ok(),
            "the carried connection ends when the link is cut"
        );
        assert_eq!(
            round_trip(proxy.addr()).await,
            None,
            "new connections are refused"
        );

        proxy.set_open(true);
        assert_eq!(
            round_trip(proxy.addr()).await.as_deref(),
            Some(&b"ping"[..])
        );
    }
}
