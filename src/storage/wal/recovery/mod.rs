//! Recovery: what opening a log does with what it finds on disk.
//!
//! Opening is plan first, act second. [`analyze`] reads the directory, the
//! manifest and every listed segment without changing anything, and turns
//! what it finds into facts: the segments that hold live records, the
//! damage met on the way (each with the LSN it starts at and the LSN at
//! which intact records resume after it, if they do), and how the log
//! ends. [`decide`] then applies the decision table of
//! `docs/file-format.md` ("Recovery decisions") against the LSN the caller
//! needs records from: damage wholly before it (records a snapshot already
//! covers) is skipped and reported, any other damage fails the open with
//! [`WalError::Corrupt`] naming the file, offset and LSN. Only then does
//! [`recover`] act: it removes temporary files and leftovers of an
//! interrupted purge, zeroes a torn tail, and clears the clean-close mark.
//!
//! Repair ([`repair`]) is a separate, opt-in plan computed from the same
//! analysis: the minimal cut that lets the log open, refused if the result
//! could not open; segments it removes go to `quarantine/`.
//!
//! Invariant: nothing acknowledged is ever dropped without an error, except
//! by an explicit repair that reports it. The only records dropped silently
//! are those of a torn last write of a log that was not closed cleanly, and
//! only after the frame's sector stamps prove the write never completed.

mod repair;
mod scan;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::manifest::{Manifest, ManifestFile, ManifestProblem};
use super::segment::{
    self, EntryKind, SEGMENT_HEADER_SIZE_BYTES, SEGMENT_RECORDS_START_BYTES, Segment,
    SegmentHeader, SegmentHeaderSlot,
};
use super::{CorruptReason, Lsn, WalError, WalOptions};
use crate::storage::io::{File, Io, Mapping, OpenMode};

pub use repair::{RepairAction, RepairPlan};
use scan::{Fault, ScanInput, Scanned, Stop};

/// What recovery found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Live segments after recovery.
    pub segments: usize,
    /// Bytes of segment files read.
    pub bytes_scanned: u64,
    /// Intact records found.
    pub records: u64,
    /// First LSN readable in the log.
    pub first_lsn: Lsn,
    /// LSN the next record will get.
    pub next_lsn: Lsn,
    /// A torn, never-acknowledged last write that was zeroed.
    pub torn_tail: Option<TornTail>,
    /// Damage that was skipped because it lies wholly before the first LSN
    /// the caller needs (a snapshot covers it). Nothing needed was lost.
    pub damage_skipped: Vec<Damage>,
    /// The log was closed cleanly the last time (`false` after a crash).
    pub previous_close_clean: bool,
    /// Half-prepared segment files deleted.
    pub temp_files_removed: usize,
    /// Segment files behind the manifest's first segment (an interrupted
    /// purge) or a never-used segment it did not list yet, deleted.
    pub leftover_segments_removed: usize,
    /// Segments superseded by a later one (a truncated suffix), kept until
    /// the log's prefix is purged past them.
    pub dead_segments: usize,
    /// Harmless anomalies worth an operator's attention (a damaged
    /// manifest slot, a missing segment whose records were superseded).
    pub notes: Vec<String>,
    /// Set if repair changed the log.
    pub repair: Option<RepairPlan>,
}

/// A torn tail that recovery removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub path: PathBuf,
    /// Offset of the torn frame.
    pub offset: u64,
    /// LSN the torn frame would have had.
    pub lsn: Lsn,
    /// Bytes from the frame's start to the last non-zero byte, zeroed.
    pub bytes: u64,
}

/// Damage found in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The file.
    pub path: PathBuf,
    /// Offset of the damage in it.
    pub offset: u64,
    /// The first LSN the damage affects (0 if unknown: before the log's
    /// first surviving segment).
    pub lsn: Lsn,
    /// Where intact records resume after it; `None` if they do not.
    pub resume_lsn: Option<Lsn>,
    /// What is wrong.
    pub reason: CorruptReason,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at offset {} (lsn {}): {}",
            self.path.display(),
            self.offset,
            self.lsn,
            self.reason
        )?;
        match self.resume_lsn {
            Some(lsn) => write!(f, "; intact records resume at lsn {lsn}"),
            None => write!(f, "; no intact record after it"),
        }
    }
}

impl Damage {
    /// The open error this damage causes.
    pub fn into_error(self) -> WalError {
        WalError::Corrupt {
            path: self.path,
            offset: self.offset,
            expected_lsn: self.lsn,
            reason: self.reason,
        }
    }

    /// True if the damage may be skipped when records are needed only from
    /// `needed_from_lsn` on: intact records resume at or before it.
    fn skippable(&self, needed_from_lsn: Lsn) -> bool {
        self.resume_lsn.is_some_and(|lsn| lsn <= needed_from_lsn)
    }
}

/// A preallocated, never-used segment: its index, open file and size.
use super::segment::Spare;

/// The state the writer starts from.
pub(super) struct Recovered {
    pub segments: Vec<Segment>,
    pub next_lsn: Lsn,
    /// Write position in the last live segment (a sector boundary).
    pub active_offset: u64,
    /// A preallocated, never-used segment ready for use.
    pub spare: Option<Spare>,
    /// Index the next new segment gets (if there is no spare).
    pub next_index: u64,
    /// Superseded segments still on disk: (index, path).
    pub dead: Vec<(u64, PathBuf)>,
    pub manifest: parking_lot::Mutex<ManifestFile>,
    pub report: RecoveryReport,
}

