//! The client workload: what each client asks, generated from the seed alone, so that every
//! protocol faces exactly the same operations.

use consensus_core::kv::KvOp;
use consensus_core::ReadLevel;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Zipf};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// How keys are picked.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, clap::ValueEnum)]
pub enum KeyDistribution {
    /// Every key equally likely.
    Uniform,
    /// A few hot keys (Zipf, exponent 1.0).
    Zipf,
}

/// The shape of the client load.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadConfig {
    /// Concurrent closed-loop clients.
    pub clients: usize,
    /// Operations to issue in total, over all clients.
    pub ops: usize,
    /// Number of distinct keys.
    pub keys: usize,
    /// Fraction of operations that are reads.
    pub read_ratio: f64,
    /// How keys are picked.
    pub distribution: KeyDistribution,
    /// How long a client waits for one attempt before retrying elsewhere.
    pub request_timeout: Duration,
    /// How long a client keeps retrying one operation before giving up.
    pub op_timeout: Duration,
    /// How gets are served: through the log, at a read index, under a lease, or locally.
    pub read_level: ReadLevel,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            clients: 16,
            ops: 20_000,
            keys: 16,
            read_ratio: 0.3,
            distribution: KeyDistribution::Uniform,
            request_timeout: Duration::from_millis(500),
            op_timeout: Duration::from_secs(5),
            read_level: ReadLevel::Log,
        }
    }
}

/// The random source of `client`'s operations in the run seeded `seed`: the same for every
/// protocol and every app.
pub fn client_rng(seed: u64, client: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ client)
}

/// Generates one client's key-value operations, independent of timing and protocol.
pub struct OpGenerator {
    client: u64,
    rng: ChaCha8Rng,
    keys: usize,
    read_ratio: f64,
    zipf: Option<Zipf<f64>>,
    /// The last value this client put under each key, to build CAS operations that can match.
    last_put: BTreeMap<String, String>,
}

impl OpGenerator {
    /// The generator for `client` under the run's `seed`.
    pub fn new(seed: u64, client: u64, cfg: &WorkloadConfig) -> Self {
        Self::with_rng(client, client_rng(seed, client), cfg)
    }

    /// The generator for `client`, drawing from `rng`.
    pub fn with_rng(client: u64, rng: ChaCha8Rng, cfg: &WorkloadConfig) -> Self {
        let keys = cfg.keys.max(1);
        OpGenerator {
            client,
            rng,
            keys,
            read_ratio: cfg.read_ratio.clamp(0.0, 1.0),
            zipf: match cfg.distribution {
                KeyDistribution::Uniform => None,
                KeyDistribution::Zipf => Zipf::new(keys as f64, 1.0).ok(),
            },
            last_put: BTreeMap::new(),
        }
    }

    /// The operation with sequence number `seq`; written values are unique per key.
    pub fn next_op(&mut self, seq: u64) -> KvOp {
        let k = match &self.zipf {
            Some(z) => (z.sample(&mut self.rng) as usize).clamp(1, self.keys) - 1,
            None => self.rng.random_range(0..self.keys),
        };
        let key = format!("k{k}");
        let value = format!("c{}.{}", self.client, seq);
        let roll: f64 = self.rng.random();
        if roll < self.read_ratio {
            return KvOp::Get { key };
        }
        let cas: bool = self.rng.random_bool(0.3);
        match (cas, self.last_put.get(&key)) {
            (true, Some(expected)) => {
                let expected = expected.clone();
                self.last_put.insert(key.clone(), value.clone());
                KvOp::Cas {
                    key,
                    expected,
                    new: value,
                }
            }
            _ => {
                self.last_put.insert(key.clone(), value.clone());
                KvOp::Put { key, value }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_operations() {
        let cfg = WorkloadConfig::default();
        let mut a = OpGenerator::new(9, 3, &cfg);
        let mut b = OpGenerator::new(9, 3, &cfg);
        for seq in 1..200 {
            assert_eq!(a.next_op(seq), b.next_op(seq));
        }
    }

    #[test]
    fn mix_follows_the_read_ratio_and_values_are_unique() {
        let cfg = WorkloadConfig {
            read_ratio: 0.25,
            distribution: KeyDistribution::Zipf,
            ..WorkloadConfig::default()
        };
        let mut g = OpGenerator::new(1, 1, &cfg);
        let mut reads = 0;
        let mut values = std::collections::BTreeSet::new();
        for seq in 1..=4000 {
            match g.next_op(seq) {
                KvOp::Get { .. } => reads += 1,
                KvOp::Put { value, .. } | KvOp::Cas { new: value, .. } => {
                    assert!(values.insert(value));
                }
                other => panic!("the workload does not draw {other:?}"),
            }
        }
        assert!((800..1200).contains(&reads), "{reads} reads");
    }
}
