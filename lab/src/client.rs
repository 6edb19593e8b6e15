//! A client that finds the leader, follows leader changes and retries, each command applied
//! once (its session and sequence number travel with it: [`crate::Sessions`]).

use crate::{Error, SessionCommand};
use consensus_core::{NodeId, Position, ReadLevel};
use consensus_node::runtime::{ClientError, NodeHandle};
use rand::RngExt;
use std::time::Duration;

/// How long one attempt at one node may take before the client tries another.
const ATTEMPT: Duration = Duration::from_secs(2);
/// How long a command may take in all before the client gives up.
const DEADLINE: Duration = Duration::from_secs(15);

/// Submits commands to whichever node leads.
pub struct Client {
    nodes: Vec<NodeHandle>,
    session: u64,
    seq: u64,
    /// The node tried first (the last one that answered).
    at: usize,
    /// The highest position this client saw applied, so that its reads never go back.
    seen: Position,
}

impl Client {
    /// A client of the cluster whose nodes are `nodes`, with a fresh random session.
    pub fn new(nodes: Vec<NodeHandle>) -> Client {
        Client {
            nodes,
            session: rand::rng().random(),
            seq: 0,
            at: 0,
            seen: Position::ZERO,
        }
    }

    /// The client's session id.
    pub fn session(&self) -> u64 {
        self.session
    }

    fn index_of(&self, id: NodeId) -> Option<usize> {
        self.nodes.iter().position(|h| h.status().id == id)
    }

    /// Applies `command` once on the replicated state machine and returns its output. Retries
    /// through leader changes and timeouts carry the same sequence number, so a command that
    /// did take effect is answered from the session table, not applied again.
    pub async fn submit(&mut self, command: Vec<u8>) -> Result<bytes::Bytes, Error> {
        self.seq += 1;
        let wrapped = consensus_core::codec::encode(&SessionCommand {
            session: self.session,
            seq: self.seq,
            command,
        })
        .map_err(|e| Error::Usage(e.to_string()))?;
        let wrapped = bytes::Bytes::from(wrapped);
        let out = self
            .at_some_node(|h| {
                let command = wrapped.clone();
                async move { h.submit(command).await }
            })
            .await?;
        self.seen = self.seen.max(self.nodes[self.at].status().commit);
        Ok(out)
    }

    /// Reads with the read-only `command` at `level` (the state machine's `query`): `Log`
    /// goes through the log like a write; `Index` and `Lease` ask the leader; `Local` is
    /// answered by the node tried first, never older than what this client saw.
    pub async fn read(
        &mut self,
        level: ReadLevel,
        command: Vec<u8>,
    ) -> Result<bytes::Bytes, Error> {
        if level == ReadLevel::Log {
            return self.submit(command).await;
        }
        let (command, seen) = (bytes::Bytes::from(command), self.seen);
        self.at_some_node(|h| {
            let command = command.clone();
            async move { h.read(level, command, seen).await }
        })
        .await
    }

    /// Runs `call` at the node tried first, following `NotLeader` hints and moving on after a
    /// refusal or a timeout, until one answers or [`DEADLINE`] passes; `self.at` is then the
    /// node that answered.
    async fn at_some_node<F, Fut>(&mut self, call: F) -> Result<bytes::Bytes, Error>
    where
        F: Fn(NodeHandle) -> Fut,
        Fut: std::future::Future<Output = Result<bytes::Bytes, ClientError>>,
    {
        let give_up = tokio::time::Instant::now() + DEADLINE;
        loop {
            if tokio::time::Instant::now() >= give_up {
                return Err(Error::Timeout(DEADLINE));
            }
            match tokio::time::timeout(ATTEMPT, call(self.nodes[self.at].clone())).await {
                Ok(Ok(out)) => return Ok(out),
                Ok(Err(ClientError::NotLeader { leader: Some(l) })) => match self.index_of(l) {
                    Some(i) if i != self.at => self.at = i,
                    _ => self.next().await,
                },
                // No leader known, the entry lost its slot, the outcome is unknown, the node
                // stopped, or no answer in time: the same command (same seq) elsewhere.
                Ok(Err(_)) | Err(_) => self.next().await,
            }
        }
    }

    /// Moves on to the next node, after a pause that lets an election finish.
    async fn next(&mut self) {
        self.at = (self.at + 1) % self.nodes.len();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
