//! Runs a consensus-lab core for real: [`runtime::Node`] drives any `Replica` on tokio over
//! [`FileLog`] (the on-disk log) and a `Transport` such as [`tcp::TcpTransport`]. The pure
//! pieces (types, the `Replica` contract, the traits, the codec, quorums) are in
//! `consensus-core`, which depends on neither tokio nor the file system.

pub mod file_log;
pub mod mem_transport;
pub mod runtime;
pub mod tcp;
pub mod tls;

pub use file_log::FileLog;
pub use mem_transport::{MemNetwork, MemTransport};
