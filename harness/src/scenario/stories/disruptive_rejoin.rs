//! An isolated node rejoins: does it unseat the healthy leader?

use super::{new_leaders, roles, SEC};
use crate::scenario::ms;
use crate::scenario::Script;
use std::time::Duration;

pub(crate) fn disruptive_rejoin(s: &mut Script) {
    let Some(leader) = s.wait_leader(5 * SEC) else {
        return;
    };
    s.c.run_for(Duration::from_millis(200));
    let lone = s.c.ids().find(|&i| i != leader).expect("5 nodes");
    let era_before = s.c.status(leader).map_or(0, |st| st.era);
    s.note(&format!(
        "n{lone} is cut off from everyone for two seconds."
    ));
    s.c.disconnect(lone);
    s.quietly(&format!("n{lone} is alone"), |s| s.c.run_for(2 * SEC));
    let lone_era = s.c.status(lone).map_or(0, |st| st.era);
    let lone_role = s.c.status(lone).map(|st| st.role_name).unwrap_or("?");
    s.note(&format!("n{lone} rejoins."));
    let t0 = s.now();
    s.c.connect(lone);
    s.c.run_until(10 * SEC, |c| {
        c.leader()
            .is_some_and(|l| c.status(lone).is_some_and(|st| st.leader == Some(l)))
    });
    let rejoin = s.now() - t0;
    s.c.run_for(SEC);
    let tr = s.c.trace_events().to_vec();
    let t0us = t0.as_micros() as u64;
    let leaders_after = new_leaders(&tr, t0us);
    let stepped_down = roles(&tr, t0us)
        .iter()
        .any(|(_, n, role, _)| *n == leader && role != "Leader");
    let now_leader = s.c.leader();
    let era_after = now_leader
        .and_then(|l| s.c.status(l))
        .map_or(0, |st| st.era);
    let disrupted = stepped_down || now_leader != Some(leader) || era_after != era_before;
    s.fact("leader_before", leader);
    s.fact("era_before", era_before);
    s.fact("isolated_era", lone_era);
    s.fact("leader_after", now_leader.unwrap_or(0));
    s.fact("era_after", era_after);
    s.fact("leader_disrupted", disrupted);
    s.fact("rejoin_ms", rejoin.as_secs_f64() * 1000.0);
    s.fact("new_elections_after_rejoin", leaders_after.len());
    s.fact(
        "rejoined_follows",
        s.c.status(lone).and_then(|st| st.leader) == now_leader && now_leader.is_some(),
    );
    let word = s.era_word();
    s.say(format!(
        "While alone, n{lone} was {lone_role} in {word} {lone_era} (the cluster was in {word} {era_before})."
    ));
    s.say(if disrupted {
        format!(
            "On rejoining it disrupted the cluster: n{leader} stepped down and n{} leads {word} {era_after}.",
            now_leader.unwrap_or(0)
        )
    } else {
        format!(
            "On rejoining it caused no election: n{leader} still leads {word} {era_before}, and n{lone} follows it ({} after it rejoined{}).",
            ms(rejoin),
            s.w.rejoin_aside
        )
    });
}
