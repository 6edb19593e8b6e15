//! Carrying out the nemesis' schedule inside the simulator.

use super::{Event, Sim};
use crate::nemesis::{Cut, FaultStep, Nemesis, NetFaults, Target};
use consensus_core::{NodeId, Replica};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub(crate) struct NemesisState {
    nemesis: Nemesis,
    /// The fault currently in force, if any.
    active: Option<FaultStep>,
    crashed: Vec<NodeId>,
}

impl NemesisState {
    pub(crate) fn new(nemesis: Nemesis) -> Self {
        NemesisState {
            nemesis,
            active: None,
            crashed: Vec::new(),
        }
    }
}

impl<R: Replica> Sim<R> {
    fn resolve(&self, t: Target) -> NodeId {
        let n = self.nodes.len();
        match t {
            Target::Leader => self.leader().unwrap_or(1),
            Target::Index(i) => (i % n) as NodeId + 1,
        }
    }

    /// Injects the next fault, or repairs the current one, and schedules the next step.
    pub(crate) fn nemesis_step(&mut self) {
        let Some(mut st) = self.nemesis.take() else {
            return; // stopped
        };
        let now = self.now;
        if st.active.take().is_some() {
            // Repair, then stay healthy for a while.
            self.heal();
            self.set_unreliable(NetFaults::NONE);
            for id in std::mem::take(&mut st.crashed) {
                self.restart(id);
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
                for &t in targets {
                    let id = self.resolve(t);
                    if !st.crashed.contains(&id) {
                        self.crash(id);
                        st.crashed.push(id);
                    }
                }
            }
            FaultStep::Partition(cut) => self.apply_cut(*cut),
            FaultStep::Unreliable(f) => self.set_unreliable(*f),
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
}
