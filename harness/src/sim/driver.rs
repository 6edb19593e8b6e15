//! The Ready pipeline of the simulator: inputs to a core, its Ready persisted on the simulated
//! disk, messages released and entries applied once the fsync completes.

use super::*;

impl<R: Replica> Sim<R> {
    pub(super) fn process(&mut self, event: Event<R::Message>) {
        let t = self.now.as_nanos() as u64;
        match event {
            Event::Deliver {
                from,
                to,
                to_inc,
                msg,
                id,
            } => {
                (t, 1u8, from, to).hash(&mut self.trace);
                let n = self.node(to);
                if n.inc != to_inc || n.replica.is_none() || self.blocked.contains(&(from, to)) {
                    self.stats.dropped += 1;
                    if self.tracer.is_some() {
                        let why = if self.blocked.contains(&(from, to)) {
                            "link cut"
                        } else {
                            "receiver crashed"
                        };
                        let msg = trace::describe(&msg).0;
                        self.trace_event(|t| TraceEvent::Drop {
                            t,
                            from,
                            to,
                            id,
                            msg,
                            why: why.into(),
                        });
                    }
                    return;
                }
                if let Some(tr) = self.tracer.as_mut() {
                    let name = trace::describe(&msg).0;
                    tr.cause = format!("{name} from n{from}");
                    tr.events.push(TraceEvent::Recv {
                        t: t / 1000,
                        from,
                        to,
                        id,
                        msg: name,
                    });
                }
                let now = self.clock(to);
                if let Some(r) = self.node_mut(to).replica.as_mut() {
                    r.receive(now, from, msg);
                }
                self.after_input(to);
            }
            Event::Tick { node, inc } => {
                (t, 2u8, node).hash(&mut self.trace);
                let now = self.now;
                let n = self.node_mut(node);
                if n.inc != inc {
                    return;
                }
                if n.tick_at == Some(now) {
                    n.tick_at = None;
                }
                if let Some(tr) = self.tracer.as_mut() {
                    tr.cause = "timer fired".into();
                }
                let local = self.clock(node);
                let n = self.node_mut(node);
                if let Some(r) = n.replica.as_mut() {
                    r.tick(local);
                }
                self.after_input(node);
            }
            Event::Release {
                node,
                inc,
                sync,
                apply,
            } => {
                (t, 3u8, node).hash(&mut self.trace);
                if let Some(tr) = self.tracer.as_mut() {
                    tr.cause = "its disk write completed".into();
                }
                if self.node(node).inc == inc {
                    self.node_mut(node).releases_queued -= 1;
                    self.release(node, sync, *apply);
                }
            }
            Event::ClientStart { client } => {
                (t, 4u8, client).hash(&mut self.trace);
                self.client_next_op(client);
            }
            Event::ClientArrive {
                client,
                node,
                seq,
                attempt,
            } => {
                (t, 5u8, client, node, seq, attempt).hash(&mut self.trace);
                self.client_arrive(client, node, seq, attempt);
            }
            Event::ClientReply {
                client,
                seq,
                attempt,
                reply,
            } => {
                (t, 6u8, client, seq, attempt).hash(&mut self.trace);
                if client == DIRECT_READER {
                    self.direct_reads.insert(seq, reply);
                } else {
                    self.client_reply(client, seq, attempt, reply);
                }
            }
            Event::ClientTimeout {
                client,
                seq,
                attempt,
            } => {
                (t, 7u8, client, seq, attempt).hash(&mut self.trace);
                self.client_timeout(client, seq, attempt);
            }
            Event::ClientRetry { client, seq } => {
                (t, 8u8, client, seq).hash(&mut self.trace);
                self.client_retry(client, seq);
            }
            Event::Nemesis => {
                (t, 9u8).hash(&mut self.trace);
                self.nemesis_step();
            }
            Event::Chaos { generation } => {
                (t, 10u8).hash(&mut self.trace);
                self.chaos_step(generation);
            }
            Event::ChaosAim {
                generation,
                node,
                inc,
                window,
            } => {
                (t, 11u8, node).hash(&mut self.trace);
                self.chaos_aim(generation, node, inc, window);
            }
        }
    }

