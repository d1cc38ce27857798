//! TigerBeetle 0.17's table tests from `src/state_machine_tests.zig`, ported one to one.
//!
//! Each test keeps the source test's name and its rows in the source's column order (see
//! `table.rs` for the columns and the runner). Account rows: id, debits_pending,
//! debits_posted, credits_pending, credits_posted, user_data_128/64/32, reserved, ledger, code,
//! the flags LNK D<C C<D HIST IMP CLSD, padding, timestamp, status. Transfer rows: id, debit,
//! credit, amount, pending_id, user_data_128/64/32, timeout, ledger, code, the flags LNK PEN
//! POS VOI BDR BCR IMP CDR CCR, padding, timestamp, status.

use super::table::check;

// Goal: every create_accounts status in precedence order, and failed accounts do not exist.
#[test]
fn create_accounts() {
    check(
        r"
        account A1  0  0  0  0 U2 U2 U2 _ L3 C4 _   _   _ _ _ _ _ _ created
        account A0  1  1  1  1  _  _  _ 1 L0 C0 _ D<C C<D _ _ _ 1 1 timestamp_must_be_zero
        account A0  1  1  1  1  _  _  _ 1 L0 C0 _ D<C C<D _ _ _ 1 _ reserved_field
        account A0  1  1  1  1  _  _  _ _ L0 C0 _ D<C C<D _ _ _ 1 _ reserved_flag
        account A0  1  1  1  1  _  _  _ _ L0 C0 _ D<C C<D _ _ _ _ _ id_must_not_be_zero
        account -0  1  1  1  1  _  _  _ _ L0 C0 _ D<C C<D _ _ _ _ _ id_must_not_be_int_max
        account A1  0  0  0  0 U1 U1 U1 _ L9 C9 _ D<C   _ _ _ _ _ _ exists_with_different_flags
        account A1  0  0  0  0 U1 U1 U1 _ L9 C9 _   _ C<D _ _ _ _ _ exists_with_different_flags
        account A1  0  0  0  0 U1 U1 U1 _ L9 C9 _   _   _ _ _ _ _ _ exists_with_different_user_data_128
        account A1  0  0  0  0 U2 U1 U1 _ L9 C9 _   _   _ _ _ _ _ _ exists_with_different_user_data_64
        account A1  0  0  0  0 U2 U2 U1 _ L9 C9 _   _   _ _ _ _ _ _ exists_with_different_user_data_32
        account A1  0  0  0  0 U2 U2 U2 _ L9 C9 _   _   _ _ _ _ _ _ exists_with_different_ledger
        account A1  0  0  0  0 U2 U2 U2 _ L3 C9 _   _   _ _ _ _ _ _ exists_with_different_code
        account A1  0  0  0  0 U2 U2 U2 _ L3 C4 _   _   _ _ _ _ _ _ exists
        account A2  1  1  1  1 U1 U1 U1 _ L0 C0 _ D<C C<D _ _ _ _ _ flags_are_mutually_exclusive
        account A2  1  1  1  1 U1 U1 U1 _ L9 C9 _ D<C   _ _ _ _ _ _ debits_pending_must_be_zero
        account A2  0  1  1  1 U1 U1 U1 _ L9 C9 _ D<C   _ _ _ _ _ _ debits_posted_must_be_zero
        account A2  0  0  1  1 U1 U1 U1 _ L9 C9 _ D<C   _ _ _ _ _ _ credits_pending_must_be_zero
        account A2  0  0  0  1 U1 U1 U1 _ L9 C9 _ D<C   _ _ _ _ _ _ credits_posted_must_be_zero
        account A2  0  0  0  0 U1 U1 U1 _ L0 C0 _ D<C   _ _ _ _ _ _ ledger_must_not_be_zero
        account A2  0  0  0  0 U1 U1 U1 _ L9 C0 _ D<C   _ _ _ _ _ _ code_must_not_be_zero
        commit create_accounts

        lookup_account -0 _
        lookup_account A0 _
        lookup_account A1 0 0 0 0 _
        lookup_account A2 _
        commit lookup_accounts
        ",
    );
}

// Goal: an empty batch is valid and returns nothing.
#[test]
fn create_accounts_empty() {
    check("commit create_accounts");
}

// Goal: linked account chains are all-or-nothing, `exists` breaks a chain, and independent
// events after a failed chain do not see its effects.
#[test]
fn linked_accounts() {
    check(
        r"
        account A7  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created // An individual event.
        // A chain of 4 events (the last event in the chain closes the chain with linked=false):
        account A1  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_failed // Commit/rollback.
        account A2  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_failed // Commit/rollback.
        account A1  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ exists              // Fail with .exists.
        account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ linked_event_failed // Fail without committing.
        // An individual event (successful): this does not see any effect from the failed chain.
        account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        // A chain of 2 events (the first event fails the chain):
        account A1  0  0  0  0  _  _  _ _ L1 C2 LNK   _   _ _ _ _ _ _ exists_with_different_flags
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ linked_event_failed
        // An individual event (successful):
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        // A chain of 2 events (the last event fails the chain):
        account A3  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_failed
        account A1  0  0  0  0  _  _  _ _ L2 C1   _   _   _ _ _ _ _ _ exists_with_different_ledger
        // A chain of 2 events (successful):
        account A3  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ created
        account A4  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        lookup_account A7 0 0 0 0 _
        lookup_account A1 0 0 0 0 _
        lookup_account A2 0 0 0 0 _
        lookup_account A3 0 0 0 0 _
        lookup_account A4 0 0 0 0 _
        commit lookup_accounts
        ",
    );
    check(
        r"
        account A7  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A1  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_failed
        account A2  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_failed
        account A1  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ exists
        account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ linked_event_failed
        commit create_accounts

        lookup_account A7 0 0 0 0 _
        lookup_account A1 _
        lookup_account A2 _
        lookup_account A3 _
        commit lookup_accounts
        ",
    );
}

// Goal: a chain left open at the end of the batch fails with linked_event_chain_open.
#[test]
fn linked_event_chain_open() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        // An open chain of 2 events:
        account A4  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_failed
        account A5  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_chain_open
        commit create_accounts

        lookup_account A1 0 0 0 0 _
        lookup_account A2 0 0 0 0 _
        lookup_account A3 0 0 0 0 _
        lookup_account A4 _
        lookup_account A5 _
        commit lookup_accounts
        ",
    );
}

// Goal: the open chain's last event reports chain_open even when the chain already failed.
#[test]
fn linked_event_chain_open_for_an_already_failed_batch() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        // An open chain of 3 events (the second one fails):
        account A2  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_failed
        account A1  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ exists_with_different_flags
        account A3  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_chain_open
        commit create_accounts

        lookup_account A1 0 0 0 0 _
        lookup_account A2 _
        lookup_account A3 _
        commit lookup_accounts
        ",
    );
}

// Goal: a single linked event is an open chain.
#[test]
fn linked_event_chain_open_for_a_batch_of_1() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_chain_open
        commit create_accounts

        lookup_account A1 _
        commit lookup_accounts
        ",
    );
}

