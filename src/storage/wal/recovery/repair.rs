//! Repair: the smallest change that lets a damaged log open, planned in
//! full before anything is touched.
//!
//! The plan is computed from an analysis that assumes the structural fixes
//! repair makes (a damaged segment header rebuilt from the segment's first
//! frame, a segment file of the wrong length restored to its header's
//! size). Then the first damage that still blocks reading from the LSN the
//! caller needs decides the cut: every record before it is kept, every
//! record from it on is removed by a new segment that supersedes it, and
//! the segments wholly after the cut are moved to `quarantine/`. If the
//! damage starts before the needed LSN, no cut could open the log and
//! repair refuses ([`WalError::RepairImpossible`]). Nothing is deleted:
//! replaced headers, trimmed bytes, removed segments and a damaged
//! manifest are all kept in `quarantine/`.
//!
//! Applying a plan is idempotent: every step is safe to redo after a
//! crash, and planning again after a repair finds nothing to do.

use std::ops::Range;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::{Analysis, Damage, Mode, analyze, list};
use crate::storage::io::{File, Io, OpenMode};
use crate::storage::wal::manifest::{MANIFEST_FILE_NAME, Manifest, ManifestFile};
use crate::storage::wal::segment::{
    self, SEGMENT_RECORDS_START_BYTES, SegmentHeader, SegmentHeaderSlot,
};
use crate::storage::wal::{CorruptReason, Lsn, QUARANTINE_DIR_NAME, WalError, WalOptions};

/// What a repair does (or did), and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairPlan {
    /// The damage that made repair necessary; the first is where the log
    /// is cut.
    pub damage: Vec<Damage>,
    /// The steps, in order.
    pub actions: Vec<RepairAction>,
    /// The log is cut at this LSN: every record from it on is removed.
    pub cut_lsn: Option<Lsn>,
    /// LSNs of the intact records the cut removes (their segments go to
    /// quarantine). Empty if the cut removes none.
    pub removed_lsns: Range<Lsn>,
}

impl RepairPlan {
    /// True if there is nothing to repair.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Records removed by the cut.
    pub fn removed_records(&self) -> u64 {
        self.removed_lsns
            .end
            .saturating_sub(self.removed_lsns.start)
    }

    pub(in crate::storage::wal) fn merge(&mut self, later: RepairPlan) {
        self.damage.extend(later.damage);
        self.actions.extend(later.actions);
        if later.cut_lsn.is_some() {
            self.cut_lsn = later.cut_lsn;
            self.removed_lsns = later.removed_lsns;
        }
    }
}

/// One step of a repair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepairAction {
    /// Write a new manifest listing the segment files present (the damaged
    /// one, if any, is moved to quarantine first).
    RebuildManifest {
        /// Lowest segment index present.
        first_index: u64,
        /// Highest segment index present.
        last_index: u64,
    },
    /// Rewrite a damaged segment header from the segment's first intact
    /// frame (a copy of the file goes to quarantine first).
    RewriteHeader {
        /// The segment.
        path: PathBuf,
        /// The base LSN its first frame names.
        header_base_lsn: Lsn,
        /// Where that frame starts.
        first_frame_offset: u64,
    },
    /// Extend a segment file that is shorter than its header says, with
    /// zeros (the missing bytes are gone; records in them are lost).
    ExtendFile {
        /// The segment.
        path: PathBuf,
        /// Its length.
        from_bytes: u64,
        /// Its header's size.
        to_bytes: u64,
    },
    /// Cut a segment file that is longer than its header says back to that
    /// size (the extra bytes go to quarantine first).
    TrimFile {
        /// The segment.
        path: PathBuf,
        /// Its length.
        from_bytes: u64,
        /// Its header's size.
        to_bytes: u64,
    },
    /// Lower the clean-close mark to the cut (and clear `clean`).
    LowerCloseMark {
        /// The new mark.
        acked_lsn: Lsn,
    },
    /// Write a new segment whose header supersedes every record from `lsn`.
    Cut {
        /// The first LSN removed.
        lsn: Lsn,
        /// Index of the new segment.
        index: u64,
    },
    /// Move a file into quarantine.
    Quarantine {
        /// The file.
        path: PathBuf,
    },
}