    /// Collects a node's Ready after an input and hands it to the disk and network.
    pub(super) fn after_input(&mut self, id: NodeId) {
        let now = self.now;
        let fsync = self.cfg.fsync_latency;
        let n = &mut self.nodes[id as usize - 1];
        let Some(r) = n.replica.as_mut() else {
            return;
        };
        let status = r.status();
        let detail = self.tracer.is_some().then(|| r.inspect());
        let ready = if r.has_ready() {
            Some(r.take_ready())
        } else {
            None
        };
        let local_deadline = r.next_deadline();
        let deadline = self.true_time(id, local_deadline).max(now);
        let n = &mut self.nodes[id as usize - 1];
        if n.tick_at.is_none_or(|t| deadline < t) {
            n.tick_at = Some(deadline);
            let inc = n.inc;
            self.schedule(deadline, Event::Tick { node: id, inc });
        }
        if ready.as_ref().is_some_and(|r| r.restore.is_some()) {
            // The state machine is reloaded from a snapshot: the commit point starts over
            // from it (a ZAB SNAP may bring an older one; the leader's history follows).
            self.observer.state_reloaded(id);
        }
        self.observer.observe(now, id, Some(&status));
        if let Some(tr) = self.tracer.as_mut() {
            let t = now.as_micros() as u64;
            tr.status(t, &status, deadline.as_micros() as u64);
            if let Some(fields) = detail {
                tr.detail(t, id, fields);
            }
            for op in ready.iter().flat_map(|r| &r.persist) {
                match op {
                    consensus_core::PersistOp::Append(es) if !es.is_empty() => {
                        tr.events.push(TraceEvent::Append {
                            t,
                            node: id,
                            entries: es.iter().map(|e| trace::pos(e.pos)).collect(),
                        })
                    }
                    consensus_core::PersistOp::TruncateAfter(p) => {
                        tr.events.push(TraceEvent::Truncate {
                            t,
                            node: id,
                            after: trace::pos(*p),
                        })
                    }
                    consensus_core::PersistOp::Snapshot(snap) => {
                        tr.events.push(TraceEvent::Snapshot {
                            t,
                            node: id,
                            last: trace::pos(snap.last),
                        })
                    }
                    _ => {}
                }
            }
        }
        let Some(ready) = ready else {
            return;
        };
        for v in &ready.violations {
            self.observer.violation(v.clone());
        }
        if let Some(w) = faults::Window::of(&status, &ready) {
            self.chaos_window(id, w);
        }
        let (early, persist, mut apply) = ready.split();
        let n = &mut self.nodes[id as usize - 1];
        // The early part runs now, or behind the releases still queued: at the end of the
        // last fsync in flight, before this Ready's own fsync starts.
        let early_at = (n.releases_queued > 0).then(|| now.max(n.sync_done));
        let sync = !persist.is_empty();
        let release_at = if sync {
            n.store.write_owned(persist);
            if now < n.sync_start {
                // A queued fsync has not started yet: join it (group commit).
                n.sync_done
            } else {
                n.sync_start = now.max(n.sync_done);
                n.sync_done = n.sync_start + fsync;
                self.stats.fsyncs += 1;
                n.sync_done
            }
        } else {
            // Nothing to persist, but keep the order behind an fsync still in flight.
            now.max(n.sync_done)
        };
        match early_at {
            None => self.run_early(id, early),
            // Due at the same instant as this Ready's release (it joined the fsync in
            // flight): one event, the early part first, as if it had its own.
            Some(at) if at == release_at => {
                let mut messages = early.messages;
                messages.append(&mut apply.messages);
                apply.messages = messages;
                let mut committed = early.committed;
                committed.append(&mut apply.committed);
                apply.committed = committed;
            }
            Some(at) => self.queue_early(id, at, early),
        }
        let n = &mut self.nodes[id as usize - 1];
        if release_at == now && n.releases_queued == 0 {
            self.release(id, sync, apply);
        } else {
            n.releases_queued += 1;
            let inc = n.inc;
            self.schedule(
                release_at,
                Event::Release {
                    node: id,
                    inc,
                    sync,
                    apply: Box::new(apply),
                },
            );
        }
    }

    /// Carries out a Ready's early part (a leader's replication, the applies of committed
    /// entries) at once, before its persist is durable; no step of an earlier Ready waits.
    fn run_early(&mut self, id: NodeId, early: consensus_core::Early<R::Message>) {
        if !early.is_empty() {
            self.release(id, false, early_release(early));
        }
    }

    /// Queues a Ready's early part behind the steps of earlier Readys still waiting for
    /// their fsync, at `at`, the end of the last of them: each peer's messages keep their
    /// order, and so does the state machine.
    fn queue_early(&mut self, id: NodeId, at: Time, early: consensus_core::Early<R::Message>) {
        if early.is_empty() {
            return;
        }
        let n = &mut self.nodes[id as usize - 1];
        n.releases_queued += 1;
        let inc = n.inc;
        self.schedule(
            at,
            Event::Release {
                node: id,
                inc,
                sync: false,
                apply: Box::new(early_release(early)),
            },
        );
    }

    /// The persist part of a Ready is durable: the steps that follow, in the contract's
    /// order (the core learns what is durable, messages go out, the state machine restores,
    /// applies and snapshots).
    pub(super) fn release(&mut self, id: NodeId, sync: bool, apply: Release<R::Message>) {
        if sync {
            if let Err(e) = self.node_mut(id).store.sync_now() {
                self.observer
                    .violation(format!("node {id}: storage sync failed: {e}"));
            }
        }
        let feeds_core = apply.feeds_core();
        for step in apply.steps() {
            match step {
                Step::Persisted(through) => {
                    let now = self.clock(id);
                    if let Some(r) = self.node_mut(id).replica.as_mut() {
                        r.persisted(now, through);
                    }
                }
                Step::Send(env) => self.send(id, env),
                Step::Read(read) => self.read_answered(id, read),
                Step::Restore(snap) => self.restore(id, snap),
                Step::Apply(entry) => self.apply(id, entry),
                Step::Snapshot(last) => {
                    let now = self.clock(id);
                    let n = &mut self.nodes[id as usize - 1];
                    let data = at_once(n.sm.snapshot());
                    let count = n.total_applied();
                    self.snapshot_counts.entry(last).or_insert(count);
                    let n = self.node_mut(id);
                    if let Some(r) = n.replica.as_mut() {
                        r.compact(
                            now,
                            Snapshot {
                                last,
                                data,
                                members: None,
                            },
                        );
                    }
                }
            }
        }
        self.serve_reads(id);
        if feeds_core {
            // What `persisted` or `compact` produced (a leader's commits, a snapshot to
            // persist) goes out now.
            self.after_input(id);
        }
    }
}

/// A Ready's early part as a release with nothing to make durable.
fn early_release<M>(early: consensus_core::Early<M>) -> Release<M> {
    Release {
        appended: None,
        messages: early.messages,
        reads: Vec::new(),
        restore: None,
        committed: early.committed,
        snapshot_at: None,
    }
}
