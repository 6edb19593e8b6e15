//! The faults of a torture run, injected one after another into real processes and links:
//! SIGKILL and restart, SIGSTOP and SIGCONT, and partitions (two-sided, isolating, one-way)
//! cut at the proxies in front of the peer links.

use super::{FaultKind, FaultRecord};
use crate::net::launch::{signal, LocalCluster};
use crate::net::proxy::LinkProxy;
use crate::net::Client;
use bytes::Bytes;
use consensus_core::NodeId;
use hyper::Method;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long after a heal the cluster may take to follow one leader before the run says it
/// never did.
pub(super) const REJOIN_LIMIT: Duration = Duration::from_secs(15);

/// What one node says of itself.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct NodeView {
    pub leader: Option<NodeId>,
    pub leads: bool,
    pub era: u64,
    pub commit: consensus_core::Position,
    pub last: consensus_core::Position,
}

/// Every node's `/status`, as far as it answers within a short time.
pub(super) async fn statuses(endpoints: &[String]) -> BTreeMap<NodeId, NodeView> {
    let mut asks = tokio::task::JoinSet::new();
    for (i, e) in endpoints.iter().enumerate() {
        let e = e.clone();
        asks.spawn(async move {
            let mut c = Client::new(vec![e], 0);
            let call = c.call_once(Method::GET, "/status", Bytes::new());
            let r = tokio::time::timeout(Duration::from_millis(300), call).await;
            let s = r.ok()?.ok()?.json();
            let view = NodeView {
                leader: s["leader"].as_u64(),
                leads: s["role"] == "Leader",
                era: s["era"].as_u64()?,
                commit: serde_json::from_value(s["commit"].clone()).ok()?,
                last: serde_json::from_value(s["last"].clone()).ok()?,
            };
            Some((i as NodeId + 1, view))
        });
    }
    asks.join_all().await.into_iter().flatten().collect()
}

/// The leader every node of the cluster follows, if all `nodes` answer and agree.
pub(super) fn one_leader(views: &BTreeMap<NodeId, NodeView>, nodes: u64) -> Option<NodeId> {
    if views.len() as u64 != nodes {
        return None;
    }
    let leader = views.values().next()?.leader?;
    let lv = views.get(&leader)?;
    (lv.leads
        && views
            .values()
            .all(|v| v.leader == Some(leader) && v.era == lv.era))
    .then_some(leader)
}

