//! Shared pieces of consensus-lab: protocol-neutral types, the sans-IO [`Replica`] contract that
//! both Raft and ZAB implement, storage and transport traits with in-memory implementations, the
//! one codec module that turns values into bytes, and the key-value state machine.

pub mod codec;
pub mod file_log;
pub mod kv;
pub mod poll;
pub mod quorum;
pub mod replica;
pub mod runtime;
pub mod snapshots;
pub mod state_machine;
pub mod storage;
pub mod transport;
pub mod types;

pub use file_log::FileLog;
pub use quorum::{Majority, Quorum};
pub use replica::{Envelope, PersistOp, ProposeError, Ready, Replica, Role, Status};
pub use snapshots::Snapshots;
pub use state_machine::StateMachine;
pub use storage::{LogStore, MemLogStore, Recovered, StorageError};
pub use transport::{MemNetwork, MemTransport, Transport, TransportError};
pub use types::{Command, Entry, NodeId, Payload, Position, Snapshot, Time};
