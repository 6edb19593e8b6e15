//! ZAB as Apache ZooKeeper runs it ("Zab 1.0"), as a sans-IO core.
//!
//! Names follow ZooKeeper's code so a reader can hold the two side by side. Built so far:
//! [`zxid`] (ZxidUtils), [`election`] (FastLeaderElection), [`broadcast`] (the leader's
//! ordered commit) and [`sync`] (LearnerHandler.syncFollower's choice of DIFF, TRUNC or SNAP).
//! Discovery and the `Replica` implementation that ties them together come next.

pub mod broadcast;
pub mod election;
pub mod sync;
pub mod zxid;

pub use broadcast::Outstanding;
pub use election::{Decision, ElectionConfig, FastLeaderElection, Notification, ServerState, Vote};
pub use sync::{History, SyncPlan};
pub use zxid::Zxid;
