//! Linearizability checking of a key-value history.
//!
//! Wing & Gong's search with Lowe's memoization (as in Porcupine), split per key: a history of
//! a map is linearizable iff each key's sub-history is (P-compositionality). Operations whose
//! outcome is unknown may take effect at any time after their invocation, or never; failed
//! operations never took effect and are left out.

use crate::history::{History, OpRecord, Outcome};
use consensus_core::kv::{KvCommand, KvOp, KvOutput};
use consensus_core::{codec, Command};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// The verdict on a history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum CheckResult {
    /// Every key's history is linearizable.
    Linearizable,
    /// Some key's history is not.
    Violation(Violation),
    /// The search budget ran out before a verdict (treat as a failure to verify).
    Inconclusive {
        /// The key whose search was cut short.
        key: String,
        /// Search steps taken.
        steps: usize,
    },
}

impl CheckResult {
    /// True only for [`CheckResult::Linearizable`].
    pub fn is_linearizable(&self) -> bool {
        matches!(self, CheckResult::Linearizable)
    }
}

/// Where a key's history stops being linearizable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The key.
    pub key: String,
    /// Operations on that key.
    pub ops: usize,
    /// Most operations the search could linearize before getting stuck.
    pub linearized: usize,
    /// The operation that could not be placed at the deepest point.
    pub stuck: String,
    /// The operations concurrent with it: the smallest window that shows the problem.
    pub window: Vec<String>,
}

