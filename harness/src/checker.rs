//! Linearizability checking of a history, against the app's sequential model.
//!
//! Wing & Gong's search with Lowe's memoization (as in Porcupine), split per partition (the
//! key-value store's keys): a history is linearizable iff each independent partition's
//! sub-history is (P-compositionality). Operations whose
//! outcome is unknown may take effect at any time after their invocation, or never; failed
//! operations never took effect and are left out.

pub mod local;

use crate::app::App;
use crate::history::{History, OpRecord, Outcome};
use consensus_core::Command;
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

/// One operation of a partition, decoded.
struct KOp<A: App> {
    op: A::Op,
    /// The output the client saw (`None`: unknown).
    out: Option<A::Output>,
    invoke: u64,
    ret: u64,
    hist: usize,
}

/// Checks a whole history of `app`, partition by partition.
pub fn check<A: App>(app: &A, history: &History, budget: usize) -> CheckResult {
    let mut by_part: BTreeMap<String, Vec<KOp<A>>> = BTreeMap::new();
    for (i, r) in history.ops.iter().enumerate() {
        let out = match &r.outcome {
            Outcome::Fail => continue,
            Outcome::Unknown | Outcome::Pending => None,
            // An error answer (stale, malformed) says nothing about the state.
            Outcome::Ok(bytes) => match app.output(bytes) {
                Some(o) => Some(o),
                None => continue,
            },
        };
        if r.read && out.is_none() {
            continue; // an unanswered read constrains nothing
        }
        let Some(request) = app.decode(&r.command) else {
            return CheckResult::Violation(Violation {
                key: String::new(),
                ops: 1,
                linearized: 0,
                stuck: format!(
                    "client {} seq {}: a command the app does not decode",
                    r.client, r.seq
                ),
                window: Vec::new(),
            });
        };
        let ret = match (&r.outcome, r.complete) {
            (Outcome::Ok(_), Some(t)) => t.as_nanos() as u64,
            _ => u64::MAX,
        };
        by_part
            .entry(app.partition(&request.op))
            .or_default()
            .push(KOp {
                op: request.op,
                out,
                invoke: r.invoke.as_nanos() as u64,
                ret,
                hist: i,
            });
    }
    for (key, ops) in by_part {
        match check_key(app, &ops, budget) {
            KeyVerdict::Ok => {}
            KeyVerdict::OutOfBudget(steps) => return CheckResult::Inconclusive { key, steps },
            KeyVerdict::Stuck { linearized, stuck } => {
                let s = &ops[stuck];
                let mut window: Vec<String> = ops
                    .iter()
                    .filter(|o| o.invoke <= s.ret && o.ret >= s.invoke)
                    .map(|o| describe(app, &history.ops[o.hist]))
                    .collect();
                window.truncate(16);
                return CheckResult::Violation(Violation {
                    key,
                    ops: ops.len(),
                    linearized,
                    stuck: describe(app, &history.ops[s.hist]),
                    window,
                });
            }
        }
    }
    CheckResult::Linearizable
}

/// Checks a history whose committed commands' order is known: `order` is the sequence the
/// replicas applied. That order is tried first as the linearization (replayed through the
/// app's model, every acknowledged output must match, and no operation may come after one
/// that was invoked only after it returned); only if it does not explain the history does the
/// general search of [`check`] run, which also finds the smallest failing window.
pub fn check_with_order<A: App>(
    app: &A,
    history: &History,
    order: &[Command],
    budget: usize,
) -> CheckResult {
    if order_explains(app, history, order) {
        return CheckResult::Linearizable;
    }
    check(app, history, budget)
}

/// True when `order` is a linearization of `history` (see [`check_with_order`]).
fn order_explains<A: App>(app: &A, history: &History, order: &[Command]) -> bool {
    let by_id: HashMap<(u64, u64), usize> = history
        .ops
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.client, r.seq), i))
        .collect();
    let mut place: Vec<Option<usize>> = vec![None; history.ops.len()];
    let mut states: HashMap<String, A::State> = HashMap::new();
    // The sessions: a retried or late command of a client takes effect at most once.
    let mut last_seq: HashMap<u64, u64> = HashMap::new();
    let mut decoded = Vec::with_capacity(order.len());
    for bytes in order {
        match app.decode(bytes) {
            Some(c) => decoded.push(c),
            None => return false,
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
        let state = states
            .entry(app.partition(&cmd.op))
            .or_insert_with(|| app.initial());
        let (next, out) = app.step(state, &cmd.op);
        *state = next;
        match &history.ops[h].outcome {
            Outcome::Ok(o) if app.output(o).is_some_and(|o| o != out) => return false,
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

/// A human-readable line for one operation of `app`.
pub fn describe<A: App>(app: &A, r: &OpRecord) -> String {
    let op = match app.decode(&r.command) {
        Some(req) => app.describe(&req.op),
        None => format!("{} undecodable bytes", r.command.len()),
    };
    let end = r.complete.map_or("?".to_string(), |t| {
        format!("{:.3}ms", t.as_secs_f64() * 1e3)
    });
    let outcome = match &r.outcome {
        Outcome::Ok(bytes) => match app.output(bytes) {
            Some(o) => format!("Ok({o:?})"),
            None => "error answer".to_string(),
        },
        other => format!("{other:?}"),
    };
    format!(
        "client {} seq {} {op} [{:.3}ms..{end}] -> {outcome}",
        r.client,
        r.seq,
        r.invoke.as_secs_f64() * 1e3,
    )
}

enum KeyVerdict {
    Ok,
    Stuck { linearized: usize, stuck: usize },
    OutOfBudget(usize),
}

const NIL: usize = usize::MAX;

fn check_key<A: App>(app: &A, ops: &[KOp<A>], budget: usize) -> KeyVerdict {
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
    let mut cache: HashSet<(Vec<u64>, A::State)> = HashSet::new();
    let mut stack: Vec<(usize, A::State)> = Vec::new();
    let mut state = app.initial();
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
            let (ns, out) = app.step(&state, &o.op);
            if o.out.as_ref().is_none_or(|seen| *seen == out) {
                linearized[op / 64] |= 1 << (op % 64);
                if cache.insert((linearized.clone(), ns.clone())) {
                    stack.push((entry, std::mem::replace(&mut state, ns)));
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
