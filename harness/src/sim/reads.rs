//! Reads served outside the log: waiting at a node for the core's read index and for the
//! state machine to apply through it, then answered from the state machine.

use super::*;

impl<R: Replica> Sim<R> {
    /// Asks node `id` to serve the read-only `command` at `level` (`Index` or `Lease`: its
    /// read index; `Local`: its own state at once); returns the read's id for
    /// [`Sim::read_result`], or why the node refused.
    pub fn read(
        &mut self,
        id: NodeId,
        level: ReadLevel,
        command: Command,
    ) -> Result<u64, ProposeError> {
        let read = self.next_read;
        self.next_read += 1;
        let now = self.clock(id);
        let n = self.node_mut(id);
        let r = n
            .replica
            .as_mut()
            .ok_or(ProposeError::NotLeader { leader: None })?;
        let at = match level {
            ReadLevel::Local => Some(Position::ZERO),
            ReadLevel::Log => return Err(ProposeError::Unsupported),
            _ => {
                r.read_index(now, read, level)?;
                None
            }
        };
        n.reads.push(read, command, (DIRECT_READER, read, 0), at);
        self.serve_reads(id);
        self.after_input(id);
        Ok(read)
    }

    /// Asks node `id` (the leader) to hand leadership to `to`, as an operator would.
    pub fn transfer_leadership(&mut self, id: NodeId, to: NodeId) -> Result<(), ProposeError> {
        self.operate(id, |r, now| r.transfer_leadership(now, to))
    }

    /// Runs an operator's request `f` on node `id`'s core at the node's time, then lets the
    /// node act on it (a crashed node refuses as a non-leader).
    fn operate<T>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut R, Time) -> Result<T, ProposeError>,
    ) -> Result<T, ProposeError> {
        let now = self.clock(id);
        let r = self
            .node_mut(id)
            .replica
            .as_mut()
            .ok_or(ProposeError::NotLeader { leader: None })?;
        let out = f(r, now)?;
        self.after_input(id);
        Ok(out)
    }

    /// Asks node `id` (the leader) to change the membership, as an operator would; returns
    /// where the configuration entry went.
    pub fn change_membership(
        &mut self,
        id: NodeId,
        changes: &[consensus_core::ConfChange],
    ) -> Result<Position, ProposeError> {
        self.operate(id, |r, now| r.change_membership(now, changes))
    }

    /// The configuration node `id` acts on (None while it is crashed).
    pub fn membership(&self, id: NodeId) -> Option<consensus_core::Membership> {
        self.node(id).replica.as_ref().and_then(|r| r.membership())
    }

    /// The answer to a read asked for with [`Sim::read`]: `Some(Ok(output))` once served,
    /// `Some(Err(leader hint))` if refused, `None` while it waits.
    pub fn read_result(&self, read: u64) -> Option<Result<bytes::Bytes, Option<NodeId>>> {
        match self.direct_reads.get(&read)? {
            Reply::Done(out, _) => Some(Ok(out.clone())),
            Reply::NotLeader(hint) => Some(Err(*hint)),
            Reply::Retry => Some(Err(None)),
        }
    }

    /// Serves node `id`'s reads whose position its state machine has applied through.
    pub(super) fn serve_reads(&mut self, id: NodeId) {
        let n = &mut self.nodes[id as usize - 1];
        let applied = n.applied_at;
        for (who, command) in n.reads.ready(applied) {
            let out = at_once(self.nodes[id as usize - 1].sm.query(&command));
            self.reply_to(who, Outcome::Done(out), applied);
        }
    }

    /// The core answered read `read`: it waits for `at`, or fails with `why`.
    pub(super) fn read_answered(&mut self, id: NodeId, read: ReadState) {
        if let Some((who, hint)) = self.nodes[id as usize - 1].reads.answered(read) {
            self.answer(who, Reply::NotLeader(hint));
        }
    }
}
