//! `consensus-lab view`: one self-contained HTML page that replays one or two traces.
//!
//! The page carries the traces as JSON and its own script and styles; it loads nothing from
//! the network. Open it with `#selftest` appended to the URL and it moves its own time slider
//! and reports, in an element with id `selftest`, whether the replay changed and whether any
//! script error occurred (the browser test reads that).

use crate::sim::TraceEvent;

const TEMPLATE: &str = include_str!("viewer.html");
const DATA_MARK: &str = "/*TRACES*/null";
const NARRATION_MARK: &str = "/*NARRATION*/null";
/// At most this many lines of narration per trace go into the page.
const MAX_LINES: usize = 20_000;

/// The terminal's narration of a trace, as (µs, line), when its protocol is registered.
fn narration(events: &[TraceEvent]) -> Vec<(u64, String)> {
    let Some(TraceEvent::Meta { protocol, .. }) = events.first() else {
        return Vec::new();
    };
    let Some(p) = crate::protocol::all()
        .into_iter()
        .find(|p| p.name() == protocol)
    else {
        return Vec::new();
    };
    let quiet = crate::scenario::quiet_of(events);
    let mut lines = crate::scenario::narrate_events(p.words(), events, &quiet);
    if lines.len() > MAX_LINES {
        let t = lines[MAX_LINES - 1].0;
        lines.truncate(MAX_LINES);
        lines.push((t, format!("... the first {MAX_LINES} lines only")));
    }
    lines
}

/// The page for `traces` (one or two), ready to write to a file.
pub fn render(traces: &[Vec<TraceEvent>]) -> anyhow::Result<String> {
    anyhow::ensure!(
        (1..=2).contains(&traces.len()),
        "the viewer shows one or two traces"
    );
    for t in traces {
        anyhow::ensure!(
            matches!(t.first(), Some(TraceEvent::Meta { .. })),
            "a trace starts with its meta line (write it with scenario --trace)"
        );
    }
    // Nothing in the data may end the script element early.
    let json = serde_json::to_string(traces)?.replace("</", "<\\/");
    let lines: Vec<Vec<(u64, String)>> = traces.iter().map(|t| narration(t)).collect();
    let lines = serde_json::to_string(&lines)?.replace("</", "<\\/");
    anyhow::ensure!(
        TEMPLATE.contains(DATA_MARK) && TEMPLATE.contains(NARRATION_MARK),
        "viewer template lacks its data marks"
    );
    Ok(TEMPLATE
        .replacen(NARRATION_MARK, &lines, 1)
        .replacen(DATA_MARK, &json, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> TraceEvent {
        TraceEvent::Meta {
            protocol: "raft".into(),
            era: "term".into(),
            nodes: 3,
            seed: 1,
            title: "t".into(),
        }
    }

    #[test]
    fn the_page_embeds_the_traces_and_loads_nothing_from_the_network() {
        let note = TraceEvent::Note {
            t: 5,
            text: "</script><b>x</b>".into(),
        };
        let html = render(&[vec![meta(), note]]).unwrap();
        assert!(!html.contains(DATA_MARK));
        assert!(html.contains("<\\/script><b>x<\\/b>"));
        assert_eq!(
            html.matches("</script>").count(),
            html.matches("<script").count()
        );
        for remote in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "@import",
            "fetch(",
            "XMLHttpRequest",
            "src=\"//",
        ] {
            assert!(!html.contains(remote), "the page references {remote}");
        }
    }

    #[test]
    fn a_trace_without_its_meta_line_is_refused() {
        let err = render(&[vec![TraceEvent::Heal { t: 1 }]]).unwrap_err();
        assert!(err.to_string().contains("meta"));
        assert!(render(&[]).is_err());
    }
}
