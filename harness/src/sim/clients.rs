//! Closed-loop clients inside the simulator: each sends one operation at a time to the node it
//! believes leads, follows redirects, retries on timeouts (same session sequence number, so a
//! retry takes effect at most once) and gives up after the operation timeout.

use super::{Event, Reply, Sim};
use crate::app::AppHandle;
use crate::history::{History, Outcome};
use crate::workload::{client_rng, WorkloadConfig};
use consensus_core::{Command, NodeId, Position, ProposeError, ReadLevel, Replica, Time};
use std::time::Duration;

/// Back-off before retrying when no node named a leader (an election is probably running).
const NO_LEADER_BACKOFF: Duration = Duration::from_millis(20);
/// Back-off before following a redirect or retrying an overwritten entry.
const REDIRECT_BACKOFF: Duration = Duration::from_millis(1);

struct PendingOp {
    hist: usize,
    seq: u64,
    bytes: Command,
    /// For a read, the command its node's state machine answers from (outside the log,
    /// unless the read level is `Log`).
    query: Option<Command>,
    attempt: u32,
    accepted: bool,
    deadline: Time,
}

struct Client {
    /// The app's generator of this client's operations.
    gen: Box<dyn std::any::Any + Send>,
    id: u64,
    next_seq: u64,
    target: NodeId,
    current: Option<PendingOp>,
    finished: bool,
    /// The newest state position any answer showed this client: a local read waits for it.
    seen: Position,
}

/// The clients of a run and the history they produce.
pub(crate) struct Workload {
    cfg: WorkloadConfig,
    app: AppHandle,
    nodes: usize,
    clients: Vec<Client>,
    issued: usize,
    finished: usize,
    pub(crate) history: History,
}

impl Workload {
    pub(crate) fn new(cfg: WorkloadConfig, app: AppHandle, seed: u64, nodes: usize) -> Self {
        let clients = (0..cfg.clients)
            .map(|c| Client {
                gen: {
                    let id = c as u64 + 1;
                    app.get().ops(id, client_rng(seed, id), &cfg)
                },
                id: c as u64 + 1,
                next_seq: 1,
                target: (c % nodes) as NodeId + 1,
                current: None,
                finished: false,
                seen: Position::ZERO,
            })
            .collect();
        Workload {
            cfg,
            app,
            nodes,
            clients,
            issued: 0,
            finished: 0,
            history: History::default(),
        }
    }

    pub(crate) fn done(&self) -> bool {
        self.finished == self.clients.len()
    }

    fn next_node(&self, n: NodeId) -> NodeId {
        n % self.nodes as NodeId + 1
    }
}

impl<R: Replica> Sim<R> {
    fn wl(&mut self) -> &mut Workload {
        self.workload.as_mut().expect("a workload is installed")
    }

    /// Invokes the client's next operation, or marks the client finished.
    pub(crate) fn client_next_op(&mut self, c: usize) {
        let now = self.now;
        let w = self.wl();
        if w.issued >= w.cfg.ops {
            if !w.clients[c].finished {
                w.clients[c].finished = true;
                w.finished += 1;
            }
            return;
        }
        w.issued += 1;
        let op_timeout = w.cfg.op_timeout;
        let cl = &mut w.clients[c];
        let seq = cl.next_seq;
        cl.next_seq += 1;
        let (bytes, query) = w.app.get().next(&mut cl.gen, cl.id, seq);
        let client_id = cl.id;
        let hist = w
            .history
            .invoke(client_id, seq, bytes.clone(), query.is_some(), now);
        w.clients[c].current = Some(PendingOp {
            hist,
            seq,
            bytes,
            query,
            attempt: 0,
            accepted: false,
            deadline: now + op_timeout,
        });
        self.client_send(c);
    }

    /// Sends a new attempt of the current operation to the client's target.
    fn client_send(&mut self, c: usize) {
        let now = self.now;
        let w = self.wl();
        let timeout = w.cfg.request_timeout;
        let local = w.cfg.read_level == ReadLevel::Local;
        let nodes = w.nodes as NodeId;
        let cl = &mut w.clients[c];
        let Some(p) = cl.current.as_mut() else {
            return;
        };
        // A local read goes to the client's own server, as a ZooKeeper session's reads do;
        // the first attempt of it, at least (a retry follows the rotation).
        let target = if local && p.query.is_some() && p.attempt == 0 {
            (cl.id - 1) as NodeId % nodes + 1
        } else {
            cl.target
        };
        if now >= p.deadline {
            self.client_give_up(c);
            return;
        }
        p.attempt += 1;
        let (seq, attempt) = (p.seq, p.attempt);
        let at = now + self.delay();
        self.schedule(
            at,
            Event::ClientArrive {
                client: c,
                node: target,
                seq,
                attempt,
            },
        );
        self.schedule(
            now + timeout,
            Event::ClientTimeout {
                client: c,
                seq,
                attempt,
            },
        );
    }

