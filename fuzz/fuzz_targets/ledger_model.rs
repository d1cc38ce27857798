//! Fuzz target: see `syncpay::testing::fuzz::ledger_model`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    syncpay::testing::fuzz::ledger_model(data);
});
