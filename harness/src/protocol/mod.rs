//! The protocol registry: the one place in the harness that names the protocols.
//!
//! Everything else (the simulator's cluster, `run`, `compare`, `check`, the scenarios, the
//! narrator, the viewer, the real server) reaches a protocol through a [`Protocol`] handle:
//! its name, what it needs from the network, how to build its nodes, how the shared
//! [`Knobs`] map onto its configuration, and the [`Words`] the stories use for it.
//!
//! Raft and ZAB are built in ([`RAFT`], [`ZAB`]); another protocol implements [`ProtocolDef`]
//! and is added with [`register`], after which every command accepts its name.

mod raft;
pub(crate) mod words;
mod zab;

pub use words::{CatchUp, SplitVotes, StaleRollback, Words};

use crate::cluster::Backend;
use crate::net::node::{NodeRun, RealNode};
use crate::sim::SimConfig;
use consensus_node::runtime::NodeHandle;
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A real node's start-up: binds, recovers, and returns the driver loop and its handle.
pub type RealStart = Pin<Box<dyn Future<Output = anyhow::Result<(NodeRun, NodeHandle)>> + Send>>;

/// What the harness needs to know about one protocol.
pub trait ProtocolDef: Send + Sync + 'static {
    /// The name on the command line, in reports and in traces ("raft").
    fn name(&self) -> &'static str;
    /// One line for `--help` and listings.
    fn about(&self) -> &'static str;
    /// Why the protocol needs FIFO links (it then always runs on stream links), if it does.
    fn needs_fifo(&self) -> Option<&'static str> {
        None
    }
    /// The words stories and the narrator use for this protocol.
    fn words(&self) -> &'static Words;
    /// Builds a simulated cluster of `cfg.nodes` fresh nodes, numbered from 1.
    fn simulate(&self, cfg: &SimConfig) -> Box<dyn Backend>;
    /// Starts a real node over TCP and a file log.
    fn start_real(&self, node: RealNode) -> RealStart;
    /// The variants a scenario runs for this protocol, each a label and the knobs it turns
    /// (default: one run, labelled with the protocol's name, on the scenario's knobs).
    fn variants(&self, scenario: &str) -> Vec<(String, Knobs)> {
        let _ = scenario;
        Vec::new()
    }
}