/// How [`analyze`] treats damage it could work around.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Opening: a damaged header or a file of the wrong length is damage.
    Open,
    /// Planning a repair: use rebuilt headers and corrected lengths, as
    /// the repair would leave them, and record those actions.
    Repair,
}

/// A segment file found in the directory.
struct SegmentFile {
    index: u64,
    path: PathBuf,
    file: Arc<dyn File>,
    len: u64,
    header: SegmentHeaderSlot,
}

/// A segment in the log's order: either placed (its records have a known
/// first LSN) or a hole (missing, emptied, unreadable).
enum Entry {
    Placed(Placed),
    Hole(Hole),
}

struct Placed {
    file: SegmentFile,
    header: SegmentHeader,
    /// The bytes to scan: the map, or a corrected copy in repair planning.
    bytes: Bytes,
    /// When opening: the file's length differs from its header's size.
    length_fault: Option<CorruptReason>,
    /// When opening: non-zero bytes at this offset between the header and
    /// the first frame.
    header_fault: Option<u64>,
    /// In repair planning: the file was shorter than its header says and
    /// is scanned zero-extended (so a cut-off last frame is damage, not a
    /// torn write).
    extended: bool,
}

enum Bytes {
    Map(Mapping),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Map(map) => map,
            Bytes::Owned(bytes) => bytes,
        }
    }
}

struct Hole {
    index: u64,
    path: PathBuf,
    reason: CorruptReason,
    /// The file, if the hole is a present but never-used (all-zero)
    /// segment: after the last live segment that is a spare (the writer
    /// may have taken it, but nothing it wrote there became durable);
    /// anywhere else it is damage.
    unused: Option<SegmentFile>,
}

/// A live segment after scanning.
struct Live {
    placed: Placed,
    scanned: Scanned,
}

/// Everything the analysis found, before any decision.
pub(super) struct Analysis {
    dir: PathBuf,
    manifest: Manifest,
    manifest_path: PathBuf,
    live: Vec<Live>,
    /// Superseded segments: (index, path).
    dead: Vec<(u64, PathBuf)>,
    spare: Option<SegmentFile>,
    /// Never-used segment files other than the spare: (index, path).
    unused: Vec<(u64, PathBuf)>,
    /// Damage in LSN order, with where records resume.
    faults: Vec<Fault>,
    /// Rot in bytes that hold no record: reported, never blocking.
    harmless: Vec<Damage>,
    /// The torn last frame, if the last segment ends with one that may be
    /// dropped: (path, offset, lsn, non-zero end).
    torn: Option<(PathBuf, u64, Lsn, u64)>,
    temp_files: Vec<PathBuf>,
    /// Files the log no longer needs: behind `first_index`, or a never-used
    /// segment the manifest did not list yet.
    leftovers: Vec<PathBuf>,
    /// Segment files holding data that the manifest does not list.
    unlisted: Vec<(u64, PathBuf)>,
    /// Holes after the last live segment.
    trailing: Vec<Hole>,
    /// Repair actions the analysis assumed (repair planning only).
    assumed: Vec<RepairAction>,
    /// The highest LSN of any intact frame seen, plus one.
    lsn_seen_end: Lsn,
    notes: Vec<String>,
    bytes_scanned: u64,
    records: u64,
}

impl Analysis {
    /// One past the last intact record of the log as found.
    fn end_lsn(&self) -> Lsn {
        self.live.last().map_or(1, |l| l.scanned.end_lsn)
    }

    /// The first damage that blocks reading from `needed_from_lsn` on.
    fn blocking(&self, needed_from_lsn: Lsn) -> Option<&Fault> {
        self.faults
            .iter()
            .find(|fault| !fault.damage.skippable(needed_from_lsn))
    }
}

/// Opens and recovers the log in `dir` (created if new), repairing if
/// `options.repair` is set and the damage blocks the open.
pub(super) fn recover(dir: &Path, options: &WalOptions) -> Result<Recovered, WalError> {
    if options.read_only {
        return recover_read_only(dir, options);
    }
    let io = options.io.as_ref();
    let mut repaired = None;
    let (manifest, slot_damaged) = match ManifestFile::open(io, dir, true)? {
        Ok(found) => found,
        Err(problem) => match new_or_problem(dir, options, problem)? {
            Ok(created) => (created, false),
            Err(damage) if options.repair => {
                let plan = repair::rebuild_manifest(dir, options, damage)?;
                let reopened =
                    ManifestFile::open(io, dir, true)?.map_err(|_| WalError::Corrupt {
                        path: dir.join(super::manifest::MANIFEST_FILE_NAME),
                        offset: 0,
                        expected_lsn: 0,
                        reason: CorruptReason::ManifestDamaged,
                    })?;
                repaired = Some(plan);
                reopened
            }
            Err(damage) => return Err(damage.into_error()),
        },
    };
    let manifest = parking_lot::Mutex::new(manifest);
    let current = || manifest.lock().current();
    let mut analysis = analyze(dir, options, current(), Mode::Open, true)?;
    if let Some(fault) = analysis.blocking(options.needed_from_lsn) {
        if !options.repair {
            return Err(fault.damage.clone().into_error());
        }
        let plan = repair::plan(dir, options, current())?;
        repair::apply(dir, options, &manifest, &plan)?;
        analysis = analyze(dir, options, current(), Mode::Open, true)?;
        if let Some(fault) = analysis.blocking(options.needed_from_lsn) {
            // The plan was computed to remove exactly this; a failure here
            // is a bug, reported rather than acted on.
            return Err(fault.damage.clone().into_error());
        }
        repaired = Some(match repaired {
            Some(mut earlier) => {
                earlier.merge(plan);
                earlier
            }
            None => plan,
        });
    }
    let mut recovered = act(dir, options, analysis, manifest)?;
    if slot_damaged {
        recovered.report.notes.push(SLOT_DAMAGED_NOTE.into());
    }
    recovered.report.repair = repaired;
    Ok(recovered)
}

