//! A server's tunables and its durable epoch state.

use crate::election::ElectionConfig;
use crate::zxid::Zxid;
use consensus_core::{Membership, Position};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Tunables of a ZAB server, named as in ZooKeeper's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The basic time unit (`tickTime`); the leader pings every half tick.
    pub tick_time: Duration,
    /// Ticks allowed for discovery and synchronization (`initLimit`).
    pub init_limit: u32,
    /// Ticks a follower may stay silent before the leader drops it, and the leader before a
    /// follower gives up on it (`syncLimit`).
    pub sync_limit: u32,
    /// Fast Leader Election timing.
    pub election: ElectionConfig,
    /// Committed proposals the leader keeps in memory for DIFF (`commitLogCount`).
    pub commit_log_count: usize,
    /// The on-disk log serves a lagging follower only while it is under this fraction of the
    /// snapshot's size (`snapshotSizeFactor`).
    pub snapshot_size_factor: f64,
    /// Applied proposals beyond the last snapshot that trigger a new one; 0 never snapshots.
    pub snapshot_threshold: u64,
    /// A leader never proposes a counter at or past this; it gives up instead, so that a new
    /// epoch starts (ZooKeeper: 0xffffffff; lower it to test the rollover).
    pub counter_limit: u32,
    /// How long a new follower waits for its leader to answer before connecting again
    /// (`leaderConnectDelayDuringRetryMs`, 100 ms).
    pub leader_connect_retry: Duration,
    /// Most payload bytes one message carries: a SNAP goes in chunks of this size, and a
    /// batch of packets closes once it holds this much, so that any catch-up travels in
    /// frames well under the transport's limit (ZooKeeper streams both over its socket).
    pub max_bytes_per_message: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tick_time: Duration::from_millis(100),
            init_limit: 10,
            sync_limit: 3,
            election: ElectionConfig::default(),
            commit_log_count: 500,
            snapshot_size_factor: 0.33,
            snapshot_threshold: 10_000,
            counter_limit: Zxid::COUNTER_LIMIT,
            leader_connect_retry: Duration::from_millis(100),
            max_bytes_per_message: consensus_core::chunks::DEFAULT_CHUNK_BYTES,
        }
    }
}

/// ZAB's durable state besides the log: the epoch files, and the dynamic configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The last epoch this server promised to follow (`acceptedEpoch`, the paper's f.p).
    pub accepted_epoch: u64,
    /// The epoch whose NEWLEADER this server accepted (`currentEpoch`, the paper's f.a).
    pub current_epoch: u64,
    /// The last configuration this server knows committed, and the zxid of its reconfig
    /// transaction (ZooKeeper writes its dynamic configuration file on activation): after a
    /// restart the log alone cannot tell a committed reconfig from a proposed one.
    pub config: Option<(Position, Membership)>,
}
