//! A lock service with fencing tokens, Raft or ZAB from the command line: three nodes in this
//! process; two clients contend for one lock while the leader is stopped; every grant carries
//! a token larger than any before it, so a storage service that remembers the largest token it
//! has seen turns away a client whose lock has since passed to another.
//!
//! ```sh
//! cargo run --example lock -- --protocol raft
//! ```

use consensus_lab::core::{async_trait, Command, Position, RestoreError, StateMachine};
use consensus_lab::{Client, Cluster, Protocol};
use std::collections::BTreeMap;

/// Locks by name: the holder and the token of its grant; the last token handed out.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Locks {
    held: BTreeMap<String, (String, u64)>,
    last_token: u64,
}

impl Locks {
    fn run(&mut self, command: &str) -> String {
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["acquire", name, owner] => match self.held.get(*name) {
                Some((holder, token)) if holder == owner => format!("granted {token}"),
                Some((holder, _)) => format!("held by {holder}"),
                None => {
                    self.last_token += 1;
                    self.held
                        .insert(name.to_string(), (owner.to_string(), self.last_token));
                    format!("granted {}", self.last_token)
                }
            },
            ["release", name, owner] => match self.held.get(*name) {
                Some((holder, _)) if holder == owner => {
                    self.held.remove(*name);
                    "released".into()
                }
                _ => "not held".into(),
            },
            ["holder", name] => match self.held.get(*name) {
                Some((holder, token)) => format!("{holder} {token}"),
                None => "free".into(),
            },
            _ => "error: acquire NAME OWNER | release NAME OWNER | holder NAME".into(),
        }
    }
}

#[async_trait]
impl StateMachine for Locks {
    async fn apply(&mut self, _: Position, command: &Command) -> bytes::Bytes {
        self.run(&String::from_utf8_lossy(command)).into()
    }
    async fn snapshot(&mut self) -> bytes::Bytes {
        consensus_lab::core::codec::encode(self)
            .expect("locks encode")
            .into()
    }
    async fn restore(&mut self, data: &[u8]) -> Result<(), RestoreError> {
        *self = if data.is_empty() {
            Locks::default()
        } else {
            consensus_lab::core::codec::decode(data)?
        };
        Ok(())
    }
    async fn query(&mut self, command: &Command) -> bytes::Bytes {
        let c = String::from_utf8_lossy(command);
        if c.starts_with("holder ") {
            self.run(&c).into()
        } else {
            "error: only holder NAME is read-only".into()
        }
    }
}

/// The token of a grant, if the answer is one.
pub fn token(answer: &[u8]) -> Option<u64> {
    std::str::from_utf8(answer)
        .ok()?
        .strip_prefix("granted ")?
        .parse()
        .ok()
}

/// What a storage service keeps to fence off old lock holders: the largest token it accepted.
#[derive(Default)]
pub struct Fenced {
    largest: u64,
}

impl Fenced {
    /// Accepts a write made under `token` unless a larger one was seen.
    pub fn write(&mut self, token: u64) -> bool {
        if token < self.largest {
            return false;
        }
        self.largest = token;
        true
    }
}

/// Two clients and one lock through a leader stop; returns the tokens granted, in order.
pub async fn contend(
    protocol: Protocol,
    dir: &std::path::Path,
) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
    let cluster = Cluster::start_local(protocol, 3, dir, |_| Locks::default()).await?;
    let mut alice = Client::new(cluster.handles());
    let mut bob = Client::new(cluster.handles());
    let mut storage = Fenced::default();
    let mut tokens = Vec::new();

    let a = alice.submit(b"acquire db alice".to_vec()).await?;
    let t1 = token(&a).ok_or("alice was not granted the lock")?;
    tokens.push(t1);
    println!("alice: {}", String::from_utf8_lossy(&a));
    assert!(storage.write(t1));

    let leader = cluster
        .handles()
        .iter()
        .find_map(|h| h.status().leader)
        .ok_or("no leader")?;
    println!("stopping the leader, n{leader}");
    cluster.node(leader).ok_or("no such node")?.stop();

    let b = bob.submit(b"acquire db bob".to_vec()).await?;
    println!("bob:   {}", String::from_utf8_lossy(&b));
    if token(&b).is_some() {
        return Err("bob was granted a lock alice holds".into());
    }
    println!(
        "alice: {}",
        String::from_utf8_lossy(&alice.submit(b"release db alice".to_vec()).await?)
    );
    let b = bob.submit(b"acquire db bob".to_vec()).await?;
    let t2 = token(&b).ok_or("bob was not granted the free lock")?;
    tokens.push(t2);
    println!("bob:   {}", String::from_utf8_lossy(&b));
    assert!(storage.write(t2));
    // Alice, paused before her release and now writing late with her old token, is fenced off.
    println!(
        "storage accepts alice's late write with token {t1}: {}",
        storage.write(t1)
    );
    Ok(tokens)
}

#[tokio::main]
#[allow(dead_code)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protocol = Protocol::from_args()?;
    let dir = tempfile::tempdir()?;
    let tokens = contend(protocol, dir.path()).await?;
    println!("{protocol:?}: tokens granted {tokens:?}");
    Ok(())
}
