//! Fuzz target: see `syncpay::testing::fuzz::wal_segment_recovery`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    syncpay::testing::fuzz::wal_segment_recovery(data);
});
