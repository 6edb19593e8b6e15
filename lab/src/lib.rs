//! Replicate your own state machine with Raft or ZAB, chosen at run time.
//!
//! ```no_run
//! use consensus_lab::{Client, Cluster, Protocol};
//! # use consensus_lab::core::{async_trait, Command, Position, RestoreError, StateMachine};
//! # struct Counter(u64);
//! # #[async_trait]
//! # impl StateMachine for Counter {
//! #     async fn apply(&mut self, _: Position, _: &Command) -> bytes::Bytes { self.0 += 1; self.0.to_string().into() }
//! #     async fn snapshot(&mut self) -> bytes::Bytes { self.0.to_string().into() }
//! #     async fn restore(&mut self, d: &[u8]) -> Result<(), RestoreError> { self.0 = if d.is_empty() { 0 } else { std::str::from_utf8(d)?.parse()? }; Ok(()) }
//! #     async fn query(&mut self, _: &Command) -> bytes::Bytes { self.0.to_string().into() }
//! # }
//! # async fn demo() -> Result<(), consensus_lab::Error> {
//! let protocol: Protocol = "zab".parse()?;              // or "raft", from a flag
//! let dir = std::path::Path::new("data");
//! let cluster = Cluster::start_local(protocol, 3, dir, |_| Counter(0)).await?;
//! let mut client = Client::new(cluster.handles());
//! let out = client.submit(b"+1".to_vec()).await?;       // applied once, even if retried
//! # Ok(()) }
//! ```
//!
//! [`Node::start`] starts one node of a real cluster (TCP between peers, a file log); every
//! node of a cluster runs the same [`Protocol`]. The state machine is wrapped in [`Sessions`],
//! which makes a retried command apply once. docs/library.md is the guide.

mod client;
mod node;
mod sessions;

pub use client::Client;
pub use node::{Cluster, Node, NodeConfig};
pub use sessions::{SessionCommand, Sessions};

/// The shared types and traits: [`core::StateMachine`], [`core::async_trait`], positions.
pub use consensus_core as core;
pub use consensus_core::{ReadLevel, Status};
pub use consensus_node::runtime::{ClientError, NodeHandle};
/// Mutual TLS between nodes: certificate files, and a throwaway CA for tests and demos.
pub use consensus_node::tls;

/// Which protocol replicates the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Raft, as in the paper (with pre-vote, check-quorum and lease reads).
    Raft,
    /// ZAB, as ZooKeeper runs it.
    Zab,
}

impl Protocol {
    /// The protocol a program's command line names with `--protocol raft|zab` (Raft when the
    /// flag is absent), as the examples take it.
    pub fn from_args() -> Result<Protocol, Error> {
        let args: Vec<String> = std::env::args().collect();
        match args.iter().position(|a| a == "--protocol") {
            Some(i) => args
                .get(i + 1)
                .ok_or_else(|| Error::Usage("--protocol needs raft or zab".into()))?
                .parse(),
            None => Ok(Protocol::Raft),
        }
    }
}

impl std::str::FromStr for Protocol {
    type Err = Error;

    fn from_str(s: &str) -> Result<Protocol, Error> {
        match s {
            "raft" => Ok(Protocol::Raft),
            "zab" => Ok(Protocol::Zab),
            other => Err(Error::Usage(format!(
                "`{other}` is not a protocol (raft, zab)"
            ))),
        }
    }
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A wrong argument.
    #[error("{0}")]
    Usage(String),
    /// The node could not start: its port, its data directory or its recovery.
    #[error("node {node} could not start: {reason}")]
    Start {
        /// The node.
        node: consensus_core::NodeId,
        /// Why.
        reason: String,
    },
    /// The cluster did not answer in time.
    #[error("no answer within {0:?} (no leader, or the leader cannot reach a majority)")]
    Timeout(std::time::Duration),
    /// The command was refused by every node.
    #[error("{0}")]
    Client(#[from] ClientError),
}
