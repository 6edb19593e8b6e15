//! The maps the stores keep their state in: `std`'s `BTreeMap` (before 2026-12-02) against
//! `imbl`'s copy-on-write `OrdMap` (now), on what a write under load does to a store of 64,000
//! keys with 100-byte values (an update of a random key), what a read does, what capturing the
//! whole state for a snapshot costs, and what the first writes after a capture pay while the
//! snapshot still shares the tree (each copies the nodes on its path once).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::collections::BTreeMap;
use std::hint::black_box;

const KEYS: usize = 64_000;

fn key(i: usize) -> String {
    format!("/bench/c{}-k{}", i % 64, i / 64)
}

/// The order keys are touched in: a fixed pseudo-random walk over all of them.
fn walk(n: usize) -> Vec<usize> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % KEYS as u64) as usize
        })
        .collect()
}

fn maps(c: &mut Criterion) {
    let value = vec![7u8; 100];
    let std_map: BTreeMap<String, Vec<u8>> = (0..KEYS).map(|i| (key(i), value.clone())).collect();
    let imbl_map: imbl::OrdMap<String, Vec<u8>> =
        (0..KEYS).map(|i| (key(i), value.clone())).collect();
    let keys: Vec<String> = walk(4096).into_iter().map(key).collect();
    let mut g = c.benchmark_group("store_map");

    let mut m = std_map.clone();
    let mut n = 0;
    g.bench_function("update/std_btreemap", |b| {
        b.iter(|| {
            n = (n + 1) % keys.len();
            m.get_mut(&keys[n]).unwrap()[0] ^= 1;
        })
    });
    let mut m = imbl_map.clone();
    g.bench_function("update/imbl_ordmap", |b| {
        b.iter(|| {
            n = (n + 1) % keys.len();
            m.get_mut(&keys[n]).unwrap()[0] ^= 1;
        })
    });
    g.bench_function("get/std_btreemap", |b| {
        b.iter(|| {
            n = (n + 1) % keys.len();
            black_box(std_map.get(&keys[n]));
        })
    });
    g.bench_function("get/imbl_ordmap", |b| {
        b.iter(|| {
            n = (n + 1) % keys.len();
            black_box(imbl_map.get(&keys[n]));
        })
    });
    g.bench_function("capture/std_btreemap", |b| {
        b.iter(|| black_box(std_map.clone()))
    });
    g.bench_function("capture/imbl_ordmap", |b| {
        b.iter(|| black_box(imbl_map.clone()))
    });
    // 4,096 updates right after a capture that is still alive: the copy-on-write price.
    g.bench_function("4096_updates_after_capture/imbl_ordmap", |b| {
        b.iter_batched(
            || {
                let m = imbl_map.clone();
                let held = m.clone();
                (m, held)
            },
            |(mut m, held)| {
                for k in &keys {
                    m.get_mut(k).unwrap()[0] ^= 1;
                }
                (m, held)
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("4096_updates/std_btreemap", |b| {
        b.iter_batched(
            || std_map.clone(),
            |mut m| {
                for k in &keys {
                    m.get_mut(k).unwrap()[0] ^= 1;
                }
                m
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, maps);
criterion_main!(benches);
