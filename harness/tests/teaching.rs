//! Every teaching scenario, for both protocols: the outcome each story promises.

use harness::protocol::{RAFT, ZAB};
use harness::scenario::{self, Outcome, SCENARIOS};
use harness::sim::trace::{read_jsonl, write_jsonl};
use harness::Protocol;

fn play(name: &str, kind: Protocol) -> Vec<Outcome> {
    let out = scenario::run(name, kind, 1).expect("the scenario exists");
    for o in &out {
        assert!(!o.trace.is_empty(), "{name}/{}: a trace", o.label);
        let story = scenario::narrate(o);
        assert!(story.len() > 5, "{name}/{}: a narration", o.label);
        assert!(!o.verdict.is_empty(), "{name}/{}: an outcome", o.label);
    }
    out
}

fn one(name: &str, kind: Protocol) -> Outcome {
    let mut v = play(name, kind);
    assert_eq!(v.len(), 1);
    v.remove(0)
}

const BOTH: [Protocol; 2] = [RAFT, ZAB];

#[test]
fn election_one_node_wins_and_heartbeats_keep_it() {
    for k in BOTH {
        let o = one("election", k);
        assert!(o.flag("leader_elected"), "{k:?}");
        assert!(o.flag("leader_kept"), "{k:?}: {:?}", o.facts);
        assert_eq!(o.num("elections_after"), Some(0.0), "{k:?}");
        assert!(o.num("heartbeats").unwrap() > 5.0, "{k:?}");
    }
}

#[test]
fn leader_crash_elects_another_and_keeps_committed_writes() {
    for k in BOTH {
        let o = one("leader-crash", k);
        assert_ne!(o.facts["new_leader"], o.facts["old_leader"], "{k:?}");
        assert!(o.num("no_leader_ms").unwrap() > 0.0, "{k:?}");
        assert!(o.flag("committed_write_survived"), "{k:?}");
    }
}

#[test]
fn leader_transfer_raft_hands_over_to_the_node_asked_zab_must_stop_its_leader() {
    let raft = one("leader-transfer", RAFT);
    assert!(raft.flag("transfer_supported"), "{:?}", raft.facts);
    assert!(raft.flag("chosen_node_leads"), "{:?}", raft.facts);
    assert!(raft.flag("committed_write_survived"));
    let zab = one("leader-transfer", ZAB);
    assert!(!zab.flag("transfer_supported"), "{:?}", zab.facts);
    assert!(zab.flag("committed_write_survived"));
    assert_ne!(zab.facts["new_leader"], zab.facts["old_leader"]);
    // TimeoutNow skips the election timeout: the handover is far shorter than an election.
    assert!(
        raft.num("handover_ms").unwrap() < 50.0 && zab.num("handover_ms").unwrap() > 150.0,
        "{:?} {:?}",
        raft.facts,
        zab.facts
    );
}

#[test]
fn split_vote_raft_needs_another_round_zab_votes_converge() {
    let raft = one("split-vote", RAFT);
    assert!(raft.flag("split"), "{:?}", raft.facts);
    assert!(raft.num("resolved_term") > raft.num("split_term"));
    assert!(raft.num("split_candidates").unwrap() >= 2.0);
    let zab = one("split-vote", ZAB);
    assert!(zab.num("initial_votes").unwrap() >= 2.0, "{:?}", zab.facts);
    assert!(zab.flag("leader_is_best_vote"), "{:?}", zab.facts);
}

#[test]
fn replication_commits_with_a_majority_then_tells_the_followers() {
    let raft = one("replication", RAFT);
    let zab = one("replication", ZAB);
    for o in [&raft, &zab] {
        assert!(o.flag("committed_everywhere"), "{}", o.label);
        assert_eq!(o.facts["applied_value"], "1");
        // Three nodes: the entry to two followers and two acknowledgements.
        assert_eq!(
            o.num("messages_to_commit"),
            Some(4.0),
            "{}: {:?}",
            o.label,
            o.facts
        );
    }
    let types = |o: &Outcome| o.facts["message_types"].to_string();
    assert!(types(&raft).contains("AppendEntriesResponse"));
    for p in ["PROPOSAL", "ACK", "COMMIT"] {
        assert!(types(&zab).contains(p), "{}", types(&zab));
    }
    // ZAB tells each follower with a COMMIT; Raft with its next AppendEntries.
    assert_eq!(zab.num("messages_to_tell_followers"), Some(2.0));
    assert!(!types(&raft).contains("COMMIT"));
}

