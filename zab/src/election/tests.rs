use super::*;

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

fn vote(leader: NodeId, epoch: u32, counter: u32, peer_epoch: u64) -> Vote {
    Vote {
        leader,
        zxid: Zxid::new(epoch, counter),
        peer_epoch,
    }
}

fn fle(id: NodeId, n: u64) -> FastLeaderElection {
    let voters: Vec<NodeId> = (1..=n).collect();
    FastLeaderElection::new(id, &voters, ElectionConfig::default())
}

fn looking(v: Vote, round: u64) -> Notification {
    Notification {
        state: ServerState::Looking,
        leader: v.leader,
        zxid: v.zxid,
        election_epoch: round,
        peer_epoch: v.peer_epoch,
    }
}

fn settled(state: ServerState, v: Vote, round: u64) -> Notification {
    Notification {
        state,
        ..looking(v, round)
    }
}

#[test]
fn votes_order_by_peer_epoch_then_zxid_then_server_id() {
    assert!(vote(1, 1, 0, 2).beats(&vote(3, 9, 9, 1)), "epoch first");
    assert!(vote(1, 1, 5, 1).beats(&vote(3, 1, 4, 1)), "then zxid");
    assert!(vote(3, 1, 5, 1).beats(&vote(2, 1, 5, 1)), "then id");
    assert!(!vote(2, 1, 5, 1).beats(&vote(2, 1, 5, 1)));
}

#[test]
fn looking_increments_the_round_and_votes_for_itself_to_every_peer() {
    let mut f = fle(2, 3);
    f.look_for_leader(ms(0), vote(2, 1, 7, 1));
    assert_eq!(f.logical_clock(), 1);
    let out = f.take_messages();
    assert_eq!(out.len(), 2);
    for (to, n) in out {
        assert!(to == 1 || to == 3);
        assert_eq!(n, looking(vote(2, 1, 7, 1), 1));
    }
    f.look_for_leader(ms(10), vote(2, 1, 7, 1));
    assert_eq!(f.logical_clock(), 2);
}

#[test]
fn a_higher_round_is_adopted_and_the_better_of_the_two_initial_votes_proposed() {
    let mut f = fle(2, 3);
    f.look_for_leader(ms(0), vote(2, 1, 7, 1));
    f.take_messages();
    // Node 1 is in round 5 with a worse vote: adopt the round, keep our own vote.
    f.receive(ms(1), 1, looking(vote(1, 1, 3, 1), 5));
    assert_eq!(f.logical_clock(), 5);
    assert_eq!(f.proposed(), vote(2, 1, 7, 1));
    let out = f.take_messages();
    assert_eq!(out.len(), 2, "re-broadcast in the new round");
    assert!(out.iter().all(|(_, n)| n.election_epoch == 5));
    // In round 9 node 3 proposes a better vote: adopt it.
    f.receive(ms(2), 3, looking(vote(3, 1, 9, 1), 9));
    assert_eq!(f.proposed(), vote(3, 1, 9, 1));
}

#[test]
fn a_stale_round_is_answered_with_our_current_vote_and_otherwise_ignored() {
    let mut f = fle(2, 3);
    f.look_for_leader(ms(0), vote(2, 1, 7, 1));
    f.receive(ms(1), 1, looking(vote(1, 1, 3, 1), 9));
    f.take_messages();
    f.receive(ms(2), 3, looking(vote(3, 2, 0, 2), 4));
    assert_eq!(
        f.proposed(),
        vote(2, 1, 7, 1),
        "a better vote from an old round does not count"
    );
    assert_eq!(f.take_messages(), vec![(3, looking(vote(2, 1, 7, 1), 9))]);
}

#[test]
fn a_better_vote_in_the_same_round_is_adopted_and_re_broadcast() {
    let mut f = fle(1, 3);
    f.look_for_leader(ms(0), vote(1, 1, 3, 1));
    f.take_messages();
    f.receive(ms(1), 2, looking(vote(2, 1, 7, 1), 1));
    assert_eq!(f.proposed(), vote(2, 1, 7, 1));
    assert_eq!(f.take_messages().len(), 2);
    // A worse vote changes nothing and sends nothing.
    f.receive(ms(2), 3, looking(vote(3, 1, 1, 1), 1));
    assert_eq!(f.proposed(), vote(2, 1, 7, 1));
    assert!(f.take_messages().is_empty());
}

#[test]
fn a_quorum_decides_only_after_the_finalize_wait() {
    let mut f = fle(1, 3);
    f.look_for_leader(ms(0), vote(1, 1, 3, 1));
    assert_eq!(f.receive(ms(10), 2, looking(vote(2, 1, 7, 1), 1)), None);
    assert_eq!(f.receive(ms(12), 3, looking(vote(2, 1, 7, 1), 1)), None);
    assert_eq!(f.next_deadline(), Some(ms(10 + 10)));
    assert_eq!(f.tick(ms(19)), None);
    let d = f.tick(ms(20)).expect("decided");
    assert_eq!(d.state, ServerState::Following);
    assert_eq!(d.vote, vote(2, 1, 7, 1));
    assert_eq!(f.state(), ServerState::Following);
}

