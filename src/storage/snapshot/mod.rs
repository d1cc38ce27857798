//! Snapshot files: atomic, checksummed images of a state machine at an LSN.
//!
//! A snapshot is written to `<lsn>.snap.tmp`, synced, renamed to
//! `<lsn>.snap`, and the directory is synced: after a crash a snapshot file
//! is either absent or complete. It is read back through a read-only memory
//! map and verified (magic, version, header checksum, length, payload
//! checksum) before any byte of it is used.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "SYNCPAYS"
//!      8     4  format_version (1)
//!     12     4  header_crc: CRC32 of bytes 0..12 and 16..64
//!     16     8  lsn: the last log record the image includes
//!     24     8  payload_len
//!     32     4  payload_crc: CRC32 of the payload
//!     36    28  reserved, zero
//!     64     n  payload
//! ```
//!
//! Fault model: a torn or rotted snapshot fails verification with
//! [`SnapshotError::Corrupt`]; the store then falls back to the older
//! retained snapshot and replays more log. Verification is the only gate:
//! nothing is decoded from an unverified file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::storage::header::{intact_version, put_u32, put_u64, seal, u32_at, u64_at};
use crate::storage::io::{File, Io, Mapping, OpenMode};
use crate::storage::wal::Lsn;

/// Size of the snapshot header.
pub const SNAPSHOT_HEADER_SIZE_BYTES: usize = 64;
/// Magic bytes opening every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"SYNCPAYS";
/// The snapshot format this code writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 2;
/// Writes to a snapshot file are buffered up to this size.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// Bytes written between syncs of a snapshot being written. Without them a
/// snapshot of a gigabyte sat dirty in the page cache and went to the device
/// in bursts, and each burst stood in front of the log's next `fdatasync`
/// (the worst batch latencies of a loaded ledger). With them the device
/// never holds more than one interval of snapshot bytes, as the log's
/// segment zero-fill does (`wal/segment.rs`).
const SYNC_INTERVAL_BYTES: u64 = 8 << 20;

/// An error of the snapshot layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A file operation failed.
    #[error("snapshot {op} failed on {path}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file fails verification.
    #[error("snapshot {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: SnapshotCorruptReason,
    },
}

/// Why a snapshot failed verification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotCorruptReason {
    /// Shorter than a header, wrong magic, bad header checksum.
    #[error("invalid header")]
    Header,
    /// A format this version does not read (format 1: before ledger ids).
    #[error("snapshot format {found}; this version reads format {supported}")]
    Version {
        /// The file's format.
        found: u32,
        /// The format this code reads.
        supported: u32,
    },
    /// The snapshot belongs to another ledger: its ledger id differs from
    /// the one in this ledger's log.
    #[error("belongs to ledger {found:#018x}, not this ledger {expected:#018x}")]
    ForeignLedger {
        /// This ledger's id (its log's).
        expected: u64,
        /// The snapshot's.
        found: u64,
    },
    /// The header's LSN differs from the file name's.
    #[error("header lsn {found} differs from the file name's {expected}")]
    Lsn {
        /// From the file name.
        expected: Lsn,
        /// From the header.
        found: Lsn,
    },
    /// The payload length differs from what the header says.
    #[error("payload is {actual} bytes, header says {expected}")]
    Length {
        /// From the header.
        expected: u64,
        /// From the file.
        actual: u64,
    },
    /// The payload checksum does not match.
    #[error("payload checksum {actual_crc:#010x}, expected {expected_crc:#010x}")]
    Checksum {
        /// From the header.
        expected_crc: u32,
        /// Computed.
        actual_crc: u32,
    },
}

/// A decoded snapshot header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The last log record included.
    pub lsn: Lsn,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// CRC32 of the payload.
    pub payload_crc: u32,
    /// The ledger it belongs to (its log's id); 0 for a snapshot written
    /// outside a ledger.
    pub ledger_id: u64,
}

impl SnapshotHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; SNAPSHOT_HEADER_SIZE_BYTES] {
        let mut bytes = [0u8; SNAPSHOT_HEADER_SIZE_BYTES];
        put_u64(&mut bytes, 16, self.lsn);
        put_u64(&mut bytes, 24, self.payload_len);
        put_u32(&mut bytes, 32, self.payload_crc);
        put_u64(&mut bytes, 36, self.ledger_id);
        seal(&mut bytes, &SNAPSHOT_MAGIC, SNAPSHOT_FORMAT_VERSION);
        bytes
    }
}

