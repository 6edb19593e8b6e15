//! The scripts of the scenarios, one file per story, and the trace queries they share.

mod disruptive_rejoin;
mod election;
mod even_cluster;
mod lagging_follower;
mod leader_crash;
mod leader_transfer;
mod lease_drift;
mod membership;
mod partition;
mod replication;
mod split_vote;
mod stale_proposal;
mod stale_read;

pub(super) use disruptive_rejoin::disruptive_rejoin;
pub(super) use election::election;
pub(super) use even_cluster::even_cluster;
pub(super) use lagging_follower::lagging_follower;
pub(super) use leader_crash::leader_crash;
pub(super) use leader_transfer::leader_transfer;
pub(super) use lease_drift::lease_drift;
pub(super) use membership::{grow_3_to_5, remove_leader, replace_node, single_server_bug};
pub(super) use partition::partition;
pub(super) use replication::replication;
pub(super) use split_vote::split_vote;
pub(super) use stale_proposal::stale_proposal;
pub(super) use stale_read::stale_read;

use crate::sim::TraceEvent;
use consensus_core::NodeId;
use std::collections::BTreeMap;
use std::time::Duration;

pub(super) const SEC: Duration = Duration::from_secs(1);

pub(super) fn us(t: u64) -> String {
    format!("{:.1} ms", t as f64 / 1000.0)
}

/// State events of the trace after `from` µs: (t, node, role_name, era, leader, vote, commit).
pub(super) fn states(
    tr: &[TraceEvent],
    from: u64,
) -> Vec<(u64, NodeId, String, u64, Option<NodeId>)> {
    tr.iter()
        .filter_map(|e| match e {
            TraceEvent::State {
                t,
                node,
                role_name,
                era,
                leader,
                ..
            } if *t >= from => Some((*t, *node, role_name.clone(), *era, *leader)),
            _ => None,
        })
        .collect()
}

/// Role changes after `from` µs: (t, node, protocol-neutral role, the protocol's role name).
pub(super) fn roles(tr: &[TraceEvent], from: u64) -> Vec<(u64, NodeId, String, String)> {
    tr.iter()
        .filter_map(|e| match e {
            TraceEvent::State {
                t,
                node,
                role,
                role_name,
                ..
            } if *t >= from => Some((*t, *node, role.clone(), role_name.clone())),
            _ => None,
        })
        .collect()
}

/// Nodes that became leader (from another role) at or after `from` µs, with the era.
pub(super) fn new_leaders(tr: &[TraceEvent], from: u64) -> Vec<(u64, NodeId, u64)> {
    let mut role: BTreeMap<NodeId, String> = BTreeMap::new();
    let mut out = Vec::new();
    for e in tr {
        if let TraceEvent::State {
            t,
            node,
            role: r,
            era,
            ..
        } = e
        {
            let was = role.insert(*node, r.clone());
            if r == "Leader" && was.as_deref() != Some("Leader") && *t >= from {
                out.push((*t, *node, *era));
            }
        }
    }
    out
}

/// Message sends after `from` µs whose type contains `name`, with receivers.
pub(super) fn sends(
    tr: &[TraceEvent],
    from: u64,
    to: u64,
    name: &str,
) -> Vec<(NodeId, NodeId, String)> {
    tr.iter()
        .filter_map(|e| match e {
            TraceEvent::Send {
                t,
                from: f,
                to: r,
                msg,
                ..
            } if *t >= from && *t <= to && msg.contains(name) => Some((*f, *r, msg.clone())),
            _ => None,
        })
        .collect()
}
