//! The file-system seam: every file operation syncpay performs goes through
//! the [`Io`] and [`File`] traits defined here.
//!
//! Two implementations exist. [`RealIo`] maps each call onto `std::fs` and
//! `memmap2`. [`SimIo`] keeps files in memory and models what a disk does
//! to data that was not yet synced when the power went: it can lose every
//! unsynced byte, keep only a sector-aligned prefix of the last write, flip
//! bits, fail a write or an `fdatasync` with `EIO`, and fail with `ENOSPC`
//! once a size budget is exceeded. Storage code is written against the
//! traits only, so every durability argument can be tested under faults.
//!
//! Invariant: no module outside `io/` touches `std::fs` for the data
//! directory (tests and benchmarks that measure raw baselines excepted).
//!
//! Durability contract of the traits, which both implementations honour:
//! - bytes written with [`File::write_all_at`] are durable only after a later
//!   [`File::sync_data`] on the same file returned `Ok`;
//! - a created, renamed or removed directory entry is durable only after a
//!   later [`Io::sync_dir`] on its directory returned `Ok`;
//! - after a failed `sync_data` the state of the unsynced bytes is unknown
//!   (the kernel may have dropped them), so callers must not retry.

mod real;
#[cfg(any(test, feature = "internals"))]
mod sim;

use std::fmt;
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};

pub use real::RealIo;
#[cfg(any(test, feature = "internals"))]
pub use sim::{CrashMode, SimIo, SimStats};

/// The size of a disk sector: the unit in which a torn write keeps a prefix.
pub const SECTOR_SIZE_BYTES: u64 = 512;

/// How [`Io::open`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Create a new file for reading and writing; fail if it exists.
    CreateNew,
    /// Open an existing file for reading and writing.
    ReadWrite,
    /// Open an existing file for reading only.
    ReadOnly,
}

/// File-system operations on paths.
pub trait Io: Send + Sync + fmt::Debug + 'static {
    /// Opens `path` as described by `mode`.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn File>>;
    /// Creates `path` and any missing parents. The caller syncs the parent.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Returns the names (not paths) of the entries of directory `path`.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Atomically renames `from` to `to` (same directory).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file at `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of directory `path` durable (`fsync` on the directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Returns whether `path` exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// A fresh random identifier (a new log's id). The simulator draws it
    /// from its seed, so that simulated runs replay exactly.
    fn new_id(&self) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        // `RandomState` is keyed from the operating system's randomness.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(u64::from(std::process::id()));
        hasher.finish()
    }
}

/// An open file.
// A file has a length; whether it is empty is never the question asked.
#[allow(clippy::len_without_is_empty)]
pub trait File: Send + Sync + fmt::Debug {
    /// Fills `buf` from `offset`; fails with `UnexpectedEof` past the end.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Returns the length of the file in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Sets the length of the file (truncates or extends with zeros).
    fn set_len(&self, len_bytes: u64) -> io::Result<()>;
    /// Extends the file to `len_bytes` by writing zeros, so that its blocks
    /// are allocated and a later `sync_data` need not persist a size change.
    fn preallocate(&self, len_bytes: u64) -> io::Result<()>;
    /// `fdatasync`: makes the written data (and the size) durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Maps the whole file read-only.
    fn map(&self) -> io::Result<Mapping>;
    /// Takes an exclusive advisory lock; `WouldBlock` if another holder has it.
    fn try_lock_exclusive(&self) -> io::Result<()>;
}

/// A read-only view of a whole file: a memory map for real files, an owned
/// copy for simulated ones.
pub struct Mapping(MappingInner);

enum MappingInner {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Mapping {
    pub(crate) fn owned(bytes: Vec<u8>) -> Mapping {
        Mapping(MappingInner::Owned(bytes))
    }
}

impl Deref for Mapping {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            MappingInner::Mmap(map) => map,
            MappingInner::Owned(bytes) => bytes,
        }
    }
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping").field("len", &self.len()).finish()
    }
}

/// Returns the directory holding `path` (`.` for a bare name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Name of the lock file that an open log or store holds in its directory.
pub const LOCK_FILE_NAME: &str = "LOCK";