// Goal: every create_transfers status of the ordinary path in precedence order, transient
// failures burning ids, idempotency checked first, and the resulting balances.
#[test]
fn create_transfers_lookup_transfers() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L2 C2   _   _   _ _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A4  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A5  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
        commit create_accounts

        // Set up initial balances.
        setup A1  100   200    0     0
        setup A2    0     0    0     0
        setup A3    0     0  110   210
        setup A4   20  -700    0  -500
        setup A5    0 -1000   10 -1100

        // Bump the state machine time to `maxInt - 3s` for testing timeout overflow.
        tick -3 seconds

        // Test errors by descending precedence.
        transfer   T0 A0 A0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _ _    _   P1 1 timestamp_must_be_zero
        transfer   T0 A0 A0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _ _    _   P1 _ reserved_flag
        transfer   T0 A0 A0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ id_must_not_be_zero
        transfer   -0 A0 A0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ id_must_not_be_int_max
        transfer   T1 A0 A0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ debit_account_id_must_not_be_zero
        transfer   T1 -0 A0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ debit_account_id_must_not_be_int_max
        transfer   T1 A8 A0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ credit_account_id_must_not_be_zero
        transfer   T1 A8 -0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ credit_account_id_must_not_be_int_max
        transfer   T1 A8 A8    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ accounts_must_be_different
        transfer   T1 A8 A9    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ pending_id_must_be_zero
        transfer   T1 A8 A9    9   _  _  _  _    1 L0 C0   _   _   _   _   _   _ _  _   _   _ _ timeout_reserved_for_pending_transfer
        transfer   T1 A8 A9    9   _  _  _  _    _ L0 C0   _   _   _   _   _   _ _  CDR _   _ _ closing_transfer_must_be_pending
        transfer   T1 A8 A9    9   _  _  _  _    _ L0 C0   _   _   _   _   _   _ _  _   CCR _ _ closing_transfer_must_be_pending
        transfer   T1 A8 A9    9   _  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ ledger_must_not_be_zero
        transfer   T1 A8 A9    9   _  _  _  _    _ L9 C0   _ PEN   _   _   _   _ _  _   _   _ _ code_must_not_be_zero
        // `debit_account_not_found` is a transient error, T1 cannot be reused:
        transfer   T1 A8 A9    9   _  _  _  _    _ L9 C1   _ PEN   _   _   _   _ _  _   _   _ _ debit_account_not_found
        transfer   T1 A1 A3  123   _  _  _  _    _ L1 C1   _ _     _   _   _   _ _  _   _   _ _ id_already_failed
        // `credit_account_not_found` is a transient error, T2 cannot be reused:
        transfer   T2 A1 A9    9   _  _  _  _    _ L9 C1   _ PEN   _   _   _   _ _  _   _   _ _ credit_account_not_found
        transfer   T2 A1 A3  123   _  _  _  _    _ L1 C1   _ _     _   _   _   _ _  _   _   _ _ id_already_failed
        commit create_transfers

        transfer   T3 A1 A2    1   _  _  _  _    _ L9 C1   _ PEN   _   _   _   _ _  _   _   _ _ accounts_must_have_the_same_ledger
        transfer   T3 A1 A3    1   _  _  _  _    _ L9 C1   _ PEN   _   _   _   _ _  _   _   _ _ transfer_must_have_the_same_ledger_as_accounts
        transfer   T3 A1 A3  -99   _  _  _  _    _ L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ overflows_debits_pending  // amount = max - A1.debits_pending + 1
        transfer   T3 A1 A3 -109   _  _  _  _    _ L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ overflows_credits_pending // amount = max - A3.credits_pending + 1
        transfer   T3 A1 A3 -199   _  _  _  _    _ L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ overflows_debits_posted   // amount = max - A1.debits_posted + 1
        transfer   T3 A1 A3 -209   _  _  _  _    _ L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ overflows_credits_posted  // amount = max - A3.credits_posted + 1
        transfer   T3 A1 A3 -299   _  _  _  _    _ L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ overflows_debits          // amount = max - A1.debits_pending - A1.debits_posted + 1
        transfer   T3 A1 A3 -319   _  _  _  _    _ L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ overflows_credits         // amount = max - A3.credits_pending - A3.credits_posted + 1
        transfer   T3 A4 A5  199   _  _  _  _  999 L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ overflows_timeout
        // `exceeds_credits` is a transient error, T3 cannot be reused:
        transfer   T3 A4 A5  199   _  _  _  _    _ L1 C1   _   _   _   _   _   _ _  _   _   _ _ exceeds_credits           // amount = A4.credits_posted - A4.debits_pending - A4.debits_posted + 1
        transfer   T3 A1 A3  123   _  _  _  _    _ L1 C1   _ _     _   _   _   _ _  _   _   _ _ id_already_failed
        // `exceeds_debits` is a transient error, T4 cannot be reused:
        transfer   T4 A4 A5   91   _  _  _  _    _ L1 C1   _   _   _   _   _   _ _  _   _   _ _ exceeds_debits            // amount = A5.debits_posted - A5.credits_pending - A5.credits_posted + 1
        transfer   T4 A1 A3  123   _  _  _  _    _ L1 C1   _ _     _   _   _   _ _  _   _   _ _ id_already_failed

        transfer   T5 A1 A3  123   _  _  _  _    1 L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ created
        commit create_transfers

        // Ensure that idempotence is checked first:
        transfer   T5 A1 A3  123   _  _  _  _    1 L2 C1   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_ledger
        transfer   T5 A1 A3   -0   _ U1 U1 U1    _ L1 C2   _   _   _   _   _   _ _  _ _ _ _ exists_with_different_flags
        transfer   T5 A3 A1   -0   _ U1 U1 U1    1 L1 C2   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_debit_account_id
        transfer   T5 A1 A4   -0   _ U1 U1 U1    1 L1 C2   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_credit_account_id
        transfer   T5 A1 A3   -0   _ U1 U1 U1    1 L1 C1   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_amount
        transfer   T5 A1 A3  123   _ U1 U1 U1    1 L1 C2   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_user_data_128
        transfer   T5 A1 A3  123   _  _ U1 U1    1 L1 C2   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_user_data_64
        transfer   T5 A1 A3  123   _  _  _ U1    1 L1 C2   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_user_data_32
        transfer   T5 A1 A3  123   _  _  _  _    2 L1 C2   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_timeout
        transfer   T5 A1 A3  123   _  _  _  _    1 L1 C2   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_code
        transfer   T5 A1 A3  123   _  _  _  _    1 L1 C1   _ PEN   _   _   _   _ _  _ _ _ _ exists

        transfer   T6 A3 A1    7   _  _  _  _    _ L1 C2   _   _   _   _   _   _ _  _ _ _ _ created
        transfer   T7 A1 A3    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _ _  _ _ _ _ created
        transfer   T8 A1 A3    0   _  _  _  _    _ L1 C2   _   _   _   _   _   _ _  _ _ _ _ created
        commit create_transfers

        lookup_account A1 223 203   0   7  _
        lookup_account A3   0   7 233 213  _
        commit lookup_accounts

        lookup_transfer T5 exists true
        lookup_transfer T6 exists true
        lookup_transfer T7 exists true
        lookup_transfer T8 exists true
        lookup_transfer -0 exists false
        commit lookup_transfers
        ",
    );
}

// Goal: every post/void status in precedence order, exists rules for resolutions with
// inherited fields and amount sentinels, expiry by timeout, and the resulting balances.
#[test]
fn create_lookup_2_phase_transfers() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        // First phase.
        transfer   T1 A1 A2   15   _  _  _  _    _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ created // Not pending!
        transfer   T2 A1 A2   15   _  _  _  _ 1000 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
        transfer   T3 A1 A2   15   _  _  _  _   50 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
        transfer   T4 A1 A2   15   _  _  _  _    1 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
        transfer   T5 A1 A2    7   _ U9 U9 U9   50 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
        transfer   T6 A1 A2    1   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
        transfer   T7 A1 A2    1   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
        commit create_transfers

        // Check balances before resolving.
        lookup_account A1 54 15  0  0  _
        lookup_account A2  0  0 54 15  _
        commit lookup_accounts

        // Bump the state machine time in +1s for testing the timeout expiration.
        tick 1 seconds

        // Second phase.
        transfer T101 A1 A2   13  T2 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
        transfer   T0 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN POS VOI   _   _  _ _ _ _ 1 timestamp_must_be_zero
        transfer   T0 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN POS VOI   _   _  _ _ _ _ _ id_must_not_be_zero
        transfer   -0 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN POS VOI   _   _  _ _ _ _ _ id_must_not_be_int_max
        transfer T101 A1 A2   15  T3 U2 U2 U2    _ L1 C1   _   _   _ VOI   _   _  _ _ _ _ _ exists_with_different_flags
        transfer T101 A1 A2   14  T2 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount
        transfer T101 A1 A2    _  T2 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount
        transfer T101 A1 A2   13  T3 U2 U2 U2    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_pending_id
        transfer T101 A1 A2   13  T2 U2 U2 U2    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_user_data_128
        transfer T101 A1 A2   13  T2 U1 U2 U2    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_user_data_64
        transfer T101 A1 A2   13  T2 U1 U1 U2    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_user_data_32
        transfer T101 A1 A2   13  T2 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists
        transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN POS VOI   _   _  _ _ _ _ _ flags_are_mutually_exclusive
        transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN POS VOI BDR   _  _ _ _ _ _ flags_are_mutually_exclusive
        transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN POS VOI BDR BCR  _ _ _ _ _ flags_are_mutually_exclusive
        transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN POS VOI   _ BCR  _ _ _ _ _ flags_are_mutually_exclusive
        transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN   _ VOI   _   _  _ _ _ _ _ flags_are_mutually_exclusive
        transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _   _   _ VOI BDR   _  _ _ _ _ _ flags_are_mutually_exclusive
        transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _   _   _ VOI BDR BCR  _ _ _ _ _ flags_are_mutually_exclusive
        transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _   _   _ VOI   _ BCR  _ _ _ _ _ flags_are_mutually_exclusive
        transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _   _ POS   _ BDR   _  _ _ _ _ _ flags_are_mutually_exclusive
        transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _   _ POS   _ BDR BCR  _ _ _ _ _ flags_are_mutually_exclusive
        transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _   _ POS   _   _ BCR  _ _ _ _ _ flags_are_mutually_exclusive
        transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_id_must_not_be_zero
        transfer T102 A8 A9   16  -0 U2 U2 U2   50 L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_id_must_not_be_int_max
        transfer T102 A8 A9   16 102 U2 U2 U2   50 L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_id_must_be_different
        transfer T102 A8 A9   16 103 U2 U2 U2   50 L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ timeout_reserved_for_pending_transfer
        commit create_transfers

        // `pending_transfer_not_found` is a transient error, T102 cannot be reused:
        transfer T102 A8 A9   16 103 U2 U2 U2    _ L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_not_found
        transfer T102 A1 A2   13   _ U1 U1 U1    _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ id_already_failed

        transfer T103 A8 A9   16  T1 U2 U2 U2    _ L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_not_pending
        transfer T103 A8 A9   16  T3 U2 U2 U2    _ L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_has_different_debit_account_id
        transfer T103 A1 A9   16  T3 U2 U2 U2    _ L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_has_different_credit_account_id
        transfer T103 A1 A2   16  T3 U2 U2 U2    _ L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_has_different_ledger
        transfer T103 A1 A2   16  T3 U2 U2 U2    _ L1 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_has_different_code
        transfer T103 A1 A2   16  T3 U2 U2 U2    _ L1 C1   _   _   _ VOI   _   _  _ _ _ _ _ exceeds_pending_transfer_amount
        transfer T103 A1 A2   14  T3 U2 U2 U2    _ L1 C1   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_has_different_amount
        transfer T103 A1 A2   13  T2 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ pending_transfer_already_posted
        transfer T103 A1 A2   15  T3 U1 U1 U1    _ L1 C1   _   _   _ VOI   _   _  _ _ _ _ _ created
        transfer T104 A1 A2   13  T3 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ pending_transfer_already_voided
        transfer T104 A1 A2   15  T4 U1 U1 U1    _ L1 C1   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_expired
        commit create_transfers

        // Transfers posted/voided with optional fields must not raise `exists_with_different_*`.
        // But transfers posted with posted.amount≠pending.amount may return
        // exists_with_different_amount.
        transfer T101 A0 A0   14  T2 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount // t.amount > e.amount
        transfer T101 A0 A0   14  T2 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount
        transfer T101 A0 A0   12  T2 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount // t.amount < e.amount

        transfer T105 A0 A0    8  T5 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exceeds_pending_transfer_amount // t.amount > p.amount
        transfer T105 A0 A0   -0  T5 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ created
        transfer T105 A0 A0    7  T5 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists
        transfer T105 A0 A0    7  T5 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists // ledger/code = 0
        transfer T105 A0 A0   -0  T5 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists // amount = max
        transfer T105 A0 A0    8  T5 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount // t.amount > p.amount
        transfer T105 A0 A0    6  T5 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount // t.amount < e.amount
        transfer T105 A0 A0    0  T5 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount

        transfer T106 A0 A0   -1  T6 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exceeds_pending_transfer_amount
        transfer T106 A0 A0   -0  T6 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
        transfer T106 A0 A0   -0  T6 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists
        transfer T106 A0 A0    1  T6 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists
        transfer T106 A0 A0    2  T6 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount // t.amount > p.amount
        transfer T106 A0 A0    0  T6 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount // t.amount < p.amount

        transfer T107 A0 A0    0  T7 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ created
        transfer T107 A0 A0    0  T7 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists
        transfer T107 A0 A0    1  T7 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount // t.amount > e.amount
        commit create_transfers

        // Check balances after resolving.
        lookup_account A1  0 36  0  0  _
        lookup_account A2  0  0  0 36  _
        commit lookup_accounts

        // The posted transfer amounts are set to the actual amount posted (which may be less
        // than the amount the client set).
        lookup_transfer T101 amount 13
        lookup_transfer T105 amount 7
        lookup_transfer T106 amount 1
        lookup_transfer T107 amount 0
        commit lookup_transfers
        ",
    );
}

