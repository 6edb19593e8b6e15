//! Exactly-once commands: every command carries its client's session and sequence number, and
//! the replicated state remembers each session's last answer, so that a retry after a timeout
//! or a change of leader is answered, not applied again (ZooKeeper's sessions, the Raft
//! thesis, section 6.3). The table is part of the state: it survives failover and snapshots.

use consensus_core::{async_trait, Command, Position, RestoreError, SnapshotJob, StateMachine};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A command as the log carries it: who sent it, its number in that client's order, and the
/// application's own bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCommand {
    /// The client's session (chosen at random by the client).
    pub session: u64,
    /// 1, 2, 3, ... per session; a client sends its next command only after the previous one
    /// was answered.
    pub seq: u64,
    /// The application's command.
    pub command: Vec<u8>,
}

/// The last answer of one session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Last {
    seq: u64,
    output: Vec<u8>,
}

/// What a snapshot of [`Sessions`] holds.
#[derive(Serialize, Deserialize)]
struct Image {
    sessions: BTreeMap<u64, Last>,
    inner: Vec<u8>,
}

/// Wraps the application's state machine `S` with the session table.
pub struct Sessions<S> {
    inner: S,
    sessions: BTreeMap<u64, Last>,
    /// Commands that reached the application (not counting answered retries).
    applied: u64,
}

impl<S> Sessions<S> {
    /// The table around `inner`, empty.
    pub fn new(inner: S) -> Self {
        Sessions {
            inner,
            sessions: BTreeMap::new(),
            applied: 0,
        }
    }

    /// The application's state machine.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Commands the application applied (an answered retry is not one).
    pub fn applied(&self) -> u64 {
        self.applied
    }
}

/// The reply to a command that does not decode as a [`SessionCommand`].
pub const MALFORMED: &[u8] = b"error: not a session command";

#[async_trait]
impl<S: StateMachine> StateMachine for Sessions<S> {
    async fn apply(&mut self, pos: Position, command: &Command) -> bytes::Bytes {
        let Ok(c) = consensus_core::codec::decode::<SessionCommand>(command) else {
            return bytes::Bytes::from_static(MALFORMED);
        };
        if let Some(last) = self.sessions.get(&c.session) {
            if c.seq <= last.seq {
                // A retry of the last command gets its answer again; an older one was answered
                // long ago and its client has moved on: it gets the latest answer too.
                return bytes::Bytes::from(last.output.clone());
            }
        }
        let output = self.inner.apply(pos, &bytes::Bytes::from(c.command)).await;
        self.applied += 1;
        self.sessions.insert(
            c.session,
            Last {
                seq: c.seq,
                output: output.to_vec(),
            },
        );
        output
    }

    async fn snapshot(&mut self) -> bytes::Bytes {
        (self.snapshot_job().await)()
    }

    async fn snapshot_job(&mut self) -> SnapshotJob {
        let sessions = self.sessions.clone();
        let inner = self.inner.snapshot_job().await;
        Box::new(move || {
            let image = Image {
                sessions,
                inner: inner().to_vec(),
            };
            consensus_core::codec::encode_state(&image)
                .expect("a session table encodes")
                .into()
        })
    }

    async fn restore(&mut self, data: &[u8]) -> Result<(), RestoreError> {
        if data.is_empty() {
            self.inner.restore(&[]).await?;
            self.sessions.clear();
            return Ok(());
        }
        let image: Image = consensus_core::codec::decode_state(data)?;
        self.inner.restore(&image.inner).await?;
        self.sessions = image.sessions;
        Ok(())
    }

    async fn query(&mut self, command: &Command) -> bytes::Bytes {
        // Reads carry no session: they change nothing, so a retry is harmless.
        self.inner.query(command).await
    }
}
