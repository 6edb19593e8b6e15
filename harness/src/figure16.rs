//! Figure 16 of the Raft paper, for both protocols: how long a 5-node cluster is without a
//! leader after its leader crashes, as a CDF over many trials, for Raft's election timeout
//! ranges 150-150, 150-151, 150-155, 150-175, 150-200 and 150-300 ms, and for ZAB with the
//! knob that plays the same role (how long followers wait for a silent leader: syncLimit
//! ticks, 150 ms and ZooKeeper's 300 ms default here; finalizeWait stays at 10 ms).
//!
//! As in the paper, Raft runs without pre-vote and check-quorum. Each trial is one seed:
//! elect a leader, let it lead for 500 ms, crash it, measure until another leads.

use crate::cluster::Cluster;
use crate::protocol::{self, Knobs, Protocol};
use crate::sim::SimConfig;
use serde::Serialize;
use std::time::Duration;

/// How long a trial waits for a leader before counting it as none.
pub const TRIAL_LIMIT: Duration = Duration::from_secs(10);

/// One curve of the figure.
#[derive(Clone, Debug, Serialize)]
pub struct Curve {
    /// The legend's label.
    pub label: String,
    /// The protocol.
    pub protocol: Protocol,
    /// Milliseconds from the crash to a new leader, one per trial that found one.
    pub ms: Vec<f64>,
    /// Trials without a new leader within [`TRIAL_LIMIT`].
    pub no_leader: usize,
}

impl Curve {
    /// The `q` quantile (0 to 1) of the trials that elected a leader.
    pub fn quantile(&self, q: f64) -> f64 {
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() - 1) as f64 * q).round() as usize]
    }
}

/// The curves: (label, protocol, knobs).
fn setups() -> Vec<(String, Protocol, Knobs)> {
    let ms = Duration::from_millis;
    let mut out = Vec::new();
    for hi in [150u64, 151, 155, 175, 200, 300] {
        // A range of one value: the paper's 150-150 (no randomness at all).
        let max = if hi == 150 {
            ms(150) + Duration::from_nanos(1)
        } else {
            ms(hi)
        };
        out.push((
            format!("raft 150-{hi} ms"),
            protocol::RAFT,
            Knobs {
                election_timeout: Some((ms(150), max)),
                disruption_guards: Some(false),
                ..Knobs::default()
            },
        ));
    }
    for wait in [150u64, 300] {
        out.push((
            format!("zab, silent leader noticed after {wait} ms"),
            protocol::ZAB,
            Knobs {
                election_timeout: Some((ms(wait), ms(wait) + Duration::from_nanos(1))),
                ..Knobs::default()
            },
        ));
    }
    out
}

/// One trial on 5 nodes: elect a leader, let it lead 500 ms, crash it; the virtual time from
/// the crash to a new leader, if one came within [`TRIAL_LIMIT`].
pub fn election_after_crash(protocol: Protocol, knobs: &Knobs, seed: u64) -> Option<Duration> {
    let cfg = SimConfig {
        nodes: 5,
        seed,
        knobs: knobs.clone(),
        ..SimConfig::default()
    };
    let mut c = Cluster::new(protocol, cfg);
    if !c.run_until(TRIAL_LIMIT, |c| c.leader().is_some()) {
        return None;
    }
    c.run_for(Duration::from_millis(500));
    let old = c.leader()?;
    c.crash(old);
    let start = c.now();
    c.run_until(TRIAL_LIMIT, |c| c.leader().is_some_and(|l| l != old))
        .then(|| c.now() - start)
}

/// Runs `trials` trials (seeds 1..=trials) of every curve; `progress` is told each curve done.
pub fn run(trials: u64, progress: Option<&dyn Fn(&str)>) -> Vec<Curve> {
    setups()
        .into_iter()
        .map(|(label, protocol, knobs)| {
            let mut curve = Curve {
                label,
                protocol,
                ms: Vec::new(),
                no_leader: 0,
            };
            for seed in 1..=trials {
                match election_after_crash(protocol, &knobs, seed) {
                    Some(d) => curve.ms.push(d.as_secs_f64() * 1000.0),
                    None => curve.no_leader += 1,
                }
            }
            if let Some(p) = progress {
                p(&curve.label);
            }
            curve
        })
        .collect()
}

/// The figure as SVG.
pub fn svg(curves: &[Curve], trials: u64) -> anyhow::Result<String> {
    let series: Vec<crate::plot::Series> = curves
        .iter()
        .map(|c| crate::plot::Series {
            label: c.label.clone(),
            values: c.ms.clone(),
        })
        .collect();
    crate::plot::cdf_svg(
        &format!(
            "Time without a leader after the leader crashes (5 nodes, {trials} trials per curve)"
        ),
        "ms from the crash to a new leader",
        1000.0,
        &series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn randomized_timeouts_elect_faster_than_none_and_every_curve_is_plotted() {
        let curves = run(12, None);
        assert_eq!(curves.len(), 8);
        let fixed = &curves[0];
        let wide = &curves[5];
        assert!(fixed.label.contains("150-150") && wide.label.contains("150-300"));
        // The paper's lesson: without randomness split votes drag the election on.
        assert!(
            fixed.quantile(0.9) > wide.quantile(0.9) || fixed.no_leader > 0,
            "150-150 p90 {} vs 150-300 p90 {}",
            fixed.quantile(0.9),
            wide.quantile(0.9)
        );
        for c in &curves {
            assert!(c.ms.len() + c.no_leader == 12, "{}", c.label);
        }
        let s = svg(&curves, 12).unwrap();
        assert!(s.contains("raft 150-300 ms") && s.contains("zab"));
    }
}
