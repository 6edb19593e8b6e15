//! Starting one real node: the data directory's protocol marker, the peer transport, the file
//! log and the protocol's core.

use crate::protocol::Protocol;
use anyhow::{bail, Context};
use consensus_core::NodeId;
use consensus_node::runtime::{Node, NodeHandle};
use consensus_node::FileLog;
use std::path::PathBuf;

/// Refuses to reuse a data directory written by the other protocol.
pub(crate) fn check_protocol_marker(
    dir: &std::path::Path,
    protocol: Protocol,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))?;
    let marker = dir.join("PROTOCOL");
    match std::fs::read_to_string(&marker) {
        Ok(found) if found.trim() == protocol.name() => Ok(()),
        Ok(found) => bail!(
            "{} holds {} data; it cannot be served as {}",
            dir.display(),
            found.trim(),
            protocol.name()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&marker, protocol.name())
                .with_context(|| format!("cannot write {}", marker.display()))?;
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", marker.display())),
    }
}

/// The node's driver loop, boxed so every protocol fits one variable.
pub type NodeRun = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<
                    consensus_node::runtime::NodeStats,
                    consensus_node::runtime::NodeError,
                >,
            > + Send,
    >,
>;

/// What a protocol needs to start one real node.
pub struct RealNode {
    /// This node.
    pub id: NodeId,
    /// Every member, this node included.
    pub voters: Vec<NodeId>,
    /// Seed of the node's randomness.
    pub seed: u64,
    /// The peer transport's settings.
    pub tcp: crate::net::tcp::TcpConfig,
    /// Where the file log lives.
    pub store_dir: PathBuf,
    /// Tunables over the protocol's defaults for a real node.
    pub knobs: crate::protocol::Knobs,
}

/// Binds the peer transport, recovers the file log and builds the node with `make`.
pub async fn start_node<R>(
    n: RealNode,
    make: impl FnOnce(consensus_core::Recovered<R::HardState>, consensus_core::Time) -> R,
) -> anyhow::Result<(NodeRun, NodeHandle)>
where
    R: consensus_core::Replica + Send + 'static,
{
    let listen = n.tcp.listen;
    let transport = crate::net::TcpTransport::bind(n.tcp)
        .await
        .with_context(|| format!("cannot listen for peers on {listen}"))?;
    let store = FileLog::open(&n.store_dir)?;
    let (node, handle) = Node::start(
        store,
        transport,
        crate::front::store::ServiceStore::default(),
        make,
    )
    .await
    .with_context(|| format!("cannot recover {}", n.store_dir.display()))?;
    Ok((Box::pin(node.run()), handle))
}