// Goal: posting AMOUNT_MAX posts the full pending amount, even when that is AMOUNT_MAX.
#[test]
fn create_lookup_2_phase_transfers_amount_max_int() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        transfer T1 A1 A2   -0   _  _  _  _ _ L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
        transfer T2 A1 A2   -0  T1  _  _  _ _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
        transfer T2 A1 A2   -0  T1  _  _  _ _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists
        commit create_transfers

        lookup_account A1  0 -0  0  0 _
        lookup_account A2  0  0  0 -0 _
        commit lookup_accounts

        lookup_transfer T1 amount -0
        lookup_transfer T2 amount -0
        commit lookup_transfers
        ",
    );
}

// Goal: pending transfers expire after their timeout, releasing balances, and can then no
// longer be posted; a zero timeout never expires.
#[test]
fn create_lookup_expired_transfers() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        transfer   T1 A1 A2   10   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created // Timeout zero will never expire.
        transfer   T2 A1 A2   11   _  _  _  _    1 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
        transfer   T3 A1 A2   12   _  _  _  _    2 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
        transfer   T4 A1 A2   13   _  _  _  _    3 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
        commit create_transfers

        lookup_account A1 46  0  0  0  _
        lookup_account A2  0  0 46  0  _
        commit lookup_accounts

        tick 1 seconds
        lookup_account A1 35  0  0  0  _
        lookup_account A2  0  0 35  0  _
        commit lookup_accounts

        tick 1 seconds
        lookup_account A1 23  0  0  0  _
        lookup_account A2  0  0 23  0  _
        commit lookup_accounts

        tick 1 seconds
        lookup_account A1 10  0  0  0  _
        lookup_account A2  0  0 10  0  _
        commit lookup_accounts

        transfer T101 A1 A2   10  T1 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
        transfer T102 A1 A2   11  T2 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ pending_transfer_expired
        transfer T103 A1 A2   12  T3 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ pending_transfer_expired
        transfer T104 A1 A2   13  T4 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ pending_transfer_expired
        commit create_transfers

        lookup_account A1  0 10  0  0  _
        lookup_account A2  0  0  0 10  _
        commit lookup_accounts

        lookup_transfer T101 exists true
        lookup_transfer T102 exists false
        lookup_transfer T103 exists false
        lookup_transfer T104 exists false
        commit lookup_transfers
        ",
    );
}

// Goal (adapted from "pulse can expire multiple batches of pending transfers for the same
// accounts"): twice the per-pulse maximum of pending transfers on the same accounts all
// expire; the model has no per-pulse cap, so one expiry run releases them all.
#[test]
fn expiry_of_multiple_batches_of_pending_transfers_for_the_same_accounts() {
    use super::super::ModelLedger;
    use crate::ledger::{Account, CreateTransferStatus, Transfer, TransferFlags};

    let mut ledger = ModelLedger::new();
    let account = |id| Account {
        id,
        ledger: 1,
        code: 1,
        ..Account::default()
    };
    ledger.create_accounts(&[account(1), account(2)], 2);
    let expired_transfers_count: u128 = 2 * 8189;
    let mut timestamp = 2;
    let mut next_id: u128 = 10;
    while next_id < 10 + expired_transfers_count {
        let batch: Vec<Transfer> = (next_id..(next_id + 29).min(10 + expired_transfers_count))
            .map(|id| Transfer {
                id,
                debit_account_id: 1,
                credit_account_id: 2,
                amount: 1,
                timeout: 1,
                ledger: 1,
                code: 1,
                flags: TransferFlags::PENDING,
                ..Transfer::default()
            })
            .collect();
        timestamp += 1 + batch.len() as u64;
        let results = ledger.create_transfers(&batch, timestamp);
        assert!(
            results
                .iter()
                .all(|result| result.status == CreateTransferStatus::Created)
        );
        next_id += batch.len() as u128;
    }
    assert_eq!(
        ledger.lookup_accounts(&[1])[0].debits_pending,
        expired_transfers_count
    );
    ledger.expire_pending(timestamp + 1_000_000_000);
    assert_eq!(ledger.lookup_accounts(&[1])[0].debits_pending, 0);
    assert!(ledger.check_invariants().is_ok());
}

// Goal: an empty transfer batch is valid and returns nothing.
#[test]
fn create_transfers_empty() {
    check("commit create_transfers");
}

// Goal: a failed transfer is not stored and changes no balance.
#[test]
fn create_transfers_lookup_transfers_failed_transfer_does_not_exist() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        transfer   T1 A1 A2   15   _  _  _  _    _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
        transfer   T2 A1 A2   15   _  _  _  _    _ L0 C1   _   _   _   _   _   _  _ _ _ _ _ ledger_must_not_be_zero
        commit create_transfers

        lookup_account A1 0 15 0  0  _
        lookup_account A2 0  0 0 15  _
        commit lookup_accounts

        lookup_transfer T1 exists true
        lookup_transfer T2 exists false
        commit lookup_transfers
        ",
    );
}

// Goal: failed linked chains of transfers leave no transfer and no balance change.
#[test]
fn create_transfers_failed_linked_chains_are_undone() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        transfer   T1 A1 A2   15   _  _  _  _    _ L1 C1 LNK   _   _   _   _   _  _ _ _ _ _ linked_event_failed
        transfer   T2 A1 A2   15   _  _  _  _    _ L0 C1   _   _   _   _   _   _  _ _ _ _ _ ledger_must_not_be_zero
        commit create_transfers

        transfer   T3 A1 A2   15   _  _  _  _    1 L1 C1 LNK PEN   _   _   _   _  _ _ _ _ _ linked_event_failed
        transfer   T4 A1 A2   15   _  _  _  _    _ L0 C1   _   _   _   _   _   _  _ _ _ _ _ ledger_must_not_be_zero
        commit create_transfers

        lookup_account A1 0 0 0 0 _
        lookup_account A2 0 0 0 0 _
        commit lookup_accounts

        lookup_transfer T1 exists false
        lookup_transfer T2 exists false
        lookup_transfer T3 exists false
        lookup_transfer T4 exists false
        commit lookup_transfers
        ",
    );
}

// Goal: a later event in the same batch does not see the effects of a failed chain.
#[test]
fn create_transfers_failed_linked_chains_are_undone_within_a_commit() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        setup A1 0 0 0 20

        transfer   T1 A1 A2   15   _ _   _  _    _ L1 C1 LNK   _   _   _   _   _  _ _ _ _ _ linked_event_failed
        transfer   T2 A1 A2    5   _ _   _  _    _ L0 C1   _   _   _   _   _   _  _ _ _ _ _ ledger_must_not_be_zero
        transfer   T3 A1 A2   15   _ _   _  _    _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
        commit create_transfers

        lookup_account A1 0 15 0 20  _
        lookup_account A2 0  0 0 15  _
        commit lookup_accounts

        lookup_transfer T1 exists false
        lookup_transfer T2 exists false
        lookup_transfer T3 exists true
        commit lookup_transfers
        ",
    );
}

// Goal: balancing transfers clamp to the limit-flagged account's balance, down to 0, and
// resubmissions with any bound at least the moved amount are `exists`.
#[test]
fn create_transfers_balancing_debit_balancing_credit_must_not_exceed() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        setup A1 1  0 0 10
        setup A2 0 10 2  0

        transfer   T1 A1 A3  3     _  _  _  _    _ L2 C1   _   _   _   _ BDR   _  _ _ _ _ _ transfer_must_have_the_same_ledger_as_accounts
        transfer   T1 A3 A2  3     _  _  _  _    _ L2 C1   _   _   _   _   _ BCR  _ _ _ _ _ transfer_must_have_the_same_ledger_as_accounts
        transfer   T1 A1 A3  3     _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
        transfer   T2 A1 A3 13     _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
        transfer   T3 A3 A2  3     _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
        transfer   T4 A3 A2 13     _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
        transfer   T5 A1 A3  1     _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created // Amount reduced to 0.
        transfer   T6 A1 A3  1     _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
        transfer   T7 A3 A2  1     _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
        transfer   T8 A1 A2  1     _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
        transfer   T1 A1 A3    2   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ exists_with_different_amount // Less than the transfer amount.
        transfer   T1 A1 A3    0   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ exists_with_different_amount
        transfer   T1 A1 A3    3   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ exists // Greater-than-or-equal-to the transfer amount.
        transfer   T1 A1 A3    4   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ exists
        transfer   T2 A1 A3    6   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ exists // Equal to the transfer amount.
        transfer   T2 A1 A3    0   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ exists_with_different_amount // Less than the transfer amount.
        transfer   T3 A3 A2    2   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exists_with_different_amount // Less than the transfer amount.
        transfer   T3 A3 A2    0   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exists_with_different_amount
        transfer   T3 A3 A2    3   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exists
        transfer   T3 A3 A2    4   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exists
        transfer   T4 A3 A2    5   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exists // Greater-than-or-equal-to the transfer amount.
        transfer   T4 A3 A2    6   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exists
        transfer   T4 A3 A2    0   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exists_with_different_amount // Less than the transfer amount.
        commit create_transfers

        lookup_account A1 1  9 0 10  _
        lookup_account A2 0 10 2  8  _
        lookup_account A3 0  8 0  9  _
        commit lookup_accounts

        lookup_transfer T1 amount 3
        lookup_transfer T2 amount 6
        lookup_transfer T3 amount 3
        lookup_transfer T4 amount 5
        lookup_transfer T5 amount 0
        lookup_transfer T6 amount 0
        lookup_transfer T7 amount 0
        lookup_transfer T8 amount 0
        commit lookup_transfers
        ",
    );
}