/// Plans the repair of the log in `dir` with manifest state `manifest`.
/// Reads only.
pub(super) fn plan(
    dir: &Path,
    options: &WalOptions,
    manifest: Manifest,
) -> Result<RepairPlan, WalError> {
    let analysis = analyze(dir, options, manifest, Mode::Repair, false)?;
    plan_from(&analysis, options)
}

fn plan_from(analysis: &Analysis, options: &WalOptions) -> Result<RepairPlan, WalError> {
    let needed = options.needed_from_lsn;
    let manifest = analysis.manifest;
    let mut plan = RepairPlan {
        actions: analysis.assumed.clone(),
        ..RepairPlan::default()
    };
    let unlisted: Vec<&Damage> = analysis
        .faults
        .iter()
        .map(|f| &f.damage)
        .filter(|d| matches!(d.reason, CorruptReason::UnlistedSegment { .. }))
        .collect();
    for damage in &unlisted {
        plan.damage.push((*damage).clone());
        plan.actions.push(RepairAction::Quarantine {
            path: damage.path.clone(),
        });
    }
    let blocking: Vec<&Damage> = analysis
        .faults
        .iter()
        .map(|f| &f.damage)
        .filter(|d| !d.skippable(needed))
        .filter(|d| !matches!(d.reason, CorruptReason::UnlistedSegment { .. }))
        .collect();
    let Some(first) = blocking.first() else {
        return Ok(plan);
    };
    if first.lsn < needed {
        return Err(WalError::RepairImpossible {
            needed_from_lsn: needed,
            damage: Box::new((*first).clone()),
        });
    }
    let cut = first.lsn;
    plan.damage.extend(blocking.iter().map(|d| (*d).clone()));
    plan.cut_lsn = Some(cut);
    plan.removed_lsns = cut..analysis.lsn_seen_end.max(cut);
    if cut < manifest.acked_lsn || manifest.clean {
        plan.actions.push(RepairAction::LowerCloseMark {
            acked_lsn: manifest.acked_lsn.min(cut),
        });
    }
    let tail_only = blocking
        .iter()
        .all(|d| matches!(d.reason, CorruptReason::EndsBeforeCloseMark { .. }));
    if tail_only {
        // The log simply ends early: lowering the mark accepts it.
        return Ok(plan);
    }
    let index = manifest.last_index + 1;
    plan.actions.push(RepairAction::Cut { lsn: cut, index });
    // Keep the segment holding the records just before the cut (the new
    // segment caps it); every later segment file holds only removed
    // records, superseded ones, or none.
    let keep = analysis
        .live
        .iter()
        .filter(|l| l.placed.header.base_lsn < cut)
        .map(|l| l.placed.file.index)
        .max()
        .unwrap_or(0);
    let mut later: Vec<(u64, PathBuf)> = analysis
        .live
        .iter()
        .map(|l| (l.placed.file.index, l.placed.file.path.clone()))
        .chain(analysis.dead.iter().cloned())
        .chain(analysis.spare.iter().map(|f| (f.index, f.path.clone())))
        .chain(analysis.unused.iter().cloned())
        .filter(|(i, _)| *i > keep)
        .collect();
    later.sort();
    for (_, path) in later {
        plan.actions.push(RepairAction::Quarantine { path });
    }
    Ok(plan)
}

