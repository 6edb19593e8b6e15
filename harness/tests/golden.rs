//! Golden interaction traces: every scenario's narration, outcome and facts for both
//! protocols, as committed under `tests/golden/` (etcd's `testdata/*.txt` is the model). A
//! change to a protocol, the simulator or the narrator that changes any story shows here as a
//! diff to review. After an intended change, rewrite them with
//! `UPDATE_GOLDEN=1 cargo test -p harness --test golden` and commit the diff.

use harness::protocol;
use harness::scenario::{self, SCENARIOS};
use std::path::PathBuf;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// A label as a file-name part: "raft, no pre-vote" becomes "raft-no-pre-vote".
fn slug(label: &str) -> String {
    label
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

#[test]
fn every_scenario_tells_the_story_on_record() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let dir = golden_dir();
    let mut expected_files = Vec::new();
    let mut stale = Vec::new();
    for s in SCENARIOS {
        for p in protocol::builtin() {
            for o in scenario::run(s.name, p, 1).expect("the scenario exists") {
                let facts = serde_json::to_string_pretty(&o.facts).expect("facts encode");
                let text = format!("{}Facts: {facts}\n", scenario::render(&o));
                let name = format!("{}.{}.txt", s.name, slug(&o.label));
                let path = dir.join(&name);
                expected_files.push(name.clone());
                if update {
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(&path, &text).unwrap();
                    continue;
                }
                let on_record = std::fs::read_to_string(&path).unwrap_or_default();
                if on_record != text {
                    let first = on_record
                        .lines()
                        .zip(text.lines())
                        .position(|(a, b)| a != b)
                        .unwrap_or(on_record.lines().count().min(text.lines().count()));
                    stale.push(format!(
                        "{name}, line {}:\n  on record: {}\n  now:       {}",
                        first + 1,
                        on_record.lines().nth(first).unwrap_or("(end)"),
                        text.lines().nth(first).unwrap_or("(end)")
                    ));
                }
            }
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    on_disk.sort();
    expected_files.sort();
    if update {
        for f in on_disk.iter().filter(|f| !expected_files.contains(f)) {
            std::fs::remove_file(dir.join(f)).unwrap();
        }
        return;
    }
    assert_eq!(on_disk, expected_files, "golden files and scenarios differ");
    assert!(
        stale.is_empty(),
        "stories changed (review, then UPDATE_GOLDEN=1 cargo test -p harness --test golden):\n{}",
        stale.join("\n")
    );
}
