//! Tests of the simulator's own guarantees, with scripted cores instead of a real protocol.

use super::*;
use consensus_core::{PersistOp, Ready, Role};

/// A scripted core: every input becomes one Ready, with or without something to persist,
/// carrying one message to the other node; received messages are recorded in order.
struct Scripted {
    id: NodeId,
    received: Vec<String>,
    next: Option<(bool, String)>,
    appended: u64,
}

impl Replica for Scripted {
    type Message = String;
    type HardState = u64;
    fn id(&self) -> NodeId {
        self.id
    }
    fn tick(&mut self, _now: Time) {}
    fn next_deadline(&self) -> Time {
        Duration::from_secs(3600)
    }
    fn receive(&mut self, _now: Time, _from: NodeId, msg: String) {
        // Node 1 answers "hello" with a reply that persists nothing.
        if msg == "hello" {
            self.next = Some((false, "B".into()));
        }
        self.received.push(msg);
    }
    fn propose(&mut self, _now: Time, command: Command) -> Result<Position, ProposeError> {
        let text = String::from_utf8_lossy(&command).to_string();
        // "A" persists before it is sent; anything else goes straight out.
        self.next = Some((text == "A", text));
        Ok(Position::new(1, 1))
    }
    fn has_ready(&self) -> bool {
        self.next.is_some()
    }
    fn take_ready(&mut self) -> Ready<String, u64> {
        let Some((persist, msg)) = self.next.take() else {
            return Ready::default();
        };
        let mut r = Ready::default();
        if persist {
            self.appended += 1;
            r.persist
                .push(PersistOp::Append(vec![Entry::noop(Position::new(
                    1,
                    self.appended,
                ))]));
        }
        r.messages.push(Envelope {
            to: 3 - self.id,
            msg,
        });
        r
    }
    fn compact(&mut self, _now: Time, _snapshot: consensus_core::Snapshot) {}
    fn persisted(&mut self, _now: Time, _through: Position) {}
    fn status(&self) -> Status {
        Status {
            id: self.id,
            role: Role::Follower,
            role_name: "Scripted",
            era: 0,
            leader: None,
            vote: None,
            commit: Position::ZERO,
            last: Position::ZERO,
        }
    }
}

fn scripted_sim() -> Sim<Scripted> {
    scripted_sim_with(NetConfig {
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
        semantics: Semantics::Datagram,
    })
}

fn scripted_sim_with(net: NetConfig) -> Sim<Scripted> {
    let cfg = SimConfig {
        nodes: 2,
        net,
        fsync_latency: Duration::from_millis(1),
        ..SimConfig::default()
    };
    Sim::new(
        cfg,
        Box::new(|id, _, _| Scripted {
            id,
            received: Vec::new(),
            next: None,
            appended: 0,
        }),
    )
}

fn received(sim: &Sim<Scripted>, id: NodeId) -> Vec<String> {
    sim.node(id).replica.as_ref().unwrap().received.clone()
}

#[test]
fn readies_of_one_node_take_effect_in_order_even_at_the_same_instant() {
    let mut sim = scripted_sim();
    // t=0: node 2 sends "hello" (arrives at node 1 at t=1ms, queued first).
    sim.propose(2, Command::from_static(b"hello")).unwrap();
    // t=0: node 1's "A" must wait for its fsync, which completes at t=1ms, queued second.
    sim.propose(1, Command::from_static(b"A")).unwrap();
    // At t=1ms node 1 handles "hello" before "A" is released and answers "B", which has
    // nothing to persist. "B" must still leave after "A".
    sim.run_for(Duration::from_millis(10));
    assert_eq!(received(&sim, 1), vec!["hello"]);
    assert_eq!(received(&sim, 2), vec!["A", "B"]);
}

#[test]
fn a_crash_loses_unsynced_writes_and_their_messages() {
    let mut sim = scripted_sim();
    sim.propose(1, Command::from_static(b"A")).unwrap();
    sim.run_for(Duration::from_micros(500));
    sim.crash(1);
    sim.run_for(Duration::from_millis(10));
    assert!(
        received(&sim, 2).is_empty(),
        "A was never durable, so never sent"
    );
    // Power failed mid-fsync: the disk kept a prefix of the unsynced writes (here none or
    // "A"), never anything else.
    assert!(sim.durable(1).entries.len() <= 1);
    sim.restart(1);
    sim.propose(1, Command::from_static(b"B")).unwrap();
    sim.run_for(Duration::from_millis(10));
    assert_eq!(received(&sim, 2), vec!["B"]);
}

#[test]
fn writes_during_an_fsync_share_the_next_one() {
    let mut sim = scripted_sim();
    for _ in 0..5 {
        sim.propose(1, Command::from_static(b"A")).unwrap();
        sim.run_for(Duration::from_micros(100));
    }
    sim.run_for(Duration::from_millis(10));
    // The first write starts an fsync; the four during it are synced together by the next.
    assert_eq!(sim.stats().fsyncs, 2);
    assert_eq!(sim.durable(1).entries.len(), 5);
    assert_eq!(received(&sim, 2).len(), 5);
}

/// Sends 200 numbered messages from node 1 to node 2 under heavy loss faults.
fn numbered_under_faults(semantics: Semantics) -> Vec<String> {
    let mut sim = scripted_sim_with(NetConfig {
        min_delay: Duration::from_micros(500),
        max_delay: Duration::from_millis(5),
        semantics,
    });
    sim.set_unreliable(NetFaults {
        drop: 0.3,
        duplicate: 0.3,
        reorder: 0.5,
        spike: Duration::from_millis(50),
    });
    for i in 0..200 {
        sim.propose(1, Command::from(format!("m{i}"))).unwrap();
        sim.run_for(Duration::from_micros(100));
    }
    sim.run_for(Duration::from_secs(30));
    received(&sim, 2)
}