// Goal: a balancing transfer can still fail the other account's limit (exceeds_*).
#[test]
fn create_transfers_balancing_debit_balancing_credit_must_not_exceed_exceeds() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
        account A4  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        setup A1 0 0 0 4
        setup A2 0 5 0 0
        setup A3 0 4 0 0
        setup A4 0 0 0 5

        transfer   T1 A1 A2   10   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exceeds_credits
        transfer   T2 A1 A2   10   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
        transfer   T3 A4 A3   10   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ exceeds_debits
        transfer   T4 A4 A3   10   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
        commit create_transfers

        lookup_account A1 0 4 0 4 _
        lookup_account A2 0 5 0 4 _
        lookup_account A3 0 4 0 4 _
        lookup_account A4 0 4 0 5 _
        commit lookup_accounts

        lookup_transfer T1 exists false
        lookup_transfer T2 amount 4
        lookup_transfer T3 exists false
        lookup_transfer T4 amount 4
        commit lookup_transfers
        ",
    );
}

// Goal: the balancing clamp applies to accounts without limit flags too.
#[test]
fn create_transfers_balancing_debit_balancing_credit_without_limits() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        setup A1 1  0 0 10
        setup A2 0 10 2  0

        transfer   T1 A3 A1   99   _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created // Amount reduced to 0.
        transfer   T2 A3 A1   99   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
        transfer   T3 A2 A3   99   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
        transfer   T4 A1 A3   99   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
        transfer   T5 A1 A3   99   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created // Amount reduced to 0.
        transfer   T6 A3 A2   99   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
        transfer   T7 A3 A2   99   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created // Amount reduced to 0.
        commit create_transfers

        lookup_account A1 1  9 0 10 _
        lookup_account A2 0 10 2  8 _
        lookup_account A3 0  8 0  9 _
        commit lookup_accounts

        lookup_transfer T1 amount 0
        lookup_transfer T2 amount 0
        lookup_transfer T3 amount 0
        lookup_transfer T4 amount 9
        lookup_transfer T5 amount 0
        lookup_transfer T6 amount 8
        lookup_transfer T7 amount 0
        commit lookup_transfers
        ",
    );
}

// Goal: zero-amount balancing transfers (and those clamped to 0) are created and move nothing.
#[test]
fn create_transfers_balancing_debit_balancing_credit_amount_0() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
        account A4  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        setup A1 1  0 0 10
        setup A2 0 10 2  0
        setup A3 0 10 2  0

        transfer   T1 A1 A4    0   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
        transfer   T2 A4 A2    0   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
        transfer   T3 A1 A4    0   _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
        transfer   T4 A4 A3    0   _  _  _  _    _ L1 C1   _ PEN   _   _   _ BCR  _ _ _ _ _ created
        // The balancing flag reduces nonzero amounts to zero even without a limit flag.
        transfer   T5 A4 A1    1   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
        transfer   T6 A2 A4    1   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
        commit create_transfers

        lookup_account A1 1  0 0 10 _
        lookup_account A2 0 10 2  0 _
        lookup_account A3 0 10 2  0 _
        lookup_account A4 0  0 0  0 _
        commit lookup_accounts

        lookup_transfer T1 amount 0
        lookup_transfer T2 amount 0
        lookup_transfer T3 amount 0
        lookup_transfer T4 amount 0
        lookup_transfer T5 amount 0
        lookup_transfer T6 amount 0
        commit lookup_transfers
        ",
    );
}

// Goal: balancing with AMOUNT_MAX on balances near the maximum moves 2^128 − 2.
#[test]
fn create_transfers_balancing_debit_balancing_credit_amount_max_int_balance_near_max_int() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
        account A4  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
        commit create_accounts

        setup A1 0  0 0 -1
        setup A4 0 -1 0  0

        transfer   T1 A1 A2   -0   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
        transfer   T2 A3 A4   -0   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
        commit create_transfers

        lookup_account A1 0 -1  0 -1 _
        lookup_account A2 0  0  0 -1 _
        lookup_account A3 0 -1  0  0 _
        lookup_account A4 0 -1  0 -1 _
        commit lookup_accounts

        lookup_transfer T1 amount -1
        lookup_transfer T2 amount -1
        commit lookup_transfers
        ",
    );
}

// Goal: with both balancing flags the debit clamp and then the credit clamp apply.
#[test]
fn create_transfers_balancing_debit_and_balancing_credit() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        setup A1 0  0 0 20
        setup A2 0 10 0  0
        setup A3 0 99 0  0

        transfer   T1 A1 A2    1   _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
        transfer   T2 A1 A2   12   _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
        transfer   T3 A1 A2    1   _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created // Amount reduced to 0.
        transfer   T4 A1 A3   12   _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
        transfer   T5 A1 A3    1   _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created // Amount reduced to 0.
        commit create_transfers

        lookup_account A1 0 20 0 20  _
        lookup_account A2 0 10 0 10  _
        lookup_account A3 0 99 0 10  _
        commit lookup_accounts

        lookup_transfer T1 amount  1
        lookup_transfer T2 amount  9
        lookup_transfer T3 amount  0
        lookup_transfer T4 amount 10
        lookup_transfer T5 amount  0
        commit lookup_transfers
        ",
    );
}

// Goal: balancing pending transfers reserve the clamped amount, and pending debits reduce
// what later balancing transfers can move.
#[test]
fn create_transfers_balancing_debit_balancing_credit_pending() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
        commit create_accounts

        setup A1 0  0 0 10
        setup A2 0 10 0  0

        transfer   T1 A1 A2    3   _  _  _  _    _ L1 C1   _ PEN   _   _ BDR   _  _ _ _ _ _ created
        transfer   T2 A1 A2   13   _  _  _  _    _ L1 C1   _ PEN   _   _ BDR   _  _ _ _ _ _ created
        transfer   T3 A1 A2    1   _  _  _  _    _ L1 C1   _ PEN   _   _ BDR   _  _ _ _ _ _ created // Amount reduced to 0.
        commit create_transfers

        lookup_account A1 10  0  0 10  _
        lookup_account A2  0 10 10  0  _
        commit lookup_accounts

        transfer   T4 A1 A2    3  T1  _  _  _    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
        transfer   T5 A1 A2    5  T2  _  _  _    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
        commit create_transfers

        lookup_transfer T1 amount  3
        lookup_transfer T2 amount  7
        lookup_transfer T3 amount  0
        lookup_transfer T4 amount  3
        lookup_transfer T5 amount  5
        commit lookup_transfers
        ",
    );
}

// Goal: the multi-debit recipe (linked balancing transfers through a control account)
// succeeds with sufficient funds and rolls back entirely without.
#[test]
fn create_transfers_multiple_debits_single_credit_balancing_debits() {
    // Sufficient funds.
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A4  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A5  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A6  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        setup A1 0 0 0 40
        setup A2 0 0 0 40
        setup A3 0 0 0 21

        transfer T1 A4 A5  100   _  _  _  _    0 L1 C1 LNK _ _ _   _   _ _ _ _ _ _ created
        transfer T2 A1 A4  100   _  _  _  _    0 L1 C1 LNK _ _ _ BDR BCR _ _ _ _ _ created
        transfer T3 A2 A4  100   _  _  _  _    0 L1 C1 LNK _ _ _ BDR BCR _ _ _ _ _ created
        transfer T4 A3 A4  100   _  _  _  _    0 L1 C1 LNK _ _ _ BDR BCR _ _ _ _ _ created
        transfer T5 A4 A6  100   _  _  _  _    0 L1 C1 LNK _ _ _   _   _ _ _ _ _ _ created
        transfer T6 A5 A4   -0   _  _  _  _    0 L1 C1   _ _ _ _   _ BCR _ _ _ _ _ created
        commit create_transfers

        lookup_account A1 0  40 0  40 _
        lookup_account A2 0  40 0  40 _
        lookup_account A3 0  20 0  21 _
        lookup_account A4 0 200 0 200 _
        lookup_account A5 0 100 0 100 _
        lookup_account A6 0   0 0 100 _
        commit lookup_accounts
        ",
    );
    // Insufficient funds.
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A4  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A5  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
        account A6  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        setup A1 0 0 0 40
        setup A2 0 0 0 40
        setup A3 0 0 0 19

        transfer T1 A4 A5  100   _  _  _  _    0 L1 C1 LNK _ _ _   _   _ _ _ _ _ _ linked_event_failed
        transfer T2 A1 A4  100   _  _  _  _    0 L1 C1 LNK _ _ _ BDR BCR _ _ _ _ _ linked_event_failed
        transfer T3 A2 A4  100   _  _  _  _    0 L1 C1 LNK _ _ _ BDR BCR _ _ _ _ _ linked_event_failed
        transfer T4 A3 A4  100   _  _  _  _    0 L1 C1 LNK _ _ _ BDR BCR _ _ _ _ _ linked_event_failed
        transfer T5 A4 A6  100   _  _  _  _    0 L1 C1 LNK _ _ _   _   _ _ _ _ _ _ linked_event_failed
        transfer T6 A5 A4   -0   _  _  _  _    0 L1 C1   _ _ _ _   _ BCR _ _ _ _ _ exceeds_credits
        commit create_transfers
        ",
    );
}

