//! ZAB as Apache ZooKeeper runs it ("Zab 1.0"), as a sans-IO core.
//!
//! Names follow ZooKeeper's code so a reader can hold the two side by side. Built so far:
//! [`zxid`] (ZxidUtils), [`election`] (FastLeaderElection), [`broadcast`] (the leader's
//! ordered commit) and [`sync`] (LearnerHandler.syncFollower's choice of DIFF, TRUNC or SNAP).
//! [`discovery`] fixes the new epoch, and [`replica::ZabReplica`] ties them together behind
//! the `Replica` contract.

pub mod broadcast;
mod config;
pub mod discovery;
pub mod election;
mod liveness;
pub mod log;
pub mod message;
pub mod replica;
mod roles;
pub mod sync;
pub mod zxid;

pub use broadcast::Outstanding;
pub use election::{Decision, ElectionConfig, FastLeaderElection, Notification, ServerState, Vote};
pub use message::{Message, Packet};
pub use replica::{Config, HardState, ZabReplica};
pub use sync::{History, SyncPlan};
pub use zxid::Zxid;

#[cfg(test)]
mod tests;
