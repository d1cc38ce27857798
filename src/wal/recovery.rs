//! Recovery: what opening a log does with what it finds on disk.
//!
//! Rules, in the order they are applied:
//! 1. Half-prepared segments (`*.wal.tmp`) are deleted: nothing was ever
//!    written into them.
//! 2. Segment headers are read in index order. A segment whose `base_lsn` is
//!    not past the end of the ones before it supersedes their records from
//!    `base_lsn` on (a durable suffix truncation); segments left with no live
//!    record are dead and deleted. A zero header marks a preallocated segment
//!    that was never used: it may only follow every used segment and must be
//!    all zeros. A damaged header is corruption.
//! 3. Every live segment but the last must hold valid, consecutive records
//!    up to the LSN where the next one starts; anything short of that is
//!    corruption (a gap).
//! 4. The last segment is scanned until the first slot that is not a valid
//!    record with the expected LSN. If everything from there on is zero, the
//!    log ends there. If the slot holds a valid header whose payload fails
//!    its checksum, and every byte from the next sector boundary on is zero
//!    while the frame extends past that boundary, it is a torn write (the
//!    last write, never acknowledged): it is zeroed and reported. Anything
//!    else (a damaged header, a complete frame with a bad checksum, data
//!    after the end) is corruption.
//!
//! Corruption fails the open with [`WalError::Corrupt`] naming the file, the
//! offset and the expected LSN, unless `WalOptions::repair` is set: then the
//! log is cut at the corruption (by a superseding segment, or by deleting
//! segments from a damaged header on) and the [`Repair`] is reported.
//! Nothing is ever dropped silently.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::record::{self, HeaderSlot, RECORD_HEADER_SIZE_BYTES};
use super::segment::{
    self, EntryKind, SEGMENT_HEADER_SIZE_BYTES, Segment, SegmentHeader, SegmentHeaderSlot,
};
use super::{CorruptReason, Lsn, WalError, WalOptions};
use crate::io::{File, OpenMode, SECTOR_SIZE_BYTES};

/// A sparse-index entry is added at least every this many bytes.
pub(super) const SPARSE_INTERVAL_BYTES: u64 = 64 << 10;

/// What recovery found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Live segments after recovery.
    pub segments: usize,
    /// Bytes of segment files read.
    pub bytes_scanned: u64,
    /// Records found.
    pub records: u64,
    /// First LSN in the log.
    pub first_lsn: Lsn,
    /// LSN the next record will get.
    pub next_lsn: Lsn,
    /// A torn, never-acknowledged last write that was zeroed.
    pub torn_tail: Option<TornTail>,
    /// Half-prepared segment files deleted.
    pub temp_files_removed: usize,
    /// Segments deleted because later segments superseded all their records.
    pub dead_segments_removed: usize,
    /// Set if `repair` truncated the log at a corruption.
    pub repair: Option<Repair>,
}

/// A torn tail that recovery removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub path: PathBuf,
    /// Offset of the torn frame.
    pub offset: u64,
    /// Non-zero bytes that were zeroed.
    pub bytes: u64,
}

/// What an opt-in repair removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    /// Where the corruption was.
    pub path: PathBuf,
    /// Offset of the corruption in that file.
    pub offset: u64,
    /// What was wrong.
    pub reason: CorruptReason,
    /// The log now ends before this LSN; every record from it on is gone.
    pub log_end_lsn: Lsn,
    /// Segment files deleted by the repair.
    pub segments_removed: usize,
}

/// A preallocated, never-used segment: its index and open file.
pub(super) type Spare = (u64, Arc<dyn File>);

/// The state the writer starts from.
pub(super) struct Recovered {
    pub segments: Vec<Segment>,
    pub next_lsn: Lsn,
    /// Write position in the last live segment.
    pub active_offset: u64,
    /// A preallocated, never-used segment ready for use.
    pub spare: Option<Spare>,
    /// Index the next new segment gets (if there is no spare).
    pub next_index: u64,
    pub report: RecoveryReport,
}

struct Found {
    index: u64,
    path: PathBuf,
    file: Arc<dyn File>,
    len: u64,
    header: SegmentHeaderSlot,
}

/// A live segment before scanning: its header and where the next one starts.
struct Live {
    found: Found,
    header: SegmentHeader,
    cap_lsn: Option<Lsn>,
}

