//! Carrying out the nemesis' schedule inside the simulator, and the chaos engine: overlapping
//! faults, and faults aimed at the moments a protocol is most fragile.

use super::{Event, Sim};
use crate::nemesis::{Cut, FaultStep, FaultWindow, Nemesis, NetFaults, Target};
use consensus_core::{NodeId, PersistOp, Ready, Replica, Role, Status, Time};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub(crate) struct NemesisState {
    nemesis: Nemesis,
    /// The fault currently in force, if any.
    active: Option<FaultStep>,
    crashed: Vec<NodeId>,
    /// The chaos engine, while a chaos step is in force.
    chaos: Option<Chaos>,
    /// Bumped at every chaos step, so ticks of an earlier one are ignored.
    chaos_gen: u64,
    /// Faults injected so far, by kind.
    pub(crate) injected: BTreeMap<&'static str, u64>,
    /// When each fault was in force (the last may still be open: `end_ms` is then NaN).
    pub(crate) windows: Vec<FaultWindow>,
}

impl NemesisState {
    pub(crate) fn new(nemesis: Nemesis) -> Self {
        NemesisState {
            nemesis,
            active: None,
            crashed: Vec::new(),
            chaos: None,
            chaos_gen: 0,
            injected: BTreeMap::new(),
            windows: Vec::new(),
        }
    }

    fn count(&mut self, kind: &'static str) {
        *self.injected.entry(kind).or_default() += 1;
    }

    /// Opens the window of a nemesis step.
    fn open_window(&mut self, kind: &'static str, now: Time) {
        self.windows.push(FaultWindow {
            kind,
            start_ms: now.as_secs_f64() * 1e3,
            end_ms: f64::NAN,
        });
    }

    /// Closes the window of the fault in force, if any.
    pub(crate) fn close_window(&mut self, now: Time) {
        if let Some(w) = self.windows.last_mut().filter(|w| w.end_ms.is_nan()) {
            w.end_ms = now.as_secs_f64() * 1e3;
        }
    }
}

/// The protocol windows the chaos engine aims at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Window {
    /// A node that would lead (a candidate voting for itself, a leader not yet established)
    /// makes its hard state durable: a Raft candidate's term and vote, a ZAB leader's
    /// acceptedEpoch (epoch offer) or currentEpoch (synchronization starts).
    Aspiring,
    /// A node installs a snapshot from its leader (InstallSnapshot, SNAP).
    SnapshotInstall,
    /// An established leader appends entries.
    LeaderAppend,
    /// A node logs a configuration entry (a membership change proposed or received): Raft
    /// acts on it at once, ZAB counts both majorities until it commits.
    Reconfig,
}

impl Window {
    fn name(self) -> &'static str {
        match self {
            Window::Aspiring => "aimed: election or sync window",
            Window::SnapshotInstall => "aimed: snapshot install",
            Window::LeaderAppend => "aimed: leader append",
            Window::Reconfig => "aimed: membership change",
        }
    }

    /// Which window, if any, this Ready of a node with this status opens.
    pub(crate) fn of<M, H>(status: &Status, ready: &Ready<M, H>) -> Option<Window> {
        let aspiring = would_lead(status);
        let mut hard = false;
        let mut snapshot = false;
        let mut append = false;
        let mut config = false;
        for op in &ready.persist {
            match op {
                PersistOp::HardState(_) => hard = true,
                PersistOp::Snapshot(_) => snapshot = true,
                PersistOp::Append(es) => {
                    append = true;
                    config |= es
                        .iter()
                        .any(|e| matches!(e.payload, consensus_core::Payload::Config(_)));
                }
                PersistOp::TruncateAfter(_) => {}
            }
        }
        if config {
            Some(Window::Reconfig)
        } else if snapshot && ready.restore.is_some() {
            Some(Window::SnapshotInstall)
        } else if aspiring && hard {
            Some(Window::Aspiring)
        } else if append && status.role == Role::Leader {
            Some(Window::LeaderAppend)
        } else {
            None
        }
    }

    /// How often a fault is aimed at an opening of this window.
    fn probability(self) -> f64 {
        match self {
            Window::Aspiring => 0.3,
            Window::SnapshotInstall => 0.3,
            // Leaders append all the time.
            Window::LeaderAppend => 0.002,
            Window::Reconfig => 0.3,
        }
    }
}