/// Carries out `plan` on the log in `dir`.
pub(super) fn apply(
    dir: &Path,
    options: &WalOptions,
    manifest: &Mutex<ManifestFile>,
    plan: &RepairPlan,
) -> Result<(), WalError> {
    let io = options.io.as_ref();
    for action in &plan.actions {
        match action {
            RepairAction::RebuildManifest { .. } => {}
            RepairAction::RewriteHeader {
                path,
                header_base_lsn,
                first_frame_offset,
            } => rewrite_header(
                dir,
                options,
                manifest,
                path,
                *header_base_lsn,
                *first_frame_offset,
            )?,
            RepairAction::ExtendFile { path, to_bytes, .. } => {
                let file = open_rw(io, path)?;
                file.preallocate(*to_bytes)
                    .map_err(|e| WalError::io("preallocate", path, e))?;
                file.sync_data()
                    .map_err(|e| WalError::io("sync_data", path, e))?;
            }
            RepairAction::TrimFile { path, to_bytes, .. } => {
                let file = open_rw(io, path)?;
                let len = file.len().map_err(|e| WalError::io("stat", path, e))?;
                if len > *to_bytes {
                    let mut tail = vec![0u8; (len - to_bytes) as usize];
                    file.read_exact_at(&mut tail, *to_bytes)
                        .map_err(|e| WalError::io("read", path, e))?;
                    save_copy(dir, io, path, ".tail", &tail)?;
                    file.set_len(*to_bytes)
                        .map_err(|e| WalError::io("set_len", path, e))?;
                    file.sync_data()
                        .map_err(|e| WalError::io("sync_data", path, e))?;
                }
            }
            RepairAction::LowerCloseMark { acked_lsn } => manifest.lock().update(|m| {
                m.acked_lsn = m.acked_lsn.min(*acked_lsn);
                m.clean = false;
            })?,
            RepairAction::Cut { lsn, index } => cut(dir, options, manifest, *lsn, *index)?,
            RepairAction::Quarantine { path } => quarantine(dir, io, path)?,
        }
    }
    // Quarantined segments may have been the first ones: the log now
    // starts at the lowest segment left.
    let listing = list(dir, options, false)?;
    let floor = manifest.lock().current().first_index;
    if let Some(lowest) = listing
        .segments
        .iter()
        .map(|f| f.index)
        .find(|&i| i >= floor)
    {
        manifest.lock().update(|m| m.first_index = lowest)?;
    }
    Ok(())
}

fn open_rw(io: &dyn Io, path: &Path) -> Result<Box<dyn File>, WalError> {
    io.open(path, OpenMode::ReadWrite)
        .map_err(|e| WalError::io("open", path, e))
}

/// Writes the superseding segment of a cut: the new segment is created and
/// registered as any other, then its header (base `lsn`, no records).
fn cut(
    dir: &Path,
    options: &WalOptions,
    manifest: &Mutex<ManifestFile>,
    lsn: Lsn,
    index: u64,
) -> Result<(), WalError> {
    let io = options.io.as_ref();
    let path = segment::segment_path(dir, index);
    let file: std::sync::Arc<dyn File> = if io
        .exists(&path)
        .map_err(|e| WalError::io("stat", &path, e))?
    {
        // A repair interrupted after creating it: reuse.
        std::sync::Arc::from(open_rw(io, &path)?)
    } else {
        crate::storage::wal::segment::prepare_segment(
            io,
            dir,
            index,
            options.segment_size_bytes,
            manifest,
            None,
        )?
    };
    let header = SegmentHeader {
        index,
        base_lsn: lsn,
        segment_size_bytes: options.segment_size_bytes,
        log_id: manifest.lock().current().log_id,
        first_frame_offset: SEGMENT_RECORDS_START_BYTES as u32,
    };
    file.write_all_at(&header.encode(), 0)
        .map_err(|e| WalError::io("write", &path, e))?;
    file.sync_data()
        .map_err(|e| WalError::io("sync_data", &path, e))
}

fn rewrite_header(
    dir: &Path,
    options: &WalOptions,
    manifest: &Mutex<ManifestFile>,
    path: &Path,
    base_lsn: Lsn,
    first_frame_offset: u64,
) -> Result<(), WalError> {
    let io = options.io.as_ref();
    let file = open_rw(io, path)?;
    let len = file.len().map_err(|e| WalError::io("stat", path, e))?;
    let index = segment::parse_entry_name(
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default(),
    );
    let segment::EntryKind::Segment(index) = index else {
        return Ok(());
    };
    let size_bytes = if len.is_multiple_of(crate::storage::io::SECTOR_SIZE_BYTES) {
        len
    } else {
        options.segment_size_bytes
    };
    let header = SegmentHeader {
        index,
        base_lsn,
        segment_size_bytes: size_bytes,
        log_id: manifest.lock().current().log_id,
        first_frame_offset: first_frame_offset as u32,
    };
    let mut sector = vec![0u8; SEGMENT_RECORDS_START_BYTES as usize];
    sector[..segment::SEGMENT_HEADER_SIZE_BYTES].copy_from_slice(&header.encode());
    let mut original = vec![0u8; len as usize];
    file.read_exact_at(&mut original, 0)
        .map_err(|e| WalError::io("read", path, e))?;
    if original.get(..sector.len()) == Some(&sector[..]) {
        return Ok(()); // Rewritten by an interrupted earlier repair.
    }
    save_copy(dir, io, path, "", &original)?;
    file.write_all_at(&sector, 0)
        .map_err(|e| WalError::io("write", path, e))?;
    file.sync_data()
        .map_err(|e| WalError::io("sync_data", path, e))
}

