//! Snapshot benchmarks: durable write (temp file, fdatasync, rename,
//! directory fsync) and verified read (mmap + checksum) of a 256 MiB image.
//!
//! Run: `cargo bench --bench snapshot`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use syncpay::storage::io::RealIo;
use syncpay::storage::snapshot::SnapshotDir;

const IMAGE_BYTES: usize = 256 << 20;

fn snapshot(c: &mut Criterion) {
    let image: Vec<u8> = (0..IMAGE_BYTES).map(|i| (i % 253) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    let snapshots = SnapshotDir::open(dir.path(), Arc::new(RealIo)).unwrap();
    let mut group = c.benchmark_group("snapshot");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Bytes(IMAGE_BYTES as u64));
    // The load bench reads snapshot 1; the write bench writes 2, 3, ...
    // and, untimed, deletes each one after the next is written.
    snapshots.write(1, |out| out.write_all(&image)).unwrap();
    let mut lsn = 1u64;
    group.bench_function("write_256MiB", |b| {
        b.iter_batched(
            || {
                snapshots.retain(&[1, lsn]).unwrap();
                lsn += 1;
                lsn
            },
            |lsn| snapshots.write(lsn, |out| out.write_all(&image)).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("load_verify_256MiB", |b| {
        b.iter(|| snapshots.load(1).unwrap().payload().len())
    });
    group.finish();
}

criterion_group!(benches, snapshot);
criterion_main!(benches);
