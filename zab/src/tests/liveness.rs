//! Liveness: silent leaders and followers, lost quorums, pings.

use super::*;

#[test]
fn a_follower_whose_leader_is_silent_for_the_sync_limit_goes_looking() {
    let (mut f, _feed) = broadcasting_follower();
    // Last heard at 4 ms; syncLimit is 3 ticks of 100 ms.
    f.tick(ms(4 + 300));
    assert!(matches!(f.role, ZabRole::Following(_)));
    f.tick(ms(4 + 301));
    assert!(matches!(f.role, ZabRole::Looking));
}

#[test]
fn a_leader_without_a_synced_quorum_steps_down() {
    let (mut d, l) = led_ensemble(Config::default());
    let now = d.now();
    // Its followers fall silent: after syncLimit the leader drops them and gives up.
    let leader = d.node_mut(l);
    leader.tick(now + ms(200));
    assert!(leader.is_established_leader(), "within syncLimit it stays");
    leader.tick(now + ms(400));
    assert!(matches!(leader.role, ZabRole::Looking));
}

#[test]
fn the_leader_pings_its_learners_every_half_tick() {
    let (mut d, l) = led_ensemble(Config::default());
    let now = d.now();
    let leader = d.node_mut(l);
    leader.take_ready();
    let next = leader.next_deadline();
    assert!(next <= now + ms(50));
    leader.tick(next);
    let pings = packets(&leader.take_ready())
        .into_iter()
        .filter(|(_, p)| *p == Packet::Ping)
        .count();
    assert_eq!(pings, 2);
}