/// A failed step of preparing a directory: the operation, its path, the error.
#[derive(Debug)]
pub(crate) struct DirStepError {
    pub op: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

impl DirStepError {
    fn new(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DirStepError {
        let path = path.to_path_buf();
        move |source| DirStepError { op, path, source }
    }

    /// True if the lock file is locked by another open instance.
    pub fn is_locked(&self) -> bool {
        self.op == "lock" && self.source.kind() == io::ErrorKind::WouldBlock
    }
}

/// Creates `dir` if needed and syncs its parent, so that the directory's
/// entry survives a crash.
pub(crate) fn create_dir_durable(io: &dyn Io, dir: &Path) -> Result<(), DirStepError> {
    io.create_dir_all(dir)
        .map_err(DirStepError::new("create_dir", dir))?;
    let parent = parent_dir(dir);
    io.sync_dir(&parent)
        .map_err(DirStepError::new("sync_dir", &parent))
}

/// Opens `dir`'s lock file (creating it durably) and locks it exclusively;
/// a lock held elsewhere fails with [`DirStepError::is_locked`].
pub(crate) fn lock_dir(io: &dyn Io, dir: &Path) -> Result<Box<dyn File>, DirStepError> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = match io.open(&path, OpenMode::CreateNew) {
        Ok(file) => {
            io.sync_dir(dir)
                .map_err(DirStepError::new("sync_dir", dir))?;
            file
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            io.open(&path, OpenMode::ReadWrite)
                .map_err(DirStepError::new("open", &path))?
        }
        Err(e) => return Err(DirStepError::new("open", &path)(e)),
    };
    file.try_lock_exclusive()
        .map_err(DirStepError::new("lock", &path))?;
    Ok(file)
}

/// Locks `dir`'s lock file if there is one, creating and changing nothing
/// (for read-only opens and dry runs): `None` if the directory or its lock
/// file does not exist. A lock held elsewhere fails with
/// [`DirStepError::is_locked`], so nothing reads a directory while a writer
/// changes it.
pub(crate) fn lock_existing(
    io: &dyn Io,
    dir: &Path,
) -> Result<Option<Box<dyn File>>, DirStepError> {
    let path = dir.join(LOCK_FILE_NAME);
    if !io.exists(&path).map_err(DirStepError::new("stat", &path))? {
        return Ok(None);
    }
    let file = io
        .open(&path, OpenMode::ReadOnly)
        .map_err(DirStepError::new("open", &path))?;
    file.try_lock_exclusive()
        .map_err(DirStepError::new("lock", &path))?;
    Ok(Some(file))
}

/// A name in `quarantine` for `path` with `suffix` that is not taken yet:
/// the file's own name, or with `.1`, `.2`, ... appended.
fn quarantine_name(
    io: &dyn Io,
    quarantine: &Path,
    path: &Path,
    suffix: &str,
) -> Result<PathBuf, DirStepError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut attempt = 0u64;
    loop {
        let candidate = match attempt {
            0 => quarantine.join(format!("{name}{suffix}")),
            n => quarantine.join(format!("{name}{suffix}.{n}")),
        };
        if !io
            .exists(&candidate)
            .map_err(DirStepError::new("stat", &candidate))?
        {
            return Ok(candidate);
        }
        attempt += 1;
    }
}

/// Moves `path` (in `dir`) into the directory `quarantine` (created
/// durably), so that repair keeps what it removes. Both directories are
/// synced. Returns where the file went.
pub(crate) fn quarantine_file(
    io: &dyn Io,
    dir: &Path,
    quarantine: &Path,
    path: &Path,
) -> Result<PathBuf, DirStepError> {
    create_dir_durable(io, quarantine)?;
    let target = quarantine_name(io, quarantine, path, "")?;
    io.rename(path, &target)
        .map_err(DirStepError::new("rename", path))?;
    io.sync_dir(quarantine)
        .map_err(DirStepError::new("sync_dir", quarantine))?;
    io.sync_dir(dir)
        .map_err(DirStepError::new("sync_dir", dir))?;
    Ok(target)
}

/// Writes `bytes` durably as a new file in `quarantine` named after `path`
/// and `suffix` (a copy of what repair is about to overwrite).
pub(crate) fn quarantine_copy(
    io: &dyn Io,
    quarantine: &Path,
    path: &Path,
    suffix: &str,
    bytes: &[u8],
) -> Result<PathBuf, DirStepError> {
    create_dir_durable(io, quarantine)?;
    let target = quarantine_name(io, quarantine, path, suffix)?;
    let file = io
        .open(&target, OpenMode::CreateNew)
        .map_err(DirStepError::new("create", &target))?;
    file.write_all_at(bytes, 0)
        .map_err(DirStepError::new("write", &target))?;
    file.sync_data()
        .map_err(DirStepError::new("sync_data", &target))?;
    io.sync_dir(quarantine)
        .map_err(DirStepError::new("sync_dir", quarantine))?;
    Ok(target)
}

/// Linux's `ENOSPC`.
pub(crate) const ENOSPC: i32 = 28;

/// True if the error is `ENOSPC` (no space left on device).
pub fn is_no_space(error: &io::Error) -> bool {
    error.raw_os_error() == Some(ENOSPC) || error.kind() == io::ErrorKind::StorageFull
}