// Goal: a limit enforced temporarily inside a chain; rolled-back ids are reusable but the
// transiently failing id is burnt.
#[test]
fn create_transfers_per_transfer_balance_invariant() {
    // Temporarily enforce `credits_must_not_exceed_debits` on account A2.
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
        commit create_accounts

        setup A2 0 40 0 0

        transfer T1 A1 A2 41   _  _  _  _    0 L1 C1 LNK   _ _   _   _   _ _ _ _ _ _ linked_event_failed
        transfer T2 A2 A3  1   _  _  _  _    0 L1 C1 LNK PEN _   _ BDR   _ _ _ _ _ _ exceeds_debits
        transfer T3 A2 A3  0  T2  _  _  _    0 L1 C1   _   _ _ VOI   _   _ _ _ _ _ _ linked_event_failed
        commit create_transfers

        // Ids failed in a linked chain can be reused, but `exceeds_debits` is transient:
        transfer T1 A1 A2  0   _  _  _  _    0 L1 C1   _   _ _   _   _   _ _ _ _ _ _ created
        transfer T2 A2 A3  0   _  _  _  _    0 L1 C1   _   _ _   _   _   _ _ _ _ _ _ id_already_failed
        transfer T3 A2 A3  0   _  _  _  _    0 L1 C1   _   _ _   _   _   _ _ _ _ _ _ created
        commit create_transfers

        transfer T4 A1 A2 40   _  _  _  _    0 L1 C1 LNK   _ _   _   _   _ _ _ _ _ _ created
        transfer T5 A2 A3  1   _  _  _  _    0 L1 C1 LNK PEN _   _ BDR   _ _ _ _ _ _ created
        transfer T6 A2 A3  0  T5  _  _  _    0 L1 C1   _   _ _ VOI   _   _ _ _ _ _ _ created
        commit create_transfers

        lookup_account A1 0 40 0  0 _
        lookup_account A2 0 40 0 40 _
        lookup_account A3 0  0 0  0 _
        commit lookup_accounts
        ",
    );
    // Temporarily enforce `debits_must_not_exceed_credits` on account A1.
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _   D<C _ _ _ _ _ _ created
        commit create_accounts

        setup A1 0 0 0 40

        transfer T1 A1 A2 41   _  _  _  _    0 L1 C1 LNK   _ _   _   _   _ _ _ _ _ _ linked_event_failed
        transfer T2 A3 A1  1   _  _  _  _    0 L1 C1 LNK PEN _   _   _ BCR _ _ _ _ _ exceeds_credits
        transfer T3 A3 A1  0  T2  _  _  _    0 L1 C1   _   _ _ VOI   _   _ _ _ _ _ _ linked_event_failed
        commit create_transfers

        // Ids failed in a linked chain can be reused, but `exceeds_credits` is transient:
        transfer T1 A1 A2  0   _  _  _  _    0 L1 C1   _   _ _   _   _   _ _ _ _ _ _ created
        transfer T2 A3 A1  0   _  _  _  _    0 L1 C1   _   _ _   _   _   _ _ _ _ _ _ id_already_failed
        transfer T3 A3 A1  0   _  _  _  _    0 L1 C1   _   _ _   _   _   _ _ _ _ _ _ created
        commit create_transfers

        transfer T4 A1 A2 40   _  _  _  _    0 L1 C1 LNK   _ _   _   _   _ _ _ _ _ _ created
        transfer T5 A3 A1  1   _  _  _  _    0 L1 C1 LNK PEN _   _   _ BCR _ _ _ _ _ created
        transfer T6 A3 A1  0  T5  _  _  _    0 L1 C1   _   _ _ VOI   _   _ _ _ _ _ _ created
        commit create_transfers

        lookup_account A1 0 40 0 40 _
        lookup_account A2 0  0 0 40 _
        lookup_account A3 0  0 0  0 _
        commit lookup_accounts
        ",
    );
}

// Goal: the first event decides whether a batch is imported.
#[test]
fn imported_events_imported_batch() {
    check(
        r"
        tick 10 nanoseconds
        account A1  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 1 created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ _   _ _ 0 imported_event_expected
        account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 2 created
        commit create_accounts
        account A3  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ _   _ _ 0 created
        account A4  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 3 imported_event_not_expected
        commit create_accounts

        transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _ 10 created
        transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  _   _ _ _  0 imported_event_expected
        commit create_transfers
        transfer   T3 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  _   _  _ _ 0 created
        transfer   T4 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _  _ _ 0 imported_event_not_expected
        commit create_transfers
        ",
    );
}

// Goal: imported timestamp range, advance and regress rules, checked after idempotency.
#[test]
fn imported_events_timestamp() {
    check(
        r"
        tick 10 nanoseconds

        account A1  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  0 imported_event_timestamp_out_of_range
        account A1  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ -1 imported_event_timestamp_out_of_range
        account A1  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 99 imported_event_timestamp_must_not_advance
        account A1  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  2 created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  1 imported_event_timestamp_must_not_regress
        account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  3 created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  9 created
        commit create_accounts

        account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 99 imported_event_timestamp_must_not_advance
        account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  1 exists
        account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  3 exists
        account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  4 exists
        account A3  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  9 exists
        commit create_accounts

        transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  0 imported_event_timestamp_out_of_range
        transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _ -1 imported_event_timestamp_out_of_range
        transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _ 99 imported_event_timestamp_must_not_advance
        transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  2 imported_event_timestamp_must_not_regress // The same timestamp as the dr account.
        transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  3 imported_event_timestamp_must_not_regress // The same timestamp as the cr account.
        transfer   T1 A3 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  4 imported_event_timestamp_must_postdate_debit_account
        transfer   T1 A1 A3    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  4 imported_event_timestamp_must_postdate_credit_account
        transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  4 created
        transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  3 imported_event_timestamp_must_not_regress
        transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  5 created
        commit create_transfers

        transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _ 99 imported_event_timestamp_must_not_advance
        transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  4 exists // T2 `exists` regardless different timestamps.
        transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  5 exists
        transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  6 exists
        commit create_transfers

        transfer   T3 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _ 10 created
        commit create_transfers

        account A4  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 10 imported_event_timestamp_must_not_regress // The same timestamp as a transfer.
        commit create_accounts
        ",
    );
}

// Goal: imported pending transfers must not time out and can be posted with an import.
#[test]
fn imported_events_pending_transfers() {
    check(
        r"
        tick 10 nanoseconds

        account A1  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 1 created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 2 created
        commit create_accounts

        transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _     _   _   _   _   _  IMP _ _ _ 3 created
        transfer   T2 A1 A2    4   _  _  _  _    1 L1 C2   _     PEN _   _   _   _  IMP _ _ _ 4 imported_event_timeout_must_be_zero
        transfer   T2 A1 A2    4   _  _  _  _    0 L1 C2   _     PEN _   _   _   _  IMP _ _ _ 4 created
        commit create_transfers

        lookup_account A1 4  3  0  0  _
        lookup_account A2 0  0  4  3  _
        commit lookup_accounts

        transfer   T3 A1 A2    4  T2 _  _   _    _ L1 C2   _     _   POS _   _   _  IMP _ _ _ 5 created
        commit create_transfers

        lookup_account A1 0  7  0  0  _
        lookup_account A2 0  0  0  7  _
        commit lookup_accounts

        lookup_transfer T1 timestamp 3
        lookup_transfer T2 timestamp 4
        lookup_transfer T3 timestamp 5
        commit lookup_transfers
        ",
    );
}

// Goal: a failed imported chain leaves the timestamp maxima unchanged, so the batch can be
// resubmitted; rolled-back imported events report their own timestamps.
#[test]
fn imported_events_linked_chain() {
    check(
        r"
        tick 10 nanoseconds

        account A1  0  0  0  0  _  _  _ _ L1 C1   LNK  _  _  _ IMP _ _ 1 linked_event_failed
        account A2  0  0  0  0  _  _  _ _ L1 C1   LNK  _  _  _ IMP _ _ 2 linked_event_failed
        account A3  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 0 imported_event_timestamp_out_of_range
        commit create_accounts

        account A1  0  0  0  0  _  _  _ _ L1 C1   LNK  _  _  _ IMP _ _ 1 created
        account A2  0  0  0  0  _  _  _ _ L1 C1   LNK  _  _  _ IMP _ _ 2 created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 3 created
        commit create_accounts

        transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   LNK   _   _   _   _   _  IMP _ _ _ 4 linked_event_failed
        transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   LNK   _   _   _   _   _  IMP _ _ _ 5 linked_event_failed
        transfer   T3 A1 A2    3   _  _  _  _    _ L1 C2   _     _   _   _   _   _  IMP _ _ _ 0 imported_event_timestamp_out_of_range
        commit create_transfers

        transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   LNK   _   _   _   _   _  IMP _ _ _ 4 created
        transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   LNK   _   _   _   _   _  IMP _ _ _ 5 created
        transfer   T3 A1 A2    3   _  _  _  _    _ L1 C2   _     _   _   _   _   _  IMP _ _ _ 6 created
        commit create_transfers

        lookup_account A1 0  9  0  0  _
        lookup_account A2 0  0  0  9  _
        lookup_account A3 0  0  0  0  _
        commit lookup_accounts

        lookup_transfer T1 timestamp 4
        lookup_transfer T2 timestamp 5
        lookup_transfer T3 timestamp 6
        commit lookup_transfers
        ",
    );
}

// Goal: accounts can be created already closed.
#[test]
fn create_accounts_closed_accounts() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _  _  _ _ _  CLSD _ _ created
        commit create_accounts

        lookup_account A1  0  0  0   0  CLSD
        commit lookup_accounts
        ",
    );
}