/// Waits until every node follows one leader; the time it took, or None after `limit`.
pub(super) async fn wait_one_leader(endpoints: &[String], limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if one_leader(&statuses(endpoints).await, endpoints.len() as u64).is_some() {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// The live node that leads in the highest era, if any.
async fn current_leader(endpoints: &[String]) -> Option<NodeId> {
    statuses(endpoints)
        .await
        .into_iter()
        .filter(|(_, v)| v.leads)
        .max_by_key(|(_, v)| v.era)
        .map(|(id, _)| id)
}

/// The nemesis: owns the processes and the link proxies while faults run.
pub(super) struct Nemesis {
    pub cluster: LocalCluster,
    pub links: BTreeMap<(NodeId, NodeId), LinkProxy>,
    pub endpoints: Vec<String>,
    pub kinds: Vec<FaultKind>,
    pub rng: ChaCha8Rng,
    pub start: Instant,
    pub progress: bool,
    /// Nodes whose processes exited without the nemesis killing them (a node that failed to
    /// restart, or crashed), with their exit statuses.
    pub exits: Vec<String>,
}

impl Nemesis {
    pub fn new(
        cluster: LocalCluster,
        links: BTreeMap<(NodeId, NodeId), LinkProxy>,
        kinds: Vec<FaultKind>,
        seed: u64,
        start: Instant,
        progress: bool,
    ) -> Nemesis {
        Nemesis {
            endpoints: cluster.cfg.endpoints(),
            cluster,
            links,
            kinds,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x7E57_7E57),
            start,
            progress,
            exits: Vec::new(),
        }
    }

    /// Notes every node process that exited on its own since the last look.
    fn note_exits(&mut self) {
        let at = self.secs();
        for (id, status) in self.cluster.exited() {
            self.exits.push(format!(
                "n{id}'s process exited on its own at {at:.1} s ({status})"
            ));
        }
    }

    fn nodes(&self) -> Vec<NodeId> {
        (1..=self.cluster.cfg.nodes).collect()
    }

    fn secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Injects faults one after another until `until` (since the start); every fault is
    /// healed before it returns.
    pub async fn run(&mut self, until: Duration) -> Vec<FaultRecord> {
        let mut done = Vec::new();
        while self.start.elapsed() + Duration::from_secs(3) < until && !self.kinds.is_empty() {
            let quiet = self.rng.random_range(500..1500);
            tokio::time::sleep(Duration::from_millis(quiet)).await;
            let kind = self.kinds[self.rng.random_range(0..self.kinds.len())];
            let hold = Duration::from_millis(self.rng.random_range(800..2500));
            let record = match self.inject(kind, hold).await {
                Ok(r) => r,
                Err(e) => FaultRecord {
                    kind,
                    what: format!("not injected: {e}"),
                    at_s: self.secs(),
                    healed_s: self.secs(),
                    rejoin_ms: None,
                    longest_gap_ms: 0.0,
                },
            };
            if self.progress {
                eprintln!("{}", record.line());
            }
            done.push(record);
        }
        done
    }

    /// One fault: inject, hold, heal, and time how long until every node follows one leader.
    async fn inject(&mut self, kind: FaultKind, hold: Duration) -> anyhow::Result<FaultRecord> {
        let leader = current_leader(&self.endpoints).await;
        let nodes = self.nodes();
        let pick_leader = self.rng.random_bool(0.6);
        let any = nodes[self.rng.random_range(0..nodes.len())];
        let target = match leader {
            Some(l) if pick_leader => l,
            _ => any,
        };
        let role = |n: NodeId| {
            if Some(n) == leader {
                format!("n{n} (leader)")
            } else {
                format!("n{n}")
            }
        };
        let at_s = self.secs();
        let what = match kind {
            FaultKind::Kill => {
                anyhow::ensure!(self.cluster.kill(target), "n{target} is not running");
                tokio::time::sleep(hold).await;
                self.cluster.restart(target)?;
                format!("SIGKILL {}, restarted", role(target))
            }
            FaultKind::Pause => {
                let pid = self
                    .cluster
                    .pid(target)
                    .ok_or_else(|| anyhow::anyhow!("n{target} is not running"))?;
                signal(pid, "-STOP")?;
                tokio::time::sleep(hold).await;
                signal(pid, "-CONT")?;
                format!("SIGSTOP {}, then SIGCONT", role(target))
            }
            FaultKind::Partition => {
                let (cut, mut what) = self.partition(target, &role);
                // Faults overlap: now and then a node also dies while the cut holds.
                let crash = self
                    .rng
                    .random_bool(0.3)
                    .then(|| nodes[self.rng.random_range(0..nodes.len())]);
                for link in &cut {
                    self.links[link].set_open(false);
                }
                tokio::time::sleep(hold / 2).await;
                if let Some(n) = crash {
                    if self.cluster.kill(n) {
                        what += &format!(", and {} SIGKILLed during it", role(n));
                    }
                }
                tokio::time::sleep(hold - hold / 2).await;
                for link in &cut {
                    self.links[link].set_open(true);
                }
                if let Some(n) = crash {
                    if self.cluster.pid(n).is_none() {
                        self.cluster.restart(n)?;
                    }
                }
                what
            }
            FaultKind::Power => {
                for &n in &nodes {
                    self.cluster.kill(n);
                }
                tokio::time::sleep(hold).await;
                for &n in &nodes {
                    self.cluster.restart(n)?;
                }
                "power loss: SIGKILL every node, all restarted".to_string()
            }
        };
        let healed_s = self.secs();
        let rejoin = wait_one_leader(&self.endpoints, REJOIN_LIMIT).await;
        self.note_exits();
        Ok(FaultRecord {
            kind,
            what: format!("{what} after {:.1} s", hold.as_secs_f64()),
            at_s,
            healed_s,
            rejoin_ms: rejoin.map(|d| d.as_secs_f64() * 1e3),
            longest_gap_ms: 0.0,
        })
    }

    /// Draws a partition around `target`: the directed links to cut, and its description.
    fn partition(
        &mut self,
        target: NodeId,
        role: &dyn Fn(NodeId) -> String,
    ) -> (Vec<(NodeId, NodeId)>, String) {
        let nodes = self.nodes();
        let others: Vec<NodeId> = nodes.iter().copied().filter(|&n| n != target).collect();
        match self.rng.random_range(0..4) {
            // Isolated both ways.
            0 => {
                let cut = others
                    .iter()
                    .flat_map(|&o| [(target, o), (o, target)])
                    .collect();
                (cut, format!("isolated {}", role(target)))
            }
            // Hears everyone, reaches no one.
            1 => {
                let cut = others.iter().map(|&o| (target, o)).collect();
                (cut, format!("one-way: {} cannot send", role(target)))
            }
            // Reaches everyone, hears no one.
            2 => {
                let cut = others.iter().map(|&o| (o, target)).collect();
                (cut, format!("one-way: {} cannot receive", role(target)))
            }
            // Two sides: the target with a random minority of the others.
            _ => {
                let mut shuffled = others.clone();
                shuffled.shuffle(&mut self.rng);
                let with = (nodes.len() - 1) / 2;
                let mut side: Vec<NodeId> = shuffled[..self.rng.random_range(0..=with)].to_vec();
                side.push(target);
                side.sort_unstable();
                let rest: Vec<NodeId> = nodes
                    .iter()
                    .copied()
                    .filter(|n| !side.contains(n))
                    .collect();
                let cut = side
                    .iter()
                    .flat_map(|&a| rest.iter().flat_map(move |&b| [(a, b), (b, a)]))
                    .collect();
                let names =
                    |v: &[NodeId]| v.iter().map(|&n| role(n)).collect::<Vec<_>>().join(", ");
                (
                    cut,
                    format!("split {{{}}} | {{{}}}", names(&side), names(&rest)),
                )
            }
        }
    }

    /// Undoes whatever may still be in effect: every link open, every node running.
    pub async fn heal_all(&mut self) -> anyhow::Result<()> {
        for link in self.links.values() {
            link.set_open(true);
        }
        for (_, pid) in self.cluster.pids() {
            let _ = signal(pid, "-CONT");
        }
        self.note_exits();
        for id in 1..=self.cluster.cfg.nodes {
            if self.cluster.pid(id).is_none() {
                self.cluster.restart(id)?;
            }
        }
        Ok(())
    }
}
