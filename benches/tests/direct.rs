//! The benchmark driver commits what it is asked to, so the numbers measure real commits.

use bytes::Bytes;

#[test]
fn direct_raft_cluster_commits_exactly_what_was_asked() {
    let mut d = benches::raft(3);
    d.commit(1000, 64, &Bytes::from_static(b"x"));
    assert_eq!(d.committed(), 1000);
    d.commit(10, 1, &Bytes::from_static(b"y"));
    assert_eq!(d.committed(), 1010);
}

#[test]
fn direct_zab_ensemble_commits_exactly_what_was_asked() {
    let mut d = benches::zab(3);
    d.commit(1000, 64, &Bytes::from_static(b"x"));
    assert_eq!(d.committed(), 1000);
    d.commit(10, 1, &Bytes::from_static(b"y"));
    assert_eq!(d.committed(), 1010);
}

#[test]
fn direct_read_indexes_are_all_answered() {
    use consensus_core::ReadLevel;
    let mut d = benches::raft(3);
    d.run_for(std::time::Duration::from_millis(100));
    assert_eq!(d.read_indexes(500, 64, ReadLevel::Index), 0);
    let mut d = benches::raft_with_leases(3);
    assert_eq!(d.read_indexes(500, 1, ReadLevel::Lease), 0);
    let mut d = benches::zab(3);
    assert_eq!(d.read_indexes(500, 64, ReadLevel::Index), 0);
}
