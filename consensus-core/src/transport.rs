//! Sending and receiving protocol messages, behind one async trait.

use crate::types::NodeId;
use async_trait::async_trait;

/// Why a message could not be handed to the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No such node is known to this transport.
    #[error("unknown node {0}")]
    UnknownNode(NodeId),
    /// The peer's endpoint is gone.
    #[error("node {0} is unreachable")]
    Unreachable(NodeId),
}

/// Delivers messages between nodes; best effort, like a network.
#[async_trait]
pub trait Transport<M: Send + 'static>: Send {
    /// Sends `msg` to `to`.
    async fn send(&self, to: NodeId, msg: M) -> Result<(), TransportError>;
    /// Waits for the next message and its sender; `None` once the transport is closed.
    async fn recv(&mut self) -> Option<(NodeId, M)>;
    /// Starts talking to `id`, a member added to the cluster that listens at `addr` (as the
    /// membership change gave it); a transport that reaches every node already ignores it.
    fn add_peer(&mut self, id: NodeId, addr: &str) -> Result<(), TransportError> {
        let _ = (id, addr);
        Ok(())
    }
}
