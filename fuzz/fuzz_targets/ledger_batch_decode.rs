//! Fuzz target: see `syncpay::testing::fuzz::ledger_batch_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    syncpay::testing::fuzz::ledger_batch_decode(data);
});
