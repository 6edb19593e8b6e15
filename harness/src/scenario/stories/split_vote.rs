//! Competing candidates: split votes and a second round, or votes that converge at once.

use super::{states, SEC};
use crate::protocol::words::fill;
use crate::protocol::{Protocol, SplitVotes};
use crate::scenario::Outcome;
use crate::scenario::Script;
use crate::sim::{SimConfig, TraceEvent};
use consensus_core::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Where candidates can split the votes, finds from `seed` on a run whose first election
/// splits them; where votes converge, one run that shows it.
pub(crate) fn split_vote(protocol: Protocol, base: SimConfig, label: String) -> Outcome {
    let title = "split-vote";
    let (candidate_role, timeout) = match protocol.words().split_votes {
        SplitVotes::Split {
            candidate_role,
            timeout,
        } => (candidate_role, timeout),
        SplitVotes::Converge(why) => {
            return votes_converge(protocol, base, label, why);
        }
    };
    // A narrow timeout range makes simultaneous timeouts common; search for one.
    let mut last = None;
    for seed in base.seed..base.seed + 400 {
        let mut cfg = SimConfig {
            seed,
            ..base.clone()
        };
        cfg.knobs.election_timeout = Some(timeout);
        let mut s = Script::new(protocol, cfg, &format!("{title}: {label}"));
        s.note(&format!(
            "Timeouts are drawn from a narrow range ({}-{} ms) so that two nodes may time out together.",
            timeout.0.as_millis(),
            timeout.1.as_millis()
        ));
        let leader = s.wait_leader(10 * SEC);
        let tr = s.c.trace_events().to_vec();
        // Terms in which someone stood as Candidate, and whether anyone won them.
        let mut candidates: BTreeMap<u64, BTreeSet<NodeId>> = BTreeMap::new();
        let mut won: BTreeSet<u64> = BTreeSet::new();
        for (_, node, role, era, _) in states(&tr, 0) {
            if role == candidate_role {
                candidates.entry(era).or_default().insert(node);
            }
            if role == "Leader" {
                won.insert(era);
            }
        }
        let split = candidates
            .iter()
            .find(|(era, who)| who.len() >= 2 && !won.contains(era))
            .map(|(era, who)| (*era, who.clone()));
        let found = split.is_some() && leader.is_some();
        s.fact("split", split.is_some());
        if let Some((era, who)) = &split {
            let win_era = leader.and_then(|l| s.c.status(l)).map_or(0, |st| st.era);
            s.fact("split_term", *era);
            s.fact("split_candidates", who.len());
            s.fact("resolved_term", win_era);
            s.fact("leader", leader.unwrap_or(0));
            s.say(format!(
                "In term {era}, {} stood at once and split the votes: nobody reached a majority.",
                who.iter()
                    .map(|n| format!("n{n}"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ));
            s.say(format!(
                "Each drew a new random timeout; n{} timed out first in term {win_era} and won.",
                leader.unwrap_or(0)
            ));
            s.say(format!(
                "Found searching seeds from {}: seed {seed}.",
                base.seed
            ));
        }
        let out = s.finish(title, label.clone(), seed);
        if found {
            return out;
        }
        last = Some(out);
    }
    last.expect("at least one seed ran")
}

/// One run of an election whose votes converge without a second round.
fn votes_converge(protocol: Protocol, base: SimConfig, label: String, why: &str) -> Outcome {
    let title = "split-vote";
    let mut s = Script::new(protocol, base.clone(), &format!("{title}: {label}"));
    s.note("Every server starts LOOKING and votes for itself: five different votes at once.");
    let leader = s.wait_leader(5 * SEC);
    let tr = s.c.trace_events().to_vec();
    let votes: BTreeSet<NodeId> = tr
        .iter()
        .filter_map(|e| match e {
            TraceEvent::State { vote: Some(v), .. } => Some(*v),
            _ => None,
        })
        .collect();
    let max_id = s.c.ids().max().unwrap_or(0);
    s.fact("initial_votes", votes.len());
    s.fact("leader", leader.unwrap_or(0));
    s.fact("leader_is_best_vote", leader == Some(max_id));
    s.fact("rounds", 1);
    s.say(format!(
        "The servers cast {} different votes, yet no second round was needed: {}.",
        votes.len(),
        fill(why, &[("leader", leader.unwrap_or(0).to_string())])
    ));
    s.finish(title, label, base.seed)
}
