//! WAL benchmarks, each with its baselines in the same run:
//! - durable appends of 128-byte records at 1, 100 and 8189 records per
//!   append, against plain file append + `fdatasync` of the same bytes (the
//!   physical limit), a preallocated file + `fdatasync`, and sled 0.34
//!   (whose `flush` is not an `fsync`);
//! - 1, 4 and 16 concurrent appenders of single records (group commit);
//! - recovery: opening (scanning and verifying) a 1 GiB log, with a warm and,
//!   where the machine lets us drop the page cache, a cold cache;
//! - `close()` of a log holding one fresh record (it records the clean-close
//!   mark: one manifest write and `fdatasync`), against one `fdatasync` of a
//!   small file.
//!
//! Run: `cargo bench --bench wal`. `SYNCPAY_BENCH_RECOVERY_GIB` sets the
//! recovery log size (default 1).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use syncpay::storage::wal::{Wal, WalOptions, frame_size_max as frame_size};

const RECORD_BYTES: usize = 128;
const BATCH_SIZES: [usize; 3] = [1, 100, 8189];
const PREALLOCATED_BASELINE_BYTES: u64 = 1 << 30;

fn records(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| vec![(i % 251) as u8; RECORD_BYTES])
        .collect()
}

fn append_batches(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    for batch in BATCH_SIZES {
        let payloads = records(batch);
        // The bytes the WAL writes for this batch, so baselines write as much.
        let bytes = vec![0x5Au8; frame_size(RECORD_BYTES) * batch];
        group.throughput(Throughput::Elements(batch as u64));

        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), WalOptions::default()).unwrap();
        group.bench_function(BenchmarkId::new("syncpay_wal", batch), |b| {
            b.iter(|| wal.append_batch(&payloads).unwrap())
        });
        drop(wal);

        let dir = tempfile::tempdir().unwrap();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("plain"))
            .unwrap();
        group.bench_function(BenchmarkId::new("plain_append_fdatasync", batch), |b| {
            b.iter(|| {
                file.write_all(&bytes).unwrap();
                file.sync_data().unwrap();
            })
        });

        let dir = tempfile::tempdir().unwrap();
        let file = preallocated(&dir.path().join("prealloc"));
        let mut offset = 0u64;
        group.bench_function(BenchmarkId::new("preallocated_fdatasync", batch), |b| {
            b.iter(|| {
                if offset + bytes.len() as u64 > PREALLOCATED_BASELINE_BYTES {
                    offset = 0;
                }
                file.write_all_at(&bytes, offset).unwrap();
                file.sync_data().unwrap();
                offset += bytes.len() as u64;
            })
        });

        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let mut key = 0u64;
        group.bench_function(BenchmarkId::new("sled_0.34_flush", batch), |b| {
            b.iter(|| {
                let mut writes = sled::Batch::default();
                for payload in &payloads {
                    writes.insert(&key.to_be_bytes(), payload.as_slice());
                    key += 1;
                }
                db.apply_batch(writes).unwrap();
                db.flush().unwrap();
            })
        });
    }
    group.finish();
}

fn preallocated(path: &Path) -> File {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for i in 0..PREALLOCATED_BASELINE_BYTES >> 20 {
        file.write_all_at(&zeros, i << 20).unwrap();
    }
    file.sync_all().unwrap();
    file
}

fn concurrent_appenders(c: &mut Criterion) {
    let mut group = c.benchmark_group("concurrent_single_appends");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    let wal = Arc::new(wal);
    for appenders in [1u64, 4, 16] {
        group.bench_function(BenchmarkId::new("syncpay_wal", appenders), |b| {
            b.iter_custom(|iterations| {
                let per_thread = iterations.div_ceil(appenders);
                let start = Instant::now();
                let threads: Vec<_> = (0..appenders)
                    .map(|_| {
                        let wal = Arc::clone(&wal);
                        std::thread::spawn(move || {
                            let payload = [7u8; RECORD_BYTES];
                            for _ in 0..per_thread {
                                wal.append(&payload).unwrap();
                            }
                        })
                    })
                    .collect();
                for thread in threads {
                    thread.join().unwrap();
                }
                // Report time per append actually done.
                start
                    .elapsed()
                    .mul_f64(iterations as f64 / (per_thread * appenders) as f64)
            })
        });
    }
    group.finish();
}

fn drop_page_cache() -> bool {
    std::fs::write("/proc/sys/vm/drop_caches", "1").is_ok()
}

fn recovery(c: &mut Criterion) {
    let gib: u64 = std::env::var("SYNCPAY_BENCH_RECOVERY_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let dir = tempfile::tempdir().unwrap();
    let payloads = records(8189);
    let (wal, _) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    while wal.live_bytes() < gib << 30 {
        wal.append_batch(&payloads).unwrap();
    }
    let log_bytes = wal.live_bytes();
    drop(wal);
    let mut group = c.benchmark_group("recovery");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(log_bytes));
    group.bench_function(
        BenchmarkId::new("open_scan_warm", format!("{gib}GiB")),
        // Times the open only, as the cold variant does; closing is untimed
        // and happens before the next open (the directory is locked).
        |b| {
            b.iter_batched(
                || (),
                |()| Wal::open(dir.path(), WalOptions::default()).unwrap(),
                BatchSize::PerIteration,
            )
        },
    );
    if drop_page_cache() {
        group.bench_function(
            BenchmarkId::new("open_scan_cold", format!("{gib}GiB")),
            |b| {
                b.iter_custom(|iterations| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        assert!(drop_page_cache());
                        let start = Instant::now();
                        let opened = Wal::open(dir.path(), WalOptions::default()).unwrap();
                        total += start.elapsed();
                        drop(opened);
                    }
                    total
                })
            },
        );
    } else {
        eprintln!("recovery/open_scan_cold skipped: cannot drop the page cache here");
    }
    group.bench_function(
        BenchmarkId::new("open_and_read_all_warm", format!("{gib}GiB")),
        |b| {
            b.iter_batched(
                || (),
                |()| {
                    let (wal, _) = Wal::open(dir.path(), WalOptions::default()).unwrap();
                    let mut reader = wal.reader(wal.first_lsn(), u64::MAX).unwrap();
                    let mut count = 0u64;
                    while reader.next_record().unwrap().is_some() {
                        count += 1;
                    }
                    (wal, count)
                },
                BatchSize::PerIteration,
            )
        },
    );
    group.finish();
}

fn close(c: &mut Criterion) {
    let mut group = c.benchmark_group("close");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    let dir = tempfile::tempdir().unwrap();
    group.bench_function("syncpay_wal_close", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let (wal, _) = Wal::open(dir.path(), WalOptions::default()).unwrap();
                wal.append(&[1u8; RECORD_BYTES]).unwrap();
                let start = Instant::now();
                wal.close().unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    let file = File::create(dir.path().join("one_sync")).unwrap();
    group.bench_function("one_fdatasync_512_bytes", |b| {
        b.iter(|| {
            file.write_all_at(&[1u8; 512], 0).unwrap();
            file.sync_data().unwrap();
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    append_batches,
    concurrent_appenders,
    recovery,
    close
);
criterion_main!(benches);