/// Recovery that writes nothing: the same analysis and decision, then the
/// reader's starting state. What a writable open would act on (temporary
/// files, leftovers, a torn tail) is only reported; a log without a
/// manifest or segments is not created but refused.
fn recover_read_only(dir: &Path, options: &WalOptions) -> Result<Recovered, WalError> {
    let io = options.io.as_ref();
    let (manifest, slot_damaged) = match ManifestFile::open(io, dir, false)? {
        Ok(found) => found,
        Err(problem) => {
            let damage = new_or_problem_readonly(dir, options, problem)?.unwrap_or(Damage {
                path: dir.join(super::manifest::MANIFEST_FILE_NAME),
                offset: 0,
                lsn: 0,
                resume_lsn: None,
                reason: CorruptReason::ManifestMissing,
            });
            return Err(damage.into_error());
        }
    };
    let analysis = analyze(dir, options, manifest.current(), Mode::Open, false)?;
    if let Some(fault) = analysis.blocking(options.needed_from_lsn) {
        return Err(fault.damage.clone().into_error());
    }
    // A torn tail is reported, not zeroed: the scan already ends before it.
    let (mut report, start) = analysis_report(&analysis);
    if slot_damaged {
        report.notes.push(SLOT_DAMAGED_NOTE.into());
    }
    let pending = analysis.temp_files.len() + analysis.leftovers.len();
    if pending > 0 {
        report.notes.push(format!(
            "{pending} temporary or leftover file(s) a writable open would remove"
        ));
    }
    build(
        options,
        analysis,
        parking_lot::Mutex::new(manifest),
        start,
        report,
    )
}

/// The note of an open that used the one intact manifest slot.
const SLOT_DAMAGED_NOTE: &str = "one manifest slot is damaged; the other was used";

/// What an analysis reports, whatever the open then acts on: its figures,
/// the skipped and harmless damage, the torn tail; and where the readable
/// log starts.
fn analysis_report(analysis: &Analysis) -> (RecoveryReport, Option<(Lsn, Option<u64>)>) {
    let mut report = RecoveryReport {
        bytes_scanned: analysis.bytes_scanned,
        records: analysis.records,
        previous_close_clean: analysis.manifest.clean,
        notes: analysis.notes.clone(),
        torn_tail: analysis
            .torn
            .as_ref()
            .map(|(path, offset, lsn, nonzero_end)| TornTail {
                path: path.clone(),
                offset: *offset,
                lsn: *lsn,
                bytes: nonzero_end - offset,
            }),
        ..RecoveryReport::default()
    };
    let start = skip_damage(analysis, &mut report);
    (report, start)
}

/// Where the readable log starts (after the last skipped damage), with the
/// skipped and harmless damage added to `report`.
fn skip_damage(analysis: &Analysis, report: &mut RecoveryReport) -> Option<(Lsn, Option<u64>)> {
    let mut start: Option<(Lsn, Option<u64>)> = None;
    for fault in &analysis.faults {
        // Skippable damage always resumes (`blocking` checked it); damage
        // without a resume point leaves the start where it was.
        let Some(resume) = fault.damage.resume_lsn else {
            continue;
        };
        if start.is_none_or(|(lsn, _)| resume >= lsn) {
            start = Some((resume, fault.resume_offset));
        }
        report.damage_skipped.push(fault.damage.clone());
    }
    report
        .damage_skipped
        .extend(analysis.harmless.iter().cloned());
    start
}

/// Computes, without changing anything, what repair would do to the log in
/// `dir` for a caller that needs records from `options.needed_from_lsn`.
pub(super) fn plan_repair(dir: &Path, options: &WalOptions) -> Result<RepairPlan, WalError> {
    let io = options.io.as_ref();
    let manifest = match ManifestFile::open(io, dir, false)? {
        Ok((manifest, _)) => manifest.current(),
        Err(problem) => match new_or_problem_readonly(dir, options, problem)? {
            None => return Ok(RepairPlan::default()),
            Some(damage) => return repair::plan_manifest_rebuild(dir, options, damage),
        },
    };
    // Repair acts only when damage blocks the open: a log that opens as it
    // is (with harmless damage reported) plans nothing, exactly as opening
    // with repair would do nothing.
    let analysis = analyze(dir, options, manifest, Mode::Open, false)?;
    if analysis.blocking(options.needed_from_lsn).is_none() {
        return Ok(RepairPlan::default());
    }
    repair::plan(dir, options, manifest)
}

