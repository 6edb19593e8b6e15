//! `torture` on both protocols: short runs of real processes under kills, pauses and
//! partitions, checked for linearizability, acknowledged writes on every node, agreement and
//! a single leader after every heal. Every process is a child of this test and is killed when
//! the run ends, fails or times out.

use harness::net::torture::{self, FaultKind, TortureConfig};
use harness::protocol::{RAFT, ZAB};
use std::time::Duration;

fn config(protocol: harness::Protocol, faults: Vec<FaultKind>) -> TortureConfig {
    TortureConfig {
        protocol,
        nodes: 3,
        duration: Duration::from_secs(8),
        faults,
        seed: 1,
        clients: 4,
        keys: 4,
        exe: env!("CARGO_BIN_EXE_consensus-lab").into(),
        data_dir: None,
        // Generous on a loaded 2-core CI machine; `torture` defaults to 1 s.
        rejoin_bound: Duration::from_secs(5),
        progress: false,
    }
}

fn run(cfg: TortureConfig) -> torture::TortureReport {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(90), torture::run(cfg))
            .await
            .expect("a torture run of 8 s ends within 90 s")
            .expect("the run starts")
    })
}

#[test]
fn both_protocols_pass_kills_pauses_partitions_and_power_loss() {
    for protocol in [RAFT, ZAB] {
        let r = run(config(
            protocol,
            vec![
                FaultKind::Kill,
                FaultKind::Pause,
                FaultKind::Partition,
                FaultKind::Power,
            ],
        ));
        assert!(r.passed(), "{}", r.render());
        assert!(r.faults.len() >= 2, "{}", r.render());
        assert!(r.ops_ok > 100, "{}", r.render());
        assert!(r.own_writes_acknowledged > 0, "{}", r.render());
    }
}

#[test]
fn a_fault_free_run_answers_everything_and_reports_no_faults() {
    let r = run(config(RAFT, vec![]));
    assert!(r.passed(), "{}", r.render());
    assert!(r.faults.is_empty());
    assert_eq!(r.ops_unknown, 0, "{}", r.render());
}
