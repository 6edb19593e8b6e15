//! `consensus-lab view`: one self-contained HTML page that replays one or two traces.
//!
//! The page carries the traces as JSON and its own script and styles; it loads nothing from
//! the network. Open it with `#selftest` appended to the URL and it moves its own time slider
//! and reports, in an element with id `selftest`, whether the replay changed and whether any
//! script error occurred (the browser test reads that).

use crate::sim::TraceEvent;

const TEMPLATE: &str = include_str!("viewer.html");
const DATA_MARK: &str = "/*TRACES*/null";

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
    let json = serde_json::to_string(traces)?;
    // Nothing in the data may end the script element early.
    let json = json.replace("</", "<\\/");
    anyhow::ensure!(
        TEMPLATE.contains(DATA_MARK),
        "viewer template lacks its data mark"
    );
    Ok(TEMPLATE.replacen(DATA_MARK, &json, 1))
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