/// Steps the search may take per key before it gives up.
pub const DEFAULT_BUDGET: usize = 20_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum MOp {
    Put(u32),
    Get,
    Cas(u32, u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MOut {
    Unknown,
    Written,
    Value(Option<u32>),
    Cas(bool),
}

type State = Option<u32>;

fn step(s: State, op: MOp, out: MOut) -> Option<State> {
    match (op, out) {
        (MOp::Put(v), MOut::Unknown | MOut::Written) => Some(Some(v)),
        (MOp::Get, MOut::Unknown) => Some(s),
        (MOp::Get, MOut::Value(v)) => (v == s).then_some(s),
        (MOp::Cas(e, n), out) => {
            let matched = s == Some(e);
            match out {
                MOut::Unknown => Some(if matched { Some(n) } else { s }),
                MOut::Cas(ok) if ok == matched => Some(if matched { Some(n) } else { s }),
                _ => None,
            }
        }
        _ => None,
    }
}

struct KOp {
    op: MOp,
    out: MOut,
    invoke: u64,
    ret: u64,
    hist: usize,
}

/// Checks a whole history, key by key.
pub fn check(history: &History, budget: usize) -> CheckResult {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in history.ops.iter().enumerate() {
        by_key.entry(r.op.key()).or_default().push(i);
    }
    for (key, idxs) in by_key {
        // Values become small ids; a value read but never written gets an id no write has.
        let mut values: HashMap<String, u32> = HashMap::new();
        let mut intern = |v: &str| -> u32 {
            let next = values.len() as u32;
            *values.entry(v.to_string()).or_insert(next)
        };
        let mut ops = Vec::new();
        for &i in &idxs {
            let r = &history.ops[i];
            let out = match &r.outcome {
                Outcome::Fail => continue,
                Outcome::Unknown | Outcome::Pending => MOut::Unknown,
                Outcome::Ok(KvOutput::Written) => MOut::Written,
                Outcome::Ok(KvOutput::Value(v)) => MOut::Value(v.as_deref().map(&mut intern)),
                Outcome::Ok(KvOutput::CasResult(b)) => MOut::Cas(*b),
                Outcome::Ok(_) => continue,
            };
            let op = match &r.op {
                KvOp::Put { value, .. } => MOp::Put(intern(value)),
                KvOp::Get { .. } => {
                    if out == MOut::Unknown {
                        continue; // an unanswered read constrains nothing
                    }
                    MOp::Get
                }
                KvOp::Cas { expected, new, .. } => MOp::Cas(intern(expected), intern(new)),
            };
            let ret = match (&r.outcome, r.complete) {
                (Outcome::Ok(_), Some(t)) => t.as_nanos() as u64,
                _ => u64::MAX,
            };
            ops.push(KOp {
                op,
                out,
                invoke: r.invoke.as_nanos() as u64,
                ret,
                hist: i,
            });
        }
        match check_key(&ops, budget) {
            KeyVerdict::Ok => {}
            KeyVerdict::OutOfBudget(steps) => {
                return CheckResult::Inconclusive {
                    key: key.to_string(),
                    steps,
                }
            }
            KeyVerdict::Stuck { linearized, stuck } => {
                let s = &ops[stuck];
                let mut window: Vec<String> = ops
                    .iter()
                    .filter(|o| o.invoke <= s.ret && o.ret >= s.invoke)
                    .map(|o| describe(&history.ops[o.hist]))
                    .collect();
                window.truncate(16);
                return CheckResult::Violation(Violation {
                    key: key.to_string(),
                    ops: ops.len(),
                    linearized,
                    stuck: describe(&history.ops[s.hist]),
                    window,
                });
            }
        }
    }
    CheckResult::Linearizable
}

/// Checks a history whose committed commands' order is known: `order` is the sequence the
/// replicas applied. That order is tried first as the linearization (replayed through the
/// key-value model, every acknowledged output must match, and no operation may come after one
/// that was invoked only after it returned); only if it does not explain the history does the
/// general search of [`check`] run, which also finds the smallest failing window.
pub fn check_with_order(history: &History, order: &[Command], budget: usize) -> CheckResult {
    if order_explains(history, order) {
        return CheckResult::Linearizable;
    }
    check(history, budget)
}

/// True when `order` is a linearization of `history` (see [`check_with_order`]).
fn order_explains(history: &History, order: &[Command]) -> bool {
    let by_id: HashMap<(u64, u64), usize> = history
        .ops
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.client, r.seq), i))
        .collect();
    let mut place: Vec<Option<usize>> = vec![None; history.ops.len()];
    let mut data: HashMap<&str, &str> = HashMap::new();
    // The store's sessions: a retried or late command of a client takes effect at most once.
    let mut last_seq: HashMap<u64, u64> = HashMap::new();
    let mut decoded = Vec::with_capacity(order.len());
    for bytes in order {
        match codec::decode::<KvCommand>(bytes) {
            Ok(c) => decoded.push(c),
            Err(_) => return false,
        }
    }
    for (p, cmd) in decoded.iter().enumerate() {
        let seen = last_seq.entry(cmd.client).or_insert(0);
        if cmd.seq <= *seen {
            continue;
        }
        *seen = cmd.seq;
        let Some(&h) = by_id.get(&(cmd.client, cmd.seq)) else {
            return false;
        };
        let out = match &cmd.op {
            KvOp::Put { key, value } => {
                data.insert(key, value);
                KvOutput::Written
            }
            KvOp::Get { key } => KvOutput::Value(data.get(key.as_str()).map(|v| v.to_string())),
            KvOp::Cas { key, expected, new } => {
                let matched = data.get(key.as_str()) == Some(&expected.as_str());
                if matched {
                    data.insert(key, new);
                }
                KvOutput::CasResult(matched)
            }
        };
        match &history.ops[h].outcome {
            Outcome::Ok(o) if *o != out => return false,
            Outcome::Fail => return false,
            _ => {}
        }
        place[h] = Some(p);
    }
    // Every acknowledged operation took effect at its place; real-time order holds.
    let mut placed = Vec::new();
    for (i, r) in history.ops.iter().enumerate() {
        match (place[i], &r.outcome) {
            (Some(p), outcome) => {
                let ret = match (outcome, r.complete) {
                    (Outcome::Ok(_), Some(t)) => t,
                    _ => Duration::MAX,
                };
                placed.push((p, r.invoke, ret));
            }
            (None, Outcome::Ok(_)) => return false,
            (None, _) => {}
        }
    }
    placed.sort_unstable_by_key(|&(p, _, _)| std::cmp::Reverse(p));
    let mut earliest_return_after = Duration::MAX;
    for (_, invoke, ret) in placed {
        if earliest_return_after < invoke {
            return false; // a later place returned before this one was invoked
        }
        earliest_return_after = earliest_return_after.min(ret);
    }
    true
}

