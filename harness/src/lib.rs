//! The consensus-lab harness: a deterministic simulator that runs any [`consensus_core::Replica`]
//! under a client workload and faults, a history recorder, a linearizability checker, metrics,
//! and the `consensus-lab` command line.

pub mod app;
pub mod checker;
pub mod cli;
pub mod cluster;
pub mod figure16;
pub mod front;
pub mod history;
pub mod metrics;
pub mod nemesis;
pub mod net;
pub mod plot;
pub mod protocol;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sim;
pub mod viewer;
pub mod workload;

pub use app::{App, AppHandle};
pub use cluster::Cluster;
pub use nemesis::Faults;
pub use protocol::Protocol;
pub use run::{RunConfig, RunReport};
pub use sim::{NetConfig, Semantics, SimConfig};
pub use workload::{KeyDistribution, WorkloadConfig};

/// `n` followed by `noun`, plural unless `n` is 1 ("1 node", "3 nodes").
pub fn counted(n: impl std::fmt::Display, noun: &str) -> String {
    let n = n.to_string();
    if n == "1" {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod counted_tests {
    #[test]
    fn one_is_singular_and_others_plural() {
        assert_eq!(super::counted(1u32, "node"), "1 node");
        assert_eq!(super::counted(0u32, "seed"), "0 seeds");
        assert_eq!(super::counted(3u64, "client"), "3 clients");
    }
}