/// Verifies a whole snapshot file image and returns its header and payload.
/// Never panics, whatever `bytes` holds.
pub fn decode(bytes: &[u8]) -> Result<(SnapshotHeader, &[u8]), SnapshotCorruptReason> {
    let Some(header_bytes) = bytes.get(..SNAPSHOT_HEADER_SIZE_BYTES) else {
        return Err(SnapshotCorruptReason::Header);
    };
    let u32_at = |o: usize| u32_at(header_bytes, o);
    let u64_at = |o: usize| u64_at(header_bytes, o);
    let version = intact_version(header_bytes, &SNAPSHOT_MAGIC);
    let Some(version) = version.filter(|_| header_bytes[44..].iter().all(|&b| b == 0)) else {
        return Err(SnapshotCorruptReason::Header);
    };
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(SnapshotCorruptReason::Version {
            found: version,
            supported: SNAPSHOT_FORMAT_VERSION,
        });
    }
    let header = SnapshotHeader {
        lsn: u64_at(16),
        payload_len: u64_at(24),
        payload_crc: u32_at(32),
        ledger_id: u64_at(36),
    };
    let payload = &bytes[SNAPSHOT_HEADER_SIZE_BYTES..];
    if payload.len() as u64 != header.payload_len {
        return Err(SnapshotCorruptReason::Length {
            expected: header.payload_len,
            actual: payload.len() as u64,
        });
    }
    let actual_crc = crc32fast::hash(payload);
    if actual_crc != header.payload_crc {
        return Err(SnapshotCorruptReason::Checksum {
            expected_crc: header.payload_crc,
            actual_crc,
        });
    }
    Ok((header, payload))
}

/// A verified snapshot, mapped read-only.
#[derive(Debug)]
pub struct Snapshot {
    lsn: Lsn,
    path: PathBuf,
    map: Mapping,
}

impl Snapshot {
    /// The last log record the image includes.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The verified payload.
    pub fn payload(&self) -> &[u8] {
        &self.map[SNAPSHOT_HEADER_SIZE_BYTES..]
    }
}

/// Streams a payload into a snapshot file, checksumming as it goes.
pub struct SnapshotWriter {
    file: Box<dyn File>,
    path: PathBuf,
    hasher: crc32fast::Hasher,
    buffer: Vec<u8>,
    offset: u64,
    payload_len: u64,
    /// The file offset up to which the last interval sync reached.
    synced_offset: u64,
}

impl SnapshotWriter {
    fn flush_buffer(&mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            self.file.write_all_at(&self.buffer, self.offset)?;
            self.offset += self.buffer.len() as u64;
            self.buffer.clear();
        }
        self.sync_if_due()
    }

    /// Syncs what was written once an interval of it is unsynced.
    fn sync_if_due(&mut self) -> std::io::Result<()> {
        if self.offset - self.synced_offset >= SYNC_INTERVAL_BYTES {
            self.file.sync_data()?;
            self.synced_offset = self.offset;
        }
        Ok(())
    }
}

impl Write for SnapshotWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(bytes);
        self.payload_len += bytes.len() as u64;
        if self.buffer.len() + bytes.len() > WRITE_BUFFER_BYTES {
            self.flush_buffer()?;
        }
        if bytes.len() >= WRITE_BUFFER_BYTES {
            self.file.write_all_at(bytes, self.offset)?;
            self.offset += bytes.len() as u64;
            self.sync_if_due()?;
        } else {
            self.buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_buffer()
    }
}

impl std::fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("path", &self.path)
            .field("payload_len", &self.payload_len)
            .finish()
    }
}

/// The snapshot files of one directory.
#[derive(Clone, Debug)]
pub struct SnapshotDir {
    dir: PathBuf,
    io: Arc<dyn Io>,
    /// Stamped into written snapshots and required of loaded ones (when
    /// set): files of another ledger are refused.
    ledger_id: Option<u64>,
}

