//! ZAB as Apache ZooKeeper runs it ("Zab 1.0"), as a sans-IO core.
//!
//! Names follow ZooKeeper's code so a reader can hold the two side by side. Built so far:
//! [`zxid`] (ZxidUtils) and [`election`] (FastLeaderElection). Discovery, synchronization and
//! broadcast, and the `Replica` implementation that ties them together, come next.

pub mod election;
pub mod zxid;

pub use election::{Decision, ElectionConfig, FastLeaderElection, Notification, ServerState, Vote};
pub use zxid::Zxid;
