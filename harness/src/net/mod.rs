//! The real cluster: a TCP transport between nodes, an HTTP+JSON key-value server that runs a
//! node on a file log, an HTTP client, a closed-loop load generator (for etcd and ZooKeeper
//! too), a local process
//! launcher, and `torture` (faults injected into a local cluster of real processes, the
//! history checked).

pub mod client;
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
