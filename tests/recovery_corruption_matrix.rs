//! Goal: every damaged-log case of the recovery decision table
//! (`docs/file-format.md`, "Recovery decisions") gives that row's outcome,
//! with repair off, as a dry run, and on. Above all: never an `Ok` that
//! lacks an acknowledged batch, except the one row that allows it (bytes
//! that look never written at the tail of a log that was not closed
//! cleanly, past its durable mark); repair never removes a record a later
//! open could have kept, leaves a directory that opens, and is idempotent.
//!
//! Method: a ledger on the simulated disk with several segments and two
//! snapshots (A, then B; the log truncated behind A), closed cleanly or
//! killed. Its files are parsed independently of the code, by the layout
//! the format document gives, and every damage kind is applied to a copy at
//! every position class: a record the newest snapshot covers (before A, and
//! between A and B), a record after B, the last record; each segment; each
//! snapshot; the manifest; and the case of issue 7 (the newest snapshot
//! damaged *and* a record between the snapshots damaged). The oracle is
//! the set of acknowledged batches and the table's rules, computed here
//! from the layout. Seeds: `SEED`, and `SYNCPAY_MATRIX_SEEDS` (default 2)
//! for a long mode; `SYNCPAY_MATRIX_KEEP_GOING=1` lists every failing case.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use syncpay::storage::clock::SimClock;
use syncpay::storage::io::{CrashMode, Io, OpenMode, SimIo};
use syncpay::storage::store::StoreError;
use syncpay::storage::wal::WalError;
use syncpay::testing::{Rng, seed_from_env};
use syncpay::{Account, CreateTransferStatus, Ledger, LedgerOptions, RecoveryMode, Transfer};

const DIR: &str = "/db";
const SEGMENT_BYTES: u64 = 16 << 10;
const SECTOR: u64 = 512;
const BATCHES: u64 = 64;
const SNAPSHOT_A_AT: u64 = 18;
const SNAPSHOT_B_AT: u64 = 36;
const ACCOUNTS: u128 = 10;

fn options(io: &SimIo, repair: bool) -> LedgerOptions {
    LedgerOptions::new()
        .segment_size_bytes(SEGMENT_BYTES)
        .checkpoint_interval_bytes(0)
        .recovery_mode(if repair {
            RecoveryMode::Repair
        } else {
            RecoveryMode::Strict
        })
        .create_if_missing(true)
        .io(Arc::new(io.clone()))
        .clock(Arc::new(SimClock::new(1_000)))
}

fn wal_dir() -> PathBuf {
    Path::new(DIR).join("wal")
}

fn snapshot_path(lsn: u64) -> PathBuf {
    Path::new(DIR)
        .join("snapshots")
        .join(format!("{lsn:020}.snap"))
}

/// One frame as the format document lays it out.
#[derive(Clone, Debug)]
struct Frame {
    lsn: u64,
    offset: u64,
    /// The frame's extent (header, body with stamps, padding to 32).
    size: u64,
    /// Offsets of its sector stamps.
    stamps: Vec<u64>,
    /// Offset of its frame padding, if it has any.
    padding: Option<u64>,
}

#[derive(Clone, Debug)]
struct SegmentLayout {
    index: u64,
    path: PathBuf,
    base: u64,
    frames: Vec<Frame>,
}

impl SegmentLayout {
    fn end_lsn(&self) -> u64 {
        self.frames.last().map_or(self.base, |f| f.lsn + 1)
    }
}

/// A built ledger: its files (on a simulator copy) and what it acknowledged.
struct Fixture {
    io: SimIo,
    clean: bool,
    /// Transfer ids of the batch logged at each LSN (LSN 1: accounts).
    batches: BTreeMap<u64, Vec<u128>>,
    segments: Vec<SegmentLayout>,
    last_lsn: u64,
    /// The manifest's durable mark: every LSN below it was durable.
    acked_lsn: u64,
}

fn account(id: u128) -> Account {
    Account {
        id,
        ledger: 1,
        code: 1,
        ..Account::default()
    }
}