/// The name of the snapshot covering `lsn`.
pub fn snapshot_file_name(lsn: Lsn) -> String {
    format!("{lsn:020}.snap")
}

fn parse_name(name: &str) -> Option<(Lsn, bool)> {
    let (digits, temp) = match name.strip_suffix(".snap.tmp") {
        Some(digits) => (digits, true),
        None => (name.strip_suffix(".snap")?, false),
    };
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, temp))
}

/// Maps an I/O failure of `op` on `path` to a [`SnapshotError::Io`].
fn io_error(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let path = path.to_path_buf();
    move |source| SnapshotError::Io { op, path, source }
}

impl SnapshotDir {
    /// Opens (creating) the snapshot directory and removes leftover
    /// temporary files of interrupted writes.
    pub fn open(dir: &Path, io: Arc<dyn Io>) -> Result<SnapshotDir, SnapshotError> {
        crate::storage::io::create_dir_durable(io.as_ref(), dir)
            .map_err(|step| io_error(step.op, &step.path)(step.source))?;
        let snapshots = SnapshotDir {
            dir: dir.to_path_buf(),
            io,
            ledger_id: None,
        };
        let names = snapshots
            .io
            .list_dir(dir)
            .map_err(io_error("list_dir", dir))?;
        let mut removed = false;
        for name in names {
            if let Some((_, true)) = parse_name(&name) {
                let path = dir.join(&name);
                snapshots
                    .io
                    .remove_file(&path)
                    .map_err(io_error("remove", &path))?;
                removed = true;
            }
        }
        if removed {
            snapshots.sync_dir()?;
        }
        Ok(snapshots)
    }

    /// The snapshot directory `dir` as it is: nothing is created or
    /// removed (for read-only inspection and repair planning).
    pub fn existing(dir: &Path, io: Arc<dyn Io>) -> SnapshotDir {
        SnapshotDir {
            dir: dir.to_path_buf(),
            io,
            ledger_id: None,
        }
    }

    /// Snapshots of the ledger `id`: written with it, and loaded only if
    /// they carry it.
    pub fn with_ledger_id(mut self, id: u64) -> SnapshotDir {
        self.ledger_id = Some(id);
        self
    }

    /// Moves the snapshot covering `lsn` to `quarantine/` inside the
    /// snapshot directory (repair keeps what it removes). Returns its new
    /// path.
    pub fn quarantine(&self, lsn: Lsn) -> Result<PathBuf, SnapshotError> {
        let path = self.path(lsn);
        let quarantine = self.dir.join(crate::storage::wal::QUARANTINE_DIR_NAME);
        crate::storage::io::quarantine_file(self.io.as_ref(), &self.dir, &quarantine, &path)
            .map_err(|step| io_error(step.op, &step.path)(step.source))
    }

    fn sync_dir(&self) -> Result<(), SnapshotError> {
        self.io
            .sync_dir(&self.dir)
            .map_err(io_error("sync_dir", &self.dir))
    }

    /// The LSNs of the snapshot files present, newest first.
    pub fn list(&self) -> Result<Vec<Lsn>, SnapshotError> {
        let names = self
            .io
            .list_dir(&self.dir)
            .map_err(io_error("list_dir", &self.dir))?;
        let mut lsns: Vec<Lsn> = names
            .iter()
            .filter_map(|n| parse_name(n))
            .filter(|&(_, temp)| !temp)
            .map(|(lsn, _)| lsn)
            .collect();
        lsns.sort_unstable_by(|a, b| b.cmp(a));
        Ok(lsns)
    }

    /// The path of the snapshot covering `lsn`.
    pub fn path(&self, lsn: Lsn) -> PathBuf {
        self.dir.join(snapshot_file_name(lsn))
    }

