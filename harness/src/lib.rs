//! The consensus-lab harness: a deterministic simulator that runs any [`consensus_core::Replica`]
//! under a client workload and faults, a history recorder, a linearizability checker, metrics,
//! and the `consensus-lab` command line.

pub mod checker;
pub mod cli;
pub mod cluster;
pub mod figure16;
pub mod history;
pub mod metrics;
pub mod nemesis;
pub mod net;
pub mod plot;
pub mod protocol;
pub mod run;
pub mod scenario;
pub mod sim;
pub mod viewer;
pub mod workload;

pub use cluster::Cluster;
pub use nemesis::Faults;
pub use protocol::Protocol;
pub use run::{RunConfig, RunReport};
pub use sim::{NetConfig, Semantics, SimConfig};
pub use workload::{KeyDistribution, WorkloadConfig};