// Goal: closing transfers must be pending; closed accounts reject transfers and posts but
// allow voids; voiding or expiry of the closing transfer reopens the account.
#[test]
fn create_transfers_closing_accounts() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _  _  _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _  _  _ _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _  _  _ _ _ _ _ _ created
        commit create_accounts

        // Closing the debit account.
        transfer   T1  A1 A2   15   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ created
        transfer   T2  A1 A2    0   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  CDR _   _ _ closing_transfer_must_be_pending
        transfer   T2  A1 A2    0   _  _   _  _    0 L1 C1   _   PEN _   _   _   _  _  CDR _   _ _ created
        transfer   T2  A1 A2    0   _  _   _  _    0 L1 C1   _   PEN _   _   _   _  _  CDR _   _ _ exists
        // `debit_account_already_closed` is a transient error, T3 cannot be reused:
        transfer   T3  A1 A2    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ debit_account_already_closed
        transfer   T3  A1 A2    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ id_already_failed
        // `credit_account_already_closed` is a transient error, T4 cannot be reused:
        transfer   T4  A2 A1    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ credit_account_already_closed
        transfer   T4  A1 A2    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ id_already_failed
        commit create_transfers

        lookup_account A1  0 15  0   0  CLSD
        lookup_account A2  0  0  0  15  _
        commit lookup_accounts
        // `debit_account_already_closed` is a transient error, T5 cannot be reused:
        transfer   T5  A1 A2    0   T2 _   _  _    _ L1 C1   _   _   POS _   _   _  _  _   _   _ _ debit_account_already_closed
        transfer   T5  A1 A2    0   T2 _   _  _    _ L1 C1   _   _   _   VOI _   _  _  _   _   _ _ id_already_failed

        transfer   T6  A1 A2    0   T2 _   _  _    _ L1 C1   _   _   _   VOI _   _  _  _   _   _ _ created // Re-opening the account.
        transfer   T6  A1 A2    0   T2 _   _  _    _ L1 C1   _   _   _   VOI _   _  _  _   _   _ _ exists
        transfer   T7  A1 A2    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ created
        commit create_transfers

        lookup_account A1  0 20  0   0  _
        lookup_account A2  0  0  0  20  _
        commit lookup_accounts

        // Closing the credit account with a timeout.
        // Pending transfer can be voided, but not posted in a closed account.
        transfer   T8  A1 A2   10   _  _   _  _    1 L1 C1   _   PEN _   _   _   _  _  _   _   _ _ created
        transfer   T9  A1 A2   10   _  _   _  _    0 L1 C1   _   PEN _   _   _   _  _  _   _   _ _ created
        transfer   T10 A1 A2    0   _  _   _  _    2 L1 C1   _   PEN _   _   _   _  _  _   CCR _ _ created
        transfer   T10 A1 A2    0   _  _   _  _    2 L1 C1   _   PEN _   _   _   _  _  _   CCR _ _ exists
        // `credit_account_already_closed` is a transient error, T11 cannot be reused:
        transfer   T11 A1 A2   10   T9 _   _  _    _ L1 C1   _   _   POS _   _   _  _  _   _   _ _ credit_account_already_closed
        transfer   T11 A1 A2   10   T9 _   _  _    _ L1 C1   _   _   _   VOI _   _  _  _   _   _ _ id_already_failed

        transfer   T12 A1 A2   10   T9 _   _  _    _ L1 C1   _   _   _   VOI _   _  _  _   _   _ _ created
        transfer   T12 A1 A2   10   T9 _   _  _    _ L1 C1   _   _   _   VOI _   _  _  _   _   _ _ exists
        commit create_transfers

        lookup_account A1 10 20  0   0  _
        lookup_account A2  0  0 10  20  CLSD
        commit lookup_accounts

        // Pending balance can expire for closed accounts.
        tick 1 seconds
        lookup_account A1  0 20  0   0  _
        lookup_account A2  0  0  0  20  CLSD
        commit lookup_accounts

        // Pending closing accounts can expire after the timeout.
        tick 1 seconds
        lookup_account A1  0 20  0   0  _
        lookup_account A2  0  0  0  20  _
        commit lookup_accounts

        // Closing both accounts.
        transfer   T13  A1 A2    0   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  CDR CCR _ _ closing_transfer_must_be_pending
        transfer   T13  A1 A2    0   _  _   _  _    0 L1 C1   _   PEN _   _   _   _  _  CDR CCR _ _ created
        transfer   T13  A1 A2    0   _  _   _  _    0 L1 C1   _   PEN _   _   _   _  _  CDR CCR _ _ exists
        // `debit_account_already_closed` is a transient error, T14 cannot be reused:
        transfer   T14  A1 A3    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ debit_account_already_closed
        transfer   T14  A1 A3    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ id_already_failed
        // `credit_account_already_closed` is a transient error, T15 cannot be reused:
        transfer   T15  A3 A2    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ credit_account_already_closed
        transfer   T15  A3 A2    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ id_already_failed
        commit create_transfers

        lookup_account A1  0 20  0   0  CLSD
        lookup_account A2  0  0  0  20  CLSD
        commit lookup_accounts

        // Cannot close an already closed account.
        transfer   T16 A1 A3    0   _  _   _  _    0 L1 C1   _   PEN   _   _   _   _  _  CDR _   _ _ debit_account_already_closed
        transfer   T16 A1 A3    0   _  _   _  _    0 L1 C1   _   PEN   _   _   _   _  _  CDR _   _ _ id_already_failed
        transfer   T17 A3 A2    0   _  _   _  _    0 L1 C1   _   PEN   _   _   _   _  _  _   CCR _ _ credit_account_already_closed
        transfer   T17 A3 A2    0   _  _   _  _    0 L1 C1   _   PEN   _   _   _   _  _  _   CCR _ _ id_already_failed
        commit create_transfers
        ",
    );
}

// Goal: get_account_transfers direction, limit, timestamp range, order and field filters.
#[test]
fn get_account_transfers_single_phase() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ _ _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _ _ _ _ _ _ _ _ created
        commit create_accounts

        transfer T1 A1 A2   10   _  U1000  U10  U1 _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
        transfer T2 A2 A1   11   _  U1001  U10  U2 _ L1 C2   _   _   _   _   _   _  _ _ _ _ _ created
        transfer T3 A1 A2   12   _  U1000  U20  U2 _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
        transfer T4 A2 A1   13   _  U1001  U20  U1 _ L1 C2   _   _   _   _   _   _  _ _ _ _ _ created
        commit create_transfers

        // Debits + credits, chronological.
        get_account_transfers A1 _ _ _ _ _  _ 10 DR CR  _
        get_account_transfers_result T1
        get_account_transfers_result T2
        get_account_transfers_result T3
        get_account_transfers_result T4
        commit get_account_transfers

        // Debits + credits, limit=2.
        get_account_transfers A1 _ _ _ _  _  _  2 DR CR  _
        get_account_transfers_result T1
        get_account_transfers_result T2
        commit get_account_transfers

        // Debits + credits, timestamp_min>0.
        get_account_transfers A1 _ _ _ _  T3 _ 10 DR CR  _
        get_account_transfers_result T3
        get_account_transfers_result T4
        commit get_account_transfers

        // Debits + credits, timestamp_max>0.
        get_account_transfers A1 _ _ _ _  _ T2 10 DR CR  _
        get_account_transfers_result T1
        get_account_transfers_result T2
        commit get_account_transfers

        // Debits + credits, 0 < timestamp_min ≤ timestamp_max.
        get_account_transfers A1 _ _ _ _ T2 T3 10 DR CR  _
        get_account_transfers_result T2
        get_account_transfers_result T3
        commit get_account_transfers

        // Debits + credits, reverse-chronological.
        get_account_transfers A1 _ _ _ _  _  _ 10 DR CR REV
        get_account_transfers_result T4
        get_account_transfers_result T3
        get_account_transfers_result T2
        get_account_transfers_result T1
        commit get_account_transfers

        // Debits only.
        get_account_transfers A1 _ _ _ _  _  _ 10 DR  _  _
        get_account_transfers_result T1
        get_account_transfers_result T3
        commit get_account_transfers

        // Credits only.
        get_account_transfers A1 _ _ _ _  _  _ 10  _ CR  _
        get_account_transfers_result T2
        get_account_transfers_result T4
        commit get_account_transfers

        // Debits + credits + user_data_128, chronological.
        get_account_transfers A1 U1001 _ _ _ _  _ 10 DR CR  _
        get_account_transfers_result T2
        get_account_transfers_result T4
        commit get_account_transfers

        // Debits + credits + user_data_64, chronological.
        get_account_transfers A1 _ U10 _ _ _  _ 10 DR CR  _
        get_account_transfers_result T1
        get_account_transfers_result T2
        commit get_account_transfers

        // Debits + credits + user_data_32, chronological.
        get_account_transfers A1 _ _ U1 _ _  _ 10 DR CR  _
        get_account_transfers_result T1
        get_account_transfers_result T4
        commit get_account_transfers

        // Debits + credits + code, chronological.
        get_account_transfers A1 _ _ _ C1 _  _ 10 DR CR  _
        get_account_transfers_result T1
        get_account_transfers_result T3
        commit get_account_transfers

        // Debits + credits + all filters, 0 < timestamp_min ≤ timestamp_max, chronological.
        get_account_transfers A1 U1000 U10 U1 C1 T1 T3 10 DR CR  _
        get_account_transfers_result T1
        commit get_account_transfers

        // Debits only + all filters, 0 < timestamp_min ≤ timestamp_max, chronological.
        get_account_transfers A1 U1000 U10 U1 C1 T1 T3 10 DR _  _
        get_account_transfers_result T1
        commit get_account_transfers

        // Credits only + all filters, 0 < timestamp_min ≤ timestamp_max, chronological.
        get_account_transfers A2 U1000 U10 U1 C1 T1 T3 10 _ CR  _
        get_account_transfers_result T1
        commit get_account_transfers

        // Not found.
        get_account_transfers A1 U1000 U20 U2 C2 _ _ 10 DR CR  _
        commit get_account_transfers
        ",
    );
}

// Goal: pending and post records both appear in get_account_transfers.
#[test]
fn get_account_transfers_two_phase() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ _ _ HIST _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _ _ _ HIST _ _ _ _ created
        commit create_accounts

        transfer T1 A1 A2    2   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
        transfer T2 A1 A2    1  T1  _  _  _    0 L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
        commit create_transfers

        get_account_transfers A1 _ _ _ _ _ _ 10 DR CR  _
        get_account_transfers_result T1
        get_account_transfers_result T2
        commit get_account_transfers
        ",
    );
}

// Goal: invalid account filters return an empty result.
#[test]
fn get_account_transfers_invalid_filter() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ _ _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _ _ _ _ _ _ _ _ created
        commit create_accounts

        transfer T1 A1 A2    2   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
        transfer T2 A1 A2    1  T1  _  _  _    0 L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
        commit create_transfers

        // Invalid account.
        get_account_transfers A3 _ _ _ _  _  _  10 DR CR _
        commit get_account_transfers // Empty result.

        // Invalid filter flags.
        get_account_transfers A1 _ _ _ _  _  _  10 _  _  _
        commit get_account_transfers // Empty result.

        // Invalid timestamp_min > timestamp_max.
        get_account_transfers A1 _ _ _ _  T2 T1 10 DR CR _
        commit get_account_transfers // Empty result.

        // Invalid limit.
        get_account_transfers A1 _ _ _ _  _   _  0 DR CR _
        commit get_account_transfers // Empty result.

        // Success.
        get_account_transfers A1 _ _ _ C1 _   _ 10 DR CR _
        get_account_transfers_result T1
        get_account_transfers_result T2
        commit get_account_transfers
        ",
    );
}

