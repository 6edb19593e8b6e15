use super::*;
use crate::file_log::FileLog;
use crate::mem_transport::MemNetwork;
use consensus_core::codec;
use consensus_core::kv::{KvCommand, KvOp, KvOutput, KvStore};
use consensus_core::{Entry, Envelope, MemLogStore, ProposeError, Role};
use std::time::Duration;

/// A one-node "cluster": always the leader, commits an entry once it is durable.
struct Solo {
    last: Position,
    commit: Position,
    durable: Vec<Entry>,
    ready: Ready<(), u64>,
    /// Asks for a snapshot once this position is committed.
    snapshot_at: Option<Position>,
    /// Snapshots handed back by the driver.
    compacted: std::sync::Arc<std::sync::Mutex<Vec<Position>>>,
    /// Commits what is durable only at the next proposal, as a leader learns of a commit
    /// in the same turn as new requests arrive; the commits then share a Ready with an append.
    commit_on_propose: bool,
    /// Durable through here (what `persisted` said last).
    durable_through: Position,
}

impl Solo {
    fn new(rec: Recovered<u64>) -> Self {
        let last = rec.entries.last().map_or(Position::ZERO, |e| e.pos);
        Solo {
            last,
            commit: Position::ZERO,
            durable: rec.entries.clone(),
            ready: Ready {
                // Everything recovered was committed (one node).
                committed: rec.entries,
                ..Ready::default()
            },
            snapshot_at: None,
            compacted: Default::default(),
            commit_on_propose: false,
            durable_through: Position::ZERO,
        }
    }

    /// Hands the state machine every durable entry not yet committed.
    fn commit_durable(&mut self) {
        let from = self.durable.partition_point(|e| e.pos <= self.commit);
        let to = self
            .durable
            .partition_point(|e| e.pos <= self.durable_through);
        self.ready
            .committed
            .extend(self.durable[from..to].iter().cloned());
        self.commit = self.durable_through;
    }
}

impl Replica for Solo {
    type Message = ();
    type HardState = u64;
    fn id(&self) -> NodeId {
        1
    }
    fn tick(&mut self, _: Time) {}
    fn next_deadline(&self) -> Time {
        Time::from_secs(3600)
    }
    fn receive(&mut self, _: Time, _: NodeId, _: ()) {}
    fn propose(&mut self, _: Time, command: Command) -> Result<Position, ProposeError> {
        if self.commit_on_propose {
            self.commit_durable();
        }
        self.last = Position::new(1, self.last.seq + 1);
        let e = Entry::command(self.last, command);
        match self.ready.persist.last_mut() {
            Some(PersistOp::Append(es)) => es.push(e),
            _ => self.ready.persist.push(PersistOp::Append(vec![e])),
        }
        Ok(self.last)
    }
    fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }
    fn take_ready(&mut self) -> Ready<(), u64> {
        let r = std::mem::take(&mut self.ready);
        for op in &r.persist {
            if let PersistOp::Append(es) = op {
                self.durable.extend(es.iter().cloned());
            }
        }
        r
    }
    fn compact(&mut self, _: Time, snapshot: Snapshot) {
        self.compacted.lock().unwrap().push(snapshot.last);
    }
    fn persisted(&mut self, _: Time, through: Position) {
        self.durable_through = through;
        if !self.commit_on_propose {
            self.commit_durable();
        }
        if self.snapshot_at.is_some_and(|at| at <= through) {
            self.ready.snapshot_at = self.snapshot_at.take();
        }
        // A heartbeat-like message to nobody, to exercise sending.
        self.ready.messages.push(Envelope { to: 2, msg: () });
    }
    fn status(&self) -> Status {
        Status {
            id: 1,
            role: Role::Leader,
            role_name: "Solo",
            era: 1,
            leader: Some(1),
            vote: None,
            commit: self.commit,
            last: self.last,
        }
    }
}

fn put(client: u64, seq: u64, key: &str, value: &str) -> Command {
    KvCommand {
        client,
        seq,
        op: KvOp::Put {
            key: key.into(),
            value: value.into(),
        },
    }
    .encode()
}

