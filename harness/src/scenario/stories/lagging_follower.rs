//! A follower cut off while the leader commits catches up: by log or by snapshot.

use super::{sends, SEC};
use crate::protocol::words::fill;
use crate::scenario::Script;
use crate::sim::TraceEvent;
use std::time::Duration;

pub(crate) fn lagging_follower(s: &mut Script) {
    let Some(leader) = s.wait_leader(5 * SEC) else {
        return;
    };
    let lag = s.c.ids().find(|&i| i != leader).expect("a follower");
    for (phase, writes) in [("short", 40usize), ("long", 400)] {
        let Some(leader) = s.wait_leader(5 * SEC) else {
            return;
        };
        s.note(&format!(
            "n{lag} is cut off while the leader commits {writes} writes."
        ));
        s.c.disconnect(lag);
        let done = s.quietly(&format!("{writes} writes commit without n{lag}"), |s| {
            s.write_many(&format!("{phase}-"), writes)
        });
        s.fact(&format!("{phase}_writes"), done);
        if phase == "short" {
            s.note(&format!(
                "Meanwhile the leader n{leader} crashes and restarts: the next leader knows nothing of n{lag}'s log."
            ));
            s.c.crash(leader);
            s.wait_new_leader(leader, 5 * SEC);
            s.c.restart(leader);
        }
        s.c.run_for(Duration::from_millis(500));
        s.note(&format!("n{lag} is reconnected and catches up."));
        let from = s.c.now().as_micros() as u64;
        s.c.connect(lag);
        let caught = s.wait_converged(10 * SEC);
        let to = s.c.now().as_micros() as u64;
        let tr = s.c.trace_events().to_vec();
        let to_lag = |name: &str| {
            sends(&tr, from, to, name)
                .iter()
                .filter(|(_, r, _)| *r == lag)
                .count()
        };
        let cu = s.w.catch_up;
        let (mechanism, why) = cu
            .mechanisms
            .iter()
            .copied()
            .find(|(m, _)| to_lag(m) > 0)
            .unwrap_or(cu.otherwise);
        let rejections = tr
            .iter()
            .filter(|e| {
                matches!(e, TraceEvent::Send { t, from: f, msg, fields, .. }
                    if *t >= from && *t <= to && *f == lag && (cu.is_rejection)(msg, fields))
            })
            .count();
        s.fact(&format!("{phase}_caught_up"), caught);
        s.fact(&format!("{phase}_mechanism"), mechanism);
        s.fact(&format!("{phase}_rejections"), rejections);
        let why = if mechanism == cu.otherwise.0 && rejections > 0 {
            cu.after_rejections
        } else {
            why
        };
        let how = fill(
            why,
            &[
                ("lag", lag.to_string()),
                ("rejections", rejections.to_string()),
            ],
        );
        s.say(format!(
            "After missing {done} writes, n{lag} {}: {how}.",
            if caught {
                "caught up"
            } else {
                "did NOT catch up"
            }
        ));
    }
}