#[test]
fn partition_only_the_majority_commits_and_the_minority_rolls_back() {
    for k in BOTH {
        let o = one("partition", k);
        assert!(o.flag("minority_accepted"), "{k:?}");
        assert!(!o.flag("minority_committed"), "{k:?}");
        assert!(o.flag("majority_committed"), "{k:?}");
        assert!(o.flag("minority_entry_rolled_back"), "{k:?}: {:?}", o.facts);
        assert!(o.flag("majority_value_everywhere"), "{k:?}");
    }
}

#[test]
fn lagging_follower_catches_up_by_repair_then_by_snapshot() {
    let raft = one("lagging-follower", RAFT);
    assert_eq!(raft.facts["short_mechanism"], "AppendEntries");
    assert!(
        raft.num("short_rejections").unwrap() >= 1.0,
        "{:?}",
        raft.facts
    );
    assert_eq!(raft.facts["long_mechanism"], "InstallSnapshot");
    let zab = one("lagging-follower", ZAB);
    assert_eq!(zab.facts["short_mechanism"], "DIFF");
    assert_eq!(zab.facts["long_mechanism"], "SNAP");
    for o in [&raft, &zab] {
        assert!(
            o.flag("short_caught_up") && o.flag("long_caught_up"),
            "{:?}",
            o.facts
        );
    }
}

#[test]
fn disruptive_rejoin_only_raft_without_pre_vote_disrupts() {
    let raft = play("disruptive-rejoin", RAFT);
    assert_eq!(raft.len(), 2);
    let (classic, pre) = (&raft[0], &raft[1]);
    assert!(classic.label.contains("no pre-vote"));
    assert!(classic.flag("leader_disrupted"), "{:?}", classic.facts);
    assert!(classic.num("isolated_era") > classic.num("era_before"));
    assert!(!pre.flag("leader_disrupted"), "{:?}", pre.facts);
    assert_eq!(pre.num("isolated_era"), pre.num("era_before"));
    let zab = one("disruptive-rejoin", ZAB);
    assert!(!zab.flag("leader_disrupted"), "{:?}", zab.facts);
    assert!(zab.flag("rejoined_follows"));
}

#[test]
fn even_cluster_split_in_halves_has_no_leader() {
    for k in BOTH {
        let o = one("even-cluster", k);
        assert_eq!(o.num("new_leaders_during_split"), Some(0.0), "{k:?}");
        assert!(!o.flag("leader_at_end_of_split"), "{k:?}");
        assert!(!o.flag("write_during_split_committed"), "{k:?}");
        assert_ne!(o.num("leader_after_heal"), Some(0.0), "{k:?}");
    }
}

#[test]
fn stale_proposal_is_rolled_back_by_the_new_era() {
    for k in BOTH {
        let o = one("stale-proposal", k);
        assert!(o.flag("stale_logged"), "{k:?}");
        assert!(o.flag("stale_rolled_back"), "{k:?}: {:?}", o.facts);
        assert!(o.flag("rollback_seen"), "{k:?}");
        assert!(o.flag("fresh_everywhere"), "{k:?}");
    }
    let raft = one("stale-proposal", RAFT);
    assert!(raft.flag("leader_commits_only_its_own_era"));
    let zab = one("stale-proposal", ZAB);
    let sync = zab.facts["sync"].as_str().unwrap();
    assert!(sync == "TRUNC" || sync == "SNAP", "{sync}");
}

#[test]
fn every_scenario_is_listed_and_replays_identically() {
    assert_eq!(SCENARIOS.len(), 16);
    for s in SCENARIOS {
        assert!(scenario::run(s.name, ZAB, 3).is_ok(), "{}", s.name);
    }
    assert!(scenario::run("no-such-story", RAFT, 1).is_err());
    let a = one("leader-crash", RAFT);
    let b = one("leader-crash", RAFT);
    assert_eq!(a.trace, b.trace, "same seed, same run");
}