// Goal: get_account_balances returns the queried account's balance after each selected
// transfer, with the same selection rules as get_account_transfers.
#[test]
fn get_account_balances_single_phase() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ _ _ HIST _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _ _ _ HIST _ _ _ _ created
        commit create_accounts

        transfer T1 A1 A2   10   _  U1000  U10  U1 _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
        transfer T2 A2 A1   11   _  U1001  U10  U2 _ L1 C2   _   _   _   _   _   _  _ _ _ _ _ created
        transfer T3 A1 A2   12   _  U1000  U20  U2 _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
        transfer T4 A2 A1   13   _  U1001  U20  U1 _ L1 C2   _   _   _   _   _   _  _ _ _ _ _ created
        commit create_transfers

        // Debits + credits, chronological.
        get_account_balances A1 _ _ _ _  _  _ 10 DR CR  _
        get_account_balances_result T1 0 10 0  0
        get_account_balances_result T2 0 10 0 11
        get_account_balances_result T3 0 22 0 11
        get_account_balances_result T4 0 22 0 24
        commit get_account_balances

        // Debits + credits, limit=2.
        get_account_balances A1 _ _ _ _  _  _ 2 DR CR  _
        get_account_balances_result T1 0 10 0  0
        get_account_balances_result T2 0 10 0 11
        commit get_account_balances

        // Debits + credits, timestamp_min>0.
        get_account_balances A1 _ _ _ _  T3 _ 10 DR CR  _
        get_account_balances_result T3 0 22 0 11
        get_account_balances_result T4 0 22 0 24
        commit get_account_balances

        // Debits + credits, timestamp_max>0.
        get_account_balances A1 _ _ _ _  _ T2 10 DR CR  _
        get_account_balances_result T1 0 10 0  0
        get_account_balances_result T2 0 10 0 11
        commit get_account_balances

        // Debits + credits, 0 < timestamp_min ≤ timestamp_max.
        get_account_balances A1 _ _ _ _ T2 T3 10 DR CR  _
        get_account_balances_result T2 0 10 0 11
        get_account_balances_result T3 0 22 0 11
        commit get_account_balances

        // Debits + credits, reverse-chronological.
        get_account_balances A1 _ _ _ _  _  _ 10 DR CR REV
        get_account_balances_result T4 0 22 0 24
        get_account_balances_result T3 0 22 0 11
        get_account_balances_result T2 0 10 0 11
        get_account_balances_result T1 0 10 0  0
        commit get_account_balances

        // Debits only.
        get_account_balances A1 _ _ _ _  _  _ 10 DR  _  _
        get_account_balances_result T1 0 10 0  0
        get_account_balances_result T3 0 22 0 11
        commit get_account_balances

        // Credits only.
        get_account_balances A1 _ _ _ _  _  _ 10  _ CR  _
        get_account_balances_result T2 0 10 0 11
        get_account_balances_result T4 0 22 0 24
        commit get_account_balances

        // Debits + credits + user_data_128, chronological.
        get_account_balances A1 U1001 _ _ _ _  _ 10 DR CR  _
        get_account_balances_result T2 0 10 0 11
        get_account_balances_result T4 0 22 0 24
        commit get_account_balances

        // Debits + credits + user_data_64, chronological.
        get_account_balances A1 _ U10 _ _ _  _ 10 DR CR  _
        get_account_balances_result T1 0 10 0  0
        get_account_balances_result T2 0 10 0 11
        commit get_account_balances

        // Debits + credits + user_data_32, chronological.
        get_account_balances A1 _ _ U1 _ _  _ 10 DR CR  _
        get_account_balances_result T1 0 10 0  0
        get_account_balances_result T4 0 22 0 24
        commit get_account_balances

        // Debits + credits + code, chronological.
        get_account_balances A1 _ _ _ C1 _  _ 10 DR CR  _
        get_account_balances_result T1 0 10 0  0
        get_account_balances_result T3 0 22 0 11
        commit get_account_balances

        // Debits + credits + all filters, 0 < timestamp_min ≤ timestamp_max, chronological.
        get_account_balances A1 U1000 U10 U1 C1 T1 T3 10 DR CR  _
        get_account_balances_result T1 0 10 0  0
        commit get_account_balances

        // Debits only + all filters, 0 < timestamp_min ≤ timestamp_max, chronological.
        get_account_balances A1 U1000 U10 U1 C1 T1 T3 10 DR _  _
        get_account_balances_result T1 0 10 0  0
        commit get_account_balances

        // Credits only + all filters, 0 < timestamp_min ≤ timestamp_max, chronological.
        get_account_balances A2 U1000 U10 U1 C1 T1 T3 10 _ CR  _
        get_account_balances_result T1 0  0 0  10
        commit get_account_balances

        // Not found.
        get_account_balances A1 U1000 U20 U2 C2 _ _ 10 DR CR  _
        commit get_account_balances
        ",
    );
}

// Goal: balance history of a pending transfer and its post.
#[test]
fn get_account_balances_two_phase() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ _ _ HIST _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _ _ _ HIST _ _ _ _ created
        commit create_accounts

        transfer T1 A1 A2    1   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
        transfer T2 A1 A2    1  T1  _  _  _    0 L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
        commit create_transfers

        get_account_balances A1 _ _ _ _ _ _ 10 DR CR  _
        get_account_balances_result T1 1 0 0 0
        get_account_balances_result T2 0 1 0 0
        commit get_account_balances
        ",
    );
}

// Goal: balances need an existing account with `history` and a valid filter; the other
// account's missing `history` does not matter.
#[test]
fn get_account_balances_invalid_filter() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _ _ _ HIST _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _ _ _    _ _ _ _ _ created
        commit create_accounts

        transfer T1 A1 A2    2   _  _  _  _    0 L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
        transfer T2 A1 A2    1   _  _  _  _    0 L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
        commit create_transfers

        // Invalid account.
        get_account_balances A3 _ _ _  _ _  _  10 DR CR _
        commit get_account_balances // Empty result.

        // Account without flags.history.
        get_account_balances A2 _ _ _  _ _  _  10 DR CR _
        commit get_account_balances // Empty result.

        // Invalid filter flags.
        get_account_balances A1 _ _ _  _ _  _  10 _  _  _
        commit get_account_balances // Empty result.

        // Invalid timestamp_min > timestamp_max.
        get_account_balances A1 _ _ _  _ T2 T1 10 DR CR _
        commit get_account_balances // Empty result.

        // Invalid limit.
        get_account_balances A1 _ _ _  _ _   _  0 DR CR _
        commit get_account_balances // Empty result.

        // Success.
        get_account_balances A1 _ _ _ C1 _  _ 10 DR CR  _
        get_account_balances_result T1 0 2 0 0
        get_account_balances_result T2 0 3 0 0
        commit get_account_balances
        ",
    );
}

// Goal: query_accounts field filters (AND, 0 = any), timestamp range, order and limit.
#[test]
fn query_accounts() {
    check(
        r"
        account A1  0  0  0  0 U1000 U10 U1 _ L1 C1 _   _   _ _ _ _ _ _ created
        account A2  0  0  0  0 U1000 U11 U2 _ L2 C2 _   _   _ _ _ _ _ _ created
        account A3  0  0  0  0 U1000 U10 U3 _ L3 C3 _   _   _ _ _ _ _ _ created
        account A4  0  0  0  0 U1000 U11 U4 _ L4 C4 _   _   _ _ _ _ _ _ created
        account A5  0  0  0  0 U2000 U10 U1 _ L3 C5 _   _   _ _ _ _ _ _ created
        account A6  0  0  0  0 U2000 U11 U2 _ L2 C6 _   _   _ _ _ _ _ _ created
        account A7  0  0  0  0 U2000 U10 U3 _ L1 C7 _   _   _ _ _ _ _ _ created
        account A8  0  0  0  0 U1000 U10 U1 _ L1 C1 _   _   _ _ _ _ _ _ created
        commit create_accounts

        // WHERE user_data_128=1000:
        query_accounts U1000 U0 U0 L0 C0 _ _ L-0 _
        query_accounts_result A1 _
        query_accounts_result A2 _
        query_accounts_result A3 _
        query_accounts_result A4 _
        query_accounts_result A8 _
        commit query_accounts

        // WHERE user_data_128=1000 ORDER BY DESC:
        query_accounts U1000 U0 U0 L0 C0 _ _ L-0 REV
        query_accounts_result A8 _
        query_accounts_result A4 _
        query_accounts_result A3 _
        query_accounts_result A2 _
        query_accounts_result A1 _
        commit query_accounts

        // WHERE user_data_64=10 AND user_data_32=3
        query_accounts U0 U10 U3 L0 C0 _ _ L-0 _
        query_accounts_result A3 _
        query_accounts_result A7 _
        commit query_accounts

        // WHERE user_data_64=10 AND user_data_32=3 ORDER BY DESC:
        query_accounts U0 U10 U3 L0 C0 _ _ L-0 REV
        query_accounts_result A7 _
        query_accounts_result A3 _
        commit query_accounts

        // WHERE user_data_64=11 AND user_data_32=2 AND ledger=2:
        query_accounts U0 U11 U2 L2 C0 _ _ L-0 _
        query_accounts_result A2 _
        query_accounts_result A6 _
        commit query_accounts

        // WHERE user_data_64=11 AND user_data_32=2 AND ledger=2 ORDER BY DESC:
        query_accounts U0 U11 U2 L2 C0 _ _ L-0 REV
        query_accounts_result A6 _
        query_accounts_result A2 _
        commit query_accounts

        // WHERE user_data_128=1000 AND user_data_64=10 AND user_data_32=1 AND ledger=1 AND code=1:
        query_accounts U1000 U10 U1 L1 C1 _ _ L-0 _
        query_accounts_result A1 _
        query_accounts_result A8 _
        commit query_accounts

        // The same, ORDER BY DESC:
        query_accounts U1000 U10 U1 L1 C1 _ _ L-0 REV
        query_accounts_result A8 _
        query_accounts_result A1 _
        commit query_accounts

        // WHERE user_data_128=1000 AND timestamp >= A3.timestamp:
        query_accounts U1000 U0 U0 L0 C0 A3 _ L-0 _
        query_accounts_result A3 _
        query_accounts_result A4 _
        query_accounts_result A8 _
        commit query_accounts

        // WHERE user_data_128=1000 AND timestamp <= A3.timestamp:
        query_accounts U1000 U0 U0 L0 C0 _ A3 L-0 _
        query_accounts_result A1 _
        query_accounts_result A2 _
        query_accounts_result A3 _
        commit query_accounts

        // WHERE user_data_128=1000 AND timestamp BETWEEN A2.timestamp AND A4.timestamp:
        query_accounts U1000 U0 U0 L0 C0 A2 A4 L-0 _
        query_accounts_result A2 _
        query_accounts_result A3 _
        query_accounts_result A4 _
        commit query_accounts

        // SELECT *:
        query_accounts U0 U0 U0 L0 C0 _ _ L-0 _
        query_accounts_result A1 _
        query_accounts_result A2 _
        query_accounts_result A3 _
        query_accounts_result A4 _
        query_accounts_result A5 _
        query_accounts_result A6 _
        query_accounts_result A7 _
        query_accounts_result A8 _
        commit query_accounts

        // SELECT * ORDER BY DESC:
        query_accounts U0 U0 U0 L0 C0 _ _ L-0 REV
        query_accounts_result A8 _
        query_accounts_result A7 _
        query_accounts_result A6 _
        query_accounts_result A5 _
        query_accounts_result A4 _
        query_accounts_result A3 _
        query_accounts_result A2 _
        query_accounts_result A1 _
        commit query_accounts

        // SELECT * WHERE timestamp >= A2.timestamp LIMIT 3:
        query_accounts U0 U0 U0 L0 C0 A2 _ L3 _
        query_accounts_result A2 _
        query_accounts_result A3 _
        query_accounts_result A4 _
        commit query_accounts

        // SELECT * LIMIT 1:
        query_accounts U0 U0 U0 L0 C0 _ _ L1 _
        query_accounts_result A1 _
        commit query_accounts

        // SELECT * ORDER BY DESC LIMIT 1:
        query_accounts U0 U0 U0 L0 C0 _ _ L1 REV
        query_accounts_result A8 _
        commit query_accounts

        // NOT FOUND: SELECT * LIMIT 0:
        query_accounts U0 U0 U0 L0 C0 _ _ L0 _
        commit query_accounts

        // WHERE user_data_128=3000
        query_accounts U3000 U0 U0 L0 C0 _ _ L-0 _
        commit query_accounts

        // WHERE user_data_128=1000 AND code=5
        query_accounts U1000 U0 U0 L0 C5 _ _ L-0 _
        commit query_accounts

        // WHERE user_data_128=1000 AND user_data_64=10 AND user_data_32=1 AND ledger=1 AND code=2:
        query_accounts U1000 U10 U1 L1 C2 _ _ L-0 _
        commit query_accounts

        // WHERE user_data_128=1000 AND timestamp BETWEEN A5.timestamp AND A7.timestamp:
        query_accounts U1000 U0 U0 L0 C0 A5 A7 L-0 _
        commit query_accounts
        ",
    );
}

