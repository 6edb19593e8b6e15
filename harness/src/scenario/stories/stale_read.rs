//! A follower that missed writes answers a local read with old data; a read at a read index
//! (Raft's ReadIndex, ZooKeeper's sync) waits until it has caught up.

use super::SEC;
use crate::scenario::Script;
use consensus_core::kv::{KvCommand, KvOp, KvOutput};
use consensus_core::{NodeId, ReadLevel};
use std::time::Duration;

/// Asks `node` for `key` at `level` and runs until it answers (up to `limit`): the value, or
/// `None` when it did not answer.
pub(crate) fn read_at(
    s: &mut Script,
    node: NodeId,
    level: ReadLevel,
    key: &str,
    limit: Duration,
) -> Option<Option<String>> {
    let get = KvCommand {
        client: 0,
        seq: 0,
        op: KvOp::Get { key: key.into() },
    }
    .encode();
    let read = s.c.read(node, level, get).ok()?;
    s.c.run_until(limit, |c| c.read_result(read).is_some());
    let out = s.c.read_result(read)?.ok()?;
    match consensus_core::codec::decode::<KvOutput>(&out) {
        Ok(KvOutput::Value(v)) => Some(v),
        _ => None,
    }
}

pub(crate) fn stale_read(s: &mut Script) {
    let Some(leader) = s.wait_leader(5 * SEC) else {
        return;
    };
    if let Some(p) = s.put(leader, "x", "1") {
        s.wait_committed(leader, p, SEC);
    }
    s.wait_converged(2 * SEC);
    s.note(&format!(
        "The leader n{leader} commits x=2; the moment it has, a client asks a follower that has not heard of the commit yet."
    ));
    let Some(pos) = s.put(leader, "x", "2") else {
        return;
    };
    s.c.step_until(SEC, |c| c.status(leader).is_some_and(|st| st.commit >= pos));
    let behind =
        s.c.ids()
            .find(|&i| i != leader && s.c.status(i).is_some_and(|st| st.commit < pos));
    let Some(lag) = behind else {
        s.fact("follower_behind", false);
        s.say("Every follower had learned of the commit already.".into());
        return;
    };
    let local = read_at(s, lag, ReadLevel::Local, "x", Duration::from_millis(5));
    let index = read_at(s, lag, ReadLevel::Index, "x", 2 * SEC);
    let show = |v: &Option<Option<String>>| match v {
        Some(Some(v)) => format!("x={v}"),
        Some(None) => "no x".into(),
        None => "no answer".into(),
    };
    s.fact("follower", lag);
    s.fact("local_read", show(&local));
    s.fact("index_read", show(&index));
    s.fact("local_read_stale", local == Some(Some("1".into())));
    s.fact("index_read_fresh", index == Some(Some("2".into())));
    s.say(format!(
        "The local read at n{lag} answered {} from its own state, which had not applied x=2 yet (followers learn of a commit through {}): stale, though never older than what its clients saw before.",
        show(&local),
        s.w.commit_notice
    ));
    s.say(format!(
        "The read at a read index answered {}: n{lag} asked the leader ({}), then waited until it had applied through the answer.",
        show(&index),
        s.w.read_index
    ));
}
