//! Shared pieces of consensus-lab, pure (no tokio, no file system): protocol-neutral types, the
//! sans-IO [`Replica`] contract that both Raft and ZAB implement, quorums, the storage,
//! transport and state-machine traits (with an in-memory log store), the one codec module that
//! turns values into bytes, and the key-value state machine. The drivers that run a core for
//! real (tokio runtime, on-disk log, TCP) are in the `consensus-node` crate.

pub mod apply;
pub mod chunks;
pub mod codec;
pub mod direct;
pub mod kv;
pub mod membership;
pub mod pipeline;
pub mod poll;
pub mod quorum;
pub mod replica;
pub mod snapshots;
pub mod state_machine;
pub mod storage;
pub mod transport;
pub mod types;

pub use apply::ApplyCursor;
/// The attribute the async traits ([`StateMachine`], [`LogStore`], [`Transport`]) are written
/// with; an implementation outside this crate needs it too.
pub use async_trait::async_trait;
pub use direct::Direct;
pub use membership::{ChangeError, ConfChange, Membership, MembershipLog};
pub use pipeline::{Early, Outcome, PendingReads, Release, Step, Steps, Waiters};
pub use quorum::{Majority, Quorum};
pub use replica::{
    node_seed, Envelope, MessageName, PersistOp, ProposeError, ReadLevel, ReadState, Ready,
    Replica, Role, Status,
};
pub use snapshots::Snapshots;
pub use state_machine::{RestoreError, SnapshotJob, StateMachine};
pub use storage::{LogStore, MemLogStore, Recovered, StorageError};
pub use transport::{Transport, TransportError};
pub use types::{Command, Entry, NodeId, Payload, Position, Snapshot, Time};