    /// Writes the snapshot covering `lsn`, durably: `fill` streams the
    /// payload. Returns the payload length.
    pub fn write(
        &self,
        lsn: Lsn,
        fill: impl FnOnce(&mut SnapshotWriter) -> std::io::Result<()>,
    ) -> Result<u64, SnapshotError> {
        let temp = self.dir.join(format!("{}.tmp", snapshot_file_name(lsn)));
        let path = self.path(lsn);
        if self.io.exists(&temp).map_err(io_error("stat", &temp))? {
            self.io
                .remove_file(&temp)
                .map_err(io_error("remove", &temp))?;
        }
        let file = self
            .io
            .open(&temp, OpenMode::CreateNew)
            .map_err(io_error("create", &temp))?;
        let mut writer = SnapshotWriter {
            file,
            path: temp.clone(),
            hasher: crc32fast::Hasher::new(),
            buffer: Vec::with_capacity(WRITE_BUFFER_BYTES),
            offset: SNAPSHOT_HEADER_SIZE_BYTES as u64,
            payload_len: 0,
            synced_offset: 0,
        };
        fill(&mut writer).map_err(io_error("write", &temp))?;
        writer.flush_buffer().map_err(io_error("write", &temp))?;
        let header = SnapshotHeader {
            lsn,
            payload_len: writer.payload_len,
            payload_crc: writer.hasher.finalize(),
            ledger_id: self.ledger_id.unwrap_or(0),
        };
        let file = writer.file;
        file.write_all_at(&header.encode(), 0)
            .map_err(io_error("write", &temp))?;
        file.sync_data().map_err(io_error("sync_data", &temp))?;
        self.io
            .rename(&temp, &path)
            .map_err(io_error("rename", &temp))?;
        self.sync_dir()?;
        Ok(header.payload_len)
    }