#[test]
fn traces_round_trip_through_json_lines() {
    let o = one("partition", ZAB);
    let mut buf = Vec::new();
    write_jsonl(&o.trace, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    assert_eq!(text.lines().count(), o.trace.len());
    for kind in [
        "\"kind\":\"meta\"",
        "\"kind\":\"send\"",
        "\"kind\":\"state\"",
        "\"kind\":\"partition\"",
        "\"kind\":\"client\"",
        "\"kind\":\"append\"",
    ] {
        assert!(text.contains(kind), "{kind}");
    }
    assert_eq!(read_jsonl(&text).unwrap(), o.trace);
    let err = read_jsonl("{\"kind\":\"meta\"}\nnot json\n").unwrap_err();
    assert!(
        err.starts_with("line 1") || err.starts_with("line 2"),
        "{err}"
    );
}

#[test]
fn stale_read_a_local_read_lags_a_read_index_does_not() {
    for k in BOTH {
        let o = one("stale-read", k);
        assert!(o.flag("local_read_stale"), "{k:?}: {:?}", o.facts);
        assert!(o.flag("index_read_fresh"), "{k:?}: {:?}", o.facts);
    }
}

#[test]
fn lease_drift_a_cut_off_leader_answers_with_an_overwritten_value() {
    for k in BOTH {
        let o = one("lease-drift", k);
        assert!(o.flag("new_value_committed"), "{k:?}: {:?}", o.facts);
        assert!(o.flag("stale"), "{k:?}: {:?}", o.facts);
    }
}

#[test]
fn replace_node_a_fresh_learner_catches_up_is_promoted_and_counts() {
    for k in BOTH {
        let o = one("replace-node", k);
        assert!(o.flag("caught_up"), "{k:?}: {:?}", o.facts);
        assert!(o.flag("commits_with_the_new_voter"), "{k:?}: {:?}", o.facts);
        assert!(o.flag("committed_write_survived"), "{k:?}");
        let voters: Vec<u64> = serde_json::from_value(o.facts["final_voters"].clone()).unwrap();
        let dead = o.num("dead").unwrap() as u64;
        assert!(
            voters.contains(&4) && !voters.contains(&dead),
            "{k:?}: {voters:?}"
        );
        assert_eq!(voters.len(), 3, "{k:?}");
    }
}

#[test]
fn remove_leader_raft_hands_over_at_once_zab_elects() {
    let raft = one("remove-leader", RAFT);
    let zab = one("remove-leader", ZAB);
    for o in [&raft, &zab] {
        assert!(o.flag("old_leader_removed"), "{}: {:?}", o.label, o.facts);
        assert!(
            o.flag("removed_node_stays_quiet"),
            "{}: {:?}",
            o.label,
            o.facts
        );
        assert!(o.flag("committed_write_survived"), "{}", o.label);
        assert_ne!(o.facts["new_leader"], o.facts["old_leader"]);
    }
    // TimeoutNow to a caught-up voter skips the election timeout that ZAB's election waits.
    assert!(
        raft.num("unavailable_ms").unwrap() < 50.0 && zab.num("unavailable_ms").unwrap() > 150.0,
        "{:?} {:?}",
        raft.facts,
        zab.facts
    );
}

#[test]
fn grow_3_to_5_raft_passes_through_a_joint_configuration_zab_does_not() {
    let raft = one("grow-3-to-5", RAFT);
    let zab = one("grow-3-to-5", ZAB);
    for o in [&raft, &zab] {
        assert!(o.flag("promoted"), "{}: {:?}", o.label, o.facts);
        assert_eq!(o.num("voters"), Some(5.0), "{}", o.label);
        assert_eq!(o.num("majority"), Some(3.0), "{}", o.label);
    }
    assert!(raft.flag("joint_configuration"), "{:?}", raft.facts);
    assert!(!zab.flag("joint_configuration"), "{:?}", zab.facts);
}

#[test]
fn single_server_bug_the_unfixed_rule_loses_a_write_the_fix_and_zab_do_not() {
    let raft = play("single-server-bug", RAFT);
    assert_eq!(raft.len(), 2);
    let (unfixed, fixed) = (&raft[0], &raft[1]);
    assert_eq!(unfixed.label, "raft, unfixed rule");
    assert!(
        !unfixed.flag("second_change_refused"),
        "{:?}",
        unfixed.facts
    );
    assert!(unfixed.flag("write_acknowledged_by_second_leader"));
    assert!(unfixed.flag("two_leaders_at_once"), "{:?}", unfixed.facts);
    assert!(
        unfixed.flag("acknowledged_write_lost"),
        "{:?}",
        unfixed.facts
    );
    assert!(unfixed.flag("violation_reported"), "{:?}", unfixed.facts);
    assert_eq!(fixed.label, "raft, fixed rule");
    assert!(fixed.flag("second_change_refused"), "{:?}", fixed.facts);
    assert!(!fixed.flag("two_leaders_at_once"), "{:?}", fixed.facts);
    assert!(!fixed.flag("acknowledged_write_lost"), "{:?}", fixed.facts);
    assert!(!fixed.flag("violation_reported"), "{:?}", fixed.facts);
    let zab = one("single-server-bug", ZAB);
    assert!(
        !zab.flag("write_acknowledged_by_second_leader"),
        "{:?}",
        zab.facts
    );
    assert!(!zab.flag("two_leaders_at_once"), "{:?}", zab.facts);
    assert!(!zab.flag("acknowledged_write_lost"), "{:?}", zab.facts);
}