/// A corruption found while scanning, before it becomes an error or a repair.
struct Damage {
    path: PathBuf,
    offset: u64,
    expected_lsn: Lsn,
    reason: CorruptReason,
    /// Segment index where the damage is.
    index: u64,
    /// True if the segment header itself is damaged.
    header: bool,
}

impl Damage {
    fn into_error(self) -> WalError {
        WalError::Corrupt {
            path: self.path,
            offset: self.offset,
            expected_lsn: self.expected_lsn,
            reason: self.reason,
        }
    }
}

/// Recovers the log in `dir`.
pub(super) fn recover(dir: &Path, options: &WalOptions) -> Result<Recovered, WalError> {
    let mut removed_by_repair: Option<Repair> = None;
    loop {
        match recover_once(dir, options)? {
            Ok(mut recovered) => {
                if let Some(repair) = removed_by_repair.as_mut() {
                    repair.log_end_lsn = recovered.next_lsn;
                }
                recovered.report.repair = removed_by_repair;
                return Ok(recovered);
            }
            Err(damage) if options.repair && removed_by_repair.is_none() => {
                removed_by_repair = Some(repair(dir, options, damage)?);
            }
            Err(damage) => return Err(damage.into_error()),
        }
    }
}

fn recover_once(dir: &Path, options: &WalOptions) -> Result<Result<Recovered, Damage>, WalError> {
    let mut report = RecoveryReport::default();
    let found = list_segments(dir, options, &mut report)?;
    let next_index = found.last().map_or(1, |f| f.index + 1);
    let (live, dead, unused) = match classify(found) {
        Ok(parts) => parts,
        Err(damage) => return Ok(Err(damage)),
    };
    // Unused segments first: they are only read (and deleted if surplus),
    // so a damage found there leaves the log untouched.
    let spare = match settle_unused(dir, options, unused, &mut report)? {
        Ok(spare) => spare,
        Err(damage) => return Ok(Err(damage)),
    };
    let mut segments = Vec::with_capacity(live.len());
    let mut next_lsn = 1;
    let mut active_offset = SEGMENT_HEADER_SIZE_BYTES as u64;
    let live_count = live.len();
    for (position, live_segment) in live.into_iter().enumerate() {
        let is_last = position + 1 == live_count;
        let scanned = match scan_segment(&live_segment, is_last, &mut report)? {
            Ok(scanned) => scanned,
            Err(damage) => return Ok(Err(damage)),
        };
        next_lsn = scanned.end_lsn;
        active_offset = scanned.end_offset;
        segments.push(Segment {
            index: live_segment.found.index,
            path: live_segment.found.path,
            file: live_segment.found.file,
            base_lsn: live_segment.header.base_lsn,
            end_lsn: scanned.end_lsn,
            end_offset: scanned.end_offset,
            size_bytes: live_segment.found.len,
            sparse: scanned.sparse,
        });
    }
    remove_dead(dir, options, dead, &mut report)?;
    report.segments = segments.len();
    report.first_lsn = segments.first().map_or(next_lsn, |s| s.base_lsn);
    report.next_lsn = next_lsn;
    Ok(Ok(Recovered {
        segments,
        next_lsn,
        active_offset,
        spare,
        next_index,
        report,
    }))
}