fn get(client: u64, seq: u64, key: &str) -> Command {
    KvCommand {
        client,
        seq,
        op: KvOp::Get { key: key.into() },
    }
    .encode()
}

async fn start(
    dir: &std::path::Path,
) -> (
    tokio::task::JoinHandle<Result<NodeStats, NodeError>>,
    NodeHandle,
) {
    let store = FileLog::open(dir).unwrap();
    let mut nets = MemNetwork::build::<()>(&[1]);
    let (node, handle) = Node::start(store, nets.remove(0), KvStore::default(), |rec, _| {
        Solo::new(rec)
    })
    .await
    .unwrap();
    (tokio::spawn(node.run()), handle)
}

/// Drops the last handle and waits (10 s at most) for the node to stop cleanly.
async fn stop_node(
    handle: NodeHandle,
    task: tokio::task::JoinHandle<Result<NodeStats, NodeError>>,
) -> NodeStats {
    drop(handle);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the node stops once its last handle is gone")
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_share_fsyncs_and_each_gets_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let (task, handle) = start(dir.path()).await;
    let mut joins = Vec::new();
    for c in 0..200u64 {
        let h = handle.clone();
        joins.push(tokio::spawn(async move {
            h.submit(put(c, 1, &format!("k{c}"), &format!("v{c}")))
                .await
        }));
    }
    for j in joins {
        let out = j.await.unwrap().unwrap();
        assert_eq!(codec::decode::<KvOutput>(&out).unwrap(), KvOutput::Written);
    }
    let out = handle.submit(get(999, 1, "k7")).await.unwrap();
    assert_eq!(
        codec::decode::<KvOutput>(&out).unwrap(),
        KvOutput::Value(Some("v7".into()))
    );
    let mut status = handle.watch_status();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.commit == Position::new(1, 201)),
    )
    .await
    .expect("the status reports the last commit")
    .unwrap();
    let stats = stop_node(handle, task).await;
    assert_eq!(stats.appended, 201);
    assert!(
        stats.syncs < 200,
        "group commit should batch 201 proposals into fewer fsyncs, got {}",
        stats.syncs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_replays_its_file_log_into_the_state_machine() {
    let dir = tempfile::tempdir().unwrap();
    let (task, handle) = start(dir.path()).await;
    for i in 0..10u64 {
        handle
            .submit(put(1, i + 1, "k", &format!("v{i}")))
            .await
            .unwrap();
    }
    drop(handle);
    task.await.unwrap().unwrap();

    let (task, handle) = start(dir.path()).await;
    let out = handle.submit(get(2, 1, "k")).await.unwrap();
    assert_eq!(
        codec::decode::<KvOutput>(&out).unwrap(),
        KvOutput::Value(Some("v9".into()))
    );
    // The status is published at the end of the turn that answered the read.
    let mut status = handle.watch_status();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.last == Position::new(1, 11)),
    )
    .await
    .expect("the status reports the recovered log plus the read")
    .unwrap();
    drop(handle);
    task.await.unwrap().unwrap();
}

/// A key-value store whose snapshot encoding waits until the test opens a gate.
struct Gated {
    kv: KvStore,
    gate: std::sync::Arc<std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>>,
}

#[async_trait::async_trait]
impl StateMachine for Gated {
    async fn apply(&mut self, pos: Position, command: &Command) -> Bytes {
        self.kv.apply(pos, command).await
    }
    async fn snapshot(&mut self) -> Bytes {
        (self.snapshot_job().await)()
    }
    async fn snapshot_job(&mut self) -> consensus_core::SnapshotJob {
        let inner = self.kv.snapshot_job().await;
        let gate = self.gate.lock().unwrap().take();
        Box::new(move || {
            if let Some(gate) = gate {
                let _ = gate.recv();
            }
            inner()
        })
    }
    async fn restore(&mut self, data: &[u8]) -> Result<(), consensus_core::RestoreError> {
        self.kv.restore(data).await
    }
    async fn query(&mut self, command: &Command) -> Bytes {
        self.kv.query(command).await
    }
}