fn build(seed: u64, clean: bool) -> Fixture {
    let io = SimIo::new(seed);
    let mut rng = Rng::new(seed);
    let ledger = Ledger::open(DIR, options(&io, false)).unwrap();
    let accounts: Vec<Account> = (1..=ACCOUNTS).map(account).collect();
    ledger.create_accounts(&accounts).unwrap();
    let mut batches = BTreeMap::new();
    batches.insert(1, Vec::new());
    for lsn in 2..=BATCHES {
        let count = rng.range_inclusive(1, 24) as u128;
        let transfers: Vec<Transfer> = (0..count)
            .map(|j| {
                let debit = 1 + (rng.below(ACCOUNTS as u64) as u128);
                let credit = 1 + (debit % ACCOUNTS);
                Transfer {
                    id: u128::from(lsn) * 1000 + j,
                    debit_account_id: debit,
                    credit_account_id: credit,
                    amount: 1,
                    ledger: 1,
                    code: 1,
                    ..Transfer::default()
                }
            })
            .collect();
        let mut transfers = transfers;
        if lsn == BATCHES {
            // The last batch ends with all-zero events (each fails with
            // id_must_not_be_zero, but the batch is logged as sent): a whole
            // sector of its record is zero, as in issue 7 case 3. Only the
            // sector stamps tell its rot from a torn write.
            transfers.truncate(1);
            transfers.extend(std::iter::repeat_n(Transfer::default(), 8));
        }
        let results = ledger.create_transfers(&transfers).unwrap();
        let created = results
            .iter()
            .filter(|r| r.status == CreateTransferStatus::Created);
        assert_eq!(
            created.count(),
            transfers.iter().filter(|t| t.id != 0).count()
        );
        let ids = transfers.iter().map(|t| t.id).filter(|&id| id != 0);
        batches.insert(lsn, ids.collect());
        if lsn == SNAPSHOT_A_AT || lsn == SNAPSHOT_B_AT {
            assert_eq!(ledger.checkpoint().unwrap().lsn, lsn);
        }
    }
    // The spare segment is prepared (and the durable mark raised with it).
    ledger.store().wal().wait_for_spare_segment();
    if clean {
        ledger.close().unwrap();
    } else {
        io.crash(CrashMode::ProcessKill);
        drop(ledger);
    }
    let segments = parse_segments(&io);
    assert!(
        segments.len() >= 4,
        "seed {seed}: {} segments",
        segments.len()
    );
    assert!(segments[0].base > 1, "the log should be truncated behind A");
    let last_lsn = segments.last().unwrap().end_lsn() - 1;
    assert_eq!(last_lsn, BATCHES);
    let acked_lsn = parse_manifest_acked(&io);
    Fixture {
        io,
        clean,
        batches,
        segments,
        last_lsn,
        acked_lsn,
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// Body length of a frame at `offset` with `n` payload bytes: an 8-byte
/// stamp at every sector boundary the body reaches (the document's rule).
fn body_len(offset: u64, n: u64) -> (u64, Vec<u64>) {
    let start = offset + 32;
    let (mut at, mut left, mut stamps) = (start, n, Vec::new());
    while left > 0 {
        if at % SECTOR == 0 {
            stamps.push(at);
            at += 8;
        }
        let take = (SECTOR - at % SECTOR).min(left);
        at += take;
        left -= take;
    }
    (at - start, stamps)
}

fn parse_segments(io: &SimIo) -> Vec<SegmentLayout> {
    let mut segments = Vec::new();
    for path in io.list_files() {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if path.parent() != Some(&wal_dir()) || !name.ends_with(".wal") {
            continue;
        }
        let bytes = io.read_file(&path).unwrap();
        if bytes[..8] != *b"SYNCPAYW" {
            continue; // The unused spare.
        }
        let index: u64 = name.trim_end_matches(".wal").parse().unwrap();
        let base = u64_at(&bytes, 24);
        let mut offset = u64::from(u32_at(&bytes, 48));
        let mut lsn = base;
        let mut frames = Vec::new();
        while offset + 32 <= bytes.len() as u64 {
            let header = &bytes[offset as usize..offset as usize + 32];
            if header.iter().all(|&b| b == 0) {
                if offset % SECTOR == 0 {
                    break;
                }
                offset = offset.div_ceil(SECTOR) * SECTOR;
                continue;
            }
            assert_eq!(u64_at(header, 8), lsn, "{path:?} at {offset}");
            let n = u64::from(u32_at(header, 16));
            let (body, stamps) = body_len(offset, n);
            let size = (32 + body).div_ceil(32) * 32;
            let padding = (size > 32 + body).then_some(offset + 32 + body);
            frames.push(Frame {
                lsn,
                offset,
                size,
                stamps,
                padding,
            });
            offset += size;
            lsn += 1;
        }
        segments.push(SegmentLayout {
            index,
            path,
            base,
            frames,
        });
    }
    segments.sort_by_key(|s| s.index);
    segments
}

/// `acked_lsn` of the manifest's current slot (valid, higher sequence).
fn parse_manifest_acked(io: &SimIo) -> u64 {
    let bytes = io.read_file(&wal_dir().join("MANIFEST")).unwrap();
    let slot = |i: usize| &bytes[i * 512..(i + 1) * 512];
    let valid = |s: &[u8]| {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&s[0..12]);
        hasher.update(&s[16..512]);
        s[..8] == *b"SYNCPAYM" && u32_at(s, 12) == hasher.finalize()
    };
    let current = [0, 1]
        .into_iter()
        .filter(|&i| valid(slot(i)))
        .max_by_key(|&i| u64_at(slot(i), 16))
        .expect("a valid manifest slot");
    u64_at(slot(current), 48)
}

/// Where a damage is.
#[derive(Clone, Copy, Debug)]
enum Part {
    Header,
    Body,
    Stamp,
    Padding,
}

#[derive(Clone, Debug)]
enum Damage {
    Flip { lsn: u64, part: Part },
    ZeroSector { lsn: u64 },
    ZeroRecords { lsn: u64, count: u64 },
    ZeroTail { lsn: u64 },
    TruncateAt { lsn: u64 },
    TruncateInside { lsn: u64 },
    SegmentHeader { segment: usize },
    DeleteSegment { segment: usize },
    EmptySegment { segment: usize },
    AppendBytes { segment: usize },
    DeleteSnapshot { lsn: u64 },
    FlipSnapshot { lsn: u64 },
    ManifestSlot,
    ManifestBothSlots,
    ManifestDeleted,
    Both(Box<Damage>, Box<Damage>),
}

impl Fixture {
    fn frame(&self, lsn: u64) -> (&SegmentLayout, &Frame) {
        self.segments
            .iter()
            .find_map(|s| s.frames.iter().find(|f| f.lsn == lsn).map(|f| (s, f)))
            .unwrap_or_else(|| panic!("no frame for lsn {lsn}"))
    }

    fn segment_of(&self, lsn: u64) -> usize {
        self.segments
            .iter()
            .position(|s| s.frames.iter().any(|f| f.lsn == lsn))
            .unwrap()
    }

    /// The damage cases, each at every position class.
    fn cases(&self) -> Vec<Damage> {
        let first = self.segments[0].base;
        let mut targets = vec![
            first,
            SNAPSHOT_A_AT + 1,
            SNAPSHOT_B_AT - 1,
            SNAPSHOT_B_AT + 3,
        ];
        targets.push(self.last_lsn);
        targets.retain(|&lsn| lsn >= first);
        targets.dedup();
        let mut cases = Vec::new();
        for &lsn in &targets {
            let (_, frame) = self.frame(lsn);
            cases.push(Damage::Flip {
                lsn,
                part: Part::Header,
            });
            cases.push(Damage::Flip {
                lsn,
                part: Part::Body,
            });
            if !frame.stamps.is_empty() {
                cases.push(Damage::Flip {
                    lsn,
                    part: Part::Stamp,
                });
            }
            if frame.padding.is_some() {
                cases.push(Damage::Flip {
                    lsn,
                    part: Part::Padding,
                });
            }
            cases.push(Damage::ZeroSector { lsn });
            cases.push(Damage::ZeroRecords { lsn, count: 1 });
            let segment = &self.segments[self.segment_of(lsn)];
            if segment.frames.iter().any(|f| f.lsn == lsn + 2) {
                cases.push(Damage::ZeroRecords { lsn, count: 3 });
            }
            cases.push(Damage::ZeroTail { lsn });
            cases.push(Damage::TruncateAt { lsn });
            cases.push(Damage::TruncateInside { lsn });
        }
        for segment in 0..self.segments.len() {
            cases.push(Damage::SegmentHeader { segment });
            cases.push(Damage::DeleteSegment { segment });
            cases.push(Damage::EmptySegment { segment });
            cases.push(Damage::AppendBytes { segment });
        }
        for lsn in [SNAPSHOT_A_AT, SNAPSHOT_B_AT] {
            cases.push(Damage::DeleteSnapshot { lsn });
            cases.push(Damage::FlipSnapshot { lsn });
        }
        cases.push(Damage::Both(
            Box::new(Damage::FlipSnapshot { lsn: SNAPSHOT_A_AT }),
            Box::new(Damage::FlipSnapshot { lsn: SNAPSHOT_B_AT }),
        ));
        // Issue 7, case 1: the newest snapshot damaged and a record between
        // the snapshots rotten.
        for part in [Part::Body, Part::Header] {
            cases.push(Damage::Both(
                Box::new(Damage::FlipSnapshot { lsn: SNAPSHOT_B_AT }),
                Box::new(Damage::Flip {
                    lsn: SNAPSHOT_A_AT + 3,
                    part,
                }),
            ));
        }
        cases.push(Damage::Both(
            Box::new(Damage::DeleteSnapshot { lsn: SNAPSHOT_B_AT }),
            Box::new(Damage::DeleteSegment {
                segment: self.segment_of(SNAPSHOT_B_AT),
            }),
        ));
        cases.push(Damage::ManifestSlot);
        cases.push(Damage::ManifestBothSlots);
        cases.push(Damage::ManifestDeleted);
        cases
    }
}

fn write_at(io: &SimIo, path: &Path, offset: u64, bytes: &[u8]) {
    let file = io.open(path, OpenMode::ReadWrite).unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

fn set_len(io: &SimIo, path: &Path, len: u64) {
    let file = io.open(path, OpenMode::ReadWrite).unwrap();
    file.set_len(len).unwrap();
}

fn flip(io: &SimIo, path: &Path, offset: u64) {
    assert!(io.flip_bit(path, offset, 3), "{path:?} {offset}");
}

/// Applies `damage` to the files on `io`.
fn apply(fx: &Fixture, io: &SimIo, damage: &Damage) {
    match damage {
        Damage::Flip { lsn, part } => {
            let (segment, frame) = fx.frame(*lsn);
            let offset = match part {
                Part::Header => frame.offset + 9,
                Part::Body => frame.offset + 32 + 20,
                Part::Stamp => frame.stamps[0] + 2,
                Part::Padding => frame.padding.unwrap(),
            };
            flip(io, &segment.path, offset);
        }
        Damage::ZeroSector { lsn } => {
            let (segment, frame) = fx.frame(*lsn);
            // A later sector of the frame if it has one (the torn-write
            // shape), else its only sector.
            let sector = if frame.size > SECTOR {
                frame.offset / SECTOR * SECTOR + SECTOR
            } else {
                frame.offset / SECTOR * SECTOR
            };
            write_at(io, &segment.path, sector, &[0; SECTOR as usize]);
        }
        Damage::ZeroRecords { lsn, count } => {
            let (segment, first) = fx.frame(*lsn);
            let (_, last) = fx.frame(lsn + count - 1);
            let len = last.offset + last.size - first.offset;
            write_at(io, &segment.path, first.offset, &vec![0; len as usize]);
        }
        Damage::ZeroTail { lsn } => {
            let (segment, frame) = fx.frame(*lsn);
            let len = SEGMENT_BYTES - frame.offset;
            write_at(io, &segment.path, frame.offset, &vec![0; len as usize]);
        }
        Damage::TruncateAt { lsn } => {
            let (segment, frame) = fx.frame(*lsn);
            set_len(io, &segment.path, frame.offset);
        }
        Damage::TruncateInside { lsn } => {
            let (segment, frame) = fx.frame(*lsn);
            set_len(io, &segment.path, frame.offset + 100);
        }
        Damage::SegmentHeader { segment } => flip(io, &fx.segments[*segment].path, 30),
        Damage::DeleteSegment { segment } => io.remove_file(&fx.segments[*segment].path).unwrap(),
        Damage::EmptySegment { segment } => set_len(io, &fx.segments[*segment].path, 0),
        Damage::AppendBytes { segment } => {
            write_at(io, &fx.segments[*segment].path, SEGMENT_BYTES, &[0x5A; 100]);
        }
        Damage::DeleteSnapshot { lsn } => io.remove_file(&snapshot_path(*lsn)).unwrap(),
        Damage::FlipSnapshot { lsn } => flip(io, &snapshot_path(*lsn), 100),
        Damage::ManifestSlot | Damage::ManifestBothSlots => {
            let path = wal_dir().join("MANIFEST");
            let bytes = io.read_file(&path).unwrap();
            let seq = |i: usize| u64_at(&bytes, i * 512 + 16);
            let current = if seq(1) > seq(0) { 1 } else { 0 };
            flip(io, &path, current * 512 + 40);
            if matches!(damage, Damage::ManifestBothSlots) {
                flip(io, &path, (1 - current) * 512 + 40);
            }
        }
        Damage::ManifestDeleted => io.remove_file(&wal_dir().join("MANIFEST")).unwrap(),
        Damage::Both(a, b) => {
            apply(fx, io, a);
            apply(fx, io, b);
        }
    }
}

/// What the table says a case must do.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    /// Opens with every acknowledged batch; `reported`: the damage shows in
    /// the recovery report.
    Open { reported: bool },
    /// Opens with the batches before `from` only: an all-zero tail of a log
    /// that was not closed cleanly, past its durable mark, is
    /// indistinguishable from writes that never happened.
    OpenLosing { from: u64 },
    /// Fails with a typed error (naming `lsn`, when known); repair then
    /// gives `repair`.
    Fail { lsn: Option<u64>, repair: Repair },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Repair {
    /// Keeps every batch.
    KeepsAll,
    /// Cuts at this LSN: batches before it kept, from it on removed.
    CutAt(u64),
    /// The records needed are gone: refused with a typed error.
    Impossible,
}

/// The damaged records of a log damage: the first LSN affected, where intact
/// records resume (`None`: nowhere after), and whether what is left from
/// its frame to the segment's end is all zero in the last segment.
struct Effect {
    first: u64,
    resume: Option<u64>,
    unwritten_tail: bool,
}

fn effect(fx: &Fixture, damage: &Damage) -> Option<Effect> {
    let next_base = |segment: usize| fx.segments.get(segment + 1).map(|s| s.base);
    let is_last = |segment: usize| segment + 1 == fx.segments.len();
    let after = |lsn: u64| (lsn <= fx.last_lsn).then_some(lsn);
    let effect = match damage {
        Damage::Flip { lsn, part } => Effect {
            first: *lsn,
            // A damaged header hides the frame's extent; recovery finds the
            // next intact frame, if there is one.
            resume: match part {
                Part::Header => after(lsn + 1),
                _ => Some(lsn + 1),
            },
            unwritten_tail: false,
        },
        Damage::ZeroSector { lsn } => {
            let segment = fx.segment_of(*lsn);
            Effect {
                first: *lsn,
                resume: after(lsn + 1),
                unwritten_tail: *lsn == fx.last_lsn && is_last(segment),
            }
        }
        Damage::ZeroRecords { lsn, count } => {
            let segment = fx.segment_of(*lsn);
            let end = lsn + count;
            Effect {
                first: *lsn,
                resume: after(end),
                unwritten_tail: end > fx.last_lsn && is_last(segment),
            }
        }
        Damage::ZeroTail { lsn } | Damage::TruncateAt { lsn } | Damage::TruncateInside { lsn } => {
            let segment = fx.segment_of(*lsn);
            Effect {
                first: *lsn,
                resume: next_base(segment),
                unwritten_tail: matches!(damage, Damage::ZeroTail { .. }) && is_last(segment),
            }
        }
        Damage::SegmentHeader { segment }
        | Damage::DeleteSegment { segment }
        | Damage::EmptySegment { segment } => Effect {
            first: fx.segments[*segment].base,
            resume: next_base(*segment),
            unwritten_tail: false,
        },
        Damage::Both(_, b) => return effect(fx, b),
        _ => return None,
    };
    Some(effect)
}

fn snapshots_valid(damage: &Damage) -> Vec<u64> {
    let mut valid = vec![SNAPSHOT_A_AT, SNAPSHOT_B_AT];
    let mut remove = |d: &Damage| {
        if let Damage::DeleteSnapshot { lsn } | Damage::FlipSnapshot { lsn } = d {
            valid.retain(|v| v != lsn);
        }
    };
    match damage {
        Damage::Both(a, b) => {
            remove(a);
            remove(b);
        }
        other => remove(other),
    }
    valid
}

/// The decision table, from the layout's point of view.
fn expect(fx: &Fixture, damage: &Damage) -> Expect {
    let valid = snapshots_valid(damage);
    let Some(&newest) = valid.iter().max() else {
        // Both snapshots unusable and the log truncated behind A: LogGap.
        return Expect::Fail {
            lsn: None,
            repair: Repair::Impossible,
        };
    };
    let needed = newest + 1;
    match damage {
        Damage::ManifestSlot => return Expect::Open { reported: true },
        Damage::ManifestBothSlots | Damage::ManifestDeleted => {
            return Expect::Fail {
                lsn: None,
                repair: Repair::KeepsAll,
            };
        }
        // Bytes past a segment's size hold no record: reported only.
        Damage::AppendBytes { .. } => return Expect::Open { reported: true },
        // Frame padding is part of the frame: the frame is damaged.
        _ => {}
    }
    let Some(effect) = effect(fx, damage) else {
        // Snapshot damage alone: the other snapshot and the log cover it.
        // Only snapshots newer than the one used are read at open, so only
        // their damage is reported (the older is verified when needed).
        let reported = matches!(damage, Damage::FlipSnapshot { lsn } if *lsn > newest);
        return Expect::Open { reported };
    };
    if effect.resume.is_some_and(|resume| resume <= needed) {
        // Wholly before what the newest valid snapshot needs: skipped.
        return Expect::Open { reported: true };
    }
    if effect.unwritten_tail && !fx.clean && effect.first >= fx.acked_lsn.max(needed) {
        return Expect::OpenLosing { from: effect.first };
    }
    let repair = match damage {
        // The header is rebuilt from the segment's first frame.
        Damage::SegmentHeader { .. } => Repair::KeepsAll,
        _ if effect.first < needed => Repair::Impossible,
        _ => Repair::CutAt(effect.first),
    };
    Expect::Fail {
        lsn: Some(effect.first),
        repair,
    }
}

/// The LSNs present in an open ledger, checked batch by batch: each batch is
/// wholly present or wholly absent, the present ones are a prefix.
fn present_end(fx: &Fixture, ledger: &Ledger, context: &str) -> u64 {
    ledger
        .check_invariants()
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_eq!(
        ledger
            .lookup_accounts(&(1..=ACCOUNTS).collect::<Vec<_>>())
            .unwrap()
            .len(),
        ACCOUNTS as usize,
        "{context}: accounts"
    );
    let mut end = None;
    for (&lsn, ids) in fx.batches.iter().skip(1) {
        let found = ledger.lookup_transfers(ids).unwrap().len();
        match (found == ids.len(), found == 0, end) {
            (true, _, None) => {}
            (_, true, None) => end = Some(lsn),
            (_, true, Some(_)) => {}
            _ => panic!(
                "{context}: batch {lsn} has {found} of {} transfers",
                ids.len()
            ),
        }
    }
    end.unwrap_or(fx.last_lsn + 1)
}

fn snapshot_files(io: &SimIo) -> BTreeMap<PathBuf, Vec<u8>> {
    io.list_files()
        .into_iter()
        .map(|p| {
            let bytes = io.read_file(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect()
}

fn is_typed(error: &syncpay::Error) -> bool {
    let typed = matches!(
        error.store_error(),
        Some(
            StoreError::Wal(WalError::Corrupt { .. } | WalError::RepairImpossible { .. })
                | StoreError::LogGap { .. }
                | StoreError::LogBehindSnapshot { .. }
        )
    );
    // The public kind agrees with the internal error.
    typed
        && matches!(
            error.kind(),
            syncpay::ErrorKind::Corrupt | syncpay::ErrorKind::RepairImpossible
        )
}

fn corrupt_lsn(error: &syncpay::Error) -> Option<u64> {
    match error.store_error() {
        Some(StoreError::Wal(WalError::Corrupt { expected_lsn, .. })) => Some(*expected_lsn),
        _ => None,
    }
}

fn run_case(fx: &Fixture, damage: &Damage, context: &str) {
    let expected = expect(fx, damage);
    let io = fx.io.fork();
    apply(fx, &io, damage);
    // 1. Repair off.
    let opened = Ledger::open(DIR, options(&io, false));
    match (&expected, opened) {
        (Expect::Open { reported }, Ok(ledger)) => {
            let end = present_end(fx, &ledger, context);
            assert_eq!(end, fx.last_lsn + 1, "{context}: acknowledged batches lost");
            let r = ledger.recovery();
            let shown = !r.wal.damage_skipped.is_empty()
                || !r.snapshots_skipped.is_empty()
                || !r.wal.notes.is_empty();
            assert!(!reported || shown, "{context}: damage not reported: {r:?}");
            return;
        }
        (Expect::OpenLosing { from }, Ok(ledger)) => {
            let end = present_end(fx, &ledger, context);
            assert_eq!(end, *from, "{context}");
            return;
        }
        (Expect::Fail { lsn, .. }, Err(error)) => {
            assert!(is_typed(&error), "{context}: untyped error {error}");
            if snapshots_valid(damage).is_empty() {
                // Issue 7 case 7: the error names each rejected snapshot.
                let message = error.to_string();
                for lsn in [SNAPSHOT_A_AT, SNAPSHOT_B_AT] {
                    let name = snapshot_path(lsn).display().to_string();
                    assert!(message.contains(&name), "{context}: {message}");
                }
            }
            if let (Some(lsn), Some(found)) = (lsn, corrupt_lsn(&error)) {
                assert_eq!(found, *lsn, "{context}: error names lsn {found}: {error}");
            }
        }
        (expected, Ok(ledger)) => {
            let end = present_end(fx, &ledger, context);
            panic!("{context}: expected {expected:?}, opened with batches up to {end}");
        }
        (expected, Err(error)) => panic!("{context}: expected {expected:?}, got {error}"),
    }
    let Expect::Fail { repair, .. } = expected else {
        unreachable!()
    };
    // 2. Dry run: the plan, and not a byte changed.
    let before = snapshot_files(&io);
    let plan = Ledger::plan_repair(DIR, &options(&io, false));
    assert_eq!(
        before,
        snapshot_files(&io),
        "{context}: the dry run changed files"
    );
    // 3. Repair on.
    let repaired = Ledger::open(DIR, options(&io, true));
    match (&repair, plan, repaired) {
        (Repair::Impossible, _, Err(error)) => {
            assert!(is_typed(&error), "{context}: untyped error {error}");
        }
        (Repair::KeepsAll | Repair::CutAt(_), Ok(plan), Ok(ledger)) => {
            let end = present_end(fx, &ledger, context);
            let r = ledger.recovery().clone();
            assert_eq!(
                r.wal.repair.as_ref(),
                Some(&plan.wal),
                "{context}: did what it planned"
            );
            match repair {
                Repair::KeepsAll => assert_eq!(end, fx.last_lsn + 1, "{context}"),
                Repair::CutAt(cut) => {
                    assert_eq!(end, cut, "{context}: repair kept batches up to {end}");
                    let planned = plan.wal.cut_lsn.or_else(|| {
                        // A file cut short is extended; the records in the
                        // lost bytes were gone before repair ran.
                        plan.wal
                            .actions
                            .iter()
                            .any(|a| {
                                matches!(a, syncpay::storage::wal::RepairAction::ExtendFile { .. })
                            })
                            .then_some(cut)
                    });
                    assert_eq!(planned, Some(cut), "{context}: plan {plan:?}");
                }
                Repair::Impossible => unreachable!(),
            }
            ledger.close().unwrap();
            // Idempotent, and the directory opens without repair.
            let again = Ledger::plan_repair(DIR, &options(&io, false)).unwrap();
            assert!(again.is_empty(), "{context}: second plan {again:?}");
            let ledger = Ledger::open(DIR, options(&io, false))
                .unwrap_or_else(|e| panic!("{context}: after repair: {e}"));
            assert_eq!(present_end(fx, &ledger, context), end, "{context}");
        }
        (repair, plan, result) => panic!(
            "{context}: expected repair {repair:?}, plan {plan:?}, got {:?}",
            result.map(|_| "an open ledger")
        ),
    }
}

// Goal and method: see the module comment.
#[test]
fn every_damage_gets_its_table_row() {
    let base_seed = seed_from_env();
    let seeds: u64 = std::env::var("SYNCPAY_MATRIX_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let mut cases_run = 0;
    let mut rows: BTreeMap<String, u64> = BTreeMap::new();
    // `SYNCPAY_MATRIX_KEEP_GOING=1` runs every case and lists the failures
    // (for mutation checks: which rows catch a disabled check).
    let keep_going = std::env::var_os("SYNCPAY_MATRIX_KEEP_GOING").is_some();
    let mut failures: Vec<String> = Vec::new();
    for s in 0..seeds {
        let seed = base_seed.wrapping_add(s);
        for clean in [true, false] {
            let fx = build(seed, clean);
            for damage in fx.cases() {
                let close = if clean { "clean close" } else { "crash" };
                let context = format!("SEED={seed} {close} {damage:?}");
                if keep_going {
                    let run = std::panic::AssertUnwindSafe(|| run_case(&fx, &damage, &context));
                    if let Err(panic) = std::panic::catch_unwind(run) {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .unwrap_or_else(|| context.clone());
                        failures.push(message);
                    }
                } else {
                    run_case(&fx, &damage, &context);
                }
                let row = match expect(&fx, &damage) {
                    Expect::Open { .. } => "open",
                    Expect::OpenLosing { .. } => "open, unwritten tail dropped",
                    Expect::Fail {
                        repair: Repair::KeepsAll,
                        ..
                    } => "fail, repair keeps all",
                    Expect::Fail {
                        repair: Repair::CutAt(_),
                        ..
                    } => "fail, repair cuts",
                    Expect::Fail {
                        repair: Repair::Impossible,
                        ..
                    } => "fail, repair refused",
                };
                let row = format!("{close}: {row}");
                *rows.entry(row).or_default() += 1;
                cases_run += 1;
            }
        }
    }
    eprintln!("{cases_run} cases by expected outcome: {rows:?}");
    for failure in &failures {
        eprintln!("FAILED: {}", failure.lines().next().unwrap_or_default());
    }
    assert!(
        failures.is_empty(),
        "{} of {cases_run} cases failed",
        failures.len()
    );
    assert!(cases_run > 100, "{cases_run} cases");
}