/// Moves `path` into the log's quarantine directory.
fn quarantine(dir: &Path, io: &dyn Io, path: &Path) -> Result<(), WalError> {
    if !io.exists(path).map_err(|e| WalError::io("stat", path, e))? {
        return Ok(()); // Moved by an interrupted earlier repair.
    }
    crate::storage::io::quarantine_file(io, dir, &dir.join(QUARANTINE_DIR_NAME), path)
        .map_err(WalError::from_dir_step)?;
    Ok(())
}

/// Keeps a copy of bytes repair is about to overwrite, in quarantine.
fn save_copy(
    dir: &Path,
    io: &dyn Io,
    path: &Path,
    suffix: &str,
    bytes: &[u8],
) -> Result<(), WalError> {
    crate::storage::io::quarantine_copy(io, &dir.join(QUARANTINE_DIR_NAME), path, suffix, bytes)
        .map_err(WalError::from_dir_step)?;
    Ok(())
}

/// The manifest repair would write for the segment files in `dir`: the
/// range of indexes present and the log id most of their headers carry.
fn rebuilt_manifest(dir: &Path, options: &WalOptions) -> Result<Manifest, WalError> {
    let listing = list(dir, options, false)?;
    let mut ids: Vec<u64> = listing
        .segments
        .iter()
        .filter_map(|f| match f.header {
            SegmentHeaderSlot::Valid(header) => Some(header.log_id),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    let log_id = ids
        .chunk_by(|a, b| a == b)
        .max_by_key(|run| run.len())
        .map_or_else(|| options.io.new_id(), |run| run[0]);
    let first_index = listing.segments.first().map_or(1, |f| f.index);
    let last_index = listing.segments.last().map_or(0, |f| f.index);
    Ok(Manifest {
        first_index,
        last_index,
        ..Manifest::new(log_id)
    })
}

/// Plans the rebuild of a missing or damaged manifest, and what repair
/// would do to the log with the rebuilt one. Reads only.
pub(super) fn plan_manifest_rebuild(
    dir: &Path,
    options: &WalOptions,
    damage: Damage,
) -> Result<RepairPlan, WalError> {
    let manifest = rebuilt_manifest(dir, options)?;
    let mut plan = manifest_plan(dir, options, damage, &manifest)?;
    plan.merge(self::plan(dir, options, manifest)?);
    Ok(plan)
}

fn manifest_plan(
    dir: &Path,
    options: &WalOptions,
    damage: Damage,
    manifest: &Manifest,
) -> Result<RepairPlan, WalError> {
    let path = dir.join(MANIFEST_FILE_NAME);
    let mut actions = Vec::new();
    if options
        .io
        .exists(&path)
        .map_err(|e| WalError::io("stat", &path, e))?
    {
        actions.push(RepairAction::Quarantine { path });
    }
    actions.push(RepairAction::RebuildManifest {
        first_index: manifest.first_index,
        last_index: manifest.last_index,
    });
    Ok(RepairPlan {
        damage: vec![damage],
        actions,
        ..RepairPlan::default()
    })
}

/// Rebuilds a missing or damaged manifest from the segment files (moving
/// the damaged one to quarantine). Returns what it did.
pub(super) fn rebuild_manifest(
    dir: &Path,
    options: &WalOptions,
    damage: Damage,
) -> Result<RepairPlan, WalError> {
    let io = options.io.as_ref();
    let manifest = rebuilt_manifest(dir, options)?;
    let plan = manifest_plan(dir, options, damage, &manifest)?;
    let path = dir.join(MANIFEST_FILE_NAME);
    if io
        .exists(&path)
        .map_err(|e| WalError::io("stat", &path, e))?
    {
        quarantine(dir, io, &path)?;
    }
    ManifestFile::create(io, dir, manifest)?;
    Ok(plan)
}