/// A registered protocol: a cheap, copyable handle.
#[derive(Clone, Copy)]
pub struct Protocol(&'static dyn ProtocolDef);

/// Raft (Ongaro & Ousterhout), with pre-vote and check-quorum.
pub const RAFT: Protocol = Protocol(&raft::RaftDef);
/// ZAB as Apache ZooKeeper runs it.
pub const ZAB: Protocol = Protocol(&zab::ZabDef);

/// Protocols added at run time by [`register`].
static EXTRA: Mutex<Vec<Protocol>> = Mutex::new(Vec::new());

/// Adds a protocol; every command accepts its name from then on. Fails when the name is taken.
pub fn register(def: &'static dyn ProtocolDef) -> Result<Protocol, String> {
    let mut extra = EXTRA.lock().unwrap_or_else(|e| e.into_inner());
    let p = Protocol(def);
    if [RAFT, ZAB].iter().chain(extra.iter()).any(|q| *q == p) {
        return Err(format!(
            "a protocol named {} is already registered",
            def.name()
        ));
    }
    extra.push(p);
    Ok(p)
}

/// Every registered protocol: the built-in ones first, then the others in registration order.
pub fn all() -> Vec<Protocol> {
    let extra = EXTRA.lock().unwrap_or_else(|e| e.into_inner());
    [RAFT, ZAB]
        .into_iter()
        .chain(extra.iter().copied())
        .collect()
}

/// The protocols `compare` and `scenario` run by default: the built-in ones.
pub fn builtin() -> Vec<Protocol> {
    vec![RAFT, ZAB]
}

/// The default snapshot threshold of every surface (applied entries per snapshot).
pub fn default_snapshot_threshold() -> u64 {
    raft::default_snapshot_threshold()
}

impl Protocol {
    /// The protocol's name.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// Its definition.
    pub fn def(self) -> &'static dyn ProtocolDef {
        self.0
    }

    /// Its words.
    pub fn words(self) -> &'static Words {
        self.0.words()
    }

    /// Looks a protocol up by name.
    pub fn by_name(name: &str) -> Option<Protocol> {
        all().into_iter().find(|p| p.name() == name)
    }

    /// Parses a protocol name, for flags and config files.
    pub fn parse(name: &str) -> Result<Protocol, String> {
        Protocol::by_name(name).ok_or_else(|| {
            format!(
                "unknown protocol `{name}` (known: {})",
                all()
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    /// Parses a set of protocols: one name, names separated by commas, `both` for the
    /// built-in ones or `all` for every registered protocol.
    pub fn parse_set(s: &str) -> Result<Vec<Protocol>, String> {
        match s {
            "both" => return Ok(builtin()),
            "all" => return Ok(all()),
            _ => {}
        }
        let mut out: Vec<Protocol> = Vec::new();
        for name in s.split(',') {
            let p = Protocol::parse(name.trim())?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        Ok(out)
    }
}

impl PartialEq for Protocol {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Protocol {}

impl std::hash::Hash for Protocol {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state)
    }
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Protocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Protocol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Protocol::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// Tunables every protocol understands in its own terms; `None` keeps the protocol's default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Knobs {
    /// Applied entries beyond the last snapshot that trigger a new one (0: never).
    pub snapshot_threshold: Option<u64>,
    /// Committed entries a leader keeps at hand to catch a follower up without a snapshot
    /// (ZooKeeper's commitLogCount); protocols that catch up from the log itself ignore it.
    pub catch_up_log: Option<usize>,
    /// The range election timeouts are drawn from (Raft); for ZAB, its lower end is how long
    /// followers wait for a silent leader (syncLimit ticks: the tick scales to it).
    pub election_timeout: Option<(Duration, Duration)>,
    /// Guards that keep a rejoining node from disrupting a healthy leader (Raft's pre-vote
    /// and check-quorum); `Some(false)` turns them off where the protocol has them.
    pub disruption_guards: Option<bool>,
    /// Leader leases for reads (Raft); protocols without leases ignore it.
    pub lease_reads: Option<bool>,
    /// Most payload bytes one message carries (entries of a batch, a snapshot chunk): small
    /// values make every snapshot travel in many chunks.
    pub max_bytes_per_message: Option<usize>,
    /// Raft's fix to single-server membership changes (a leader changes the membership only
    /// after it committed an entry of its term); `Some(false)` shows the bug.
    pub safe_membership_changes: Option<bool>,
}

impl Knobs {
    /// These knobs, with those left unset taken from `base`.
    pub fn over(&self, base: &Knobs) -> Knobs {
        Knobs {
            snapshot_threshold: self.snapshot_threshold.or(base.snapshot_threshold),
            catch_up_log: self.catch_up_log.or(base.catch_up_log),
            election_timeout: self.election_timeout.or(base.election_timeout),
            disruption_guards: self.disruption_guards.or(base.disruption_guards),
            lease_reads: self.lease_reads.or(base.lease_reads),
            max_bytes_per_message: self.max_bytes_per_message.or(base.max_bytes_per_message),
            safe_membership_changes: self
                .safe_membership_changes
                .or(base.safe_membership_changes),
        }
    }
}

/// Protocol-specific configurations, for callers that know the protocol (a test that lowers
/// ZAB's counter limit): the registry's builder starts from the one of its protocol's type,
/// if set, instead of the default, then applies the [`Knobs`].
#[derive(Clone, Default)]
pub struct Tuning(Vec<Arc<dyn Any + Send + Sync>>);

impl Tuning {
    /// Sets the configuration of type `T`, replacing one set before.
    pub fn set<T: Any + Send + Sync>(&mut self, config: T) {
        self.0.retain(|c| !c.is::<T>());
        self.0.push(Arc::new(config));
    }

    /// The configuration of type `T`, or its default.
    pub fn get<T: Any + Clone + Default>(&self) -> T {
        self.0
            .iter()
            .find_map(|c| c.downcast_ref::<T>())
            .cloned()
            .unwrap_or_default()
    }
}

impl fmt::Debug for Tuning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tuning({} set)", self.0.len())
    }
}

impl PartialEq for Tuning {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_parse_and_serde() {
        for p in all() {
            assert_eq!(Protocol::parse(p.name()).unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Protocol>(&json).unwrap(), p);
        }
        let err = Protocol::parse("paxos").unwrap_err();
        assert!(err.contains("raft, zab"), "{err}");
        assert_eq!(
            Protocol::parse_set("zab,raft,zab").unwrap(),
            vec![ZAB, RAFT]
        );
        assert!(Protocol::parse_set("raft,paxos").is_err());
    }

    #[test]
    fn a_name_can_be_registered_once() {
        assert!(register(&raft::RaftDef).is_err());
    }

    #[test]
    fn tuning_hands_back_what_was_set_or_the_default() {
        let mut t = Tuning::default();
        assert_eq!(t.get::<u32>(), 0);
        t.set(7u32);
        t.set(9u32);
        assert_eq!(t.get::<u32>(), 9);
        assert_eq!(t.get::<u64>(), 0);
    }
}
