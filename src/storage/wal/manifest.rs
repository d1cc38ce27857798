//! The log manifest: which segment files must exist, and how far the log
//! reached when it was last closed cleanly.
//!
//! The file `MANIFEST` holds two 512-byte slots. An update writes the whole
//! new state into the slot that does not hold the current one and syncs
//! it (one `fdatasync`); the valid slot with the higher sequence number is
//! the manifest. A slot is one sector, so a crash leaves it old or new,
//! never half written: a slot that is neither zero nor valid has rotted,
//! and the other slot (the state before the last update, which every check
//! below tolerates) is used and the damage reported.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "SYNCPAYM"
//!      8     4  format_version (2)
//!     12     4  crc: CRC32 of bytes 0..12 and 16..512
//!     16     8  sequence: +1 per update; the higher valid slot wins
//!     24     8  log_id: random, also in every segment header
//!     32     8  first_index: lowest segment index the log needs
//!     40     8  last_index: highest segment index created (0: none)
//!     48     8  acked_lsn: every LSN below it was acknowledged
//!     56     8  end_index: with `clean`, the segment the log ended in
//!     64     4  flags: bit 0 `clean` (closed cleanly at `acked_lsn`)
//!     68   444  reserved, zero
//! ```
//!
//! Protocol (who writes what, and in which order):
//! - a new segment is created under a temporary name, zero-filled, synced,
//!   renamed and its directory synced; only then is `last_index` raised,
//!   and only then may the writer put records into it. So every index up
//!   to `last_index` named a complete segment file once;
//! - `first_index` is raised before segments behind it are deleted;
//! - `acked_lsn` is lowered before a suffix truncation (or repair) removes
//!   records, and raised, with `clean`, when the log is closed; opening for
//!   writing clears `clean` before the first append.
//!
//! Every index in `first_index..=last_index` is therefore a segment file,
//! except segments that a later segment supersedes (a truncated suffix, or
//! what repair moved to quarantine), which may be absent.

use std::path::{Path, PathBuf};

use super::{Lsn, WalError};
use crate::storage::header::{intact_version, put_u32, put_u64, seal, u32_at, u64_at};
use crate::storage::io::{File, Io, OpenMode};

/// Name of the manifest file in the log directory.
pub const MANIFEST_FILE_NAME: &str = "MANIFEST";
/// Size of one manifest slot: one sector, so that it is written atomically.
pub const MANIFEST_SLOT_BYTES: usize = crate::storage::io::SECTOR_SIZE_BYTES as usize;
/// Magic bytes opening every manifest slot.
pub const MANIFEST_MAGIC: [u8; 8] = *b"SYNCPAYM";
/// The manifest format this code writes and reads.
pub const MANIFEST_FORMAT_VERSION: u32 = 2;
const FLAG_CLEAN: u32 = 1;

const _: () = assert!(MANIFEST_FORMAT_VERSION == super::segment::SEGMENT_FORMAT_VERSION);

/// The state a manifest slot records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Incremented by every update.
    pub sequence: u64,
    /// The log's identity, also stamped into every segment header.
    pub log_id: u64,
    /// Lowest segment index the log needs (those below were purged).
    pub first_index: u64,
    /// Highest segment index created; 0 if none.
    pub last_index: u64,
    /// Every LSN below this one was acknowledged (and not truncated since).
    pub acked_lsn: Lsn,
    /// With `clean`: the segment the log ended in when it was closed.
    pub end_index: u64,
    /// The log was closed cleanly: it ends exactly at `acked_lsn`, in
    /// segment `end_index`, and nothing after it was ever written.
    pub clean: bool,
}

impl Manifest {
    /// The state of a log that has no segment yet.
    pub fn new(log_id: u64) -> Manifest {
        Manifest {
            sequence: 1,
            log_id,
            first_index: 1,
            last_index: 0,
            acked_lsn: 1,
            end_index: 0,
            clean: false,
        }
    }

    /// Encodes the state as one slot.
    pub fn encode(&self) -> [u8; MANIFEST_SLOT_BYTES] {
        let mut bytes = [0u8; MANIFEST_SLOT_BYTES];
        put_u64(&mut bytes, 16, self.sequence);
        put_u64(&mut bytes, 24, self.log_id);
        put_u64(&mut bytes, 32, self.first_index);
        put_u64(&mut bytes, 40, self.last_index);
        put_u64(&mut bytes, 48, self.acked_lsn);
        put_u64(&mut bytes, 56, self.end_index);
        put_u32(&mut bytes, 64, if self.clean { FLAG_CLEAN } else { 0 });
        seal(&mut bytes, &MANIFEST_MAGIC, MANIFEST_FORMAT_VERSION);
        debug_assert_eq!(decode_slot(&bytes), ManifestSlot::Valid(*self));
        bytes
    }
}