// Goal: query_transfers field filters (AND, 0 = any), timestamp range, order and limit.
#[test]
fn query_transfers() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L2 C1   _   _   _ _ _ _ _ _ created
        account A4  0  0  0  0  _  _  _ _ L2 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        transfer T1 A1 A2    0  _ U1000 U10 U1 _ L1 C1 _ _ _ _ _ _ _ _ _ _ _ created
        transfer T2 A3 A4   11  _ U1000 U11 U2 _ L2 C2 _ _ _ _ _ _ _ _ _ _ _ created
        transfer T3 A2 A1   12  _ U1000 U10 U3 _ L1 C3 _ _ _ _ _ _ _ _ _ _ _ created
        transfer T4 A4 A3   13  _ U1000 U11 U4 _ L2 C4 _ _ _ _ _ _ _ _ _ _ _ created
        transfer T5 A2 A1   14  _ U2000 U10 U1 _ L1 C5 _ _ _ _ _ _ _ _ _ _ _ created
        transfer T6 A4 A3   15  _ U2000 U11 U2 _ L2 C6 _ _ _ _ _ _ _ _ _ _ _ created
        transfer T7 A1 A2   16  _ U2000 U10 U3 _ L1 C7 _ _ _ _ _ _ _ _ _ _ _ created
        transfer T8 A2 A1   17  _ U1000 U10 U1 _ L1 C1 _ _ _ _ _ _ _ _ _ _ _ created
        commit create_transfers

        // WHERE user_data_128=1000:
        query_transfers U1000 U0 U0 L0 C0 _ _ L-0 _
        query_transfers_result T1
        query_transfers_result T2
        query_transfers_result T3
        query_transfers_result T4
        query_transfers_result T8
        commit query_transfers

        // WHERE user_data_128=1000 ORDER BY DESC:
        query_transfers U1000 U0 U0 L0 C0 _ _ L-0 REV
        query_transfers_result T8
        query_transfers_result T4
        query_transfers_result T3
        query_transfers_result T2
        query_transfers_result T1
        commit query_transfers

        // WHERE user_data_64=10 AND user_data_32=3
        query_transfers U0 U10 U3 L0 C0 _ _ L-0 _
        query_transfers_result T3
        query_transfers_result T7
        commit query_transfers

        // WHERE user_data_64=10 AND user_data_32=3 ORDER BY DESC:
        query_transfers U0 U10 U3 L0 C0 _ _ L-0 REV
        query_transfers_result T7
        query_transfers_result T3
        commit query_transfers

        // WHERE user_data_64=11 AND user_data_32=2 AND ledger=2:
        query_transfers U0 U11 U2 L2 C0 _ _ L-0 _
        query_transfers_result T2
        query_transfers_result T6
        commit query_transfers

        // The same, ORDER BY DESC:
        query_transfers U0 U11 U2 L2 C0 _ _ L-0 REV
        query_transfers_result T6
        query_transfers_result T2
        commit query_transfers

        // WHERE user_data_128=1000 AND user_data_64=10 AND user_data_32=1 AND ledger=1 AND code=1:
        query_transfers U1000 U10 U1 L1 C1 _ _ L-0 _
        query_transfers_result T1
        query_transfers_result T8
        commit query_transfers

        // The same, ORDER BY DESC:
        query_transfers U1000 U10 U1 L1 C1 _ _ L-0 REV
        query_transfers_result T8
        query_transfers_result T1
        commit query_transfers

        // WHERE user_data_128=1000 AND timestamp >= T3.timestamp:
        query_transfers U1000 U0 U0 L0 C0 A3 _ L-0 _
        query_transfers_result T3
        query_transfers_result T4
        query_transfers_result T8
        commit query_transfers

        // WHERE user_data_128=1000 AND timestamp <= T3.timestamp:
        query_transfers U1000 U0 U0 L0 C0 _ A3 L-0 _
        query_transfers_result T1
        query_transfers_result T2
        query_transfers_result T3
        commit query_transfers

        // WHERE user_data_128=1000 AND timestamp BETWEEN T2.timestamp AND T4.timestamp:
        query_transfers U1000 U0 U0 L0 C0 A2 A4 L-0 _
        query_transfers_result T2
        query_transfers_result T3
        query_transfers_result T4
        commit query_transfers

        // SELECT *:
        query_transfers U0 U0 U0 L0 C0 _ _ L-0 _
        query_transfers_result T1
        query_transfers_result T2
        query_transfers_result T3
        query_transfers_result T4
        query_transfers_result T5
        query_transfers_result T6
        query_transfers_result T7
        query_transfers_result T8
        commit query_transfers

        // SELECT * ORDER BY DESC:
        query_transfers U0 U0 U0 L0 C0 _ _ L-0 REV
        query_transfers_result T8
        query_transfers_result T7
        query_transfers_result T6
        query_transfers_result T5
        query_transfers_result T4
        query_transfers_result T3
        query_transfers_result T2
        query_transfers_result T1
        commit query_transfers

        // SELECT * WHERE timestamp >= T2.timestamp LIMIT 3:
        query_transfers U0 U0 U0 L0 C0 A2 _ L3 _
        query_transfers_result T2
        query_transfers_result T3
        query_transfers_result T4
        commit query_transfers

        // SELECT * LIMIT 1:
        query_transfers U0 U0 U0 L0 C0 _ _ L1 _
        query_transfers_result T1
        commit query_transfers

        // SELECT * ORDER BY DESC LIMIT 1:
        query_transfers U0 U0 U0 L0 C0 _ _ L1 REV
        query_transfers_result T8
        commit query_transfers

        // NOT FOUND: SELECT * LIMIT 0:
        query_transfers U0 U0 U0 L0 C0 _ _ L0 _
        commit query_transfers

        // WHERE user_data_128=3000
        query_transfers U3000 U0 U0 L0 C0 _ _ L-0 _
        commit query_transfers

        // WHERE user_data_128=1000 AND code=5
        query_transfers U1000 U0 U0 L0 C5 _ _ L-0 _
        commit query_transfers

        // WHERE user_data_128=1000 AND user_data_64=10 AND user_data_32=1 AND ledger=1 AND code=2:
        query_transfers U1000 U10 U1 L1 C2 _ _ L-0 _
        commit query_transfers

        // WHERE user_data_128=1000 AND timestamp BETWEEN T5.timestamp AND T7.timestamp:
        query_transfers U1000 U0 U0 L0 C0 A5 A7 L-0 _
        commit query_transfers
        ",
    );
}

// Goal (adapted from "get_change_events"): the balance effects of the change-events
// scenario — a pending transfer expiring on a tick, posts, voids, and voids of closing
// transfers reopening both accounts. The model exposes no change events, so the final
// balances, closed flags and get_account_transfers stand in for the event list.
#[test]
fn get_change_events_balances() {
    check(
        r"
        account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        account A4  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
        commit create_accounts

        transfer   T1 A1 A2   10   _  _  _  _    _ L1 C1   _   _   _   _   _   _  _   _   _ _ _ created // Not pending.
        transfer   T2 A1 A2   11   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _   _   _ _ _ created // Timeout zero will never expire.
        transfer   T3 A1 A2   12   _  _  _  _    1 L1 C1   _ PEN   _   _   _   _  _   _   _ _ _ created // Will expire.
        transfer   T4 A1 A2   13   _  _  _  _    2 L1 C1   _ PEN   _   _   _   _  _   _   _ _ _ created // Will be posted.
        transfer   T5 A1 A2   14   _  _  _  _    2 L1 C1   _ PEN   _   _   _   _  _   _   _ _ _ created // Will be voided.
        transfer   T6 A3 A1    0   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _ CDR   _ _ _ created
        transfer   T7 A1 A4    0   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _   _ CCR _ _ created
        commit create_transfers

        lookup_account A1 50 10  0  0 _
        lookup_account A2  0  0 50 10 _
        lookup_account A3  0  0  0  0 CLSD
        lookup_account A4  0  0  0  0 CLSD
        commit lookup_accounts

        tick 1 seconds

        lookup_account A1 38 10  0  0 _
        commit lookup_accounts

        transfer   T14 A0 A0   -0  T4  _  _  _    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ created // Posts T4.
        transfer   T15 A0 A0    0  T5  _  _  _    _ L0 C0   _   _   _ VOI   _   _  _ _ _ _ _ created // Voids T5.
        transfer   T16 A0 A0    0  T6  _  _  _    _ L0 C0   _   _   _ VOI   _   _  _ _ _ _ _ created // Reopens A3.
        transfer   T17 A0 A0    0  T7  _  _  _    _ L0 C0   _   _   _ VOI   _   _  _ _ _ _ _ created // Reopens A4.
        commit create_transfers

        lookup_account A1 11 23  0  0 _
        lookup_account A2  0  0 11 23 _
        lookup_account A3  0  0  0  0 _
        lookup_account A4  0  0  0  0 _
        commit lookup_accounts

        lookup_transfer T14 amount 13
        commit lookup_transfers
        ",
    );
}
