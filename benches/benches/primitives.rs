//! Micro-benchmarks of the per-byte primitives, per MiB: chunking, chunk ids (keyed BLAKE3), and
//! a blob's compress + encrypt on text-like and random data.

use clawback_benches::{noise, text};
use clawback_engine::format::blob::{self, BlobType};
use clawback_engine::format::chunker::{ChunkParams, Chunker};
use clawback_engine::format::crypto::{Keys, MasterKey};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

const MIB: usize = 1 << 20;

fn benches(c: &mut Criterion) {
    let keys = Keys::derive(&MasterKey([7; 32]));
    let rnd = noise(8 * MIB);
    let txt = text(8 * MIB);

    let mut g = c.benchmark_group("chunking");
    g.throughput(Throughput::Bytes(rnd.len() as u64));
    let ch = Chunker::new(ChunkParams::default(), keys.chunker_seed);
    g.bench_function("fastcdc_256k_avg", |b| b.iter(|| black_box(ch.chunks(black_box(&rnd)).len())));
    g.finish();

    let mut g = c.benchmark_group("hashing");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("keyed_blake3_1MiB", |b| b.iter(|| black_box(keys.blob_id(black_box(&rnd[..MIB])))));
    g.finish();

    let mut g = c.benchmark_group("compress_encrypt");
    g.throughput(Throughput::Bytes(MIB as u64));
    for level in [0, 1, 3] {
        for (name, data) in [("text", &txt[..MIB]), ("random", &rnd[..MIB])] {
            let id = keys.blob_id(data);
            g.bench_with_input(BenchmarkId::new(format!("zstd{level}"), name), data, |b, d| {
                b.iter(|| black_box(blob::encode(&keys, BlobType::Data, &id, d, level).len()))
            });
        }
    }
    let id = keys.blob_id(&txt[..MIB]);
    let stored = blob::encode(&keys, BlobType::Data, &id, &txt[..MIB], 3);
    g.bench_function("decrypt_decompress_verify/text", |b| {
        b.iter(|| black_box(blob::decode(&keys, BlobType::Data, &id, &stored, MIB).unwrap().len()))
    });
    g.finish();
}

criterion_group! {
    name = primitives;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = benches
}
criterion_main!(primitives);