#[test]
fn a_better_vote_during_the_finalize_wait_resumes_the_election() {
    let mut f = fle(1, 5);
    f.look_for_leader(ms(0), vote(1, 1, 3, 1));
    f.receive(ms(10), 2, looking(vote(2, 1, 7, 1), 1));
    f.receive(ms(11), 3, looking(vote(2, 1, 7, 1), 1));
    // 1, 2 and 3 agree on 2: a quorum of 5. Then 4 reports a better candidate.
    f.receive(ms(50), 4, looking(vote(4, 1, 8, 1), 1));
    assert_eq!(f.proposed(), vote(4, 1, 8, 1));
    assert_eq!(f.tick(ms(300)), None, "the old quorum no longer holds");
    f.receive(ms(310), 5, looking(vote(4, 1, 8, 1), 1));
    f.receive(ms(311), 3, looking(vote(4, 1, 8, 1), 1));
    let d = f.tick(ms(311 + 200)).expect("decided");
    assert_eq!(d.vote.leader, 4);
}

#[test]
fn a_server_whose_own_vote_wins_decides_to_lead() {
    let mut f = fle(3, 3);
    f.look_for_leader(ms(0), vote(3, 1, 9, 1));
    f.receive(ms(1), 1, looking(vote(3, 1, 9, 1), 1));
    let d = f.tick(ms(201)).expect("decided");
    assert_eq!(d.state, ServerState::Leading);
}

#[test]
fn silence_resends_notifications_with_doubling_backoff_up_to_the_cap() {
    let mut f = FastLeaderElection::new(
        1,
        &[1, 2, 3],
        ElectionConfig {
            min_notification_interval: ms(200),
            max_notification_interval: ms(1000),
            ..ElectionConfig::default()
        },
    );
    f.look_for_leader(ms(0), vote(1, 1, 0, 1));
    f.take_messages();
    let mut at = Vec::new();
    for _ in 0..6 {
        let t = f.next_deadline().unwrap();
        f.tick(t);
        assert_eq!(f.take_messages().len(), 2);
        at.push(t.as_millis());
    }
    assert_eq!(at, vec![200, 600, 1400, 2400, 3400, 4400]);
}

#[test]
fn a_settled_server_answers_a_looking_one_with_its_final_vote() {
    let mut f = fle(2, 3);
    f.look_for_leader(ms(0), vote(2, 1, 3, 1));
    f.receive(ms(1), 3, looking(vote(3, 1, 9, 1), 1));
    f.tick(ms(201)).expect("decided to follow 3");
    f.take_messages();
    f.receive(ms(500), 1, looking(vote(1, 0, 0, 0), 1));
    assert_eq!(
        f.take_messages(),
        vec![(1, settled(ServerState::Following, vote(3, 1, 9, 1), 1))]
    );
    // Settled servers ignore each other.
    f.receive(
        ms(501),
        3,
        settled(ServerState::Leading, vote(3, 1, 9, 1), 1),
    );
    assert!(f.take_messages().is_empty());
}

#[test]
fn a_latecomer_follows_the_existing_leader_once_a_quorum_reports_it_and_it_leads() {
    let mut f = fle(3, 3);
    f.look_for_leader(ms(0), vote(3, 0, 0, 0));
    // Node 2 follows 1 (its zxid differs from the leader's: settled votes ignore zxids).
    assert_eq!(
        f.receive(
            ms(1),
            2,
            settled(ServerState::Following, vote(1, 2, 4, 2), 7)
        ),
        None
    );
    let d = f
        .receive(ms(2), 1, settled(ServerState::Leading, vote(1, 2, 9, 2), 7))
        .expect("joins the running leader without an election");
    assert_eq!(d.state, ServerState::Following);
    assert_eq!(d.vote.leader, 1);
    assert_eq!(f.logical_clock(), 7, "adopts the leader's round");
}

/// Voters {2, 3, 4} in force, {1, 2, 3, 4} proposed in epoch 46 in this server's log and
/// never committed: node 3 leads epoch 47 with 4 following.
fn pending_proposal(id: NodeId) -> FastLeaderElection {
    let mut f = fle(id, 4);
    f.set_quorum(Quorum::joint(&[2, 3, 4], &[1, 2, 3, 4]));
    f.set_pending(Some((Quorum::majority(&[2, 3, 4]), 46)));
    f.look_for_leader(ms(0), vote(id, 46, 464, 46));
    f
}

#[test]
fn a_dead_proposal_from_an_older_epoch_does_not_keep_a_server_from_a_later_leader() {
    let mut f = pending_proposal(2);
    assert_eq!(
        f.receive(
            ms(1),
            4,
            settled(ServerState::Following, vote(3, 47, 262, 47), 9)
        ),
        None
    );
    // 3 and 4 are a quorum of {2, 3, 4}, not of {1, 2, 3, 4}: ZooKeeper would wait for both.
    let d = f
        .receive(
            ms(2),
            3,
            settled(ServerState::Leading, vote(3, 47, 262, 47), 9),
        )
        .expect("joins the leader of the later epoch");
    assert_eq!(d.vote.leader, 3);
}

