//! The `consensus-lab` binary as a user meets it: flags, exit codes, output formats.

use std::process::{Command, Output};

fn lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_consensus-lab"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn bad_flags_get_one_line_and_exit_2() {
    for args in [
        &["run", "--nodez", "3"][..],
        &["run", "--nodes", "0"],
        &["run", "--protocol", "paxos"],
        &["run", "--read-ratio", "1.5"],
        &["check", "--app", "counter"],
        &["check", "--seeds", "9..3"],
        &["check", "--seeds", "x..3"],
        &["frobnicate"],
        &["run", "--protocol", "zab", "--network", "datagram"],
        &["compare", "--network", "datagram"],
        &["check", "--protocol", "raft,paxos"],
        &[
            "serve",
            "--id",
            "1",
            "--peers",
            "1=localhost:7001",
            "--data-dir",
            "/tmp/x",
        ],
        &[
            "serve",
            "--id",
            "4",
            "--peers",
            "1=127.0.0.1:7001",
            "--data-dir",
            "/tmp/x",
        ],
        &[
            "serve",
            "--peers",
            "1=127.0.0.1:7001",
            "--data-dir",
            "/tmp/x",
        ],
        &["serve", "--config", "/nonexistent/cluster.toml"],
        &["serve", "--config", "c.toml", "--id", "1"],
        &["cluster", "--nodes", "0"],
        &["load", "--clients", "0"],
        &["load", "--reads", "2", "--endpoints", "127.0.0.1:1"],
        &["load", "--seconds", "-1"],
        &[
            "load",
            "--seconds",
            "2",
            "--kill-leader-at",
            "5",
            "--endpoints",
            "127.0.0.1:1",
        ],
        &["scenario", "no-such-story"],
        &["scenario"],
        &["view", "/nonexistent/trace.jsonl"],
    ] {
        let o = lab(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let e = stderr(&o);
        assert_eq!(e.trim_end().lines().count(), 1, "{args:?}: {e}");
        assert!(e.starts_with("error:"), "{args:?}: {e}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn compare_runs_both_protocols_on_the_same_seed() {
    let o = lab(&[
        "compare", "--ops", "600", "--nodes", "3", "--faults", "crash", "--seed", "4", "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for p in ["raft", "zab"] {
        assert_eq!(v[p]["config"]["protocol"], p);
        assert_eq!(v[p]["config"]["seed"], 4);
        assert_eq!(v[p]["linearizable"], true);
        assert_eq!(
            v[p]["ops_ok"].as_u64().unwrap()
                + v[p]["ops_failed"].as_u64().unwrap()
                + v[p]["ops_unknown"].as_u64().unwrap(),
            600
        );
    }
    // ZAB's PROPOSAL / ACK / COMMIT cost more messages per op than Raft's AppendEntries round.
    assert!(
        v["zab"]["messages_per_op"].as_f64().unwrap()
            > v["raft"]["messages_per_op"].as_f64().unwrap()
    );
    let o = lab(&["compare", "--ops", "300"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("raft") && out.contains("zab") && out.contains("messages per op"),
        "{out}"
    );
}

#[test]
fn check_sweeps_both_protocols() {
    let o = lab(&[
        "check",
        "--protocol",
        "both",
        "--seeds",
        "1..3",
        "--ops",
        "300",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("3 seeds of raft") && out.contains("3 seeds of zab"),
        "{out}"
    );
}

#[test]
fn zab_runs_from_the_command_line() {
    let o = lab(&[
        "run",
        "--protocol",
        "zab",
        "--ops",
        "400",
        "--faults",
        "crash",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["config"]["protocol"], "zab");
    assert_eq!(v["linearizable"], true);
}

#[test]
fn help_explains_and_exits_0() {
    let o = lab(&["run", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--protocol",
        "--nodes",
        "--clients",
        "--ops",
        "--seed",
        "--faults",
        "--json",
    ] {
        assert!(out.contains(flag), "help lacks {flag}");
    }
}

#[test]
fn run_json_holds_the_verdict_and_metrics() {
    let o = lab(&[
        "run",
        "--ops",
        "500",
        "--nodes",
        "3",
        "--clients",
        "4",
        "--faults",
        "crash",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is one JSON object");
    for key in [
        "linearizable",
        "ops_ok",
        "ops_failed",
        "ops_unknown",
        "lost_acked_writes",
        "diverged",
        "sim_events",
        "wall_ms",
        "elections",
        "leader_changes",
        "time_without_leader_ms",
        "election_time_mean_ms",
        "commit_latency",
        "throughput_ops_per_sec",
        "messages_per_op",
        "bytes_per_op",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["linearizable"], true);
    assert_eq!(v["lost_acked_writes"], 0);
    assert_eq!(
        v["ops_ok"].as_u64().unwrap()
            + v["ops_failed"].as_u64().unwrap()
            + v["ops_unknown"].as_u64().unwrap(),
        500
    );
    assert!(v["commit_latency"]["p99_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn run_table_is_readable() {
    let o = lab(&["run", "--ops", "300", "--faults", "none"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("linearizable              yes"), "{out}");
    assert!(out.contains("latency p50 / p99"), "{out}");
}

#[test]
fn check_sweeps_seeds_and_reports() {
    let o = lab(&[
        "check",
        "--seeds",
        "1..4",
        "--ops",
        "300",
        "--faults",
        "partition",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("4 seeds of raft"), "{out}");
    assert!(out.contains("4 passed, 0 failed"), "{out}");
    let o = lab(&["check", "--seeds", "7", "--ops", "300", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["runs"], 1);
    assert_eq!(v["failed"], 0);
}

#[test]
fn same_seed_same_output() {
    let a = lab(&["run", "--ops", "400", "--seed", "5", "--json"]);
    let b = lab(&["run", "--ops", "400", "--seed", "5", "--json"]);
    let va: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let vb: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(va["trace_hash"], vb["trace_hash"]);
    assert_eq!(va["commit_latency"], vb["commit_latency"]);
}

#[test]
fn scenario_lists_narrates_and_writes_traces_the_viewer_reads() {
    let o = lab(&["scenario", "--list"]);
    assert_eq!(o.status.code(), Some(0));
    let list = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(list.lines().count(), 16, "{list}");
    assert!(list.contains("stale-proposal"));

    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("crash.jsonl");
    let o = lab(&[
        "scenario",
        "leader-crash",
        "--trace",
        base.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        text.contains("== leader-crash · raft (seed 1) =="),
        "{text}"
    );
    assert!(text.contains("== leader-crash · zab (seed 1) =="), "{text}");
    assert!(text.contains("CRASHES"), "{text}");
    assert!(text.contains("Outcome:"), "{text}");
    let raft = dir.path().join("crash.raft.jsonl");
    let zab = dir.path().join("crash.zab.jsonl");
    assert!(raft.exists() && zab.exists());

    let page = dir.path().join("p.html");
    let o = lab(&[
        "view",
        raft.to_str().unwrap(),
        zab.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("leader-crash: raft") && html.contains("leader-crash: zab"));

    // A file that is not a trace gets a one-line error naming it.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "hello\n").unwrap();
    let o = lab(&["view", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("bad.jsonl") && stderr(&o).contains("line 1"),
        "{}",
        stderr(&o)
    );

    let o = lab(&["scenario", "partition", "--protocol", "zab", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["facts"]["minority_entry_rolled_back"], true);
}

#[test]
fn a_serve_config_with_an_unknown_key_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(
        &path,
        "protocol = \"raft\"\nid = 1\npeers = { 1 = \"127.0.0.1:7001\" }\ndata_dir = \"/tmp/x\"\nhttp = \"127.0.0.1:8001\"\ncolour = \"blue\"\n",
    )
    .unwrap();
    let o = lab(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains("colour"), "{e}");
}

#[test]
fn run_compare_and_check_write_traces_the_viewer_opens() {
    let dir = tempfile::tempdir().unwrap();
    let run_trace = dir.path().join("run.jsonl");
    let o = lab(&[
        "run",
        "--ops",
        "300",
        "--faults",
        "crash",
        "--trace",
        run_trace.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&run_trace).unwrap();
    let meta: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(meta["kind"], "meta");
    assert!(meta["title"]
        .as_str()
        .unwrap()
        .starts_with("consensus-lab run --protocol raft"));
    assert!(
        text.lines().count() > 1000,
        "a whole run: {}",
        text.lines().count()
    );
    let page = dir.path().join("run.html");
    let o = lab(&[
        "view",
        run_trace.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let base = dir.path().join("cmp.jsonl");
    let o = lab(&[
        "compare",
        "--ops",
        "200",
        "--faults",
        "none",
        "--trace",
        base.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for p in ["raft", "zab"] {
        assert!(dir.path().join(format!("cmp.{p}.jsonl")).exists(), "{p}");
    }

    // Passing seeds leave no trace behind.
    let traces = dir.path().join("failures");
    let o = lab(&[
        "check",
        "--ops",
        "200",
        "--seeds",
        "1..2",
        "--trace",
        traces.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&traces).unwrap().count(), 0);
}

#[test]
fn figure16_writes_an_svg_and_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("f16.svg");
    let o = lab(&["figure16", "--trials", "5", "-o", svg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        table.contains("raft 150-300 ms") && table.contains("zab"),
        "{table}"
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.contains("raft 150-155 ms"));
}

#[test]
fn serve_on_a_port_in_use_fails_clearly_and_leaves_no_data_dir() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http = busy.local_addr().unwrap().to_string();
    let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer.local_addr().unwrap().to_string();
    drop(peer);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node1");
    let o = lab(&[
        "serve",
        "--id",
        "1",
        "--peers",
        &format!("1={peer_addr}"),
        "--data-dir",
        data.to_str().unwrap(),
        "--http",
        &http,
    ]);
    assert_ne!(o.status.code(), Some(0));
    let e = stderr(&o);
    assert!(e.contains(&http), "{e}");
    assert!(!data.exists(), "serve left {} behind", data.display());
}

#[test]
fn load_for_zero_seconds_says_what_is_allowed() {
    let o = lab(&["load", "--seconds", "0", "--endpoints", "127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("more than 0"), "{e}");
}

#[test]
fn load_refuses_a_read_level_the_peer_system_does_not_serve() {
    let o = lab(&[
        "load",
        "--system",
        "zookeeper",
        "--read-ratio",
        "1",
        "--read-consistency",
        "lease",
        "--endpoints",
        "127.0.0.1:1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("index or local only, not at `lease`"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
}

#[test]
fn one_of_a_thing_is_singular() {
    let o = lab(&[
        "run",
        "--nodes",
        "1",
        "--clients",
        "1",
        "--ops",
        "1",
        "--faults",
        "none",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1 node, 1 client, 1 op,"), "{out}");
}

#[test]
fn every_command_may_be_piped_and_cut_short() {
    use std::io::Read;
    use std::process::Stdio;
    for args in [
        &["scenario", "partition"][..],
        &["compare", "--ops", "2000"],
        &["check", "--seeds", "1..4", "--ops", "200"],
        &["run", "--ops", "200", "--json"],
        &["scenario", "--list"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_consensus-lab"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read one byte and hang up, as `| head -c 1` does.
        let mut stdout = child.stdout.take().unwrap();
        let mut byte = [0u8; 1];
        stdout.read_exact(&mut byte).unwrap();
        drop(stdout);
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "{args:?} exited {status:?} on a closed pipe: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn report_writes_one_page_with_every_plot_for_both_protocols() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let o = lab(&[
        "report",
        "--ops",
        "600",
        "--trials",
        "5",
        "--seeds",
        "3",
        "--sweep-ops",
        "200",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(!html.contains("<script") && !html.contains("http://www.w3.org/1999/xlink\" href"));
    // Seven figures: mixed, chaos, read levels, Figure 16, the sweep, and a failover under load
    // on a real cluster of each protocol.
    assert_eq!(html.matches("<svg").count(), 7, "{html}");
    for heading in [
        "under mixed faults",
        "under chaos faults",
        "Read latency per read level",
        "Figure 16",
        "Across seeds",
        "Failover under load: a real raft cluster",
        "Failover under load: a real zab cluster",
    ] {
        assert!(html.contains(heading), "no {heading}");
    }
    // Both protocols in the over-time charts, every read level in the read chart, the fault
    // windows in the legend.
    for label in [
        "raft writes",
        "zab writes",
        "raft reads (index)",
        "zab reads (local)",
        "raft reads (lease)",
        "\nchaos\n</text>",
    ] {
        assert!(html.contains(label), "no {label}");
    }
    // Each caption carries the command that draws the figure alone.
    assert!(html.contains("$ consensus-lab figure16 --trials 5"));
    // The real clusters lost their leader and were drawn with the kill shaded.
    assert!(html.matches("leader killed").count() >= 2, "{html}");
}