/// What one manifest slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestSlot {
    /// Never written.
    Zero,
    /// A valid state.
    Valid(Manifest),
    /// A manifest of another format version.
    Version(u32),
    /// Neither zero nor valid: rot (a one-sector write is never torn).
    Invalid,
}

/// Classifies one slot's bytes. Never panics.
pub fn decode_slot(bytes: &[u8]) -> ManifestSlot {
    let Some(bytes) = bytes.get(..MANIFEST_SLOT_BYTES) else {
        return ManifestSlot::Invalid;
    };
    if bytes.iter().all(|&b| b == 0) {
        return ManifestSlot::Zero;
    }
    let u32_at = |o: usize| u32_at(bytes, o);
    let u64_at = |o: usize| u64_at(bytes, o);
    let version = intact_version(bytes, &MANIFEST_MAGIC);
    if let Some(version) = version
        && version != MANIFEST_FORMAT_VERSION
    {
        return ManifestSlot::Version(version);
    }
    let flags = u32_at(64);
    let valid =
        version.is_some() && flags & !FLAG_CLEAN == 0 && bytes[68..].iter().all(|&b| b == 0);
    if !valid {
        return ManifestSlot::Invalid;
    }
    let manifest = Manifest {
        sequence: u64_at(16),
        log_id: u64_at(24),
        first_index: u64_at(32),
        last_index: u64_at(40),
        acked_lsn: u64_at(48),
        end_index: u64_at(56),
        clean: flags & FLAG_CLEAN != 0,
    };
    let sane = manifest.first_index >= 1 && manifest.acked_lsn >= 1;
    if !sane {
        return ManifestSlot::Invalid;
    }
    ManifestSlot::Valid(manifest)
}

/// Why the manifest cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestProblem {
    /// The file does not exist.
    Missing,
    /// Neither slot holds a valid state.
    Damaged,
    /// Written by another format version.
    Version(u32),
}

/// Picks the current state from the two slots: the valid one with the
/// higher sequence. Returns it, its slot, and whether the other slot is
/// damaged (rotted rather than merely older or never written).
pub fn choose(slots: [ManifestSlot; 2]) -> Result<(Manifest, usize, bool), ManifestProblem> {
    for slot in &slots {
        if let ManifestSlot::Version(version) = slot {
            return Err(ManifestProblem::Version(*version));
        }
    }
    let valid = |i: usize| match slots[i] {
        ManifestSlot::Valid(manifest) => Some(manifest),
        _ => None,
    };
    let chosen = match (valid(0), valid(1)) {
        (Some(a), Some(b)) if b.sequence > a.sequence => (b, 1),
        (Some(a), _) => (a, 0),
        (None, Some(b)) => (b, 1),
        (None, None) => return Err(ManifestProblem::Damaged),
    };
    let other_damaged = slots[1 - chosen.1] == ManifestSlot::Invalid;
    Ok((chosen.0, chosen.1, other_damaged))
}

/// The manifest file of an open log.
#[derive(Debug)]
pub struct ManifestFile {
    path: PathBuf,
    file: Box<dyn File>,
    current: Manifest,
    /// The slot holding `current`.
    slot: usize,
}

impl ManifestFile {
    /// Creates the manifest of a new log, durably: temporary file, sync,
    /// rename, directory sync.
    pub fn create(io: &dyn Io, dir: &Path, manifest: Manifest) -> Result<ManifestFile, WalError> {
        let path = dir.join(MANIFEST_FILE_NAME);
        let temp = dir.join(format!("{MANIFEST_FILE_NAME}.tmp"));
        if io
            .exists(&temp)
            .map_err(|e| WalError::io("stat", &temp, e))?
        {
            io.remove_file(&temp)
                .map_err(|e| WalError::io("remove", &temp, e))?;
        }
        let file = io
            .open(&temp, OpenMode::CreateNew)
            .map_err(|e| WalError::io("create", &temp, e))?;
        let mut bytes = vec![0u8; 2 * MANIFEST_SLOT_BYTES];
        bytes[..MANIFEST_SLOT_BYTES].copy_from_slice(&manifest.encode());
        file.write_all_at(&bytes, 0)
            .map_err(|e| WalError::io("write", &temp, e))?;
        file.sync_data()
            .map_err(|e| WalError::io("sync_data", &temp, e))?;
        io.rename(&temp, &path)
            .map_err(|e| WalError::io("rename", &temp, e))?;
        io.sync_dir(dir)
            .map_err(|e| WalError::io("sync_dir", dir, e))?;
        Ok(ManifestFile {
            path,
            file,
            current: manifest,
            slot: 0,
        })
    }