/// Overlapping faults, each with its own end.
pub(crate) struct Chaos {
    rng: ChaCha8Rng,
    /// Active cuts: the links each blocks, and when it ends.
    cuts: Vec<(Time, BTreeSet<(NodeId, NodeId)>)>,
    /// Crashed nodes and when each restarts.
    down: Vec<(NodeId, Time)>,
    /// A lossy spell and when it ends.
    lossy_until: Option<Time>,
    /// No aimed fault before this time (one at a time).
    aim_after: Time,
}

impl<R: Replica> Sim<R> {
    fn resolve(&self, t: Target) -> NodeId {
        let n = self.nodes.len();
        match t {
            Target::Leader => self.leader().unwrap_or(1),
            Target::Index(i) => (i % n) as NodeId + 1,
        }
    }

    /// Faults injected so far, by kind.
    pub(crate) fn faults_injected(&self) -> BTreeMap<&'static str, u64> {
        self.nemesis
            .as_ref()
            .map_or_else(|| self.faults_done.clone(), |n| n.injected.clone())
    }

    /// When each fault was in force.
    pub(crate) fn fault_windows(&self) -> Vec<FaultWindow> {
        self.nemesis
            .as_ref()
            .map_or_else(|| self.windows_done.clone(), |n| n.windows.clone())
    }

    /// Injects the next fault, or repairs the current one, and schedules the next step.
    pub(crate) fn nemesis_step(&mut self) {
        let Some(mut st) = self.nemesis.take() else {
            return; // stopped
        };
        let now = self.now;
        if st.active.take().is_some() {
            // Repair, then stay healthy for a while.
            st.close_window(now);
            st.chaos = None;
            self.heal();
            self.set_unreliable(NetFaults::NONE);
            for id in std::mem::take(&mut st.crashed) {
                self.restart(id);
            }
            for id in 1..=self.nodes.len() as NodeId {
                self.restart(id); // nodes the chaos engine left down
            }
            let quiet = st.nemesis.quiet();
            self.nemesis = Some(st);
            self.schedule(now + quiet, Event::Nemesis);
            return;
        }
        let Some((step, hold)) = st.nemesis.next_fault() else {
            self.nemesis = Some(st);
            return;
        };
        match &step {
            FaultStep::Crash(targets) => {
                st.count("crash");
                st.open_window("crash", now);
                for &t in targets {
                    let id = self.resolve(t);
                    if !st.crashed.contains(&id) {
                        self.crash(id);
                        st.crashed.push(id);
                    }
                }
            }
            FaultStep::Partition(cut) => {
                st.count("partition");
                st.open_window("partition", now);
                self.apply_cut(*cut)
            }
            FaultStep::Unreliable(f) => {
                st.count("loss");
                st.open_window("loss", now);
                self.set_unreliable(*f)
            }
            FaultStep::Chaos => {
                st.chaos_gen += 1;
                st.chaos = Some(Chaos {
                    rng: ChaCha8Rng::seed_from_u64(self.rng.random()),
                    cuts: Vec::new(),
                    down: Vec::new(),
                    lossy_until: None,
                    aim_after: now,
                });
                st.open_window("chaos", now);
                let generation = st.chaos_gen;
                self.schedule(now, Event::Chaos { generation });
            }
        }
        st.active = Some(step);
        self.nemesis = Some(st);
        self.schedule(now + hold, Event::Nemesis);
    }

    fn apply_cut(&mut self, cut: Cut) {
        let n = self.nodes.len() as NodeId;
        let all: Vec<NodeId> = (1..=n).collect();
        match cut {
            Cut::Isolate(t) => {
                let id = self.resolve(t);
                self.disconnect(id);
            }
            Cut::Split(t, seed) => {
                let id = self.resolve(t);
                // A minority containing the target, the rest chosen from the step's seed.
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let minority_size = rng.random_range(1..=((n as usize - 1) / 2).max(1));
                let mut others: Vec<NodeId> = all.iter().copied().filter(|&x| x != id).collect();
                let mut minority = vec![id];
                while minority.len() < minority_size && !others.is_empty() {
                    let i = rng.random_range(0..others.len());
                    minority.push(others.remove(i));
                }
                self.partition(&[minority, others]);
            }
            Cut::DeafOneWay(t) => {
                let id = self.resolve(t);
                for &p in &all {
                    if p != id {
                        self.block_one_way(p, id);
                    }
                }
            }
            Cut::MuteOneWay(t) => {
                let id = self.resolve(t);
                for &p in &all {
                    if p != id {
                        self.block_one_way(id, p);
                    }
                }
            }
        }
    }

    /// The links blocked now: the union of every active chaos cut.
    fn chaos_links(&mut self) {
        let Some(ch) = self.nemesis.as_ref().and_then(|n| n.chaos.as_ref()) else {
            return;
        };
        let blocked: BTreeSet<(NodeId, NodeId)> = ch
            .cuts
            .iter()
            .flat_map(|(_, l)| l.iter().copied())
            .collect();
        if blocked != self.blocked {
            self.blocked = blocked;
            let groups = self.blocked.len();
            self.trace_event(|t| super::TraceEvent::Note {
                t,
                text: format!("chaos: {groups} links cut"),
            });
        }
    }

    /// One beat of the chaos engine: end the faults that are due, maybe start one, and come
    /// back in 20 to 200 ms.
    pub(crate) fn chaos_step(&mut self, generation: u64) {
        let Some(mut st) = self.nemesis.take() else {
            return;
        };
        let Some(mut ch) = st.chaos.take().filter(|_| st.chaos_gen == generation) else {
            self.nemesis = Some(st);
            return;
        };
        let now = self.now;
        let n = self.nodes.len();
        ch.cuts.retain(|(end, _)| *end > now);
        let (due, down): (Vec<_>, Vec<_>) = ch.down.iter().partition(|(_, at)| *at <= now);
        ch.down = down;
        for (id, _) in due {
            self.restart(id);
        }
        if ch.lossy_until.is_some_and(|t| t <= now) {
            ch.lossy_until = None;
            self.set_unreliable(NetFaults::NONE);
        }
        let hold = Duration::from_millis(ch.rng.random_range(1..=300));
        let roll = ch.rng.random_range(0..100u32);
        let max_down = (n - 1) / 2;
        match roll {
            // A partition into one to three random groups (one group: nodes left out of it
            // are isolated).
            0..=24 => {
                let groups = ch.rng.random_range(1..=3usize);
                let mut parts: Vec<Vec<NodeId>> = vec![Vec::new(); groups + 1];
                for id in 1..=n as NodeId {
                    let g = ch.rng.random_range(0..parts.len());
                    parts[g].push(id);
                }
                parts.pop(); // the last bucket: isolated nodes
                let links = links_between(n, &parts);
                ch.cuts.push((now + hold, links));
                st.count("chaos partition");
            }
            // One-way cuts: a node that cannot hear, or cannot be heard by, some peers.
            25..=39 => {
                let id = ch.rng.random_range(1..=n as NodeId);
                let deaf = ch.rng.random_bool(0.5);
                let links = (1..=n as NodeId)
                    .filter(|&p| p != id && ch.rng.random_bool(0.6))
                    .map(|p| if deaf { (p, id) } else { (id, p) })
                    .collect();
                ch.cuts.push((now + hold, links));
                st.count("chaos one-way cut");
            }
            // A crash, of the leader half the time, within a minority at most.
            40..=54 if ch.down.len() < max_down => {
                let id = if ch.rng.random_bool(0.5) {
                    self.aspiring_or_leader(&mut ch.rng)
                } else {
                    ch.rng.random_range(1..=n as NodeId)
                };
                if !self.is_crashed(id) {
                    self.crash(id);
                    let back = Duration::from_millis(ch.rng.random_range(1..=500));
                    ch.down.push((id, now + back));
                    st.count("chaos crash");
                }
            }
            // Whole-cluster power loss: every node loses what it had not synced.
            55..=57 => {
                let back = Duration::from_millis(ch.rng.random_range(5..=300));
                for id in 1..=n as NodeId {
                    if !self.is_crashed(id) {
                        self.crash(id);
                    }
                    ch.down.retain(|(d, _)| *d != id);
                    ch.down.push((id, now + back));
                }
                st.count("power loss");
            }
            // A lossy spell.
            58..=64 if ch.lossy_until.is_none() => {
                self.set_unreliable(NetFaults {
                    drop: 0.1,
                    duplicate: 0.05,
                    reorder: 0.1,
                    spike: Duration::from_millis(50),
                });
                ch.lossy_until = Some(now + hold);
                st.count("chaos loss");
            }
            // An operator moves the leader: a leadership transfer to a node derived from the
            // draws above (no draw of its own, so a protocol without transfers runs exactly
            // as before).
            65..=69 => {
                if let Some(leader) = self.leader() {
                    let to = (hold.as_millis() as u64 % n as u64) as NodeId + 1;
                    if to != leader && self.transfer_leadership(leader, to).is_ok() {
                        st.count("leadership transfer");
                    }
                }
            }
            // An operator changes the membership, while the other faults go on.
            70..=79 => {
                if let Some(kind) = self.reconfigure(&mut ch.rng) {
                    st.count(kind);
                }
            }
            _ => {}
        }
        let next = now + Duration::from_millis(ch.rng.random_range(20..=200));
        st.chaos = Some(ch);
        self.nemesis = Some(st);
        self.chaos_links();
        self.schedule(next, Event::Chaos { generation });
    }

    /// Asks the leader for a membership change drawn from `rng`, keeping three to all nodes
    /// as voters: remove a voter or the leader itself, add a node as a learner, promote a
    /// learner, or replace a voter (the leader, half the time) by a learner in one change.
    /// Returns the kind of change the leader accepted.
    fn reconfigure(&mut self, rng: &mut ChaCha8Rng) -> Option<&'static str> {
        use consensus_core::ConfChange;
        let leader = self.leader()?;
        let m = self.membership(leader)?;
        let n = self.nodes.len() as NodeId;
        let outside: Vec<NodeId> = (1..=n).filter(|&id| !m.contains(id)).collect();
        let pick = |rng: &mut ChaCha8Rng, from: &[NodeId]| from[rng.random_range(0..from.len())];
        let others: Vec<NodeId> = m.voters.iter().copied().filter(|&v| v != leader).collect();
        let victim = |rng: &mut ChaCha8Rng| {
            if rng.random_bool(0.5) || others.is_empty() {
                leader
            } else {
                pick(rng, &others)
            }
        };
        let (kind, changes) = match rng.random_range(0..4u32) {
            0 if m.voters.len() > 3 => {
                let id = victim(rng);
                let kind = if id == leader {
                    "reconfig: remove the leader"
                } else {
                    "reconfig: remove a voter"
                };
                (kind, vec![ConfChange::Remove { id }])
            }
            1 if !outside.is_empty() => {
                let id = pick(rng, &outside);
                let addr = String::new();
                (
                    "reconfig: add a learner",
                    vec![ConfChange::AddLearner { id, addr }],
                )
            }
            2 if !m.learners.is_empty() => {
                let id = pick(rng, &m.learners);
                let addr = String::new();
                (
                    "reconfig: promote a learner",
                    vec![ConfChange::AddVoter { id, addr }],
                )
            }
            3 if !m.learners.is_empty() => {
                let id = pick(rng, &m.learners);
                let gone = victim(rng);
                let addr = String::new();
                (
                    "reconfig: replace a voter",
                    vec![
                        ConfChange::AddVoter { id, addr },
                        ConfChange::Remove { id: gone },
                    ],
                )
            }
            _ => return None,
        };
        self.change_membership(leader, &changes).ok().map(|_| kind)
    }

    /// The established leader, or a node that would lead, or any node.
    fn aspiring_or_leader(&self, rng: &mut ChaCha8Rng) -> NodeId {
        let aspiring: Vec<NodeId> = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref().map(|r| r.status()))
            .filter(|s| s.role == Role::Leader || would_lead(s))
            .map(|s| s.id)
            .collect();
        match self.leader() {
            Some(l) if rng.random_bool(0.5) || aspiring.is_empty() => l,
            _ if !aspiring.is_empty() => aspiring[rng.random_range(0..aspiring.len())],
            _ => rng.random_range(1..=self.nodes.len() as NodeId),
        }
    }

    /// A node's Ready opened a protocol window: maybe aim a fault at it.
    pub(crate) fn chaos_window(&mut self, id: NodeId, window: Window) {
        let now = self.now;
        let Some(st) = self.nemesis.as_mut() else {
            return;
        };
        let generation = st.chaos_gen;
        let Some(ch) = st.chaos.as_mut() else {
            return;
        };
        if now < ch.aim_after || !ch.rng.random_bool(window.probability()) {
            return;
        }
        ch.aim_after = now + Duration::from_millis(20);
        // Right away (before the fsync completes) or a little later (mid-exchange).
        let delay = if ch.rng.random_bool(0.5) {
            Duration::ZERO
        } else {
            Duration::from_micros(ch.rng.random_range(100..=5_000))
        };
        let inc = self.nodes[id as usize - 1].inc;
        self.schedule(
            now + delay,
            Event::ChaosAim {
                generation,
                node: id,
                inc,
                window,
            },
        );
    }

    /// Carries out a fault aimed at node `id`'s window: crash it, or cut it off from some
    /// peers (in one direction or both) for a while.
    pub(crate) fn chaos_aim(&mut self, generation: u64, id: NodeId, inc: u64, window: Window) {
        let now = self.now;
        let n = self.nodes.len();
        if self.nodes[id as usize - 1].inc != inc || self.is_crashed(id) {
            return;
        }
        let Some(mut st) = self.nemesis.take() else {
            return;
        };
        let Some(mut ch) = st.chaos.take().filter(|_| st.chaos_gen == generation) else {
            self.nemesis = Some(st);
            return;
        };
        let crash = window == Window::SnapshotInstall || ch.rng.random_bool(0.4);
        if crash && ch.down.len() < (n - 1) / 2 {
            self.crash(id);
            let back = Duration::from_millis(ch.rng.random_range(1..=300));
            ch.down.push((id, now + back));
        } else {
            let hold = Duration::from_millis(ch.rng.random_range(1..=300));
            let both = ch.rng.random_bool(0.5);
            let mut links = BTreeSet::new();
            for p in 1..=n as NodeId {
                if p != id && ch.rng.random_bool(0.5) {
                    links.insert((id, p));
                    if both {
                        links.insert((p, id));
                    }
                }
            }
            ch.cuts.push((now + hold, links));
        }
        st.count(window.name());
        st.chaos = Some(ch);
        self.nemesis = Some(st);
        self.chaos_links();
    }
}

/// A node that would lead but does not yet: a candidate voting for itself, a leader not yet
/// established (ZAB's LEADING before its NEWLEADER quorum reports itself so).
fn would_lead(s: &Status) -> bool {
    s.role == Role::Candidate && s.vote == Some(s.id)
}

/// Every directed link between nodes of different groups, and every link of a node in none.
pub(crate) fn links_between(n: usize, groups: &[Vec<NodeId>]) -> BTreeSet<(NodeId, NodeId)> {
    let group_of = |id: NodeId| groups.iter().position(|g| g.contains(&id));
    let mut links = BTreeSet::new();
    for a in 1..=n as NodeId {
        for b in 1..=n as NodeId {
            if a != b && (group_of(a).is_none() || group_of(a) != group_of(b)) {
                links.insert((a, b));
            }
        }
    }
    links
}
