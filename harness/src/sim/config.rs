//! What shapes a simulated cluster: its size, seed, network, disks and protocol knobs.

use crate::app::AppHandle;
use crate::protocol::{Knobs, Tuning};
use consensus_core::NodeId;
use std::time::Duration;

/// Message delays of the simulated network.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NetConfig {
    /// Shortest one-way delay.
    pub min_delay: Duration,
    /// Longest one-way delay (before faults add spikes).
    pub max_delay: Duration,
    /// Whether links behave like datagrams or like TCP connections.
    pub semantics: Semantics,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            min_delay: Duration::from_micros(500),
            max_delay: Duration::from_millis(2),
            semantics: Semantics::Datagram,
        }
    }
}

/// How the simulated network treats the messages on one link (one direction between two nodes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Semantics {
    /// Each message on its own, like UDP: loss faults drop it, duplicate it, reorder it.
    Datagram,
    /// Like a TCP connection: messages arrive in order and exactly once; a loss fault costs a
    /// retransmission timeout instead of the message; only a partition or a crash loses what
    /// is in flight (the connection breaks).
    Stream,
}

/// Delay a stream pays for each lost transmission (TCP's minimum retransmission timeout).
pub const RETRANSMISSION_TIMEOUT: Duration = Duration::from_millis(200);

/// Everything that shapes a simulated cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Number of nodes, numbered `1..=nodes`.
    pub nodes: usize,
    /// How many of them (the highest-numbered) start outside the configuration, waiting to
    /// be added by a membership change.
    pub spares: usize,
    /// The run's seed: every random choice derives from it.
    pub seed: u64,
    /// Network delays.
    pub net: NetConfig,
    /// Time one fsync takes on every node's disk.
    pub fsync_latency: Duration,
    /// Disks that acknowledge fsync but keep nothing across a crash: breaks every protocol's
    /// persistence assumption; used to show that the checks catch what follows.
    pub lying_disks: bool,
    /// How far the nodes' clocks run off true time: each node's clock runs at a rate drawn
    /// once from `[1 - clock_drift, 1 + clock_drift]` (0: every clock is true).
    pub clock_drift: f64,
    /// Tunables every protocol maps onto its own configuration.
    pub knobs: Knobs,
    /// Protocol-specific configurations, for callers that know the protocol.
    pub tuning: Tuning,
    /// The replicated application every node runs (default: the key-value store).
    pub app: AppHandle,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 5,
            spares: 0,
            seed: 1,
            net: NetConfig::default(),
            fsync_latency: Duration::from_millis(1),
            lying_disks: false,
            clock_drift: 0.0,
            knobs: Knobs::default(),
            tuning: Tuning::default(),
            app: AppHandle::kv(),
        }
    }
}

impl SimConfig {
    /// The voters the cluster starts with: `1..=nodes - spares`.
    pub fn voters(&self) -> Vec<NodeId> {
        (1..=self.nodes.saturating_sub(self.spares).max(1) as NodeId).collect()
    }

    /// The configuration the cluster starts with.
    pub fn membership(&self) -> consensus_core::Membership {
        consensus_core::Membership::of_voters(&self.voters())
    }
}

/// Counters of what the simulated network and disks saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Messages nodes sent to each other.
    pub messages: u64,
    /// Of those, messages that carried nothing but reads outside the log.
    pub read_messages: u64,
    /// Encoded bytes of those messages.
    pub bytes: u64,
    /// Messages lost to crashes, partitions or drops.
    pub dropped: u64,
    /// Fsyncs performed.
    pub fsyncs: u64,
}
