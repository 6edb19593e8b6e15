use super::*;
use crate::app::Kv;
use consensus_core::kv::{KvOp, KvOutput};
use std::time::Duration;

struct H(History);

impl H {
    fn new() -> Self {
        H(History::default())
    }
    fn add(
        &mut self,
        client: u64,
        op: KvOp,
        t0: u64,
        t1: Option<u64>,
        outcome: Outcome,
    ) -> &mut Self {
        let seq = self.0.ops.len() as u64 + 1;
        let i = Kv::invoke(&mut self.0, client, seq, op, Duration::from_millis(t0));
        match t1 {
            Some(t) => self.0.complete(i, outcome, Duration::from_millis(t)),
            None => self.0.ops[i].outcome = outcome,
        }
        self
    }
}

/// True when the checker finds a violation in `h`.
fn violates(h: &H) -> bool {
    matches!(check(&Kv, &h.0, DEFAULT_BUDGET), CheckResult::Violation(_))
}

fn put(k: &str, v: &str) -> KvOp {
    KvOp::Put {
        key: k.into(),
        value: v.into(),
    }
}
fn get(k: &str) -> KvOp {
    KvOp::Get { key: k.into() }
}
fn cas(k: &str, e: &str, n: &str) -> KvOp {
    KvOp::Cas {
        key: k.into(),
        expected: e.into(),
        new: n.into(),
    }
}
fn val(v: Option<&str>) -> Outcome {
    Kv::answer(KvOutput::Value(v.map(str::to_string)))
}
fn written() -> Outcome {
    Kv::answer(KvOutput::Written)
}

#[test]
fn sequential_history_is_linearizable() {
    let mut h = H::new();
    h.add(1, put("a", "1"), 0, Some(1), written())
        .add(2, get("a"), 2, Some(3), val(Some("1")))
        .add(
            1,
            cas("a", "1", "2"),
            4,
            Some(5),
            Kv::answer(KvOutput::CasResult(true)),
        )
        .add(2, get("a"), 6, Some(7), val(Some("2")));
    assert_eq!(check(&Kv, &h.0, DEFAULT_BUDGET), CheckResult::Linearizable);
}

#[test]
fn concurrent_reads_may_see_either_side_of_a_write() {
    let mut h = H::new();
    h.add(1, put("a", "1"), 0, Some(10), written())
        .add(2, get("a"), 1, Some(2), val(Some("1")))
        .add(3, get("a"), 3, Some(4), val(None));
    // get(None) after get(1) in real time, both concurrent with the put: not linearizable.
    assert!(violates(&h));

    let mut h = H::new();
    h.add(1, put("a", "1"), 0, Some(10), written())
        .add(2, get("a"), 1, Some(2), val(None))
        .add(3, get("a"), 3, Some(4), val(Some("1")));
    assert_eq!(check(&Kv, &h.0, DEFAULT_BUDGET), CheckResult::Linearizable);
}

