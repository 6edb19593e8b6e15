//! The systems `load` can drive, each over its own client protocol: this project's HTTP API,
//! etcd's v3 gRPC API (the `etcd-client` crate) and ZooKeeper's binary protocol (the
//! `zookeeper-client` crate). One closed loop, one histogram, one report for all three, so
//! that a table of them compares the servers, not the load generators.

use crate::net::client::Client;
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use consensus_core::ReadLevel;
use hyper::{Method, StatusCode};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A system `load` can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    /// A consensus-lab cluster, over its HTTP+JSON API.
    Lab,
    /// An etcd v3 cluster, over gRPC.
    Etcd,
    /// A ZooKeeper ensemble, over its client protocol.
    Zookeeper,
}

impl System {
    /// The read levels this system serves (`--read-consistency`).
    pub fn read_levels(self) -> &'static [ReadLevel] {
        match self {
            System::Lab => &[
                ReadLevel::Log,
                ReadLevel::Index,
                ReadLevel::Lease,
                ReadLevel::Local,
            ],
            // etcd: a linearizable Range is a ReadIndex read; a serializable one is local.
            // ZooKeeper: `sync` then getData; getData alone is local.
            System::Etcd | System::Zookeeper => &[ReadLevel::Index, ReadLevel::Local],
        }
    }

    /// Checks that this system serves reads at `level`.
    pub fn check_level(self, level: ReadLevel) -> Result<()> {
        if !self.read_levels().contains(&level) {
            let names: Vec<_> = self.read_levels().iter().map(|l| l.name()).collect();
            bail!(
                "{self:?} serves reads at {} only, not at `{}`",
                names.join(" or "),
                level.name()
            );
        }
        Ok(())
    }
}

/// How long a peer has to answer a status question or accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends a four-letter word to a ZooKeeper server and returns its answer.
async fn four_letter(endpoint: &str, word: &str) -> Result<String> {
    let talk = async {
        let mut s = tokio::net::TcpStream::connect(endpoint).await?;
        s.write_all(word.as_bytes()).await?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).await?;
        anyhow::Ok(answer)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, talk)
        .await
        .with_context(|| format!("{endpoint} did not answer `{word}`"))?
        .with_context(|| format!("cannot ask {endpoint} `{word}`"))
}

/// The value of `field: value` in a four-letter word's answer.
fn field<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    answer
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// What a system says of itself before the load: its name and version, and which endpoint
/// leads (if the system tells).
pub struct Described {
    /// For the report, e.g. `etcd 3.4.23`.
    pub name: String,
    /// The index in the endpoint list of the node that leads.
    pub leader: Option<usize>,
}

/// How long [`describe`] waits for a system that is still starting to elect a leader.
const STARTUP_WAIT: Duration = Duration::from_secs(15);

/// Asks a peer system's endpoints what they run and which one leads, waiting for a system
/// that is still starting (up to [`STARTUP_WAIT`]) until one does.
pub async fn describe(system: System, endpoints: &[String]) -> Result<Described> {
    let give_up = tokio::time::Instant::now() + STARTUP_WAIT;
    loop {
        let d = describe_once(system, endpoints).await;
        if matches!(
            &d,
            Ok(Described {
                leader: Some(_),
                ..
            })
        ) || tokio::time::Instant::now() >= give_up
        {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn describe_once(system: System, endpoints: &[String]) -> Result<Described> {
    let mut name = None;
    let mut leader = None;
    for (i, e) in endpoints.iter().enumerate() {
        match system {
            System::Lab => bail!("describe is for etcd and ZooKeeper"),
            System::Etcd => {
                let Ok(Ok(mut c)) = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    etcd_client::Client::connect([e.as_str()], None),
                )
                .await
                else {
                    continue;
                };
                let Ok(s) = c.status().await else { continue };
                name.get_or_insert_with(|| format!("etcd {}", s.version()));
                if s.header().map(|h| h.member_id()) == Some(s.leader()) {
                    leader = Some(i);
                }
            }
            System::Zookeeper => {
                let Ok(answer) = four_letter(e, "srvr").await else {
                    continue;
                };
                if let Some(v) = field(&answer, "Zookeeper version") {
                    let v = v.split(['-', ',']).next().unwrap_or(v);
                    name.get_or_insert_with(|| format!("zookeeper {v}"));
                }
                if matches!(field(&answer, "Mode"), Some("leader" | "standalone")) {
                    leader = Some(i);
                }
            }
        }
    }
    match name {
        Some(name) => Ok(Described { name, leader }),
        None => bail!("no {system:?} endpoint answered: {}", endpoints.join(", ")),
    }
}

/// The znode under which ZooKeeper loads keep their keys.
const ZK_ROOT: &str = "/consensus-lab-load";

/// How the load creates znodes: persistent, open to anyone.
fn persistent() -> zookeeper_client::CreateOptions<'static> {
    zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all())
}

/// One closed-loop client's connection to the system under load.
pub enum Conn {
    /// This project's HTTP API.
    Lab(Box<Client>),
    /// etcd's KV service.
    Etcd(Box<etcd_client::KvClient>),
    /// A ZooKeeper session.
    Zookeeper(zookeeper_client::Client),
}