/// The node keeps committing and answering while a snapshot is being encoded (a leader that
/// stopped for a large snapshot lost its followers: ZAB's syncLimit is 300 ms), and hands the
/// snapshot to the core once it is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_goes_on_while_a_snapshot_is_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let (open, gate) = std::sync::mpsc::channel();
    let sm = Gated {
        kv: KvStore::default(),
        gate: std::sync::Arc::new(std::sync::Mutex::new(Some(gate))),
    };
    let compacted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = compacted.clone();
    let mut nets = MemNetwork::build::<()>(&[1]);
    let (node, handle) = Node::start(
        FileLog::open(dir.path()).unwrap(),
        nets.remove(0),
        sm,
        |rec, _| {
            let mut solo = Solo::new(rec);
            solo.snapshot_at = Some(Position::new(1, 1));
            solo.compacted = seen;
            solo
        },
    )
    .await
    .unwrap();
    let task = tokio::spawn(node.run());
    handle.submit(put(1, 1, "a", "1")).await.unwrap();
    // The snapshot at 1 is now held at the gate; later writes still commit.
    for seq in 2..=5u64 {
        let out = tokio::time::timeout(
            Duration::from_secs(10),
            handle.submit(put(1, seq, "a", &seq.to_string())),
        )
        .await
        .expect("a write is answered while the snapshot is encoded")
        .unwrap();
        assert_eq!(codec::decode::<KvOutput>(&out).unwrap(), KvOutput::Written);
    }
    assert!(compacted.lock().unwrap().is_empty());
    // Writers that never let the request queue run dry: the finished snapshot must still be
    // picked up (the loop's select prefers requests).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for c in 10..26u64 {
        let (h, stop) = (handle.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut seq = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seq += 1;
                let _ = h.submit(put(c, seq, "b", "x")).await;
            }
        }));
    }
    open.send(()).unwrap();
    let landed = tokio::time::timeout(Duration::from_secs(10), async {
        while compacted.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    landed.expect("the encoded snapshot reaches the core under a steady load");
    assert_eq!(*compacted.lock().unwrap(), vec![Position::new(1, 1)]);
    stop_node(handle, task).await;
}

/// A store whose fsyncs each wait for a permit the test hands out.
struct HeldSyncs {
    inner: MemLogStore<u64>,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

#[consensus_core::async_trait]
impl LogStore<u64> for HeldSyncs {
    async fn write(&mut self, ops: &[PersistOp<u64>]) -> Result<(), StorageError> {
        self.inner.write(ops).await
    }
    async fn sync(&mut self) -> Result<(), StorageError> {
        self.permits.acquire().await.expect("never closed").forget();
        self.inner.sync().await
    }
    async fn recover(&mut self) -> Result<Recovered<u64>, StorageError> {
        self.inner.recover().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_answered_before_the_fsync_of_the_append_beside_it() {
    // One fsync allowed: the first write's. Its commit then comes with the second write's
    // append, in one Ready, whose fsync is held.
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
    let store = HeldSyncs {
        inner: MemLogStore::new(),
        permits: permits.clone(),
    };
    let mut nets = MemNetwork::build::<()>(&[1]);
    let (node, handle) = Node::start(store, nets.remove(0), KvStore::default(), |rec, _| {
        let mut solo = Solo::new(rec);
        solo.commit_on_propose = true;
        solo
    })
    .await
    .unwrap();
    let task = tokio::spawn(node.run());
    let h = handle.clone();
    let first = tokio::spawn(async move { h.submit(put(1, 1, "a", "1")).await });
    tokio::time::timeout(Duration::from_secs(10), async {
        while permits.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the first write's fsync happens");
    // The node takes the next write in its next turn, after it told the core that the
    // first is durable: the core then commits the first beside the second's append.
    let h = handle.clone();
    let second = tokio::spawn(async move { h.submit(put(2, 1, "b", "2")).await });
    let out = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("the first write is answered while the second's fsync is held")
        .unwrap()
        .unwrap();
    assert_eq!(codec::decode::<KvOutput>(&out).unwrap(), KvOutput::Written);
    assert!(!second.is_finished());
    assert_eq!(permits.available_permits(), 0, "no fsync was let through");
    permits.add_permits(100);
    second.abort();
    let _ = second.await;
    stop_node(handle, task).await;
}