fn list_segments(
    dir: &Path,
    options: &WalOptions,
    report: &mut RecoveryReport,
) -> Result<Vec<Found>, WalError> {
    let io = &options.io;
    let names = io
        .list_dir(dir)
        .map_err(|e| WalError::io("list_dir", dir, e))?;
    let mut found = Vec::new();
    for name in names {
        let path = dir.join(&name);
        match segment::parse_entry_name(&name) {
            EntryKind::Temp(_) => {
                io.remove_file(&path)
                    .map_err(|e| WalError::io("remove", &path, e))?;
                report.temp_files_removed += 1;
            }
            EntryKind::Segment(index) => {
                let file: Arc<dyn File> = Arc::from(
                    io.open(&path, OpenMode::ReadWrite)
                        .map_err(|e| WalError::io("open", &path, e))?,
                );
                let len = file.len().map_err(|e| WalError::io("stat", &path, e))?;
                let mut bytes = [0u8; SEGMENT_HEADER_SIZE_BYTES];
                let header = if len >= SEGMENT_HEADER_SIZE_BYTES as u64 {
                    file.read_exact_at(&mut bytes, 0)
                        .map_err(|e| WalError::io("read", &path, e))?;
                    segment::decode_segment_header(&bytes)
                } else {
                    SegmentHeaderSlot::Invalid
                };
                found.push(Found {
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
    if report.temp_files_removed > 0 {
        io.sync_dir(dir)
            .map_err(|e| WalError::io("sync_dir", dir, e))?;
    }
    found.sort_by_key(|f| f.index);
    Ok(found)
}

type Classified = (Vec<Live>, Vec<Found>, Vec<Found>);

/// Splits segments into live (with caps), dead (superseded) and unused.
fn classify(found: Vec<Found>) -> Result<Classified, Damage> {
    let mut live: Vec<Live> = Vec::new();
    let mut dead = Vec::new();
    let mut unused: Vec<Found> = Vec::new();
    for f in found {
        let header = match f.header {
            SegmentHeaderSlot::Zero => {
                unused.push(f);
                continue;
            }
            SegmentHeaderSlot::Invalid => {
                return Err(header_damage(&f, CorruptReason::SegmentHeader));
            }
            SegmentHeaderSlot::Valid(header) => header,
        };
        if let Some(first_unused) = unused.first() {
            return Err(header_damage(first_unused, CorruptReason::UnusedSegment));
        }
        if header.index != f.index {
            let reason = CorruptReason::SegmentIndex {
                expected: f.index,
                found: header.index,
            };
            return Err(header_damage(&f, reason));
        }
        if header.base_lsn == 0 || header.segment_size_bytes != f.len {
            return Err(header_damage(&f, CorruptReason::SegmentHeader));
        }
        while live
            .last()
            .is_some_and(|l| l.header.base_lsn >= header.base_lsn)
        {
            dead.push(live.pop().expect("checked non-empty").found);
        }
        if let Some(previous) = live.last_mut() {
            previous.cap_lsn = Some(header.base_lsn);
        }
        live.push(Live {
            found: f,
            header,
            cap_lsn: None,
        });
    }
    Ok((live, dead, unused))
}

fn header_damage(f: &Found, reason: CorruptReason) -> Damage {
    Damage {
        path: f.path.clone(),
        offset: 0,
        expected_lsn: 0,
        reason,
        index: f.index,
        header: true,
    }
}

struct Scanned {
    end_lsn: Lsn,
    end_offset: u64,
    sparse: Vec<(Lsn, u64)>,
}

/// Why a scan stopped.
enum Stop {
    /// Reached the LSN where the next segment starts.
    Cap,
    /// A zero header slot, or too little room left for a header.
    Zero,
    /// A slot that is not a valid record with the expected LSN.
    Bad(CorruptReason),
    /// A valid header whose payload fails its checksum.
    Payload {
        frame_end: u64,
        reason: CorruptReason,
    },
}

fn scan_segment(
    live: &Live,
    is_last: bool,
    report: &mut RecoveryReport,
) -> Result<Result<Scanned, Damage>, WalError> {
    let found = &live.found;
    let map = found
        .file
        .map()
        .map_err(|e| WalError::io("map", &found.path, e))?;
    report.bytes_scanned += map.len() as u64;
    let mut position = SEGMENT_HEADER_SIZE_BYTES as u64;
    let mut lsn = live.header.base_lsn;
    let mut sparse: Vec<(Lsn, u64)> = Vec::new();
    let stop = loop {
        if live.cap_lsn == Some(lsn) {
            break Stop::Cap;
        }
        let frame_size = match check_frame(&map, position, lsn) {
            Ok(frame_size) => frame_size,
            Err(stop) => break stop,
        };
        if sparse
            .last()
            .is_none_or(|&(_, offset)| position - offset >= SPARSE_INTERVAL_BYTES)
        {
            sparse.push((lsn, position));
        }
        position += frame_size;
        lsn += 1;
        report.records += 1;
    };
    let scanned = Scanned {
        end_lsn: lsn,
        end_offset: position,
        sparse,
    };
    let damage = |offset: u64, reason: CorruptReason| Damage {
        path: found.path.clone(),
        offset,
        expected_lsn: lsn,
        reason,
        index: found.index,
        header: false,
    };
    match stop {
        Stop::Cap => Ok(Ok(scanned)),
        _ if !is_last => {
            let next_base_lsn = live.cap_lsn.expect("non-last live segments are capped");
            let reason = match stop {
                Stop::Bad(reason) | Stop::Payload { reason, .. } => reason,
                _ => CorruptReason::Truncated { next_base_lsn },
            };
            Ok(Err(damage(position, reason)))
        }
        Stop::Zero => match first_nonzero(&map[position as usize..]) {
            None => Ok(Ok(scanned)),
            Some(at) => {
                let offset = position + at as u64;
                Ok(Err(damage(
                    position,
                    CorruptReason::DataAfterEnd { offset },
                )))
            }
        },
        Stop::Bad(reason) => Ok(Err(damage(position, reason))),
        Stop::Payload { frame_end, reason } => {
            let tail = &map[position as usize..];
            let nonzero_end = position + last_nonzero(tail).map_or(0, |i| i as u64 + 1);
            let boundary = nonzero_end.div_ceil(SECTOR_SIZE_BYTES) * SECTOR_SIZE_BYTES;
            if boundary >= frame_end {
                // The whole frame was written, so its bad checksum is rot.
                return Ok(Err(damage(position, reason)));
            }
            drop(map);
            zero_torn_tail(found, position, nonzero_end)?;
            report.torn_tail = Some(TornTail {
                path: found.path.clone(),
                offset: position,
                bytes: nonzero_end - position,
            });
            Ok(Ok(scanned))
        }
    }
}

/// Checks the frame at `position`: returns its size if it is a valid record
/// with LSN `lsn`, or why not.
fn check_frame(map: &[u8], position: u64, lsn: Lsn) -> Result<u64, Stop> {
    let len = map.len() as u64;
    if position + RECORD_HEADER_SIZE_BYTES as u64 > len {
        return Err(Stop::Zero);
    }
    let start = position as usize;
    let header = match record::decode_header(&map[start..start + RECORD_HEADER_SIZE_BYTES]) {
        HeaderSlot::Zero => return Err(Stop::Zero),
        HeaderSlot::Invalid {
            expected_crc,
            actual_crc,
        } => {
            let reason = CorruptReason::HeaderChecksum {
                expected_crc,
                actual_crc,
            };
            return Err(Stop::Bad(reason));
        }
        HeaderSlot::Valid(header) => header,
    };
    if header.lsn != lsn {
        return Err(Stop::Bad(CorruptReason::Lsn { found: header.lsn }));
    }
    let frame_size = header.frame_size() as u64;
    if position + frame_size > len {
        let reason = CorruptReason::Length {
            len: u64::from(header.payload_len),
        };
        return Err(Stop::Bad(reason));
    }
    let payload_start = start + RECORD_HEADER_SIZE_BYTES;
    let payload = &map[payload_start..payload_start + header.payload_len as usize];
    let actual_crc = crc32fast::hash(payload);
    if actual_crc != header.payload_crc {
        let reason = CorruptReason::PayloadChecksum {
            expected_crc: header.payload_crc,
            actual_crc,
        };
        let frame_end = position + frame_size;
        return Err(Stop::Payload { frame_end, reason });
    }
    let frame = &map[start..start + frame_size as usize];
    if !record::padding_is_zero(frame, header.payload_len as usize) {
        // A torn write leaves zeros, so a good payload with bad padding is rot.
        return Err(Stop::Bad(CorruptReason::Padding));
    }
    Ok(frame_size)
}

fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    // Compare 8 bytes at a time: unused space is most of a segment.
    let chunks = bytes.chunks_exact(8);
    let remainder_start = bytes.len() - chunks.remainder().len();
    for (i, chunk) in chunks.enumerate() {
        if u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) != 0 {
            let within = chunk.iter().position(|&b| b != 0).expect("non-zero chunk");
            return Some(i * 8 + within);
        }
    }
    bytes[remainder_start..]
        .iter()
        .position(|&b| b != 0)
        .map(|i| remainder_start + i)
}

fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    bytes.iter().rposition(|&b| b != 0)
}

fn zero_torn_tail(found: &Found, from: u64, to: u64) -> Result<(), WalError> {
    let zeros = vec![0u8; (to - from) as usize];
    found
        .file
        .write_all_at(&zeros, from)
        .map_err(|e| WalError::io("write", &found.path, e))?;
    found
        .file
        .sync_data()
        .map_err(|e| WalError::io("sync_data", &found.path, e))
}

/// Keeps the first unused segment as the spare if it is all zeros and of the
/// configured size; deletes other unused ones.
fn settle_unused(
    dir: &Path,
    options: &WalOptions,
    unused: Vec<Found>,
    report: &mut RecoveryReport,
) -> Result<Result<Option<Spare>, Damage>, WalError> {
    let mut spare = None;
    let mut removed = false;
    for f in unused {
        let map = f.file.map().map_err(|e| WalError::io("map", &f.path, e))?;
        report.bytes_scanned += map.len() as u64;
        if let Some(at) = first_nonzero(&map) {
            // A zero header with data behind it: a segment header was lost.
            let damage = Damage {
                path: f.path.clone(),
                offset: at as u64,
                expected_lsn: 0,
                reason: CorruptReason::UnusedSegment,
                index: f.index,
                header: true,
            };
            return Ok(Err(damage));
        }
        drop(map);
        if spare.is_none() && f.len == options.segment_size_bytes {
            spare = Some((f.index, f.file));
        } else {
            options
                .io
                .remove_file(&f.path)
                .map_err(|e| WalError::io("remove", &f.path, e))?;
            removed = true;
        }
    }
    if removed {
        options
            .io
            .sync_dir(dir)
            .map_err(|e| WalError::io("sync_dir", dir, e))?;
    }
    Ok(Ok(spare))
}

fn remove_dead(
    dir: &Path,
    options: &WalOptions,
    dead: Vec<Found>,
    report: &mut RecoveryReport,
) -> Result<(), WalError> {
    if dead.is_empty() {
        return Ok(());
    }
    for f in &dead {
        options
            .io
            .remove_file(&f.path)
            .map_err(|e| WalError::io("remove", &f.path, e))?;
    }
    report.dead_segments_removed = dead.len();
    options
        .io
        .sync_dir(dir)
        .map_err(|e| WalError::io("sync_dir", dir, e))
}

/// Cuts the log at `damage`, durably, and reports what that removes.
fn repair(dir: &Path, options: &WalOptions, damage: Damage) -> Result<Repair, WalError> {
    let io = &options.io;
    let names = io
        .list_dir(dir)
        .map_err(|e| WalError::io("list_dir", dir, e))?;
    let indexes: Vec<u64> = names
        .iter()
        .filter_map(|n| match segment::parse_entry_name(n) {
            EntryKind::Segment(index) => Some(index),
            _ => None,
        })
        .collect();
    let max_index = indexes.iter().copied().max().unwrap_or(0);
    let mut segments_removed = 0;
    if damage.header {
        // Without a trustworthy header the segment's records cannot be
        // placed: drop it and everything after it.
        for &index in indexes.iter().filter(|&&i| i >= damage.index) {
            let path = segment::segment_path(dir, index);
            io.remove_file(&path)
                .map_err(|e| WalError::io("remove", &path, e))?;
            segments_removed += 1;
        }
        io.sync_dir(dir)
            .map_err(|e| WalError::io("sync_dir", dir, e))?;
    } else {
        // Everything after the damaged segment goes (later segments cannot
        // continue a log that ends here); then a superseding segment
        // starting at the damaged LSN cuts the damaged one.
        for &index in indexes.iter().filter(|&&i| i > damage.index) {
            let path = segment::segment_path(dir, index);
            io.remove_file(&path)
                .map_err(|e| WalError::io("remove", &path, e))?;
            segments_removed += 1;
        }
        io.sync_dir(dir)
            .map_err(|e| WalError::io("sync_dir", dir, e))?;
        let header = SegmentHeader {
            index: max_index + 1,
            base_lsn: damage.expected_lsn,
            segment_size_bytes: options.segment_size_bytes,
        };
        let file = super::writer::prepare_segment(
            io.as_ref(),
            dir,
            header.index,
            options.segment_size_bytes,
        )?;
        let path = segment::segment_path(dir, header.index);
        file.write_all_at(&header.encode(), 0)
            .map_err(|e| WalError::io("write", &path, e))?;
        file.sync_data()
            .map_err(|e| WalError::io("sync_data", &path, e))?;
    }
    Ok(Repair {
        path: damage.path,
        offset: damage.offset,
        reason: damage.reason,
        // Set to the real end once recovery reruns on the repaired log.
        log_end_lsn: 0,
        segments_removed,
    })
}