impl Conn {
    /// Connects a ZooKeeper session to `endpoint` and makes sure the load's root znode exists.
    pub async fn zookeeper(endpoint: &str) -> Result<Conn> {
        // Sixty-four sessions opened at once can keep a busy server (a JIT compile, a
        // snapshot) past one timeout: a few tries before giving up.
        let mut tries = 0;
        let c = loop {
            tries += 1;
            match tokio::time::timeout(
                CONNECT_TIMEOUT,
                zookeeper_client::Client::connect(endpoint),
            )
            .await
            {
                Ok(Ok(c)) => break c,
                Ok(Err(_)) | Err(_) if tries < 3 => continue,
                Ok(Err(e)) => {
                    return Err(e)
                        .with_context(|| format!("cannot open a ZooKeeper session with {endpoint}"))
                }
                Err(_) => bail!("ZooKeeper at {endpoint} did not accept a session in {tries} tries of {CONNECT_TIMEOUT:?}"),
            }
        };
        match c.create(ZK_ROOT, b"", &persistent()).await {
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => Ok(Conn::Zookeeper(c)),
            Err(e) => Err(e).with_context(|| format!("cannot create {ZK_ROOT} on {endpoint}")),
        }
    }

    /// Connects to one etcd endpoint.
    pub async fn etcd(endpoint: &str) -> Result<Conn> {
        let c = tokio::time::timeout(
            CONNECT_TIMEOUT,
            etcd_client::Client::connect([endpoint], None),
        )
        .await
        .with_context(|| format!("etcd at {endpoint} did not accept a connection"))?
        .with_context(|| format!("cannot connect to etcd at {endpoint}"))?;
        Ok(Conn::Etcd(Box::new(c.kv_client())))
    }

    /// Writes `value` under the client's key `key` (a name without slashes); true when the
    /// system acknowledged it.
    pub async fn write(&mut self, key: &str, value: &Bytes) -> bool {
        match self {
            Conn::Lab(c) => matches!(
                c.call(Method::PUT, &format!("/kv/{key}"), value.clone()).await,
                Ok(r) if r.status == StatusCode::OK
            ),
            Conn::Etcd(c) => c.put(key, value.as_ref(), None).await.is_ok(),
            Conn::Zookeeper(c) => {
                let path = format!("{ZK_ROOT}/{key}");
                match c.set_data(&path, value, None).await {
                    Ok(_) => true,
                    Err(zookeeper_client::Error::NoNode) => {
                        match c.create(&path, value, &persistent()).await {
                            Ok(_) => true,
                            // Another attempt of ours got there first: write over it.
                            Err(zookeeper_client::Error::NodeExists) => {
                                c.set_data(&path, value, None).await.is_ok()
                            }
                            Err(_) => false,
                        }
                    }
                    Err(_) => false,
                }
            }
        }
    }

    /// Reads the client's key `key` at `level` (checked by [`System::check_level`]); true
    /// when the system answered, with a value or with "no such key".
    pub async fn read(&mut self, key: &str, level: ReadLevel) -> bool {
        match self {
            Conn::Lab(c) => {
                let path = match level {
                    ReadLevel::Log => format!("/kv/{key}"),
                    level => format!("/kv/{key}?consistency={}", level.name()),
                };
                matches!(
                    c.call(Method::GET, &path, Bytes::new()).await,
                    Ok(r) if r.status == StatusCode::OK || r.status == StatusCode::NOT_FOUND
                )
            }
            Conn::Etcd(c) => {
                let opts = (level == ReadLevel::Local)
                    .then(|| etcd_client::GetOptions::new().with_serializable());
                c.get(key, opts).await.is_ok()
            }
            Conn::Zookeeper(c) => {
                let path = format!("{ZK_ROOT}/{key}");
                if level != ReadLevel::Local && c.sync(&path).await.is_err() {
                    return false;
                }
                matches!(
                    c.get_data(&path).await,
                    Ok(_) | Err(zookeeper_client::Error::NoNode)
                )
            }
        }
    }

    /// Redirects to the leader this connection followed (the lab's HTTP client only).
    pub fn redirects(&self) -> u64 {
        match self {
            Conn::Lab(c) => c.redirects,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_letter_fields_are_found_by_name() {
        let srvr = "Zookeeper version: 3.8.0-debian--1, built on 2023-10-01\nLatency min/avg/max: 0/0.1/3\nZxid: 0x100000002\nMode: leader\n";
        assert_eq!(field(srvr, "Mode"), Some("leader"));
        assert_eq!(field(srvr, "Zxid"), Some("0x100000002"));
        assert_eq!(
            field(srvr, "Zookeeper version"),
            Some("3.8.0-debian--1, built on 2023-10-01")
        );
        assert_eq!(field(srvr, "Outstanding"), None);
    }

    #[test]
    fn peers_refuse_read_levels_they_do_not_have() {
        assert!(System::Etcd.check_level(ReadLevel::Index).is_ok());
        assert!(System::Zookeeper.check_level(ReadLevel::Local).is_ok());
        let e = System::Zookeeper
            .check_level(ReadLevel::Lease)
            .unwrap_err()
            .to_string();
        assert!(e.contains("index or local"), "{e}");
        assert!(System::Lab.check_level(ReadLevel::Log).is_ok());
    }
}
