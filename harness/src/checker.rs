//! Linearizability checking of a key-value history.
//!
//! Wing & Gong's search with Lowe's memoization (as in Porcupine), split per key: a history of
//! a map is linearizable iff each key's sub-history is (P-compositionality). Operations whose
//! outcome is unknown may take effect at any time after their invocation, or never; failed
//! operations never took effect and are left out.

pub mod local;

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
    Delete,
    Create(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MOut {
    Unknown,
    Written,
    Value(Option<u32>),
    Cas(bool),
    Deleted(bool),
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
        (MOp::Delete, MOut::Unknown) => Some(None),
        (MOp::Delete, MOut::Deleted(was)) => (was == s.is_some()).then_some(None),
        (MOp::Create(v), out) => {
            let absent = s.is_none();
            match out {
                MOut::Unknown => Some(if absent { Some(v) } else { s }),
                MOut::Cas(ok) if ok == absent => Some(if absent { Some(v) } else { s }),
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
                Outcome::Ok(KvOutput::Deleted(b)) => MOut::Deleted(*b),
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
                KvOp::Delete { .. } => MOp::Delete,
                KvOp::Create { value, .. } => MOp::Create(intern(value)),
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
            KvOp::Delete { key } => KvOutput::Deleted(data.remove(key.as_str()).is_some()),
            KvOp::Create { key, value } => {
                let absent = !data.contains_key(key.as_str());
                if absent {
                    data.insert(key, value);
                }
                KvOutput::CasResult(absent)
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
        KvOp::Delete { key } => format!("delete {key}"),
        KvOp::Create { key, value } => format!("create {key}={value}"),
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
mod tests;
