//! The trace viewer in a real browser: headless Chromium opens a generated page, which must
//! load without script errors and whose time slider must move the replay; a screenshot is kept.
//!
//! Chromium comes from Debian's `chromium` package (`.ci/run` installs it when it can). When it
//! is missing the test says so and passes, unless REQUIRE_BROWSER=1, which `.ci/run` sets once
//! the install succeeded.

use harness::protocol::{RAFT, ZAB};
use harness::scenario;
use harness::sim::trace::write_jsonl;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var("CHROMIUM").ok(),
        Some("/usr/bin/chromium".into()),
        Some("/usr/bin/chromium-browser".into()),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Runs Chromium headless on `url` with extra args; kills it (by PID) after 90 s.
fn run_chromium(bin: &Path, profile: &Path, url: &str, extra: &[&str]) -> (String, String) {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let so = std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default());
    let se = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (so.join().unwrap(), se.join().unwrap())
}

#[test]
fn the_viewer_replays_two_traces_in_headless_chromium() {
    let Some(bin) = chromium() else {
        if std::env::var("REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("REQUIRE_BROWSER=1 but no chromium was found");
        }
        eprintln!("chromium not installed: skipping the browser check (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (page, report, log) = selftest(&bin, dir.path(), "leader-crash");
    assert_eq!(
        report["errors"],
        serde_json::json!([]),
        "script errors: {report}"
    );
    assert_eq!(
        report["moved"], true,
        "the slider moved the replay: {report}"
    );
    assert_eq!(report["nodes"], 10, "two panels of five nodes: {report}");
    assert!(
        report["stepped"].as_f64().unwrap() > 0.0,
        "Next event moved: {report}"
    );
    let captions = report["captions"].as_array().unwrap();
    assert_eq!(captions.len(), 2, "a caption per panel: {report}");
    // Each panel tells its own story: the two protocols' crashed leaders differ here.
    assert!(
        captions
            .iter()
            .all(|c| c.as_str().unwrap().contains("crashes")),
        "{report}"
    );
    assert_ne!(captions[0], captions[1], "{report}");
    assert!(
        report["leader"].as_str().unwrap().contains("leader="),
        "{report}"
    );
    assert!(!log.contains("Uncaught"), "console errors:\n{log}");
    // Previous event from the end moves back.
    let tmax = report["tmax"].as_f64().unwrap();
    let back = report["back"].as_f64().unwrap();
    assert!(
        back > 0.0 && back < tmax,
        "Previous event moved back: {report}"
    );
    // The terminal's narration is in the page, one list per panel, with the line of the
    // moment marked; a click on a line jumps there and marks it.
    for n in report["narrLines"].as_array().unwrap() {
        assert!(n.as_u64().unwrap() > 10, "narration lines: {report}");
    }
    let now = report["nowLines"].as_array().unwrap();
    assert_eq!(now.len(), 2, "{report}");
    assert!(now[0].as_str().unwrap().contains(" ms  n"), "{report}");
    assert_eq!(report["jumped"]["to"], report["jumped"]["line"], "{report}");
    assert_eq!(report["jumped"]["marked"], true, "{report}");
    // Logs carry their indexes, era marks and the commit point.
    assert!(report["commitBars"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["entryLabels"][0], "1", "{report}");
    assert!(
        report["eraMarks"][0].as_str().unwrap().starts_with("term "),
        "{report}"
    );
    // A click on a node shows its full state, named as in each protocol.
    let inspected = report["inspected"].as_array().unwrap();
    let raft = inspected[0].as_str().unwrap();
    let zab = inspected[1].as_str().unwrap();
    assert!(
        raft.contains("currentTerm") && raft.contains("votedFor"),
        "{raft}"
    );
    assert!(
        zab.contains("acceptedEpoch") && zab.contains("currentEpoch"),
        "{zab}"
    );
    // A Raft leader's inspector lists every follower's nextIndex / matchIndex.
    assert!(raft.contains("nextIndex / matchIndex"), "{raft}");
    // Slow motion: time crawls while a message is in flight.
    let rates = &report["rates"];
    assert_eq!(rates["quiet"], rates["speed"], "{report}");
    assert!(
        rates["inFlight"].as_f64().unwrap() * 10.0 < rates["speed"].as_f64().unwrap(),
        "{report}"
    );

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("viewer-leader-crash.png");
    let _ = std::fs::remove_file(&shot);
    let url = format!("file://{}#t=400000", page.display());
    run_chromium(
        &bin,
        &dir.path().join("profile2"),
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,900",
        ],
    );
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(
        png.len() > 10_000,
        "a screenshot with content ({} bytes)",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}

/// Writes the page of `story` for Raft and ZAB into `dir`, opens it with `#selftest` and
/// returns the page's path, its self-test report and Chromium's log.
fn selftest(bin: &Path, dir: &Path, story: &str) -> (PathBuf, serde_json::Value, String) {
    let mut files = Vec::new();
    for kind in [RAFT, ZAB] {
        let o = scenario::run(story, kind, 1).unwrap().remove(0);
        let path = dir.join(format!("{story}.{}.jsonl", kind.name()));
        write_jsonl(&o.trace, std::fs::File::create(&path).unwrap()).unwrap();
        files.push(path);
    }
    let page = dir.join(format!("{story}.html"));
    let out = Command::new(env!("CARGO_BIN_EXE_consensus-lab"))
        .arg("view")
        .args(&files)
        .arg("-o")
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = format!("file://{}#selftest", page.display());
    let profile = dir.join(format!("profile-{story}"));
    let (dom, log) = run_chromium(bin, &profile, &url, &["--dump-dom"]);
    let start = dom
        .find("<pre id=\"selftest\" data-done=\"1\">")
        .unwrap_or_else(|| panic!("the page ran its self-test\n{log}"));
    let body = &dom[start..];
    let json = &body[body.find('>').unwrap() + 1..body.find("</pre>").unwrap()];
    let report: serde_json::Value = serde_json::from_str(
        &json
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">"),
    )
    .unwrap_or_else(|e| panic!("self-test report {json}: {e}"));
    assert_eq!(
        report["errors"],
        serde_json::json!([]),
        "script errors: {report}"
    );
    (page, report, log)
}

#[test]
fn the_viewer_aligns_the_runs_by_story_step_and_narrates_quiet_stretches() {
    let Some(bin) = chromium() else {
        if std::env::var("REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("REQUIRE_BROWSER=1 but no chromium was found");
        }
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_, report, _) = selftest(&bin, dir.path(), "lagging-follower");
    assert_eq!(report["steps"], 5, "{report}");
    // Step 2 of the story: each run at its own moment, each caption the same step's note.
    let times = report["stepTimes"].as_array().unwrap();
    assert_ne!(times[0], times[1], "{report}");
    let clock = report["stepClockText"].as_str().unwrap();
    assert!(clock.starts_with("step 2/5: raft "), "{clock}");
    let captions = report["stepCaptions"].as_array().unwrap();
    assert!(
        captions.iter().all(|c| !c.as_str().unwrap().is_empty()),
        "{report}"
    );
}

#[test]
fn the_viewer_draws_members_as_they_join_and_leave() {
    let Some(bin) = chromium() else {
        if std::env::var("REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("REQUIRE_BROWSER=1 but no chromium was found");
        }
        eprintln!("chromium not installed: skipping the browser check (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_, report, _) = selftest(&bin, dir.path(), "replace-node");
    // Two panels of four nodes; at the end each has three voters and the dead node, removed,
    // drawn faded as not a member.
    let members: Vec<&str> = report["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(members.len(), 8, "{report}");
    for panel in members.chunks(4) {
        assert_eq!(
            panel.iter().filter(|m| **m == "voter").count(),
            3,
            "{members:?}"
        );
        assert_eq!(
            panel.iter().filter(|m| **m == "not a member").count(),
            1,
            "{members:?}"
        );
    }
}