#[test]
fn stream_links_deliver_every_message_once_and_in_order() {
    let expected: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    assert_eq!(numbered_under_faults(Semantics::Stream), expected);
}

#[test]
fn datagram_links_lose_duplicate_and_reorder_under_the_same_faults() {
    let got = numbered_under_faults(Semantics::Datagram);
    let expected: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    assert_ne!(got, expected);
    let distinct: std::collections::BTreeSet<&String> = got.iter().collect();
    assert!(distinct.len() < 200, "some were lost");
    assert!(got.len() > distinct.len(), "some came twice");
}

#[test]
fn a_partition_breaks_a_stream_and_loses_what_was_in_flight() {
    let mut sim = scripted_sim_with(NetConfig {
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(5),
        semantics: Semantics::Stream,
    });
    sim.propose(1, Command::from_static(b"before")).unwrap();
    sim.run_for(Duration::from_millis(1));
    sim.disconnect(2);
    sim.run_for(Duration::from_millis(10));
    sim.heal();
    sim.propose(1, Command::from_static(b"after")).unwrap();
    sim.run_for(Duration::from_millis(10));
    assert_eq!(received(&sim, 2), vec!["after"]);
}

/// A core that commits another client's command at the position it gave a proposal: what a
/// broken (or third) protocol could do when an entry is overwritten.
struct Impostor {
    id: NodeId,
    next: u64,
    commit: Option<Entry>,
}

impl Replica for Impostor {
    type Message = String;
    type HardState = u64;
    fn id(&self) -> NodeId {
        self.id
    }
    fn tick(&mut self, _now: Time) {}
    fn next_deadline(&self) -> Time {
        Duration::from_secs(3600)
    }
    fn receive(&mut self, _now: Time, _from: NodeId, _msg: String) {}
    fn propose(&mut self, _now: Time, _command: Command) -> Result<Position, ProposeError> {
        self.next += 1;
        let pos = Position::new(1, self.next);
        let other = consensus_core::kv::KvCommand {
            client: 99,
            seq: self.next,
            op: consensus_core::kv::KvOp::Put {
                key: "x".into(),
                value: "impostor".into(),
            },
        };
        self.commit = Some(Entry::command(pos, other.encode()));
        Ok(pos)
    }
    fn has_ready(&self) -> bool {
        self.commit.is_some()
    }
    fn take_ready(&mut self) -> Ready<String, u64> {
        Ready {
            committed: self.commit.take().into_iter().collect(),
            ..Ready::default()
        }
    }
    fn compact(&mut self, _now: Time, _snapshot: consensus_core::Snapshot) {}
    fn persisted(&mut self, _now: Time, _through: Position) {}
    fn status(&self) -> Status {
        Status {
            id: self.id,
            role: Role::Leader,
            role_name: "Impostor",
            era: 1,
            leader: Some(self.id),
            vote: Some(self.id),
            commit: Position::new(1, self.next),
            last: Position::new(1, self.next),
        }
    }
}

#[test]
fn a_client_is_answered_only_for_its_own_command() {
    // Issue 10, bug 7: the client was told `Done` with the output of whatever was applied at
    // its position.
    let mut sim = Sim::new(
        SimConfig {
            nodes: 1,
            ..SimConfig::default()
        },
        Box::new(|id, _, _| Impostor {
            id,
            next: 0,
            commit: None,
        }),
    );
    sim.start_workload(WorkloadConfig {
        clients: 1,
        ops: 1,
        read_ratio: 0.0,
        ..WorkloadConfig::default()
    });
    sim.run_for(Duration::from_secs(10));
    let h = &sim.workload.as_ref().unwrap().history;
    assert_eq!(h.ops.len(), 1);
    assert_eq!(
        h.ops[0].outcome,
        crate::history::Outcome::Unknown,
        "never acknowledged: its command was never applied"
    );
}

#[test]
fn events_come_out_in_time_then_schedule_order_whichever_queue_holds_them() {
    let mut sim = scripted_sim();
    let base = sim.now();
    let ms = |n: u64| base + Duration::from_millis(n);
    let timeout = |seq| Event::ClientTimeout {
        client: 0,
        seq,
        attempt: 1,
    };
    // Timeouts in order go to the FIFO; one earlier than the FIFO's last goes to the heap.
    sim.schedule(ms(50), timeout(1));
    sim.schedule(ms(70), timeout(2));
    sim.schedule(ms(60), timeout(3));
    sim.schedule(ms(60), Event::Nemesis);
    sim.schedule(ms(50), Event::Chaos { generation: 9 });
    let mut order = Vec::new();
    while let Some((t, e)) = sim.pop_event() {
        let what = match e {
            Event::ClientTimeout { seq, .. } => format!("timeout {seq}"),
            Event::Nemesis => "nemesis".into(),
            Event::Chaos { .. } => "chaos".into(),
            _ => continue,
        };
        order.push(((t - base).as_millis(), what));
    }
    let expected: Vec<(u128, String)> = [
        (50, "timeout 1"),
        (50, "chaos"),
        (60, "timeout 3"),
        (60, "nemesis"),
        (70, "timeout 2"),
    ]
    .into_iter()
    .map(|(t, w)| (t, w.to_string()))
    .collect();
    assert_eq!(order, expected);
}
