//! The simulated network: links that delay, lose, duplicate or reorder messages, or behave
//! like TCP streams; partitions and one-way cuts.

use super::*;

impl<R: Replica> Sim<R> {
    pub(super) fn send(&mut self, from: NodeId, env: Envelope<R::Message>) {
        self.stats.messages += 1;
        if consensus_core::MessageName::only_for_reads(&env.msg) {
            self.stats.read_messages += 1;
        }
        self.buf.clear();
        match codec::encode_into(&env.msg, &mut self.buf) {
            Ok(len) => self.stats.bytes += len as u64,
            Err(e) => {
                self.observer
                    .violation(format!("node {from}: message failed to encode: {e}"));
                return;
            }
        }
        self.buf.hash(&mut self.trace);
        let to = env.to;
        let cut = !self.valid(to) || self.blocked.contains(&(from, to));
        // The message's trace id and type name (0 and empty when not tracing).
        let (mut id, mut name) = (0, String::new());
        if let Some(tr) = self.tracer.as_mut() {
            id = tr.next_id();
            let (msg, fields) = trace::describe(&env.msg);
            name = msg.clone();
            tr.events.push(TraceEvent::Send {
                t: self.now.as_micros() as u64,
                from,
                to,
                id,
                msg,
                fields,
                bytes: self.buf.len() as u64,
            });
        }
        if cut {
            self.stats.dropped += 1;
            self.trace_event(|t| TraceEvent::Drop {
                t,
                from,
                to,
                id,
                msg: name,
                why: "link cut".into(),
            });
            return;
        }
        let f = self.net_faults;
        if self.cfg.net.semantics == Semantics::Stream {
            // Lost transmissions are retransmitted after a timeout; order and uniqueness hold.
            let mut at = self.now + self.faulty_delay();
            let mut tries = 0;
            while f.drop > 0.0 && tries < 8 && self.rng.random_bool(f.drop) {
                at += RETRANSMISSION_TIMEOUT;
                tries += 1;
            }
            let link = self.link_clock.entry((from, to)).or_default();
            let at = at.max(*link);
            *link = at;
            self.deliver_at(at, from, to, env.msg, id);
            return;
        }
        if f.drop > 0.0 && self.rng.random_bool(f.drop) {
            self.stats.dropped += 1;
            self.trace_event(|t| TraceEvent::Drop {
                t,
                from,
                to,
                id,
                msg: name,
                why: "lost".into(),
            });
            return;
        }
        if f.duplicate > 0.0 && self.rng.random_bool(f.duplicate) {
            self.deliver_later(from, to, env.msg.clone(), id);
        }
        self.deliver_later(from, to, env.msg, id);
    }

    /// Schedules `msg` to reach `to` after a (possibly faulty) network delay.
    pub(super) fn deliver_later(&mut self, from: NodeId, to: NodeId, msg: R::Message, id: u64) {
        let at = self.now + self.faulty_delay();
        self.deliver_at(at, from, to, msg, id);
    }

    /// Schedules `msg` to reach `to` at `at`, unless `to` restarts before then.
    pub(super) fn deliver_at(
        &mut self,
        at: Time,
        from: NodeId,
        to: NodeId,
        msg: R::Message,
        id: u64,
    ) {
        let to_inc = self.node(to).inc;
        self.schedule(
            at,
            Event::Deliver {
                from,
                to,
                to_inc,
                msg,
                id,
            },
        );
    }

    /// A network delay, plus a random spike for a message the faults reorder.
    pub(super) fn faulty_delay(&mut self) -> Duration {
        let mut d = self.delay();
        let f = self.net_faults;
        if f.reorder > 0.0 && self.rng.random_bool(f.reorder) {
            let spike = f.spike.as_nanos() as u64;
            d += Duration::from_nanos(self.rng.random_range(0..=spike));
        }
        d
    }

    /// Cuts every link to and from `id`.
    pub fn disconnect(&mut self, id: NodeId) {
        self.trace_event(|t| TraceEvent::Disconnect { t, node: id });
        for p in 1..=self.nodes.len() as NodeId {
            if p != id {
                self.blocked.insert((id, p));
                self.blocked.insert((p, id));
            }
        }
    }

    /// Restores every link to and from `id`.
    pub fn connect(&mut self, id: NodeId) {
        self.trace_event(|t| TraceEvent::Connect { t, node: id });
        self.blocked.retain(|&(a, b)| a != id && b != id);
    }

    /// Cuts the link from `from` to `to` only.
    pub fn block_one_way(&mut self, from: NodeId, to: NodeId) {
        self.blocked.insert((from, to));
    }

    /// Splits the cluster: nodes in different groups cannot talk; nodes in no group are isolated.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        self.trace_event(|t| TraceEvent::Partition {
            t,
            groups: groups.to_vec(),
        });
        self.blocked = faults::links_between(self.nodes.len(), groups);
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.trace_event(|t| TraceEvent::Heal { t });
        self.blocked.clear();
    }

    /// Sets message-level faults (drop, duplicate, reorder with delay spikes).
    pub fn set_unreliable(&mut self, faults: NetFaults) {
        self.net_faults = faults;
    }
}
