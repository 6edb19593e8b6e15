//! What a run measured: leadership over time (with the one-leader-per-era check on every
//! event) and the latency of client operations.

use crate::history::{History, Outcome};
use consensus_core::{NodeId, Position, Role, Status, Time};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// Watches every node's role and era as the simulation runs.
#[derive(Clone, Debug)]
pub struct Observer {
    roles: Vec<Option<(Role, u64)>>,
    /// Each live node's last reported commit position (None while down).
    commits: Vec<Option<Position>>,
    leaders_by_era: BTreeMap<u64, NodeId>,
    violations: Vec<String>,
    elections: u64,
    leader_changes: u64,
    last_leader: Option<NodeId>,
    leaders_now: usize,
    leaderless_since: Option<Time>,
    election_times: Vec<Duration>,
    leaderless_total: Duration,
}

impl Observer {
    /// An observer for `nodes` nodes, starting without a leader at time zero.
    pub fn new(nodes: usize) -> Self {
        Observer {
            roles: vec![None; nodes],
            commits: vec![None; nodes],
            leaders_by_era: BTreeMap::new(),
            violations: Vec::new(),
            elections: 0,
            leader_changes: 0,
            last_leader: None,
            leaders_now: 0,
            leaderless_since: Some(Duration::ZERO),
            election_times: Vec::new(),
            leaderless_total: Duration::ZERO,
        }
    }

    /// Records node `id`'s status at `now` (None: the node is down).
    pub fn observe(&mut self, now: Time, id: NodeId, status: Option<&Status>) {
        self.check_commit(id, status);
        let new = status.map(|s| (s.role, s.era));
        let slot = &mut self.roles[id as usize - 1];
        if *slot == new {
            return;
        }
        let old = std::mem::replace(slot, new);
        let was_leader = matches!(old, Some((Role::Leader, _)));
        let is_leader = matches!(new, Some((Role::Leader, _)));
        if let Some((Role::Leader, era)) = new {
            match self.leaders_by_era.get(&era) {
                Some(&other) if other != id => self.violation(format!(
                    "election safety: nodes {other} and {id} both led era {era}"
                )),
                Some(_) => {}
                None => {
                    self.leaders_by_era.insert(era, id);
                    self.elections += 1;
                    if self.last_leader.is_some_and(|l| l != id) {
                        self.leader_changes += 1;
                    }
                    self.last_leader = Some(id);
                }
            }
        }
        match (was_leader, is_leader) {
            (false, true) => {
                self.leaders_now += 1;
                if self.leaders_now == 1 {
                    if let Some(since) = self.leaderless_since.take() {
                        let d = now.saturating_sub(since);
                        self.leaderless_total += d;
                        self.election_times.push(d);
                    }
                }
            }
            (true, false) => {
                self.leaders_now -= 1;
                if self.leaders_now == 0 {
                    self.leaderless_since = Some(now);
                }
            }
            _ => {}
        }
    }

    /// The commit point never passes the node's own log and never moves back while the node
    /// stays up (a restart may start lower: only the snapshot is known to be committed).
    fn check_commit(&mut self, id: NodeId, status: Option<&Status>) {
        let slot = &mut self.commits[id as usize - 1];
        let Some(s) = status else {
            *slot = None;
            return;
        };
        let before = slot.replace(s.commit);
        if s.commit > s.last {
            let what = format!(
                "node {id}: commit point {} is past its last log position {}",
                s.commit, s.last
            );
            self.violation(what);
        }
        if let Some(b) = before.filter(|&b| s.commit < b) {
            let what = format!(
                "node {id}: commit point moved back from {b} to {}",
                s.commit
            );
            self.violation(what);
        }
    }

    /// Node `id` replaces its state machine with a snapshot: its commit point may restart
    /// from the snapshot's.
    pub fn state_reloaded(&mut self, id: NodeId) {
        self.commits[id as usize - 1] = None;
    }

    /// Most violations kept: one broken invariant can repeat at every event.
    const MAX_VIOLATIONS: usize = 20;

    /// Records a broken invariant.
    pub fn violation(&mut self, what: String) {
        if self.violations.len() < Self::MAX_VIOLATIONS {
            self.violations.push(what);
        }
    }

    /// Every broken invariant seen so far.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Number of (era, leader) pairs seen: one per successful election.
    pub fn elections(&self) -> u64 {
        self.elections
    }

    /// How often leadership moved to a different node.
    pub fn leader_changes(&self) -> u64 {
        self.leader_changes
    }

    /// Lengths of the intervals without any leader that ended with an election.
    pub fn election_times(&self) -> &[Duration] {
        &self.election_times
    }

    /// Total time without any live leader, up to `now`.
    pub fn leaderless_time(&self, now: Time) -> Duration {
        self.leaderless_total
            + self
                .leaderless_since
                .map_or(Duration::ZERO, |s| now.saturating_sub(s))
    }
}

/// Latency percentiles of acknowledged operations, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of invoke-to-answer times of the ok operations in `history`.
    pub fn of(history: &History) -> Latency {
        Latency::of_some(history, |_| true)
    }

    /// Invoke-to-answer latency of the acknowledged operations `which` picks.
    pub fn of_some(
        history: &History,
        which: impl Fn(&crate::history::OpRecord) -> bool,
    ) -> Latency {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
            .expect("static histogram bounds are valid");
        for r in history.ops.iter().filter(|r| which(r)) {
            if let (Outcome::Ok(_), Some(done)) = (&r.outcome, r.complete) {
                let us = done.saturating_sub(r.invoke).as_micros() as u64;
                h.saturating_record(us.max(1));
            }
        }
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(id: NodeId, role: Role, era: u64) -> Status {
        Status {
            id,
            role,
            role_name: "",
            era,
            leader: None,
            vote: None,
            commit: Default::default(),
            last: Default::default(),
        }
    }

    #[test]
    fn two_leaders_in_one_era_is_a_violation() {
        let mut o = Observer::new(3);
        o.observe(Duration::from_millis(1), 1, Some(&st(1, Role::Leader, 2)));
        o.observe(Duration::from_millis(2), 2, Some(&st(2, Role::Leader, 2)));
        assert_eq!(o.violations().len(), 1);
    }

    #[test]
    fn leaderless_time_and_elections_are_measured() {
        let mut o = Observer::new(3);
        let ms = Duration::from_millis;
        o.observe(ms(200), 1, Some(&st(1, Role::Leader, 1)));
        o.observe(ms(1000), 1, None);
        o.observe(ms(1300), 2, Some(&st(2, Role::Leader, 2)));
        assert_eq!(o.election_times(), &[ms(200), ms(300)]);
        assert_eq!(o.leaderless_time(ms(2000)), ms(500));
        assert_eq!((o.elections(), o.leader_changes()), (2, 1));
        assert!(o.violations().is_empty());
    }
}