/// A human-readable line for one operation.
pub fn describe(r: &OpRecord) -> String {
    let op = match &r.op {
        KvOp::Put { key, value } => format!("put {key}={value}"),
        KvOp::Get { key } => format!("get {key}"),
        KvOp::Cas { key, expected, new } => format!("cas {key} {expected}->{new}"),
    };
    let end = r.complete.map_or("?".to_string(), |t| {
        format!("{:.3}ms", t.as_secs_f64() * 1e3)
    });
    format!(
        "client {} seq {} {op} [{:.3}ms..{end}] -> {:?}",
        r.client,
        r.seq,
        r.invoke.as_secs_f64() * 1e3,
        r.outcome
    )
}

enum KeyVerdict {
    Ok,
    Stuck { linearized: usize, stuck: usize },
    OutOfBudget(usize),
}

const NIL: usize = usize::MAX;

fn check_key(ops: &[KOp], budget: usize) -> KeyVerdict {
    let n = ops.len();
    if n == 0 {
        return KeyVerdict::Ok;
    }
    // Entries: calls and returns, by time; calls first at equal times (concurrent).
    let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        order.push((o.invoke, 0, i));
        order.push((o.ret, 1, i));
    }
    order.sort_unstable();
    let head = 2 * n;
    let mut next = vec![NIL; 2 * n + 1];
    let mut prev = vec![NIL; 2 * n + 1];
    let mut is_call = vec![false; 2 * n];
    let mut op_of = vec![0usize; 2 * n];
    let mut ret_entry = vec![NIL; n];
    let mut last = head;
    for (e, &(_, kind, op)) in order.iter().enumerate() {
        is_call[e] = kind == 0;
        op_of[e] = op;
        if kind == 1 {
            ret_entry[op] = e;
        }
        next[last] = e;
        prev[e] = last;
        last = e;
    }
    let lift = |e: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>, r: usize| {
        next[prev[e]] = next[e];
        if next[e] != NIL {
            prev[next[e]] = prev[e];
        }
        next[prev[r]] = next[r];
        if next[r] != NIL {
            prev[next[r]] = prev[r];
        }
    };
    let unlift = |e: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>, r: usize| {
        next[prev[r]] = r;
        if next[r] != NIL {
            prev[next[r]] = r;
        }
        next[prev[e]] = e;
        prev[next[e]] = e;
    };
    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state: State = None;
    let mut entry = next[head];
    let mut steps = 0usize;
    let mut deepest = (0usize, NIL);
    while next[head] != NIL {
        steps += 1;
        if steps > budget {
            return KeyVerdict::OutOfBudget(steps);
        }
        if is_call[entry] {
            let op = op_of[entry];
            let o = &ops[op];
            if let Some(ns) = step(state, o.op, o.out) {
                linearized[op / 64] |= 1 << (op % 64);
                if cache.insert((linearized.clone(), ns)) {
                    stack.push((entry, state));
                    state = ns;
                    lift(entry, &mut next, &mut prev, ret_entry[op]);
                    entry = next[head];
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            entry = next[entry];
        } else {
            // A return whose operation could not be placed before it: backtrack.
            if stack.len() >= deepest.0 {
                deepest = (stack.len(), op_of[entry]);
            }
            let Some((e, s)) = stack.pop() else {
                return KeyVerdict::Stuck {
                    linearized: deepest.0,
                    stuck: deepest.1,
                };
            };
            let op = op_of[e];
            linearized[op / 64] &= !(1 << (op % 64));
            state = s;
            unlift(e, &mut next, &mut prev, ret_entry[op]);
            entry = next[e];
        }
    }
    KeyVerdict::Ok
}

#[cfg(test)]
mod tests {
    use super::*;
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
            let i = self.0.invoke(
                client,
                self.0.ops.len() as u64 + 1,
                op,
                Duration::from_millis(t0),
            );
            match t1 {
                Some(t) => self.0.complete(i, outcome, Duration::from_millis(t)),
                None => self.0.ops[i].outcome = outcome,
            }
            self
        }
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
        Outcome::Ok(KvOutput::Value(v.map(str::to_string)))
    }
    const W: Outcome = Outcome::Ok(KvOutput::Written);

    #[test]
    fn sequential_history_is_linearizable() {
        let mut h = H::new();
        h.add(1, put("a", "1"), 0, Some(1), W)
            .add(2, get("a"), 2, Some(3), val(Some("1")))
            .add(
                1,
                cas("a", "1", "2"),
                4,
                Some(5),
                Outcome::Ok(KvOutput::CasResult(true)),
            )
            .add(2, get("a"), 6, Some(7), val(Some("2")));
        assert_eq!(check(&h.0, DEFAULT_BUDGET), CheckResult::Linearizable);
    }

    #[test]
    fn concurrent_reads_may_see_either_side_of_a_write() {
        let mut h = H::new();
        h.add(1, put("a", "1"), 0, Some(10), W)
            .add(2, get("a"), 1, Some(2), val(Some("1")))
            .add(3, get("a"), 3, Some(4), val(None));
        // get(None) after get(1) in real time, both concurrent with the put: not linearizable.
        assert!(matches!(
            check(&h.0, DEFAULT_BUDGET),
            CheckResult::Violation(_)
        ));

        let mut h = H::new();
        h.add(1, put("a", "1"), 0, Some(10), W)
            .add(2, get("a"), 1, Some(2), val(None))
            .add(3, get("a"), 3, Some(4), val(Some("1")));
        assert_eq!(check(&h.0, DEFAULT_BUDGET), CheckResult::Linearizable);
    }

    #[test]
    fn stale_read_is_a_violation_with_a_window() {
        let mut h = H::new();
        h.add(1, put("a", "1"), 0, Some(1), W)
            .add(1, put("a", "2"), 2, Some(3), W)
            .add(2, get("a"), 4, Some(5), val(Some("1")));
        match check(&h.0, DEFAULT_BUDGET) {
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
        assert!(matches!(
            check(&h.0, DEFAULT_BUDGET),
            CheckResult::Violation(_)
        ));
    }

    #[test]
    fn unknown_write_may_take_effect_late() {
        let mut h = H::new();
        h.add(1, put("a", "1"), 0, Some(1), W)
            .add(2, put("a", "2"), 2, None, Outcome::Unknown)
            .add(3, get("a"), 5, Some(6), val(Some("1")))
            .add(3, get("a"), 7, Some(8), val(Some("2")));
        assert_eq!(check(&h.0, DEFAULT_BUDGET), CheckResult::Linearizable);
    }

    #[test]
    fn unknown_write_may_never_take_effect() {
        let mut h = H::new();
        h.add(1, put("a", "1"), 0, Some(1), W)
            .add(2, put("a", "2"), 2, None, Outcome::Unknown)
            .add(3, get("a"), 50, Some(60), val(Some("1")));
        assert_eq!(check(&h.0, DEFAULT_BUDGET), CheckResult::Linearizable);
    }

    #[test]
    fn unknown_write_cannot_take_effect_before_it_was_invoked() {
        let mut h = H::new();
        h.add(3, get("a"), 0, Some(1), val(Some("2"))).add(
            2,
            put("a", "2"),
            2,
            None,
            Outcome::Unknown,
        );
        assert!(matches!(
            check(&h.0, DEFAULT_BUDGET),
            CheckResult::Violation(_)
        ));
    }

    #[test]
    fn failed_write_never_took_effect() {
        let mut h = H::new();
        h.add(2, put("a", "2"), 0, Some(1), Outcome::Fail).add(
            3,
            get("a"),
            2,
            Some(3),
            val(Some("2")),
        );
        assert!(matches!(
            check(&h.0, DEFAULT_BUDGET),
            CheckResult::Violation(_)
        ));
    }

    #[test]
    fn cas_outcome_must_match_the_state() {
        let mut h = H::new();
        h.add(1, put("a", "1"), 0, Some(1), W).add(
            2,
            cas("a", "1", "2"),
            2,
            Some(3),
            Outcome::Ok(KvOutput::CasResult(false)),
        );
        assert!(matches!(
            check(&h.0, DEFAULT_BUDGET),
            CheckResult::Violation(_)
        ));
    }

    #[test]
    fn keys_are_checked_independently() {
        let mut h = H::new();
        h.add(1, put("a", "1"), 0, Some(1), W)
            .add(1, put("b", "x"), 2, Some(3), W)
            .add(2, get("a"), 4, Some(5), val(Some("1")))
            .add(2, get("b"), 4, Some(5), val(Some("x")));
        assert_eq!(check(&h.0, DEFAULT_BUDGET), CheckResult::Linearizable);
    }

    #[test]
    fn many_concurrent_clients_stay_tractable() {
        // 16 clients, each writing and reading back its own values, all overlapping.
        let mut h = H::new();
        for round in 0..40u64 {
            for c in 0..16u64 {
                let v = format!("{c}.{round}");
                let t = round * 10;
                h.add(c, put("k", &v), t, Some(t + 5), W);
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
        assert_eq!(check(&h.0, DEFAULT_BUDGET), CheckResult::Linearizable);
    }

    #[test]
    fn tiny_budget_is_inconclusive_not_a_pass() {
        let mut h = H::new();
        for i in 0..20u64 {
            h.add(i, put("k", &i.to_string()), 0, Some(100), W);
        }
        h.add(99, get("k"), 200, Some(201), val(Some("0")));
        assert!(matches!(check(&h.0, 10), CheckResult::Inconclusive { .. }));
    }

    /// The apply order of the history's operations (seq = position in the history + 1).
    fn order(h: &History, idx: &[usize]) -> Vec<Command> {
        idx.iter()
            .map(|&i| {
                let r = &h.ops[i];
                KvCommand {
                    client: r.client,
                    seq: r.seq,
                    op: r.op.clone(),
                }
                .encode()
            })
            .collect()
    }

    #[test]
    fn the_apply_order_is_a_witness_when_it_explains_every_answer() {
        let mut h = H::new();
        h.add(1, put("a", "1"), 0, Some(10), W)
            .add(2, get("a"), 1, Some(2), val(None))
            .add(3, get("a"), 3, Some(4), val(Some("1")));
        assert!(order_explains(&h.0, &order(&h.0, &[1, 0, 2])));
        // A budget of one step could never decide this; the witness does.
        assert_eq!(
            check_with_order(&h.0, &order(&h.0, &[1, 0, 2]), 1),
            CheckResult::Linearizable
        );
    }

    #[test]
    fn an_order_that_contradicts_an_answer_or_real_time_is_no_witness() {
        let mut h = H::new();
        h.add(1, put("a", "1"), 0, Some(10), W)
            .add(2, get("a"), 1, Some(2), val(None))
            .add(3, get("a"), 3, Some(4), val(Some("1")));
        // The read of None placed after the put: its answer does not match.
        assert!(!order_explains(&h.0, &order(&h.0, &[0, 1, 2])));
        // The read of "1" placed before the read of None that returned before it started.
        let mut h2 = H::new();
        h2.add(1, put("a", "1"), 0, Some(1), W)
            .add(2, put("a", "2"), 2, Some(3), W);
        assert!(!order_explains(&h2.0, &order(&h2.0, &[1, 0])));
        assert!(order_explains(&h2.0, &order(&h2.0, &[0, 1])));
        // An acknowledged operation missing from the order: no witness.
        assert!(!order_explains(&h2.0, &order(&h2.0, &[0])));
        // Without a witness the search still decides, and finds the violation.
        let mut bad = H::new();
        bad.add(1, put("a", "1"), 0, Some(1), W)
            .add(2, get("a"), 2, Some(3), val(None));
        assert!(matches!(
            check_with_order(&bad.0, &order(&bad.0, &[1, 0]), DEFAULT_BUDGET),
            CheckResult::Violation(_)
        ));
    }

    #[test]
    fn a_retried_command_takes_effect_once_in_the_witness() {
        let mut h = H::new();
        h.add(1, put("a", "1"), 0, Some(5), W)
            .add(1, put("a", "2"), 6, Some(7), W)
            .add(2, get("a"), 8, Some(9), val(Some("2")));
        // The first put is applied twice (a retry), the second time after the client moved
        // on: the store's session ignores it, and so must the witness.
        assert!(order_explains(&h.0, &order(&h.0, &[0, 1, 0, 2])));
    }
}