/// A missing manifest in a directory without segments is a new log: the
/// manifest is created. Otherwise the problem is damage (or an old format).
fn new_or_problem(
    dir: &Path,
    options: &WalOptions,
    problem: ManifestProblem,
) -> Result<Result<ManifestFile, Damage>, WalError> {
    match new_or_problem_readonly(dir, options, problem)? {
        None => {
            let io = options.io.as_ref();
            let manifest = Manifest::new(io.new_id());
            Ok(Ok(ManifestFile::create(io, dir, manifest)?))
        }
        Some(damage) => Ok(Err(damage)),
    }
}

/// `None`: a new log (no manifest, no segment). Otherwise the damage.
fn new_or_problem_readonly(
    dir: &Path,
    options: &WalOptions,
    problem: ManifestProblem,
) -> Result<Option<Damage>, WalError> {
    let path = dir.join(super::manifest::MANIFEST_FILE_NAME);
    if let ManifestProblem::Version(version) = problem {
        return Err(unsupported(path, version));
    }
    let files = list(dir, options, false)?;
    for file in &files.segments {
        if let SegmentHeaderSlot::Version(version) = file.header {
            return Err(unsupported(file.path.clone(), version));
        }
    }
    let reason = match problem {
        ManifestProblem::Missing if files.segments.is_empty() => return Ok(None),
        ManifestProblem::Missing => CorruptReason::ManifestMissing,
        _ => CorruptReason::ManifestDamaged,
    };
    Ok(Some(Damage {
        path,
        offset: 0,
        lsn: 0,
        resume_lsn: None,
        reason,
    }))
}

fn unsupported(path: PathBuf, version: u32) -> WalError {
    WalError::UnsupportedFormat {
        path,
        version,
        supported: segment::SEGMENT_FORMAT_VERSION,
    }
}

/// The entries of a log directory.
struct Listing {
    segments: Vec<SegmentFile>,
    temp_files: Vec<PathBuf>,
}

fn list(dir: &Path, options: &WalOptions, writable: bool) -> Result<Listing, WalError> {
    let io = &options.io;
    let names = io
        .list_dir(dir)
        .map_err(|e| WalError::io("list_dir", dir, e))?;
    let mut listing = Listing {
        segments: Vec::new(),
        temp_files: Vec::new(),
    };
    let mode = if writable {
        OpenMode::ReadWrite
    } else {
        OpenMode::ReadOnly
    };
    for name in names {
        let path = dir.join(&name);
        match segment::parse_entry_name(&name) {
            EntryKind::Temp(_) => listing.temp_files.push(path),
            EntryKind::Segment(index) => {
                let file: Arc<dyn File> = Arc::from(
                    io.open(&path, mode)
                        .map_err(|e| WalError::io("open", &path, e))?,
                );
                let len = file.len().map_err(|e| WalError::io("stat", &path, e))?;
                let mut bytes = [0u8; SEGMENT_HEADER_SIZE_BYTES];
                let header = if len >= SEGMENT_RECORDS_START_BYTES {
                    file.read_exact_at(&mut bytes, 0)
                        .map_err(|e| WalError::io("read", &path, e))?;
                    segment::decode_segment_header(&bytes)
                } else {
                    SegmentHeaderSlot::Invalid
                };
                listing.segments.push(SegmentFile {
                    index,
                    path,
                    file,
                    len,
                    header,
                });
            }
            EntryKind::Other => {}
        }
    }
    listing.segments.sort_by_key(|f| f.index);
    Ok(listing)
}

/// Reads everything and states the facts; changes nothing.
fn analyze(
    dir: &Path,
    options: &WalOptions,
    manifest: Manifest,
    mode: Mode,
    writable: bool,
) -> Result<Analysis, WalError> {
    let listing = list(dir, options, writable)?;
    let mut analysis = Analysis {
        dir: dir.to_path_buf(),
        manifest,
        manifest_path: dir.join(super::manifest::MANIFEST_FILE_NAME),
        live: Vec::new(),
        dead: Vec::new(),
        spare: None,
        unused: Vec::new(),
        faults: Vec::new(),
        harmless: Vec::new(),
        torn: None,
        temp_files: listing.temp_files,
        leftovers: Vec::new(),
        unlisted: Vec::new(),
        trailing: Vec::new(),
        assumed: Vec::new(),
        lsn_seen_end: 1,
        notes: Vec::new(),
        bytes_scanned: 0,
        records: 0,
    };
    let entries = place(&mut analysis, listing.segments, options, mode)?;
    let chain = supersede(&mut analysis, entries);
    scan_chain(&mut analysis, chain);
    decide_tail(&mut analysis);
    Ok(analysis)
}