#[test]
fn a_proposal_of_the_leaders_own_epoch_still_needs_both_quorums() {
    // The proposal may be the leader's own, possibly committed: ZooKeeper's rule holds.
    let mut f = pending_proposal(2);
    f.set_pending(Some((Quorum::majority(&[2, 3, 4]), 47)));
    f.receive(
        ms(1),
        4,
        settled(ServerState::Following, vote(3, 47, 262, 47), 9),
    );
    let d = f.receive(
        ms(2),
        3,
        settled(ServerState::Leading, vote(3, 47, 262, 47), 9),
    );
    assert_eq!(d, None, "two of {{1, 2, 3, 4}} are not a quorum");
    let d = f.receive(
        ms(3),
        1,
        settled(ServerState::Following, vote(3, 47, 262, 47), 9),
    );
    assert_eq!(d.map(|d| d.vote.leader), Some(3));
}

#[test]
fn a_latecomer_never_follows_a_leader_that_has_not_said_it_leads() {
    let mut f = fle(5, 5);
    f.look_for_leader(ms(0), vote(5, 0, 0, 0));
    // A quorum (2, 3, 4) say they follow 1, but 1 itself never said it leads (it may have
    // crashed): checkLeader refuses to follow it.
    for (t, from) in [(1, 2), (2, 3), (3, 4)] {
        let d = f.receive(
            ms(t),
            from,
            settled(ServerState::Following, vote(1, 2, 4, 2), 7),
        );
        assert_eq!(d, None, "after node {from}");
    }
    assert_eq!(f.state(), ServerState::Looking);
    // Once 1 says it leads, the latecomer follows.
    let d = f.receive(ms(4), 1, settled(ServerState::Leading, vote(1, 2, 9, 2), 7));
    assert_eq!(d.map(|d| d.vote.leader), Some(1));
}

#[test]
fn a_settled_vote_reports_the_epoch_the_server_joined() {
    // ZOOKEEPER-1732: node 2 settled following 3 in an older round (peer epoch 7); 3 was then
    // re-elected and leads epoch 9. Once 2 follows in epoch 9 its answers must say so, or a
    // latecomer sees 2 and 3 disagree and never joins.
    let mut f = fle(2, 3);
    f.look_for_leader(ms(0), vote(2, 7, 1, 7));
    f.receive(ms(1), 3, looking(vote(3, 7, 9, 7), 1));
    f.tick(ms(201)).expect("follows 3");
    f.update_election_vote(9);
    f.take_messages();
    f.receive(ms(300), 1, looking(vote(1, 0, 0, 0), 1));
    let out = f.take_messages();
    assert_eq!(out[0].1.peer_epoch, 9);
    assert_eq!(out[0].1.leader, 3);
}

/// Delivers notifications between in-memory elections until all have decided.
fn run_election(mut nodes: Vec<FastLeaderElection>, own: &[Vote]) -> Vec<Decision> {
    let mut now = ms(0);
    for (n, v) in nodes.iter_mut().zip(own) {
        n.look_for_leader(now, *v);
    }
    let mut decided: Vec<Option<Decision>> = vec![None; nodes.len()];
    for _ in 0..10_000 {
        let mut queue = Vec::new();
        for (i, n) in nodes.iter_mut().enumerate() {
            for (to, m) in n.take_messages() {
                queue.push((i as NodeId + 1, to, m));
            }
        }
        for (from, to, m) in queue {
            if let Some(d) = nodes[to as usize - 1].receive(now, from, m) {
                decided[to as usize - 1] = Some(d);
            }
        }
        now += ms(1);
        for (i, n) in nodes.iter_mut().enumerate() {
            if let Some(d) = n.tick(now) {
                decided[i] = Some(d);
            }
        }
        if decided.iter().all(Option::is_some) {
            return decided.into_iter().map(Option::unwrap).collect();
        }
    }
    panic!("election did not finish: {decided:?}");
}

#[test]
fn three_servers_elect_the_one_with_the_most_recent_history() {
    let nodes: Vec<_> = (1..=3).map(|id| fle(id, 3)).collect();
    // Node 1 has the highest zxid in the newest epoch; node 3 the highest id.
    let own = [vote(1, 2, 5, 2), vote(2, 2, 3, 2), vote(3, 1, 9, 1)];
    let d = run_election(nodes, &own);
    assert!(d.iter().all(|d| d.vote.leader == 1), "{d:?}");
    assert_eq!(d[0].state, ServerState::Leading);
    assert_eq!(d[1].state, ServerState::Following);
}

#[test]
fn equal_histories_elect_the_highest_server_id() {
    let nodes: Vec<_> = (1..=5).map(|id| fle(id, 5)).collect();
    let own: Vec<Vote> = (1..=5).map(|id| vote(id, 1, 4, 1)).collect();
    let d = run_election(nodes, &own);
    assert!(d.iter().all(|d| d.vote.leader == 5), "{d:?}");
}
