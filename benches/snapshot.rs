//! Snapshot benchmarks: durable write (temp file, fdatasync, rename,
//! directory fsync) and verified read (mmap + checksum) of a 256 MiB image.
//!
//! Run: `cargo bench --bench snapshot`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use syncpay::io::RealIo;
use syncpay::snapshot::SnapshotDir;

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
    let mut lsn = 0u64;
    group.bench_function("write_256MiB", |b| {
        b.iter(|| {
            lsn += 1;
            snapshots.write(lsn, |out| out.write_all(&image)).unwrap();
            snapshots.retain(&[lsn]).unwrap();
        })
    });
    group.bench_function("load_verify_256MiB", |b| {
        b.iter(|| snapshots.load(lsn).unwrap().payload().len())
    });
    group.finish();
}

criterion_group!(benches, snapshot);
criterion_main!(benches);