    /// Reads the manifest in `dir`. `Ok(Err(problem))` if it is missing or
    /// unusable; the flag says whether one slot is damaged.
    pub fn open(
        io: &dyn Io,
        dir: &Path,
        writable: bool,
    ) -> Result<Result<(ManifestFile, bool), ManifestProblem>, WalError> {
        let path = dir.join(MANIFEST_FILE_NAME);
        if !io
            .exists(&path)
            .map_err(|e| WalError::io("stat", &path, e))?
        {
            return Ok(Err(ManifestProblem::Missing));
        }
        let mode = if writable {
            OpenMode::ReadWrite
        } else {
            OpenMode::ReadOnly
        };
        let file = io
            .open(&path, mode)
            .map_err(|e| WalError::io("open", &path, e))?;
        let len = file.len().map_err(|e| WalError::io("stat", &path, e))?;
        let mut bytes = vec![0u8; 2 * MANIFEST_SLOT_BYTES];
        let readable = (len as usize).min(bytes.len());
        file.read_exact_at(&mut bytes[..readable], 0)
            .map_err(|e| WalError::io("read", &path, e))?;
        if len as usize > bytes.len() {
            return Ok(Err(ManifestProblem::Damaged));
        }
        let slots = [
            decode_slot(&bytes[..MANIFEST_SLOT_BYTES]),
            decode_slot(&bytes[MANIFEST_SLOT_BYTES..]),
        ];
        Ok(choose(slots).map(|(current, slot, damaged)| {
            (
                ManifestFile {
                    path,
                    file,
                    current,
                    slot,
                },
                damaged,
            )
        }))
    }

    /// The current state.
    pub fn current(&self) -> Manifest {
        self.current
    }

    /// Durably replaces the state with `change` applied to it: the other
    /// slot is written and synced. On failure the current state (and slot)
    /// stay as they were, so a later update overwrites the failed slot
    /// again and never the last valid one.
    pub fn update(&mut self, change: impl FnOnce(&mut Manifest)) -> Result<(), WalError> {
        let mut next = self.current;
        change(&mut next);
        next.sequence = self.current.sequence + 1;
        let unchanged = Manifest {
            sequence: self.current.sequence,
            ..next
        } == self.current;
        if unchanged {
            return Ok(());
        }
        let slot = 1 - self.slot;
        self.file
            .write_all_at(&next.encode(), (slot * MANIFEST_SLOT_BYTES) as u64)
            .map_err(|e| WalError::io("write", &self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| WalError::io("sync_data", &self.path, e))?;
        self.current = next;
        self.slot = slot;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::io::SimIo;

    // Goal: updates alternate slots, the newest valid slot wins, a rotted
    // slot is reported and the other used, both rotted is an error.
    #[test]
    fn slots_alternate_and_rot_is_detected() {
        let io = SimIo::new(1);
        let dir = Path::new("/db/wal");
        io.create_dir_all(dir).unwrap();
        let mut manifest = ManifestFile::create(&io, dir, Manifest::new(7)).unwrap();
        manifest.update(|m| m.last_index = 3).unwrap();
        manifest.update(|m| m.acked_lsn = 10).unwrap();
        let (reopened, damaged) = ManifestFile::open(&io, dir, true).unwrap().unwrap();
        assert!(!damaged);
        assert_eq!(reopened.current(), manifest.current());
        assert_eq!(reopened.current().sequence, 3);
        // Rot the newest slot (slot 0 holds sequence 3): the older is used.
        let path = dir.join(MANIFEST_FILE_NAME);
        assert!(io.flip_bit(&path, 40, 1));
        let (older, damaged) = ManifestFile::open(&io, dir, true).unwrap().unwrap();
        assert!(damaged);
        assert_eq!(older.current().sequence, 2);
        assert!(io.flip_bit(&path, MANIFEST_SLOT_BYTES as u64 + 40, 1));
        assert_eq!(
            ManifestFile::open(&io, dir, true).unwrap().unwrap_err(),
            ManifestProblem::Damaged
        );
        for bit in 0..MANIFEST_SLOT_BYTES * 8 {
            let mut bytes = Manifest::new(9).encode();
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(decode_slot(&bytes), ManifestSlot::Valid(_)),
                "bit {bit}"
            );
        }
    }
}
