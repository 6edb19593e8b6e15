//! A replicated counter, Raft or ZAB from the command line: three nodes in this process (TCP
//! on 127.0.0.1, a file log each in a temporary directory), ten increments, the leader
//! stopped, five more, then the count read from every node.
//!
//! ```sh
//! cargo run --example counter -- --protocol zab
//! cargo run --example counter -- --protocol raft
//! ```

use consensus_lab::core::{async_trait, Command, Position, RestoreError, StateMachine};
use consensus_lab::{Client, Cluster, Protocol, ReadLevel};

/// The application: a number, `+N` adds N, any read returns the number.
#[derive(Default)]
pub struct Counter(i64);

#[async_trait]
impl StateMachine for Counter {
    async fn apply(&mut self, _: Position, command: &Command) -> bytes::Bytes {
        match std::str::from_utf8(command)
            .ok()
            .and_then(|c| c.strip_prefix('+'))
        {
            Some(n) => match n.parse::<i64>() {
                Ok(n) => {
                    self.0 += n;
                    self.0.to_string().into()
                }
                Err(_) => "error: +N takes a number".into(),
            },
            None => self.0.to_string().into(),
        }
    }
    async fn snapshot(&mut self) -> bytes::Bytes {
        self.0.to_string().into()
    }
    async fn restore(&mut self, data: &[u8]) -> Result<(), RestoreError> {
        self.0 = if data.is_empty() {
            0
        } else {
            std::str::from_utf8(data)?.parse()?
        };
        Ok(())
    }
    async fn query(&mut self, _: &Command) -> bytes::Bytes {
        self.0.to_string().into()
    }
}

#[tokio::main]
#[allow(dead_code)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protocol = Protocol::from_args()?;
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start_local(protocol, 3, dir.path(), |_| Counter::default()).await?;
    let mut client = Client::new(cluster.handles());
    for _ in 0..10 {
        client.submit(b"+1".to_vec()).await?;
    }
    let leader = cluster
        .handles()
        .iter()
        .find_map(|h| h.status().leader)
        .ok_or("no leader")?;
    println!("{protocol:?}: 10 increments committed; stopping the leader, n{leader}");
    cluster.node(leader).ok_or("no such node")?.stop();
    for _ in 0..5 {
        client.submit(b"+1".to_vec()).await?;
    }
    let count = client.read(ReadLevel::Index, b"get".to_vec()).await?;
    println!(
        "after the failover: count {} (linearizable read)",
        String::from_utf8_lossy(&count)
    );
    for h in cluster.handles() {
        let s = h.status();
        if s.id == leader {
            continue;
        }
        let local = h
            .read(
                ReadLevel::Local,
                bytes::Bytes::from_static(b"get"),
                Position::ZERO,
            )
            .await?;
        println!(
            "n{}: {} {}, its own count {}",
            s.id,
            s.role_name,
            s.era,
            String::from_utf8_lossy(&local)
        );
    }
    Ok(())
}
