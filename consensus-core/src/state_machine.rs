//! The application a consensus protocol replicates.

use crate::types::{Command, Position};
use async_trait::async_trait;
use bytes::Bytes;

/// Encodes a snapshot captured from a state machine, on whatever thread runs it.
pub type SnapshotJob = Box<dyn FnOnce() -> Bytes + Send + 'static>;

/// Why a snapshot could not be restored: any error of the application's.
pub type RestoreError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A deterministic state machine: the same commands in the same order give the same outputs.
#[async_trait]
pub trait StateMachine: Send {
    /// Applies one committed command found at `pos` and returns its output for the client.
    ///
    /// Must never panic on malformed input: return an error output instead.
    async fn apply(&mut self, pos: Position, command: &Command) -> Bytes;
    /// Encodes the whole state, as of the last command applied.
    async fn snapshot(&mut self) -> Bytes;
    /// Captures the whole state as of the last command applied and returns the work that
    /// encodes it (what [`StateMachine::snapshot`] returns), so that a driver can encode a
    /// large state on another thread while it goes on applying. The default encodes here and
    /// now; a state machine overrides it with a cheap copy of its state (a clone of its maps
    /// costs a fraction of encoding them).
    async fn snapshot_job(&mut self) -> SnapshotJob {
        let data = self.snapshot().await;
        Box::new(move || data)
    }
    /// Replaces the whole state with a snapshot's; empty `data` is the initial, empty state. A
    /// malformed snapshot is an error (of the application's own type: `?` converts any
    /// `std::error::Error`) and leaves the state unchanged.
    async fn restore(&mut self, data: &[u8]) -> Result<(), RestoreError>;
    /// Answers a read-only command from the current state, without applying anything (reads
    /// served at a read index or locally). A command that would change the state gets an
    /// error output.
    async fn query(&mut self, command: &Command) -> Bytes;
}
