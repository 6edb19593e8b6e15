//! The leader crashes; how long until a new one leads, and whether a committed write survived.

use super::SEC;
use crate::scenario::ms;
use crate::scenario::Script;
use std::time::Duration;

pub(crate) fn leader_crash(s: &mut Script) {
    let Some(old) = s.wait_leader(5 * SEC) else {
        return;
    };
    let pos = s.put(old, "x", "1");
    if let Some(p) = pos {
        s.wait_committed(old, p, SEC);
    }
    s.c.run_for(Duration::from_millis(100));
    s.note(&format!("The leader n{old} crashes."));
    let crashed_at = s.now();
    s.c.crash(old);
    let new = s.wait_new_leader(old, 10 * SEC);
    let Some(new) = new else {
        s.fact("new_leader", false);
        s.say("No new leader within 10 s.".into());
        return;
    };
    let gap = s.now() - crashed_at;
    s.c.run_for(Duration::from_millis(200));
    let survived = s.value(new, "x").as_deref() == Some("1");
    s.fact("old_leader", old);
    s.fact("new_leader", new);
    s.fact("no_leader_ms", gap.as_secs_f64() * 1000.0);
    s.fact("committed_write_survived", survived);
    s.say(format!(
        "n{old} crashed at {}; n{new} was leading {} later ({} {}).",
        ms(crashed_at),
        ms(gap),
        s.era_word(),
        s.c.status(new).map_or(0, |st| st.era)
    ));
    s.say(format!(
        "The write x=1 committed before the crash {} on the new leader.",
        if survived { "is there" } else { "is MISSING" }
    ));
}
