//! ZAB as Apache ZooKeeper runs it ("Zab 1.0"), as a sans-IO core.
//!
//! Names follow ZooKeeper's code so a reader can hold the two side by side: [`zxid`]
//! (ZxidUtils), [`election`] (FastLeaderElection), [`discovery`] (the new epoch: FOLLOWERINFO,
//! LEADERINFO, ACKEPOCH), [`sync`] (LearnerHandler.syncFollower's choice of DIFF, TRUNC or SNAP,
//! and both sides of synchronization up to NEWLEADER and UPTODATE), [`broadcast`] (PROPOSAL,
//! ACK and the leader's ordered COMMIT), and [`replica::ZabReplica`], which ties them together
//! behind the `Replica` contract.
//!
//! # A tour
//!
//! Three servers on the in-memory driver ([`consensus_core::Direct`]: messages handed over at
//! once, every append durable at once). Every server starts LOOKING and votes for itself;
//! votes are ordered by (epoch, zxid, server id), so with equal (empty) histories the highest
//! id wins, then discovery fixes epoch 1 and synchronization brings the followers level.
//!
//! ```
//! use bytes::Bytes;
//! use consensus_core::{Direct, Recovered, Replica};
//! use std::time::Duration;
//! use zab::{Config, ServerState, ZabReplica, Zxid};
//!
//! let voters = [1, 2, 3];
//! let servers = voters
//!     .iter()
//!     .map(|&id| {
//!         // id, every voter, tunables, seed, what the disk held (nothing yet), the time
//!         ZabReplica::new(id, &voters, Config::default(), 7, Recovered::default(), Duration::ZERO)
//!     })
//!     .collect();
//! let mut ensemble = Direct::new(servers);
//! assert_eq!(ensemble.node(1).server_state(), ServerState::Looking);
//!
//! // A leader counts as elected once a quorum acknowledged its NEWLEADER.
//! let leader = ensemble.elect(Duration::from_secs(1)).expect("a leader within a second");
//! assert_eq!(leader, 3, "equal histories: the highest server id");
//! assert_eq!(ensemble.node(3).server_state(), ServerState::Leading);
//! assert_eq!(ensemble.node(1).server_state(), ServerState::Following);
//!
//! // The first proposal of epoch 1 gets zxid (1, 1); once a quorum ACKed it, the leader
//! // COMMITs it and every server's last committed zxid reaches it.
//! let now = ensemble.now();
//! let pos = ensemble.node_mut(3).propose(now, Bytes::from_static(b"x")).unwrap();
//! assert_eq!(Zxid::from_position(pos), Some(Zxid::new(1, 1)));
//! ensemble.pump();
//! for id in voters {
//!     assert_eq!(ensemble.node(id).last_committed(), Zxid::new(1, 1));
//! }
//! ```

pub mod broadcast;
mod config;
pub mod discovery;
pub mod election;
mod liveness;
pub mod log;
pub mod membership;
pub mod message;
mod read;
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