/// Sorts the segment files into the log's entries (placed segments and
/// holes, by index), the spare, and files outside the manifest's range.
fn place(
    analysis: &mut Analysis,
    files: Vec<SegmentFile>,
    options: &WalOptions,
    mode: Mode,
) -> Result<Vec<Entry>, WalError> {
    let manifest = analysis.manifest;
    let mut by_index: std::collections::BTreeMap<u64, SegmentFile> =
        files.into_iter().map(|f| (f.index, f)).collect();
    // Outside the manifest's range.
    let outside: Vec<u64> = by_index
        .keys()
        .copied()
        .filter(|&i| i < manifest.first_index || i > manifest.last_index)
        .collect();
    for index in outside {
        let file = by_index.remove(&index).expect("listed key");
        if let SegmentHeaderSlot::Version(version) = file.header {
            return Err(unsupported(file.path, version));
        }
        if index < manifest.first_index {
            // Purged: the manifest moved past it before the file went.
            analysis.leftovers.push(file.path);
            continue;
        }
        let map = map(&file)?;
        analysis.bytes_scanned += map.len() as u64;
        if index == manifest.last_index + 1 && scan::first_nonzero(&map).is_none() {
            // Created, but the manifest update that would list it was lost:
            // never used (the writer waits for that update).
            analysis.leftovers.push(file.path);
        } else {
            analysis.unlisted.push((index, file.path));
        }
    }
    let mut entries = Vec::new();
    for index in manifest.first_index..=manifest.last_index {
        let Some(file) = by_index.remove(&index) else {
            entries.push(Entry::Hole(Hole {
                index,
                path: segment::segment_path(&analysis.dir, index),
                reason: CorruptReason::MissingSegment { index },
                unused: None,
            }));
            continue;
        };
        if let Some(entry) = place_one(analysis, file, options, mode)? {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// Places one listed segment file: `None` if it is the spare.
fn place_one(
    analysis: &mut Analysis,
    file: SegmentFile,
    options: &WalOptions,
    mode: Mode,
) -> Result<Option<Entry>, WalError> {
    let manifest = analysis.manifest;
    let hole = |file: &SegmentFile, reason| {
        Ok(Some(Entry::Hole(Hole {
            index: file.index,
            path: file.path.clone(),
            reason,
            unused: None,
        })))
    };
    match file.header {
        SegmentHeaderSlot::Version(version) => Err(unsupported(file.path, version)),
        SegmentHeaderSlot::Valid(header) if header.index != file.index => {
            let reason = CorruptReason::SegmentIndex {
                expected: file.index,
                found: header.index,
            };
            hole(&file, reason)
        }
        SegmentHeaderSlot::Valid(header) if header.log_id != manifest.log_id => {
            let reason = CorruptReason::ForeignSegment {
                expected: manifest.log_id,
                found: header.log_id,
            };
            hole(&file, reason)
        }
        SegmentHeaderSlot::Valid(header) if header.base_lsn == 0 => {
            hole(&file, CorruptReason::SegmentHeader)
        }
        SegmentHeaderSlot::Valid(header) => {
            let mut placed = placed_with_length(analysis, file, header, mode)?;
            let gap = SEGMENT_HEADER_SIZE_BYTES..header.first_frame_offset as usize;
            let nonzero = placed
                .bytes
                .get(gap.clone())
                .map_or(Some(0), scan::first_nonzero);
            if let Some(at) = nonzero {
                // Rot between the header and the first frame: the header's
                // sector is not what was written.
                if mode == Mode::Repair {
                    analysis.assumed.push(RepairAction::RewriteHeader {
                        path: placed.file.path.clone(),
                        header_base_lsn: header.base_lsn,
                        first_frame_offset: u64::from(header.first_frame_offset),
                    });
                } else {
                    placed.header_fault = Some((gap.start + at) as u64);
                }
            }
            Ok(Some(Entry::Placed(placed)))
        }
        SegmentHeaderSlot::Zero | SegmentHeaderSlot::Invalid => {
            let map = map(&file)?;
            analysis.bytes_scanned += map.len() as u64;
            let all_zero = scan::first_nonzero(&map).is_none();
            if all_zero && file.header == SegmentHeaderSlot::Zero && file.len > 0 {
                return Ok(Some(Entry::Hole(Hole {
                    index: file.index,
                    path: file.path.clone(),
                    reason: CorruptReason::UnusedSegment,
                    unused: Some(file),
                })));
            }
            let reason = if file.len < SEGMENT_RECORDS_START_BYTES {
                CorruptReason::SegmentLength {
                    header_bytes: options.segment_size_bytes,
                    file_bytes: file.len,
                }
            } else {
                CorruptReason::SegmentHeader
            };
            if mode == Mode::Repair
                && let Some((base_lsn, first_frame_offset)) = scan::find_first_frame(&map)
            {
                let size_bytes = if file
                    .len
                    .is_multiple_of(crate::storage::io::SECTOR_SIZE_BYTES)
                {
                    file.len
                } else {
                    options.segment_size_bytes
                };
                let header = SegmentHeader {
                    index: file.index,
                    base_lsn,
                    segment_size_bytes: size_bytes,
                    log_id: manifest.log_id,
                    first_frame_offset: first_frame_offset as u32,
                };
                analysis.assumed.push(RepairAction::RewriteHeader {
                    path: file.path.clone(),
                    header_base_lsn: base_lsn,
                    first_frame_offset,
                });
                drop(map);
                let placed = placed_with_length(analysis, file, header, mode)?;
                return Ok(Some(Entry::Placed(placed)));
            }
            hole(&file, reason)
        }
    }
}

/// A placed segment, its length checked against its header: in repair
/// planning a wrong length is corrected (and the action recorded); when
/// opening it is damage, and the bytes that exist are scanned.
fn placed_with_length(
    analysis: &mut Analysis,
    file: SegmentFile,
    header: SegmentHeader,
    mode: Mode,
) -> Result<Placed, WalError> {
    let map = map(&file)?;
    analysis.bytes_scanned += map.len() as u64;
    let size = header.segment_size_bytes;
    if file.len == size {
        return Ok(Placed {
            file,
            header,
            bytes: Bytes::Map(map),
            length_fault: None,
            header_fault: None,
            extended: false,
        });
    }
    let keep = file.len.min(size) as usize;
    let mut bytes = map[..keep].to_vec();
    let mut length_fault = None;
    if mode == Mode::Repair {
        bytes.resize(size as usize, 0);
        let action = if file.len < size {
            RepairAction::ExtendFile {
                path: file.path.clone(),
                from_bytes: file.len,
                to_bytes: size,
            }
        } else {
            RepairAction::TrimFile {
                path: file.path.clone(),
                from_bytes: file.len,
                to_bytes: size,
            }
        };
        analysis.assumed.push(action);
    } else {
        // Damage where the file and its header disagree; the records
        // before that point are scanned as usual (see `scan_chain`).
        length_fault = Some(CorruptReason::SegmentLength {
            header_bytes: size,
            file_bytes: file.len,
        });
    }
    let extended = mode == Mode::Repair && file.len < size;
    Ok(Placed {
        file,
        header,
        bytes: Bytes::Owned(bytes),
        length_fault,
        header_fault: None,
        extended,
    })
}

fn map(file: &SegmentFile) -> Result<Mapping, WalError> {
    file.file
        .map()
        .map_err(|e| WalError::io("map", &file.path, e))
}

/// A live segment before scanning, with the holes just before it.
struct Link {
    placed: Placed,
    holes_before: Vec<Hole>,
}

/// Applies supersession (a segment whose base LSN is not past the ones
/// before it makes their records from that LSN on dead): returns the live
/// chain in order, each link with the holes before it, and the holes after
/// the last live segment.
fn supersede(analysis: &mut Analysis, entries: Vec<Entry>) -> (Vec<Link>, Vec<Hole>) {
    let mut chain: Vec<Link> = Vec::new();
    let mut holes: Vec<Hole> = Vec::new();
    for entry in entries {
        let placed = match entry {
            Entry::Hole(hole) => {
                holes.push(hole);
                continue;
            }
            Entry::Placed(placed) => placed,
        };
        while chain
            .last()
            .is_some_and(|link| link.placed.header.base_lsn >= placed.header.base_lsn)
        {
            let dead = chain.pop().expect("checked non-empty");
            analysis
                .dead
                .push((dead.placed.file.index, dead.placed.file.path));
            // Holes before a dead segment are judged against the live one
            // before it, like the ones that follow.
            let mut earlier = dead.holes_before;
            earlier.append(&mut holes);
            holes = earlier;
        }
        chain.push(Link {
            placed,
            holes_before: std::mem::take(&mut holes),
        });
    }
    analysis.dead.sort();
    (chain, holes)
}

/// Scans the live chain, recording damage in LSN order: before the first
/// live segment (holes where the manifest says the log has segments),
/// inside segments, and between them (a segment that ends before the next
/// one begins).
fn scan_chain(analysis: &mut Analysis, (chain, trailing): (Vec<Link>, Vec<Hole>)) {
    let bases: Vec<Lsn> = chain.iter().map(|l| l.placed.header.base_lsn).collect();
    for (position, link) in chain.into_iter().enumerate() {
        let placed = link.placed;
        let input = ScanInput {
            path: &placed.file.path,
            bytes: &placed.bytes,
            base_lsn: placed.header.base_lsn,
            first_frame_offset: u64::from(placed.header.first_frame_offset),
            cap_lsn: bases.get(position + 1).copied(),
        };
        let scanned = scan::scan(&input);
        let mut placed = placed;
        if let Some(CorruptReason::SegmentLength {
            header_bytes,
            file_bytes,
        }) = placed.length_fault.clone()
            && (file_bytes > header_bytes || scanned.stop == Stop::Cap)
        {
            // Bytes past the header's size are never read or written, and a
            // file cut short after its last live record lost nothing: both
            // are reported, neither blocks.
            analysis.harmless.push(Damage {
                path: placed.file.path.clone(),
                offset: file_bytes.min(header_bytes),
                lsn: scanned.end_lsn,
                resume_lsn: Some(scanned.end_lsn),
                reason: CorruptReason::SegmentLength {
                    header_bytes,
                    file_bytes,
                },
            });
            placed.length_fault = None;
        }
        analysis.records += scanned.records;
        analysis.lsn_seen_end = analysis.lsn_seen_end.max(scanned.end_lsn);
        connect(analysis, &placed, &link.holes_before);
        if let Some(offset) = placed.header_fault {
            // The header and the records are intact; the unused rest of
            // the header's sector is not.
            analysis.harmless.push(Damage {
                path: placed.file.path.clone(),
                offset,
                lsn: placed.header.base_lsn,
                resume_lsn: Some(placed.header.base_lsn),
                reason: CorruptReason::SegmentHeader,
            });
        }
        analysis.faults.extend(scanned.faults.iter().cloned());
        analysis.harmless.extend(scanned.harmless.iter().cloned());
        analysis.live.push(Live { placed, scanned });
    }
    analysis.trailing = trailing;
}

/// Records what lies between the previous live segment and `placed`.
fn connect(analysis: &mut Analysis, placed: &Placed, holes: &[Hole]) {
    let base = placed.header.base_lsn;
    let Some(previous) = analysis.live.last() else {
        if let Some(hole) = holes.first() {
            // The manifest says the log starts in an earlier segment: its
            // records up to `base` are unknown.
            analysis.faults.push(Fault {
                damage: Damage {
                    path: hole.path.clone(),
                    offset: 0,
                    lsn: 0,
                    resume_lsn: Some(base),
                    reason: hole.reason.clone(),
                },
                resume_offset: None,
            });
        }
        return;
    };
    let (path, offset, reason) = match &previous.scanned.stop {
        Stop::Cap => {
            for hole in holes {
                analysis.notes.push(format!(
                    "{}: {} (its records were superseded)",
                    hole.path.display(),
                    hole.reason
                ));
            }
            return;
        }
        Stop::Broken => {
            // The previous segment's last damage: records resume here.
            if let Some(last) = analysis.faults.last_mut()
                && last.damage.resume_lsn.is_none()
            {
                last.damage.resume_lsn = Some(base);
            }
            return;
        }
        Stop::Torn { offset, reason, .. } => {
            (previous.placed.file.path.clone(), *offset, reason.clone())
        }
        Stop::End => {
            let reason = previous
                .placed
                .length_fault
                .clone()
                .or_else(|| holes.first().map(|h| h.reason.clone()))
                .unwrap_or(CorruptReason::Truncated {
                    next_base_lsn: base,
                });
            let path = holes
                .first()
                .filter(|_| previous.placed.length_fault.is_none())
                .map_or_else(|| previous.placed.file.path.clone(), |h| h.path.clone());
            (path, previous.scanned.end_offset, reason)
        }
    };
    analysis.faults.push(Fault {
        damage: Damage {
            path,
            offset,
            lsn: previous.scanned.end_lsn,
            resume_lsn: Some(base),
            reason,
        },
        resume_offset: None,
    });
}

/// Decides how the log ends: a clean end, a torn tail that may be dropped,
/// or damage (a torn write after a clean close or inside the acknowledged
/// range, missing segments after the last one, an end before the
/// clean-close mark, data after it, unlisted segments).
fn decide_tail(analysis: &mut Analysis) {
    let manifest = analysis.manifest;
    let end = analysis.end_lsn();
    let mut faults = Vec::new();
    let fault = |path: PathBuf, offset: u64, lsn: Lsn, reason: CorruptReason| Fault {
        damage: Damage {
            path,
            offset,
            lsn,
            resume_lsn: None,
            reason,
        },
        resume_offset: None,
    };
    let (end_path, end_offset) = match analysis.live.last() {
        Some(last) => (last.placed.file.path.clone(), last.scanned.end_offset),
        None => (analysis.manifest_path.clone(), 0),
    };
    if let Some(last) = analysis.live.last() {
        let path = last.placed.file.path.clone();
        match &last.scanned.stop {
            Stop::Torn {
                offset,
                nonzero_end,
                reason,
            } => {
                if manifest.clean || end < manifest.acked_lsn || last.placed.extended {
                    faults.push(fault(path, *offset, end, reason.clone()));
                } else {
                    analysis.torn = Some((path, *offset, end, *nonzero_end));
                }
            }
            Stop::End => {
                if let Some(reason) = last.placed.length_fault.clone() {
                    let at = last
                        .placed
                        .file
                        .len
                        .min(last.placed.header.segment_size_bytes);
                    faults.push(fault(path, at, end, reason));
                }
            }
            Stop::Cap | Stop::Broken => {}
        }
    }
    let mut after_unused = false;
    for hole in std::mem::take(&mut analysis.trailing) {
        if let Some(file) = hole.unused {
            // Never used, or nothing written there became durable.
            if analysis.spare.is_none() {
                analysis.spare = Some(file);
            } else {
                analysis.unused.push((file.index, file.path));
            }
            after_unused = true;
        } else if after_unused {
            // The writer fills segments in order: nothing was written past
            // an unused one.
            analysis.notes.push(format!(
                "{}: {} (after an unused segment)",
                hole.path.display(),
                hole.reason
            ));
        } else if manifest.clean && hole.index > manifest.end_index {
            analysis.notes.push(format!(
                "{}: {} (after the segment the log ended in at its clean close)",
                hole.path.display(),
                hole.reason
            ));
        } else {
            faults.push(fault(hole.path.clone(), 0, end, hole.reason.clone()));
        }
    }
    if end < manifest.acked_lsn {
        let reason = CorruptReason::EndsBeforeCloseMark {
            acked_lsn: manifest.acked_lsn,
        };
        faults.push(fault(end_path.clone(), end_offset, end, reason));
    }
    if manifest.clean && end > manifest.acked_lsn {
        let reason = CorruptReason::AfterCloseMark {
            acked_lsn: manifest.acked_lsn,
        };
        let (path, offset) = analysis
            .locate(manifest.acked_lsn)
            .unwrap_or((end_path.clone(), end_offset));
        faults.push(fault(path, offset, manifest.acked_lsn, reason));
    }
    for (index, path) in &analysis.unlisted {
        let reason = CorruptReason::UnlistedSegment { index: *index };
        faults.push(fault(path.clone(), 0, end, reason));
    }
    analysis.faults.extend(faults);
    analysis.faults.sort_by_key(|f| f.damage.lsn);
}

impl Analysis {
    /// The file and offset of the intact record `lsn`, if the log has it.
    fn locate(&self, lsn: Lsn) -> Option<(PathBuf, u64)> {
        let live = self
            .live
            .iter()
            .rev()
            .find(|l| l.placed.header.base_lsn <= lsn && lsn < l.scanned.end_lsn)?;
        let position = live.scanned.sparse.partition_point(|&(l, _)| l <= lsn);
        let (mut at_lsn, mut offset) = position
            .checked_sub(1)
            .map(|p| live.scanned.sparse[p])
            .unwrap_or((
                live.placed.header.base_lsn,
                u64::from(live.placed.header.first_frame_offset),
            ));
        let bytes: &[u8] = &live.placed.bytes;
        while at_lsn < lsn {
            let start = offset as usize;
            let header_end = start + super::record::RECORD_HEADER_SIZE_BYTES;
            match super::record::decode_header(bytes.get(start..header_end)?) {
                super::record::HeaderSlot::Valid(header) => {
                    offset += header.frame_size_at(offset);
                    at_lsn = header.lsn + 1;
                }
                // Padding at the end of a submission: the next one starts
                // at the sector boundary. Damage: give up (approximate).
                super::record::HeaderSlot::Zero => {
                    offset = super::record::sector_align_up(offset + 1);
                }
                super::record::HeaderSlot::Invalid { .. } => return None,
            }
        }
        Some((live.placed.file.path.clone(), offset))
    }
}

/// Acts on an analysis whose damage is all skippable: removes temporary
/// files and leftovers, zeroes a torn tail, clears the clean-close mark,
/// and hands the writer its starting state.
fn act(
    dir: &Path,
    options: &WalOptions,
    analysis: Analysis,
    manifest: parking_lot::Mutex<ManifestFile>,
) -> Result<Recovered, WalError> {
    let io = options.io.as_ref();
    let needed = options.needed_from_lsn;
    debug_assert!(analysis.blocking(needed).is_none());
    let (mut report, start) = analysis_report(&analysis);
    report.temp_files_removed = remove_files(io, dir, &analysis.temp_files)?;
    report.leftover_segments_removed = remove_files(io, dir, &analysis.leftovers)?;
    if let Some((path, offset, _, nonzero_end)) = &analysis.torn {
        zero_torn_tail(&analysis.live, path, *offset, *nonzero_end)?;
    }
    if manifest.lock().current().clean {
        // Appends may follow: until the next clean close, the log's end is
        // no longer known exactly.
        manifest.lock().update(|m| m.clean = false)?;
    }
    build(options, analysis, manifest, start, report)
}

fn remove_files(io: &dyn Io, dir: &Path, paths: &[PathBuf]) -> Result<usize, WalError> {
    for path in paths {
        io.remove_file(path)
            .map_err(|e| WalError::io("remove", path, e))?;
    }
    if !paths.is_empty() {
        io.sync_dir(dir)
            .map_err(|e| WalError::io("sync_dir", dir, e))?;
    }
    Ok(paths.len())
}

fn zero_torn_tail(live: &[Live], path: &Path, from: u64, to: u64) -> Result<(), WalError> {
    let last = live.last().expect("a torn tail is in the last segment");
    let zeros = vec![0u8; (to - from) as usize];
    let file = &last.placed.file.file;
    file.write_all_at(&zeros, from)
        .map_err(|e| WalError::io("write", path, e))?;
    file.sync_data()
        .map_err(|e| WalError::io("sync_data", path, e))
}

/// The writer's starting state: the readable segments from `start` on.
fn build(
    options: &WalOptions,
    analysis: Analysis,
    manifest: parking_lot::Mutex<ManifestFile>,
    start: Option<(Lsn, Option<u64>)>,
    mut report: RecoveryReport,
) -> Result<Recovered, WalError> {
    let mut dead = analysis.dead;
    let mut segments: Vec<Segment> = Vec::new();
    let next_lsn = analysis.live.last().map_or(1, |l| l.scanned.end_lsn);
    let active_offset = analysis
        .live
        .last()
        .map_or(0, |l| super::record::sector_align_up(l.scanned.end_offset));
    let live_count = analysis.live.len();
    for (position, live) in analysis.live.into_iter().enumerate() {
        let is_last = position + 1 == live_count;
        let header = live.placed.header;
        let mut segment = Segment {
            index: live.placed.file.index,
            path: live.placed.file.path,
            file: live.placed.file.file,
            base_lsn: header.base_lsn,
            first_frame_offset: u64::from(header.first_frame_offset),
            end_lsn: live.scanned.end_lsn,
            end_offset: live.scanned.end_offset,
            size_bytes: header.segment_size_bytes,
            sparse: live.scanned.sparse,
        };
        if let Some((start_lsn, start_offset)) = start {
            if segment.end_lsn <= start_lsn && !is_last {
                // Wholly before the readable log: kept on disk until the
                // log's prefix is purged past it.
                dead.push((segment.index, segment.path));
                continue;
            }
            if segment.base_lsn < start_lsn {
                let offset = start_offset.unwrap_or(segment.end_offset);
                segment.base_lsn = start_lsn;
                segment.first_frame_offset = offset;
                segment.sparse.retain(|&(lsn, _)| lsn > start_lsn);
                segment.sparse.insert(0, (start_lsn, offset));
            }
        }
        segments.push(segment);
    }
    dead.sort();
    let spare = analysis
        .spare
        .map(|f| (f.index, f.file, f.len))
        .filter(|&(_, _, len)| len == options.segment_size_bytes);
    let last_index = manifest.lock().current().last_index;
    report.segments = segments.len();
    report.first_lsn = segments.first().map_or(next_lsn, |s| s.base_lsn);
    report.next_lsn = next_lsn;
    report.dead_segments = dead.len();
    Ok(Recovered {
        segments,
        next_lsn,
        active_offset,
        spare,
        next_index: last_index + 1,
        dead,
        manifest,
        report,
    })
}