#[test]
fn stale_read_is_a_violation_with_a_window() {
    let mut h = H::new();
    h.add(1, put("a", "1"), 0, Some(1), written())
        .add(1, put("a", "2"), 2, Some(3), written())
        .add(2, get("a"), 4, Some(5), val(Some("1")));
    match check(&Kv, &h.0, DEFAULT_BUDGET) {
        CheckResult::Violation(v) => {
            assert_eq!(v.key, "a");
            assert!(v.stuck.contains("get a"), "{}", v.stuck);
            assert!(!v.window.is_empty());
        }
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn reading_a_value_never_written_is_a_violation() {
    let mut h = H::new();
    h.add(1, get("a"), 0, Some(1), val(Some("ghost")));
    assert!(violates(&h));
}

#[test]
fn unknown_write_may_take_effect_late() {
    let mut h = H::new();
    h.add(1, put("a", "1"), 0, Some(1), written())
        .add(2, put("a", "2"), 2, None, Outcome::Unknown)
        .add(3, get("a"), 5, Some(6), val(Some("1")))
        .add(3, get("a"), 7, Some(8), val(Some("2")));
    assert_eq!(check(&Kv, &h.0, DEFAULT_BUDGET), CheckResult::Linearizable);
}

#[test]
fn unknown_write_may_never_take_effect() {
    let mut h = H::new();
    h.add(1, put("a", "1"), 0, Some(1), written())
        .add(2, put("a", "2"), 2, None, Outcome::Unknown)
        .add(3, get("a"), 50, Some(60), val(Some("1")));
    assert_eq!(check(&Kv, &h.0, DEFAULT_BUDGET), CheckResult::Linearizable);
}

#[test]
fn unknown_write_cannot_take_effect_before_it_was_invoked() {
    let mut h = H::new();
    h.add(3, get("a"), 0, Some(1), val(Some("2")))
        .add(2, put("a", "2"), 2, None, Outcome::Unknown);
    assert!(violates(&h));
}

#[test]
fn failed_write_never_took_effect() {
    let mut h = H::new();
    h.add(2, put("a", "2"), 0, Some(1), Outcome::Fail)
        .add(3, get("a"), 2, Some(3), val(Some("2")));
    assert!(violates(&h));
}

#[test]
fn cas_outcome_must_match_the_state() {
    let mut h = H::new();
    h.add(1, put("a", "1"), 0, Some(1), written()).add(
        2,
        cas("a", "1", "2"),
        2,
        Some(3),
        Kv::answer(KvOutput::CasResult(false)),
    );
    assert!(violates(&h));
}

#[test]
fn keys_are_checked_independently() {
    let mut h = H::new();
    h.add(1, put("a", "1"), 0, Some(1), written())
        .add(1, put("b", "x"), 2, Some(3), written())
        .add(2, get("a"), 4, Some(5), val(Some("1")))
        .add(2, get("b"), 4, Some(5), val(Some("x")));
    assert_eq!(check(&Kv, &h.0, DEFAULT_BUDGET), CheckResult::Linearizable);
}

#[test]
fn many_concurrent_clients_stay_tractable() {
    // 16 clients, each writing and reading back its own values, all overlapping.
    let mut h = H::new();
    for round in 0..40u64 {
        for c in 0..16u64 {
            let v = format!("{c}.{round}");
            let t = round * 10;
            h.add(c, put("k", &v), t, Some(t + 5), written());
        }
        let last = format!("{}.{round}", 15);
        h.add(
            99,
            get("k"),
            round * 10 + 6,
            Some(round * 10 + 7),
            val(Some(&last)),
        );
    }
    assert_eq!(check(&Kv, &h.0, DEFAULT_BUDGET), CheckResult::Linearizable);
}

#[test]
fn tiny_budget_is_inconclusive_not_a_pass() {
    let mut h = H::new();
    for i in 0..20u64 {
        h.add(i, put("k", &i.to_string()), 0, Some(100), written());
    }
    h.add(99, get("k"), 200, Some(201), val(Some("0")));
    assert!(matches!(
        check(&Kv, &h.0, 10),
        CheckResult::Inconclusive { .. }
    ));
}

/// The apply order of the history's operations (seq = position in the history + 1).
fn order(h: &History, idx: &[usize]) -> Vec<Command> {
    idx.iter().map(|&i| h.ops[i].command.clone()).collect()
}

#[test]
fn the_apply_order_is_a_witness_when_it_explains_every_answer() {
    let mut h = H::new();
    h.add(1, put("a", "1"), 0, Some(10), written())
        .add(2, get("a"), 1, Some(2), val(None))
        .add(3, get("a"), 3, Some(4), val(Some("1")));
    assert!(order_explains(&Kv, &h.0, &order(&h.0, &[1, 0, 2])));
    // A budget of one step could never decide this; the witness does.
    assert_eq!(
        check_with_order(&Kv, &h.0, &order(&h.0, &[1, 0, 2]), 1),
        CheckResult::Linearizable
    );
}

#[test]
fn an_order_that_contradicts_an_answer_or_real_time_is_no_witness() {
    let mut h = H::new();
    h.add(1, put("a", "1"), 0, Some(10), written())
        .add(2, get("a"), 1, Some(2), val(None))
        .add(3, get("a"), 3, Some(4), val(Some("1")));
    // The read of None placed after the put: its answer does not match.
    assert!(!order_explains(&Kv, &h.0, &order(&h.0, &[0, 1, 2])));
    // The read of "1" placed before the read of None that returned before it started.
    let mut h2 = H::new();
    h2.add(1, put("a", "1"), 0, Some(1), written())
        .add(2, put("a", "2"), 2, Some(3), written());
    assert!(!order_explains(&Kv, &h2.0, &order(&h2.0, &[1, 0])));
    assert!(order_explains(&Kv, &h2.0, &order(&h2.0, &[0, 1])));
    // An acknowledged operation missing from the order: no witness.
    assert!(!order_explains(&Kv, &h2.0, &order(&h2.0, &[0])));
    // Without a witness the search still decides, and finds the violation.
    let mut bad = H::new();
    bad.add(1, put("a", "1"), 0, Some(1), written())
        .add(2, get("a"), 2, Some(3), val(None));
    assert!(matches!(
        check_with_order(&Kv, &bad.0, &order(&bad.0, &[1, 0]), DEFAULT_BUDGET),
        CheckResult::Violation(_)
    ));
}

#[test]
fn a_retried_command_takes_effect_once_in_the_witness() {
    let mut h = H::new();
    h.add(1, put("a", "1"), 0, Some(5), written())
        .add(1, put("a", "2"), 6, Some(7), written())
        .add(2, get("a"), 8, Some(9), val(Some("2")));
    // The first put is applied twice (a retry), the second time after the client moved
    // on: the store's session ignores it, and so must the witness.
    assert!(order_explains(&Kv, &h.0, &order(&h.0, &[0, 1, 0, 2])));
}

fn delete(k: &str) -> KvOp {
    KvOp::Delete { key: k.into() }
}
fn create(k: &str, v: &str) -> KvOp {
    KvOp::Create {
        key: k.into(),
        value: v.into(),
    }
}

/// A delete's outcome: whether the key was there.
fn deleted(was: bool) -> Outcome {
    Kv::answer(KvOutput::Deleted(was))
}

#[test]
fn a_delete_empties_the_key_and_says_whether_it_was_there() {
    // Put, then delete: the key was there, a read finds nothing, a second delete finds nothing.
    let put_then_delete = || {
        let mut h = H::new();
        h.add(1, put("a", "1"), 0, Some(1), written()).add(
            1,
            delete("a"),
            2,
            Some(3),
            deleted(true),
        );
        h
    };
    let mut h = put_then_delete();
    h.add(2, get("a"), 4, Some(5), val(None))
        .add(1, delete("a"), 6, Some(7), deleted(false));
    assert_eq!(check(&Kv, &h.0, DEFAULT_BUDGET), CheckResult::Linearizable);
    // Reading the deleted value afterwards is not.
    let mut h = put_then_delete();
    h.add(2, get("a"), 4, Some(5), val(Some("1")));
    assert!(violates(&h));
    // Nor is a delete that claims a key was there when it was not.
    let mut h = H::new();
    h.add(1, delete("a"), 0, Some(1), deleted(true));
    assert!(violates(&h));
}

#[test]
fn create_writes_only_an_absent_key() {
    let ok = |b| Kv::answer(KvOutput::CasResult(b));
    let mut h = H::new();
    h.add(1, create("a", "1"), 0, Some(1), ok(true))
        .add(2, create("a", "2"), 2, Some(3), ok(false))
        .add(2, get("a"), 4, Some(5), val(Some("1")));
    assert_eq!(check(&Kv, &h.0, DEFAULT_BUDGET), CheckResult::Linearizable);
    // Two creates that both succeed on one key: one of them lied.
    let mut h = H::new();
    h.add(1, create("a", "1"), 0, Some(1), ok(true))
        .add(2, create("a", "2"), 2, Some(3), ok(true));
    assert!(violates(&h));
}