    /// Installs a whole snapshot file received from elsewhere (header and
    /// payload, as [`write`](Self::write) makes them) as the snapshot
    /// covering `lsn`: copied from `source` to a temporary file, synced,
    /// verified, and only then renamed into place, so a torn or damaged
    /// transfer never replaces anything. Returns the verified snapshot.
    /// (The replicated mode's snapshot install.)
    #[cfg(feature = "replication")]
    pub fn install_copy(
        &self,
        lsn: Lsn,
        source: &mut dyn std::io::Read,
    ) -> Result<Snapshot, SnapshotError> {
        let temp = self.dir.join(format!("{}.tmp", snapshot_file_name(lsn)));
        if self.io.exists(&temp).map_err(io_error("stat", &temp))? {
            self.io
                .remove_file(&temp)
                .map_err(io_error("remove", &temp))?;
        }
        let file = self
            .io
            .open(&temp, OpenMode::CreateNew)
            .map_err(io_error("create", &temp))?;
        let mut buffer = vec![0u8; WRITE_BUFFER_BYTES];
        let mut offset = 0u64;
        let mut synced = 0u64;
        loop {
            let read = match source.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error("read", &temp)(e)),
            };
            file.write_all_at(&buffer[..read], offset)
                .map_err(io_error("write", &temp))?;
            offset += read as u64;
            if offset - synced >= SYNC_INTERVAL_BYTES {
                file.sync_data().map_err(io_error("sync_data", &temp))?;
                synced = offset;
            }
        }
        file.sync_data().map_err(io_error("sync_data", &temp))?;
        let map = file.map().map_err(io_error("map", &temp))?;
        let verified = match decode(&map) {
            Ok((header, _)) if header.lsn == lsn => Ok(()),
            Ok((header, _)) => Err(SnapshotCorruptReason::Lsn {
                expected: lsn,
                found: header.lsn,
            }),
            Err(reason) => Err(reason),
        };
        drop(map);
        drop(file);
        if let Err(reason) = verified {
            let _ = self.io.remove_file(&temp);
            return Err(SnapshotError::Corrupt { path: temp, reason });
        }
        let path = self.path(lsn);
        self.io
            .rename(&temp, &path)
            .map_err(io_error("rename", &temp))?;
        self.sync_dir()?;
        self.load(lsn)
    }

    /// Maps and verifies the snapshot covering `lsn`.
    pub fn load(&self, lsn: Lsn) -> Result<Snapshot, SnapshotError> {
        let path = self.path(lsn);
        let file = self
            .io
            .open(&path, OpenMode::ReadOnly)
            .map_err(io_error("open", &path))?;
        let map = file.map().map_err(io_error("map", &path))?;
        let corrupt = |reason| SnapshotError::Corrupt {
            path: path.clone(),
            reason,
        };
        let (header, _) = decode(&map).map_err(corrupt)?;
        if header.lsn != lsn {
            return Err(corrupt(SnapshotCorruptReason::Lsn {
                expected: lsn,
                found: header.lsn,
            }));
        }
        if let Some(expected) = self.ledger_id
            && header.ledger_id != expected
        {
            return Err(corrupt(SnapshotCorruptReason::ForeignLedger {
                expected,
                found: header.ledger_id,
            }));
        }
        Ok(Snapshot { lsn, path, map })
    }

    /// Deletes every snapshot file whose LSN is not in `keep`, durably.
    /// Returns how many were deleted.
    pub fn retain(&self, keep: &[Lsn]) -> Result<usize, SnapshotError> {
        let mut removed = 0;
        for lsn in self.list()? {
            if !keep.contains(&lsn) {
                let path = self.path(lsn);
                self.io
                    .remove_file(&path)
                    .map_err(io_error("remove", &path))?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.sync_dir()?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::io::{CrashMode, SimIo};

    fn setup(seed: u64) -> (SimIo, SnapshotDir) {
        let io = SimIo::new(seed);
        let dir = SnapshotDir::open(Path::new("/db/snapshots"), Arc::new(io.clone())).unwrap();
        (io, dir)
    }

    // Goal: a written snapshot loads back byte for byte, and retain keeps
    // exactly what it is told to.
    #[test]
    fn write_load_retain() {
        let (_io, dir) = setup(1);
        for lsn in [5u64, 9, 12] {
            let payload = vec![lsn as u8; 3 << 20];
            let len = dir.write(lsn, |w| w.write_all(&payload)).unwrap();
            assert_eq!(len, 3 << 20);
        }
        assert_eq!(dir.list().unwrap(), vec![12, 9, 5]);
        let snapshot = dir.load(9).unwrap();
        assert_eq!(snapshot.lsn(), 9);
        assert!(snapshot.payload().iter().all(|&b| b == 9));
        assert_eq!(dir.retain(&[12, 9]).unwrap(), 1);
        assert_eq!(dir.list().unwrap(), vec![12, 9]);
    }

    // Goal: every single-bit flip anywhere in a snapshot file is detected.
    #[test]
    fn every_bit_flip_is_detected() {
        let (io, dir) = setup(2);
        dir.write(3, |w| w.write_all(b"a small payload")).unwrap();
        let path = dir.path(3);
        let len = io.read_file(&path).unwrap().len() as u64;
        for offset in 0..len {
            for bit in 0..8 {
                assert!(io.flip_bit(&path, offset, bit));
                let error = dir.load(3).unwrap_err();
                assert!(
                    matches!(error, SnapshotError::Corrupt { .. }),
                    "{offset}/{bit}"
                );
                assert!(io.flip_bit(&path, offset, bit));
            }
        }
        dir.load(3).unwrap();
    }

    // Goal: a crash during a snapshot write leaves either no snapshot or a
    // complete one, never a partial file under the final name.
    #[test]
    fn crash_during_write_is_atomic() {
        for seed in 0..300 {
            let (io, dir) = setup(seed);
            let payload: Vec<u8> = (0..5000u32).flat_map(|i| i.to_le_bytes()).collect();
            io.cut_power_after(seed % 8);
            let result = dir.write(7, |w| w.write_all(&payload));
            let mode = [
                CrashMode::PowerLoss,
                CrashMode::TornWrite,
                CrashMode::ProcessKill,
            ][seed as usize % 3];
            io.crash(mode);
            let dir = SnapshotDir::open(Path::new("/db/snapshots"), Arc::new(io.clone())).unwrap();
            match dir.list().unwrap().as_slice() {
                [] => assert!(result.is_err(), "seed {seed}: acknowledged snapshot lost"),
                [7] => assert_eq!(dir.load(7).unwrap().payload(), &payload[..], "seed {seed}"),
                other => panic!("seed {seed}: unexpected snapshots {other:?}"),
            }
        }
    }

    #[test]
    fn decode_rejects_short_input() {
        assert_eq!(decode(&[]), Err(SnapshotCorruptReason::Header));
        assert_eq!(decode(&[0; 63]), Err(SnapshotCorruptReason::Header));
        assert_eq!(decode(&[0; 64]), Err(SnapshotCorruptReason::Header));
    }
}
