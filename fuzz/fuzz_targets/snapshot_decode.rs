//! Fuzz target: see `syncpay::testing::fuzz::snapshot_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    syncpay::testing::fuzz::snapshot_decode(data);
});
