//! The codec candidates on the project's own message shapes: postcard (the codec, format 2),
//! bitcode through serde, and wincode (bincode 1's layout) through its own derive on a mirror of
//! the same shapes, since it does not read serde types. Sizes are printed once per shape.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use serde::{Deserialize, Serialize};
use std::hint::black_box;

/// A log entry as the messages carry it: a position and a command.
#[derive(
    Clone, Debug, PartialEq, Serialize, Deserialize, wincode::SchemaWrite, wincode::SchemaRead,
)]
struct MirrorEntry {
    era: u64,
    seq: u64,
    command: bytes::Bytes,
}

/// Raft's AppendEntries, field for field.
#[derive(
    Clone, Debug, PartialEq, Serialize, Deserialize, wincode::SchemaWrite, wincode::SchemaRead,
)]
struct MirrorAppend {
    term: u64,
    prev_log_index: u64,
    prev_log_term: u64,
    entries: Vec<MirrorEntry>,
    leader_commit: u64,
}

/// Raft's AppendEntriesResponse, field for field.
#[derive(
    Clone, Debug, PartialEq, Serialize, Deserialize, wincode::SchemaWrite, wincode::SchemaRead,
)]
struct MirrorAck {
    term: u64,
    success: bool,
    match_index: u64,
    conflict_index: u64,
    conflict_term: Option<u64>,
}

/// 100 bytes that do not compress (a client's value is not a run of one letter).
fn value(i: u64) -> bytes::Bytes {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ i;
    (0..100)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn append(n: u64) -> MirrorAppend {
    MirrorAppend {
        term: 7,
        prev_log_index: 100_000,
        prev_log_term: 7,
        entries: (0..n)
            .map(|i| MirrorEntry {
                era: 7,
                seq: 100_001 + i,
                command: value(i),
            })
            .collect(),
        leader_commit: 99_990,
    }
}

fn ack() -> MirrorAck {
    MirrorAck {
        term: 7,
        success: true,
        match_index: 100_064,
        conflict_index: 0,
        conflict_term: None,
    }
}

fn the_projects_append(n: u64) -> raft::Message {
    raft::Message::AppendEntries {
        term: 7,
        prev_log_index: 100_000,
        prev_log_term: 7,
        entries: (0..n)
            .map(|i| {
                consensus_core::Entry::command(
                    consensus_core::Position::new(7, 100_001 + i),
                    value(i),
                )
            })
            .collect(),
        leader_commit: 99_990,
    }
}

fn bench_shape<T>(c: &mut Criterion, name: &str, value: &T)
where
    T: Serialize
        + for<'de> Deserialize<'de>
        + wincode::SchemaWrite<wincode::config::DefaultConfig, Src = T>
        + for<'de> wincode::SchemaRead<'de, wincode::config::DefaultConfig, Dst = T>
        + PartialEq
        + std::fmt::Debug,
{
    let post = postcard::to_allocvec(value).unwrap();
    let bit = bitcode::serialize(value).unwrap();
    let win = wincode::serialize(value).unwrap();
    assert_eq!(postcard::from_bytes::<T>(&post).unwrap(), *value);
    assert_eq!(bitcode::deserialize::<T>(&bit).unwrap(), *value);
    assert_eq!(wincode::deserialize::<T>(&win).unwrap(), *value);
    println!(
        "codec/{name}: bytes postcard {}, bitcode {}, wincode {}",
        post.len(),
        bit.len(),
        win.len()
    );
    let mut g = c.benchmark_group(format!("codec_{name}"));
    g.bench_function(BenchmarkId::new("encode", "postcard"), |b| {
        b.iter(|| postcard::to_allocvec(black_box(value)).unwrap())
    });
    g.bench_function(BenchmarkId::new("encode", "bitcode"), |b| {
        b.iter(|| bitcode::serialize(black_box(value)).unwrap())
    });
    g.bench_function(BenchmarkId::new("encode", "wincode"), |b| {
        b.iter(|| wincode::serialize(black_box(value)).unwrap())
    });
    g.bench_function(BenchmarkId::new("decode", "postcard"), |b| {
        b.iter(|| postcard::from_bytes::<T>(black_box(&post)).unwrap())
    });
    g.bench_function(BenchmarkId::new("decode", "bitcode"), |b| {
        b.iter(|| bitcode::deserialize::<T>(black_box(&bit)).unwrap())
    });
    g.bench_function(BenchmarkId::new("decode", "wincode"), |b| {
        b.iter(|| wincode::deserialize::<T>(black_box(&win)).unwrap())
    });
    g.finish();
}

fn codecs(c: &mut Criterion) {
    bench_shape(c, "append_64x100B", &append(64));
    bench_shape(c, "append_heartbeat", &append(0));
    bench_shape(c, "append_response", &ack());
    // The project's own message through the project's codec (postcard behind codec.rs).
    let msg = the_projects_append(64);
    let bytes = consensus_core::codec::encode(&msg).unwrap();
    println!(
        "codec/raft_message_append_64x100B: bytes via codec.rs {}",
        bytes.len()
    );
    let mut g = c.benchmark_group("codec_raft_message_append_64x100B");
    g.bench_function("encode", |b| {
        b.iter(|| consensus_core::codec::encode(black_box(&msg)).unwrap())
    });
    g.bench_function("decode", |b| {
        b.iter(|| consensus_core::codec::decode::<raft::Message>(black_box(&bytes)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);