    fn client_give_up(&mut self, c: usize) {
        let now = self.now;
        let w = self.wl();
        if let Some(p) = w.clients[c].current.take() {
            let outcome = if p.accepted {
                Outcome::Unknown
            } else {
                Outcome::Fail
            };
            w.history.complete(p.hist, outcome, now);
        }
        self.client_next_op(c);
    }

    /// A client's request reaches a node.
    pub(crate) fn client_arrive(&mut self, c: usize, node: NodeId, seq: u64, attempt: u32) {
        let level = self.wl().cfg.read_level;
        let seen = self.wl().clients[c].seen;
        let (bytes, query) = match self.wl().clients[c].current.as_ref() {
            Some(p) if p.seq == seq && p.attempt == attempt => (p.bytes.clone(), p.query.clone()),
            _ => return,
        };
        let id = self.next_read;
        let local_now = self.clock(node);
        let n = &mut self.nodes[node as usize - 1];
        let Some(r) = n.replica.as_mut() else {
            return; // lost: the client will time out
        };
        let who = (c, seq, attempt);
        if let Some(query) = query.filter(|_| level != ReadLevel::Log) {
            // Where the read waits: the position the client has seen (local), or the read
            // index the core will answer (None until it does).
            let wait = match level {
                ReadLevel::Local => Ok(Some(seen)),
                _ => r.read_index(local_now, id, level).map(|()| None),
            };
            match wait {
                Ok(at) => {
                    self.next_read += 1;
                    n.reads.push(id, query, who, at);
                    self.serve_reads(node);
                    self.after_input(node);
                    return;
                }
                // No read index in this protocol: through the log, below.
                Err(ProposeError::Unsupported) => {}
                Err(e) => {
                    self.answer(who, Reply::NotLeader(e.leader_hint()));
                    return;
                }
            }
        }
        let n = &mut self.nodes[node as usize - 1];
        let Some(r) = n.replica.as_mut() else {
            return;
        };
        match r.propose(local_now, bytes.clone()) {
            Ok(pos) => {
                if let Some(old) = n.waiting.insert(pos, bytes, (c, seq, attempt)) {
                    self.reply_to(old, consensus_core::Outcome::Superseded, pos);
                }
                if let Some(p) = self.wl().clients[c].current.as_mut() {
                    p.accepted = true;
                }
                self.after_input(node);
            }
            Err(e) => self.answer(who, Reply::NotLeader(e.leader_hint())),
        }
    }

    /// A node's answer reaches a client.
    pub(crate) fn client_reply(&mut self, c: usize, seq: u64, attempt: u32, reply: Reply) {
        let now = self.now;
        let w = self.wl();
        let Some(p) = w.clients[c].current.as_ref() else {
            return;
        };
        if p.seq != seq {
            return;
        }
        match reply {
            Reply::Done(out, at) => {
                // Any attempt's answer settles the operation: the session makes retries idempotent.
                w.clients[c].seen = w.clients[c].seen.max(at);
                let p = w.clients[c].current.take().expect("checked above");
                let app = w.app.clone();
                let outcome = if app.get().output_ok(&out) {
                    Outcome::Ok(out)
                } else {
                    self.observer.violation(format!(
                        "client {} seq {seq}: unexpected output {}",
                        c + 1,
                        app.get().describe_output(&out)
                    ));
                    Outcome::Unknown
                };
                self.wl().history.complete(p.hist, outcome, now);
                self.client_next_op(c);
            }
            _ if p.attempt != attempt => {}
            Reply::NotLeader(hint) => {
                let cur = w.clients[c].target;
                let (target, wait) = match hint {
                    Some(l) if l != cur => (l, REDIRECT_BACKOFF),
                    _ => (w.next_node(cur), NO_LEADER_BACKOFF),
                };
                w.clients[c].target = target;
                self.schedule(now + wait, Event::ClientRetry { client: c, seq });
            }
            Reply::Retry => {
                self.schedule(
                    now + REDIRECT_BACKOFF,
                    Event::ClientRetry { client: c, seq },
                );
            }
        }
    }

    pub(crate) fn client_retry(&mut self, c: usize, seq: u64) {
        if self.wl().clients[c]
            .current
            .as_ref()
            .is_some_and(|p| p.seq == seq)
        {
            self.client_send(c);
        }
    }

    /// An attempt went unanswered: try the next node.
    pub(crate) fn client_timeout(&mut self, c: usize, seq: u64, attempt: u32) {
        let w = self.wl();
        match w.clients[c].current.as_ref() {
            Some(p) if p.seq == seq && p.attempt == attempt => {}
            _ => return,
        }
        let cur = w.clients[c].target;
        w.clients[c].target = w.next_node(cur);
        self.client_send(c);
    }
}
