//! The real cluster: a TCP transport between nodes, an HTTP+JSON key-value server that runs a
//! node on a file log, an HTTP client, a closed-loop load generator (for etcd and ZooKeeper
//! too), a local process
//! launcher, and `torture` (faults injected into a local cluster of real processes, the
//! history checked).

pub mod client;
pub mod directory;
pub mod launch;
pub mod load;
pub mod node;
pub mod peers;
pub mod proxy;
pub mod serve_config;
pub mod server;
pub mod torture;
pub use consensus_node::tcp;

pub use client::{Client, HttpReply};
pub use load::{LoadConfig, LoadReport};
pub use server::ServeConfig;
pub use tcp::{TcpConfig, TcpTransport};

/// The next connection accepted on `listener`, or `None` once `shutdown` completes; a failed
/// accept is logged and skipped.
pub(crate) async fn accept_until(
    listener: &tokio::net::TcpListener,
    shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        tokio::select! {
            _ = shutdown.as_mut() => return None,
            r = listener.accept() => match r {
                Ok(x) => return Some(x),
                Err(e) => tracing::warn!("accept failed: {e}"),
            },
        }
    }
}
