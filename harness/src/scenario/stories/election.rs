//! The first election, and the heartbeats that keep its winner in place.

use super::{roles, sends, us, SEC};
use crate::protocol::words::fill;
use crate::scenario::ms;
use crate::scenario::Script;

pub(crate) fn election(s: &mut Script) {
    let n = s.c.size();
    let (followers, waiting) = (s.w.starting_role, s.w.election_start);
    s.note(&format!(
        "All {n} nodes start as {followers}, with no leader; {waiting}."
    ));
    let Some(leader) = s.wait_leader(5 * SEC) else {
        s.fact("leader_elected", false);
        s.say("No leader was elected within 5 s.".into());
        return;
    };
    let elected_at = s.now();
    let era = s.c.status(leader).map_or(0, |st| st.era);
    s.note(&format!(
        "n{leader} leads {} {era}; watch its heartbeats for one second.",
        s.era_word()
    ));
    let tr = s.c.trace_events().to_vec();
    let first_candidate = roles(&tr, 0)
        .into_iter()
        .find(|(_, _, role, _)| role != "Follower")
        .map(|(t, node, _, name)| (t, node, name));
    s.c.run_for(SEC);
    let still = s.c.leader();
    let tr = s.c.trace_events().to_vec();
    let changes_after: usize = roles(&tr, elected_at.as_micros() as u64 + 1)
        .iter()
        .filter(|(_, _, role, _)| role == "Candidate")
        .count();
    let beat = s.w.heartbeat_message;
    let heartbeats = sends(&tr, elected_at.as_micros() as u64, u64::MAX, beat)
        .iter()
        .filter(|(f, _, m)| *f == leader && m.split('+').any(|p| p == beat))
        .count();
    s.fact("leader_elected", true);
    s.fact("leader", leader);
    s.fact("era", era);
    s.fact("elected_at_ms", elected_at.as_secs_f64() * 1000.0);
    s.fact("leader_kept", still == Some(leader));
    s.fact("elections_after", changes_after);
    s.fact("heartbeats", heartbeats);
    if let Some(sentence) = s.w.elected {
        s.say(fill(
            sentence,
            &[
                ("leader", leader.to_string()),
                ("era", era.to_string()),
                ("at", ms(elected_at)),
            ],
        ));
    } else if let Some((t, node, role)) = first_candidate {
        s.fact("first_candidate", node);
        s.say(format!(
            "n{node} moved first ({role} at {}); n{leader} won {} {era} at {}.",
            us(t),
            s.era_word(),
            ms(elected_at)
        ));
    }
    s.say(format!(
        "n{leader} was still the leader 1 s later: {heartbeats} {} kept the others from starting an election.",
        s.w.heartbeats
    ));
}
