//! Fault schedules: what goes wrong, when, drawn from the run's seed.
//!
//! The schedule is a script ("crash the leader and one other node for 800 ms"), identical for
//! every protocol under the same seed; who "the leader" is gets resolved when the step runs.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::time::Duration;

/// Which faults a run injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Faults {
    /// A healthy cluster.
    None,
    /// Crash nodes (the leader among them) and restart them later.
    Crash,
    /// Isolate the leader, split minority from majority, cut links one way; then heal.
    Partition,
    /// Drop, duplicate and reorder messages, with delay spikes.
    Loss,
    /// Crash, partition and loss one at a time, with bursts of chaos among them.
    Mixed,
    /// Overlapping faults: short multi-group partitions, one-way cuts, crashes of up to a
    /// minority, whole-cluster power loss, leadership transfers, membership changes (remove a
    /// voter or the leader, add a learner, promote one, replace a voter), and faults aimed at
    /// protocol windows (an election, a new leader's synchronization, a snapshot install, a
    /// leader's fresh append).
    Chaos,
}

impl Faults {
    /// The lowercase name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Faults::None => "none",
            Faults::Crash => "crash",
            Faults::Partition => "partition",
            Faults::Loss => "loss",
            Faults::Mixed => "mixed",
            Faults::Chaos => "chaos",
        }
    }
}

/// A node picked by a fault step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Whoever leads when the step runs (a random node if none does).
    Leader,
    /// The node at this index among the nodes sorted by id, modulo the cluster size.
    Index(usize),
}

/// How a partition step cuts the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The target alone on one side.
    Isolate(Target),
    /// A random minority (containing the target) against the rest.
    Split(Target, u64),
    /// The target can send but hears nobody.
    DeafOneWay(Target),
    /// The target hears everybody but its messages are lost.
    MuteOneWay(Target),
}

/// Message-level trouble for the loss fault.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct NetFaults {
    /// Probability that a message is dropped.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Probability that a message is delayed past later ones.
    pub reorder: f64,
    /// Extra delay a reordered message may get.
    pub spike: Duration,
}

impl NetFaults {
    /// No message-level faults.
    pub const NONE: NetFaults = NetFaults {
        drop: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        spike: Duration::ZERO,
    };
}

/// One fault to inject.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultStep {
    /// Crash these nodes.
    Crash(Vec<Target>),
    /// Cut the network.
    Partition(Cut),
    /// Make the network lossy.
    Unreliable(NetFaults),
    /// Let the chaos engine inject overlapping faults for the step's duration.
    Chaos,
}

/// When one fault of the nemesis was in force, in virtual ms from the start of the run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FaultWindow {
    /// The fault's kind: crash, partition, loss or chaos.
    pub kind: &'static str,
    /// When it was injected.
    pub start_ms: f64,
    /// When it was repaired (or the nemesis stopped).
    pub end_ms: f64,
}

/// Draws the next fault and how long it lasts, then how long to stay healthy.
pub struct Nemesis {
    kind: Faults,
    rng: ChaCha8Rng,
    nodes: usize,
}

impl Nemesis {
    /// The nemesis of a run.
    pub fn new(kind: Faults, seed: u64, nodes: usize) -> Self {
        Nemesis {
            kind,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6E65_6D65_7369_7321),
            nodes,
        }
    }

    /// The fault kind.
    pub fn kind(&self) -> Faults {
        self.kind
    }

    /// Time to stay healthy before the next fault.
    pub fn quiet(&mut self) -> Duration {
        let ms = self.rng.random_range(300..1500);
        if self.kind == Faults::Chaos {
            // Short calms between long storms: enough to make progress, not to rest.
            return Duration::from_millis(ms / 6);
        }
        Duration::from_millis(ms)
    }

    /// The next fault and how long to hold it, or `None` for [`Faults::None`].
    pub fn next_fault(&mut self) -> Option<(FaultStep, Duration)> {
        let kind = match self.kind {
            Faults::None => return None,
            Faults::Mixed => match self.rng.random_range(0..4) {
                0 => Faults::Crash,
                1 => Faults::Partition,
                2 => Faults::Loss,
                _ => Faults::Chaos,
            },
            k => k,
        };
        let mut hold = Duration::from_millis(self.rng.random_range(300..2000));
        if self.kind == Faults::Chaos {
            hold *= 3;
        }
        // Draw the same number of values whatever the kind, so schedules stay aligned.
        let leader_first = self.rng.random_bool(0.5);
        let a = self.rng.random_range(0..self.nodes.max(1));
        let b = self.rng.random_range(0..self.nodes.max(1));
        let variant = self.rng.random_range(0..4u32);
        let seed = self.rng.random::<u64>();
        let first = if leader_first {
            Target::Leader
        } else {
            Target::Index(a)
        };
        let step = match kind {
            Faults::Crash => {
                let max_down = (self.nodes.saturating_sub(1)) / 2;
                let mut targets = vec![first];
                if variant == 0 && max_down >= 2 {
                    targets.push(Target::Index(b));
                }
                FaultStep::Crash(targets)
            }
            Faults::Partition => FaultStep::Partition(match variant {
                0 => Cut::Isolate(first),
                1 => Cut::Split(first, seed),
                2 => Cut::DeafOneWay(first),
                _ => Cut::MuteOneWay(first),
            }),
            Faults::Chaos => FaultStep::Chaos,
            _ => FaultStep::Unreliable(NetFaults {
                drop: [0.02, 0.05, 0.1, 0.2][variant as usize],
                duplicate: 0.05,
                reorder: 0.1,
                spike: Duration::from_millis(50 + (seed % 150)),
            }),
        };
        Some((step, hold))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule() {
        let mut a = Nemesis::new(Faults::Mixed, 5, 5);
        let mut b = Nemesis::new(Faults::Mixed, 5, 5);
        for _ in 0..50 {
            assert_eq!(a.next_fault(), b.next_fault());
            assert_eq!(a.quiet(), b.quiet());
        }
    }

    #[test]
    fn crash_never_takes_down_more_than_a_minority() {
        let mut n = Nemesis::new(Faults::Crash, 1, 3);
        for _ in 0..100 {
            match n.next_fault() {
                Some((FaultStep::Crash(t), _)) => assert_eq!(t.len(), 1),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn no_faults_means_no_steps() {
        assert_eq!(Nemesis::new(Faults::None, 1, 5).next_fault(), None);
    }
}
