//! In-memory transports for nodes in one process (tests and examples).

use async_trait::async_trait;
use consensus_core::{NodeId, Transport, TransportError};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Builds connected in-memory transports for a set of nodes in one process.
pub struct MemNetwork;

impl MemNetwork {
    /// One transport per node id, all connected to each other.
    pub fn build<M: Send + 'static>(ids: &[NodeId]) -> Vec<MemTransport<M>> {
        let mut senders = BTreeMap::new();
        let mut receivers = Vec::new();
        for &id in ids {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.insert(id, tx);
            receivers.push((id, rx));
        }
        let senders = Arc::new(senders);
        receivers
            .into_iter()
            .map(|(id, rx)| MemTransport {
                id,
                peers: Arc::clone(&senders),
                inbox: rx,
            })
            .collect()
    }
}

type Inbox<M> = mpsc::UnboundedReceiver<(NodeId, M)>;
type Outbox<M> = mpsc::UnboundedSender<(NodeId, M)>;

/// One node's end of a [`MemNetwork`].
pub struct MemTransport<M> {
    id: NodeId,
    peers: Arc<BTreeMap<NodeId, Outbox<M>>>,
    inbox: Inbox<M>,
}

impl<M> MemTransport<M> {
    /// The node this transport belongs to.
    pub fn id(&self) -> NodeId {
        self.id
    }
}

#[async_trait]
impl<M: Send + 'static> Transport<M> for MemTransport<M> {
    async fn send(&self, to: NodeId, msg: M) -> Result<(), TransportError> {
        let tx = self.peers.get(&to).ok_or(TransportError::UnknownNode(to))?;
        tx.send((self.id, msg))
            .map_err(|_| TransportError::Unreachable(to))
    }

    async fn recv(&mut self) -> Option<(NodeId, M)> {
        self.inbox.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_arrive_with_their_sender() {
        let mut nets = MemNetwork::build::<String>(&[1, 2, 3]);
        let mut n3 = nets.pop().unwrap();
        let n2 = nets.pop().unwrap();
        let n1 = nets.pop().unwrap();
        n1.send(3, "from one".into()).await.unwrap();
        n2.send(3, "from two".into()).await.unwrap();
        assert_eq!(n3.recv().await, Some((1, "from one".to_string())));
        assert_eq!(n3.recv().await, Some((2, "from two".to_string())));
        assert_eq!(n3.id(), 3);
    }

    #[tokio::test]
    async fn unknown_and_departed_nodes_are_errors() {
        let mut nets = MemNetwork::build::<u8>(&[1, 2]);
        let n2 = nets.pop().unwrap();
        let n1 = nets.pop().unwrap();
        assert_eq!(n1.send(9, 0).await, Err(TransportError::UnknownNode(9)));
        drop(n2);
        assert_eq!(n1.send(2, 0).await, Err(TransportError::Unreachable(2)));
    }
}
