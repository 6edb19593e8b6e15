//! Each node's clock: true time at the node's own rate, continuous across rate changes.

use super::*;

impl<R: Replica> Sim<R> {
    /// Node `id`'s clock at true time `t` (not before its last rate change).
    pub(super) fn clock_at(&self, id: NodeId, t: Time) -> Time {
        let n = self.node(id);
        let (base_true, base_local) = n.clock_base;
        if n.rate == 1.0 {
            return base_local + (t - base_true);
        }
        let run = ((t - base_true).as_nanos() as f64 * n.rate) as u64;
        base_local + Duration::from_nanos(run)
    }

    /// Node `id`'s clock now.
    pub(crate) fn clock(&self, id: NodeId) -> Time {
        self.clock_at(id, self.now)
    }

    /// The earliest true time at which node `id`'s clock reads `local` or later.
    pub(crate) fn true_time(&self, id: NodeId, local: Time) -> Time {
        let n = self.node(id);
        let (base_true, base_local) = n.clock_base;
        if local <= base_local {
            return base_true;
        }
        let ahead = local - base_local;
        if n.rate == 1.0 {
            return base_true + ahead;
        }
        let mut t =
            base_true + Duration::from_nanos((ahead.as_nanos() as f64 / n.rate).ceil() as u64);
        while self.clock_at(id, t) < local {
            t += Duration::from_nanos(1);
        }
        t
    }

    /// Makes node `id`'s clock run at `rate` times true time from now on (it does not jump).
    pub fn set_clock_rate(&mut self, id: NodeId, rate: f64) {
        let local = self.clock(id);
        let now = self.now;
        let n = self.node_mut(id);
        n.clock_base = (now, local);
        n.rate = rate.max(0.01);
    }
}
