//! A simulated, fault-injecting file system held in memory.
//!
//! Model. Each file (inode) has its *visible* contents (what reads return,
//! like the page cache) and its *durable* contents (what survives a power
//! cut), plus the ordered list of operations performed since its last
//! successful `sync_data`. Each directory likewise has visible and durable
//! entries and a list of unsynced entry operations. [`SimIo::crash`] ends
//! the "process": every open handle becomes stale (its calls fail), locks are
//! released, and what survives is chosen by a [`CrashMode`]:
//! - [`CrashMode::PowerLoss`]: nothing unsynced survives;
//! - [`CrashMode::TornWrite`]: for each file, a seeded random prefix of its
//!   unsynced operations survives, and the first operation that does not
//!   survive whole may survive as a prefix ending on a 512-byte sector
//!   boundary of the file (a torn write); directories keep a random prefix of
//!   their unsynced entry operations;
//! - [`CrashMode::ProcessKill`]: everything written survives (`kill -9`: the
//!   kernel still holds the page cache).
//!
//! Faults: `fail_sync_after(n)` makes a later `sync_data`/`sync_dir` fail
//! with `EIO`; like Linux, the failed sync forgets the unsynced operations,
//! so a retried sync "succeeds" without making anything durable, which is
//! exactly why callers must poison themselves on the first failure.
//! `fail_write_after(n)` makes a later write fail with `EIO`;
//! `set_space_budget` makes writes that would grow the total size of all
//! files past the budget fail with `ENOSPC`; `flip_bit` rots a stored bit.
//!
//! Everything random derives from the seed given to [`SimIo::new`], so a
//! failing schedule replays exactly.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{File, Io, Mapping, OpenMode, SECTOR_SIZE_BYTES, parent_dir};
use crate::rng::SplitMix64;

/// `EIO` on Linux.
pub(crate) const EIO: i32 = 5;
/// `ENOSPC` on Linux.
pub(crate) use super::ENOSPC;

/// What survives a simulated crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// Power loss: every unsynced byte and directory entry is lost.
    PowerLoss,
    /// Power loss during writes: a random prefix of the unsynced operations
    /// of each file survives, the next one possibly torn at a sector boundary.
    TornWrite,
    /// Process killed, kernel alive: everything written survives.
    ProcessKill,
    /// Power loss in the middle of each file's last unsynced write: every
    /// earlier unsynced operation survives, and of the last write exactly
    /// the sectors before the `sectors_kept`-th sector boundary it crosses
    /// (0: none of it). Directories keep every operation. For tests that
    /// tear one write at every sector boundary in turn.
    TornLastWrite {
        /// Sector boundaries of the write kept before the tear.
        sectors_kept: u64,
    },
}

/// Counters of the operations performed, for tests of group commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Calls to `write_all_at` (including appends).
    pub writes: u64,
    /// Successful calls to `sync_data`.
    pub syncs: u64,
    /// Successful calls to `sync_dir`.
    pub dir_syncs: u64,
    /// Bytes passed to writes.
    pub bytes_written: u64,
}

/// The simulated file system. Cloning gives another handle to the same one.
#[derive(Clone)]
pub struct SimIo {
    shared: Arc<Mutex<SimState>>,
}

impl std::fmt::Debug for SimIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimIo").finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
struct SimState {
    generation: u64,
    rng: SplitMix64,
    inodes: HashMap<u64, Inode>,
    inode_next: u64,
    handle_next: u64,
    dirs: BTreeMap<PathBuf, Dir>,
    faults: Faults,
    stats: SimStats,
}

#[derive(Clone, Debug, Default)]
struct Inode {
    visible: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<FileOp>,
    handles_open: u32,
    links: u32,
    lock_holder: Option<u64>,
}

#[derive(Clone, Debug)]
enum FileOp {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Clone, Debug, Default)]
struct Dir {
    visible: BTreeMap<String, u64>,
    durable: BTreeMap<String, u64>,
    unsynced: Vec<DirOp>,
}

#[derive(Clone, Debug)]
enum DirOp {
    Link(String, u64),
    Unlink(String),
    Rename(String, String),
}

#[derive(Clone, Debug, Default)]
struct Faults {
    /// Mutating operations left before the power is cut.
    power_cut_countdown: Option<u64>,
    /// If set, only operations on this inode count down.
    power_cut_inode: Option<u64>,
    /// Once cut, every mutating operation fails until `crash`.
    power_cut: bool,
    sync_fail_countdown: Option<u64>,
    write_fail_countdown: Option<u64>,
    space_budget_bytes: Option<u64>,
}

struct SimFile {
    shared: Arc<Mutex<SimState>>,
    inode: u64,
    handle: u64,
    generation: u64,
    writable: bool,
}

impl std::fmt::Debug for SimFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimFile")
            .field("inode", &self.inode)
            .field("handle", &self.handle)
            .finish()
    }
}

fn error_eio(_what: &str) -> io::Error {
    io::Error::from_raw_os_error(EIO)
}

fn error_enospc() -> io::Error {
    io::Error::from_raw_os_error(ENOSPC)
}

fn error_stale() -> io::Error {
    io::Error::other("stale handle: the simulated process crashed")
}

fn split_path(path: &Path) -> io::Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    Ok((parent_dir(path), name.to_string()))
}

impl SimIo {
    /// A new, empty simulated file system whose random choices derive from `seed`.
    pub fn new(seed: u64) -> SimIo {
        SimIo {
            shared: Arc::new(Mutex::new(SimState {
                generation: 0,
                rng: SplitMix64::new(seed),
                inodes: HashMap::new(),
                inode_next: 1,
                handle_next: 1,
                dirs: BTreeMap::new(),
                faults: Faults::default(),
                stats: SimStats::default(),
            })),
        }
    }

    /// Simulates a crash: every handle opened before becomes stale and what
    /// survives is chosen by `mode`. Injected faults are cleared.
    pub fn crash(&self, mode: CrashMode) {
        let mut state = self.shared.lock();
        let state = &mut *state;
        state.generation += 1;
        state.faults = Faults::default();
        for dir in state.dirs.values_mut() {
            dir.crash(mode, &mut state.rng);
        }
        for inode in state.inodes.values_mut() {
            inode.crash(mode, &mut state.rng);
        }
        // Recount links from the surviving entries; drop orphaned inodes.
        for inode in state.inodes.values_mut() {
            inode.links = 0;
            inode.handles_open = 0;
        }
        for dir in state.dirs.values() {
            for ino in dir.visible.values() {
                if let Some(inode) = state.inodes.get_mut(ino) {
                    inode.links += 1;
                }
            }
        }
        state.inodes.retain(|_, inode| inode.links > 0);
    }

    /// Cuts the power after `n` more mutating operations (writes, syncs,
    /// renames, removals, creations): from then on every mutating operation
    /// fails with `EIO`, as if the machine stopped at that instant. Follow
    /// with [`SimIo::crash`] to decide what the disk kept.
    pub fn cut_power_after(&self, n: u64) {
        let mut state = self.shared.lock();
        state.faults.power_cut_countdown = Some(n);
        state.faults.power_cut_inode = None;
    }

    /// Like [`SimIo::cut_power_after`], counting only operations on the
    /// file at `path` (so that other threads' operations on other files do
    /// not race for the countdown). Returns false if there is no such file.
    pub fn cut_power_after_on(&self, path: &Path, n: u64) -> bool {
        let mut state = self.shared.lock();
        let Some(ino) = state.lookup(path) else {
            return false;
        };
        state.faults.power_cut_countdown = Some(n);
        state.faults.power_cut_inode = Some(ino);
        true
    }

    /// True once a scheduled power cut has happened.
    pub fn power_is_cut(&self) -> bool {
        self.shared.lock().faults.power_cut
    }

    /// Makes the `n+1`-th `sync_data` or `sync_dir` from now fail with `EIO`.
    pub fn fail_sync_after(&self, n: u64) {
        self.shared.lock().faults.sync_fail_countdown = Some(n);
    }

    /// Makes the `n+1`-th write from now fail with `EIO` (nothing is written).
    pub fn fail_write_after(&self, n: u64) {
        self.shared.lock().faults.write_fail_countdown = Some(n);
    }

    /// Writes that would grow the total size of all files past `budget`
    /// fail with `ENOSPC`; `None` removes the limit.
    pub fn set_space_budget(&self, budget_bytes: Option<u64>) {
        self.shared.lock().faults.space_budget_bytes = budget_bytes;
    }

    /// The total visible size of all files.
    pub fn space_used_bytes(&self) -> u64 {
        self.shared.lock().space_used()
    }

    /// Operation counters since creation.
    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats
    }

    /// Flips bit `bit` (0..8) of byte `offset` of the file at `path`, in both
    /// its visible and its durable contents (media rot). Returns false if the
    /// file or the offset does not exist.
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) -> bool {
        let mut state = self.shared.lock();
        let Some(ino) = state.lookup(path) else {
            return false;
        };
        let Some(inode) = state.inodes.get_mut(&ino) else {
            return false;
        };
        let mut flipped = false;
        for contents in [&mut inode.visible, &mut inode.durable] {
            if let Some(byte) = contents.get_mut(offset as usize) {
                *byte ^= 1 << (bit % 8);
                flipped = true;
            }
        }
        flipped
    }

    /// Returns the visible contents of the file at `path`.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.shared.lock();
        let ino = state.lookup(path)?;
        state.inodes.get(&ino).map(|inode| inode.visible.clone())
    }

    /// Returns the paths of all visible files, sorted.
    pub fn list_files(&self) -> Vec<PathBuf> {
        let state = self.shared.lock();
        let mut paths = Vec::new();
        for (dir_path, dir) in &state.dirs {
            for name in dir.visible.keys() {
                paths.push(dir_path.join(name));
            }
        }
        paths.sort();
        paths
    }

    /// An independent copy of the whole simulated file system (contents,
    /// unsynced operations, faults), for running many experiments from one
    /// prepared state. Handles opened on `self` do not reach the copy.
    pub fn fork(&self) -> SimIo {
        SimIo {
            shared: Arc::new(Mutex::new(self.shared.lock().clone())),
        }
    }

    /// A random value from the simulator's seeded generator.
    pub fn random_u64(&self) -> u64 {
        self.shared.lock().rng.next_u64()
    }
}

impl Dir {
    fn crash(&mut self, mode: CrashMode, rng: &mut SplitMix64) {
        let keep = match mode {
            CrashMode::PowerLoss => 0,
            CrashMode::ProcessKill => self.unsynced.len(),
            CrashMode::TornWrite => rng.below(self.unsynced.len() as u64 + 1) as usize,
            CrashMode::TornLastWrite { .. } => self.unsynced.len(),
        };
        let mut entries = std::mem::take(&mut self.durable);
        for op in self.unsynced.drain(..).take(keep) {
            match op {
                DirOp::Link(name, ino) => {
                    entries.insert(name, ino);
                }
                DirOp::Unlink(name) => {
                    entries.remove(&name);
                }
                DirOp::Rename(from, to) => {
                    if let Some(ino) = entries.remove(&from) {
                        entries.insert(to, ino);
                    }
                }
            }
        }
        self.durable = entries.clone();
        self.visible = entries;
    }
}

impl Inode {
    fn crash(&mut self, mode: CrashMode, rng: &mut SplitMix64) {
        let ops = std::mem::take(&mut self.unsynced);
        let mut contents = std::mem::take(&mut self.durable);
        let (keep, tear_next) = match mode {
            CrashMode::PowerLoss => (0, false),
            CrashMode::ProcessKill => (ops.len(), false),
            CrashMode::TornWrite => (rng.below(ops.len() as u64 + 1) as usize, true),
            CrashMode::TornLastWrite { .. } => {
                let last_write = ops
                    .iter()
                    .rposition(|op| matches!(op, FileOp::Write { .. }));
                (last_write.unwrap_or(ops.len()), false)
            }
        };
        for op in &ops[..keep] {
            apply_op(&mut contents, op);
        }
        if let CrashMode::TornLastWrite { sectors_kept } = mode
            && let Some(FileOp::Write { offset, bytes }) = ops.get(keep)
        {
            // Sectors the write touches, counted from the one holding its
            // start: keep those before the chosen boundary.
            let boundary = (offset / SECTOR_SIZE_BYTES + sectors_kept) * SECTOR_SIZE_BYTES;
            let kept = boundary.saturating_sub(*offset).min(bytes.len() as u64);
            if sectors_kept > 0 {
                write_into(&mut contents, *offset, &bytes[..kept as usize]);
            }
            // Operations after the torn write (none, for a write that was
            // the last) are lost with it.
        }
        if tear_next && let Some(FileOp::Write { offset, bytes }) = ops.get(keep) {
            let kept = torn_prefix_len(*offset, bytes.len() as u64, rng);
            if kept > 0 {
                write_into(&mut contents, *offset, &bytes[..kept as usize]);
            }
        }
        self.visible = contents.clone();
        self.durable = contents;
        self.lock_holder = None;
    }
}

/// How much of a write of `len` bytes at `offset` survives a tear: a prefix
/// that ends on a sector boundary of the file (possibly empty).
fn torn_prefix_len(offset: u64, len: u64, rng: &mut SplitMix64) -> u64 {
    let end = offset + len;
    let first_boundary = (offset / SECTOR_SIZE_BYTES + 1) * SECTOR_SIZE_BYTES;
    if first_boundary >= end {
        return 0; // The write lies within one sector, which is atomic.
    }
    let boundaries = (end - first_boundary) / SECTOR_SIZE_BYTES; // boundaries < end
    let chosen = rng.below(boundaries + 2);
    if chosen == 0 {
        return 0;
    }
    (first_boundary + (chosen - 1) * SECTOR_SIZE_BYTES).min(end) - offset
}

fn apply_op(contents: &mut Vec<u8>, op: &FileOp) {
    match op {
        FileOp::Write { offset, bytes } => write_into(contents, *offset, bytes),
        FileOp::SetLen(len) => contents.resize(*len as usize, 0),
    }
}

fn write_into(contents: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let start = offset as usize;
    let end = start + bytes.len();
    if contents.len() < end {
        contents.resize(end, 0);
    }
    contents[start..end].copy_from_slice(bytes);
}

impl SimState {
    fn lookup(&self, path: &Path) -> Option<u64> {
        let (dir, name) = split_path(path).ok()?;
        self.dirs.get(&dir)?.visible.get(&name).copied()
    }

    fn space_used(&self) -> u64 {
        self.inodes
            .values()
            .filter(|i| i.links > 0 || i.handles_open > 0)
            .map(|i| i.visible.len() as u64)
            .sum()
    }

    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(dir).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no such directory: {}", dir.display()),
            )
        })
    }

    /// Counts one mutating operation against a scheduled power cut.
    fn check_power(&mut self) -> io::Result<()> {
        self.check_power_on(None)
    }

    /// Like `check_power`, for an operation on file `ino`.
    fn check_power_on(&mut self, ino: Option<u64>) -> io::Result<()> {
        if self.faults.power_cut {
            return Err(error_eio("power cut"));
        }
        let counted = match self.faults.power_cut_inode {
            Some(filter) => ino == Some(filter),
            None => true,
        };
        if let Some(countdown) = self.faults.power_cut_countdown.as_mut().filter(|_| counted) {
            if *countdown == 0 {
                self.faults.power_cut = true;
                self.faults.power_cut_countdown = None;
                return Err(error_eio("power cut"));
            }
            *countdown -= 1;
        }
        Ok(())
    }

    fn check_sync_fault(&mut self, what: &str) -> io::Result<()> {
        if let Some(countdown) = self.faults.sync_fail_countdown.as_mut() {
            if *countdown == 0 {
                self.faults.sync_fail_countdown = None;
                return Err(error_eio(what));
            }
            *countdown -= 1;
        }
        Ok(())
    }

    fn check_write_fault(&mut self, ino: u64, growth_bytes: u64) -> io::Result<()> {
        self.check_power_on(Some(ino))?;
        if let Some(countdown) = self.faults.write_fail_countdown.as_mut() {
            if *countdown == 0 {
                self.faults.write_fail_countdown = None;
                return Err(error_eio("write"));
            }
            *countdown -= 1;
        }
        if let Some(budget) = self.faults.space_budget_bytes
            && growth_bytes > 0
            && self.space_used() + growth_bytes > budget
        {
            return Err(error_enospc());
        }
        Ok(())
    }
}

impl Io for SimIo {
    fn new_id(&self) -> u64 {
        self.random_u64()
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn File>> {
        let mut state = self.shared.lock();
        let (dir_path, name) = split_path(path)?;
        let existing = state.dir_mut(&dir_path)?.visible.get(&name).copied();
        let ino = match (mode, existing) {
            (OpenMode::CreateNew, Some(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists", path.display()),
                ));
            }
            (OpenMode::CreateNew, None) => {
                state.check_power()?;
                let ino = state.inode_next;
                state.inode_next += 1;
                state.inodes.insert(
                    ino,
                    Inode {
                        links: 1,
                        ..Inode::default()
                    },
                );
                let dir = state.dir_mut(&dir_path)?;
                dir.visible.insert(name.clone(), ino);
                dir.unsynced.push(DirOp::Link(name, ino));
                ino
            }
            (_, Some(ino)) => ino,
            (_, None) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} not found", path.display()),
                ));
            }
        };
        let handle = state.handle_next;
        state.handle_next += 1;
        if let Some(inode) = state.inodes.get_mut(&ino) {
            inode.handles_open += 1;
        }
        Ok(Box::new(SimFile {
            shared: Arc::clone(&self.shared),
            inode: ino,
            handle,
            generation: state.generation,
            writable: mode != OpenMode::ReadOnly,
        }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        // Directories themselves are modelled as durable once created: the
        // data directory is made once, at set-up, and syncpay syncs its parent.
        let mut state = self.shared.lock();
        let mut current = PathBuf::new();
        for component in path.components() {
            current.push(component);
            state.dirs.entry(current.clone()).or_default();
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut state = self.shared.lock();
        Ok(state.dir_mut(path)?.visible.keys().cloned().collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.shared.lock();
        state.check_power()?;
        let (from_dir, from_name) = split_path(from)?;
        let (to_dir, to_name) = split_path(to)?;
        if from_dir != to_dir {
            // Across directories: an unlink in one and a link in the other,
            // each durable only once its own directory is synced (a crash
            // may keep either, both or neither, as a journal-less file
            // system could).
            state.dir_mut(&to_dir)?;
            let source = state.dir_mut(&from_dir)?;
            let ino = source.visible.remove(&from_name).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} not found", from.display()),
                )
            })?;
            source.unsynced.push(DirOp::Unlink(from_name));
            let target = state.dir_mut(&to_dir)?;
            let replaced = target.visible.insert(to_name.clone(), ino);
            target.unsynced.push(DirOp::Link(to_name, ino));
            if let Some(old) = replaced {
                state.unlink_inode(old);
            }
            return Ok(());
        }
        let dir = state.dir_mut(&from_dir)?;
        let ino = dir.visible.remove(&from_name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not found", from.display()),
            )
        })?;
        let replaced = dir.visible.insert(to_name.clone(), ino);
        dir.unsynced.push(DirOp::Rename(from_name, to_name));
        if let Some(old) = replaced {
            state.unlink_inode(old);
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.shared.lock();
        state.check_power()?;
        let (dir_path, name) = split_path(path)?;
        let dir = state.dir_mut(&dir_path)?;
        let ino = dir.visible.remove(&name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not found", path.display()),
            )
        })?;
        dir.unsynced.push(DirOp::Unlink(name));
        state.unlink_inode(ino);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.shared.lock();
        state.check_power()?;
        state.check_sync_fault("sync_dir")?;
        let dir = state.dir_mut(path)?;
        dir.durable = dir.visible.clone();
        dir.unsynced.clear();
        state.stats.dir_syncs += 1;
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let state = self.shared.lock();
        Ok(state.dirs.contains_key(path) || state.lookup(path).is_some())
    }
}

impl SimState {
    fn unlink_inode(&mut self, ino: u64) {
        // The inode itself stays until the next crash: an unsynced unlink
        // may be undone by a power loss, which brings the entry back.
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.links = inode.links.saturating_sub(1);
        }
    }
}

impl SimFile {
    /// Runs `f` on this file's inode if the handle is still current.
    fn with_inode<T>(&self, f: impl FnOnce(&mut SimState, u64) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.shared.lock();
        if state.generation != self.generation || !state.inodes.contains_key(&self.inode) {
            return Err(error_stale());
        }
        f(&mut state, self.inode)
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "file opened read-only",
            ))
        }
    }
}

fn inode(state: &mut SimState, ino: u64) -> &mut Inode {
    // with_inode checked that the inode exists.
    state
        .inodes
        .get_mut(&ino)
        .expect("inode checked by with_inode")
}

impl File for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.with_inode(|state, ino| {
            let contents = &inode(state, ino).visible;
            let start = offset as usize;
            let end = start
                .checked_add(buf.len())
                .filter(|&e| e <= contents.len());
            let Some(end) = end else {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "read past the end of the file",
                ));
            };
            buf.copy_from_slice(&contents[start..end]);
            Ok(())
        })
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check_writable()?;
        self.with_inode(|state, ino| {
            let len = inode(state, ino).visible.len() as u64;
            let growth = (offset + buf.len() as u64).saturating_sub(len);
            state.check_write_fault(ino, growth)?;
            state.stats.writes += 1;
            state.stats.bytes_written += buf.len() as u64;
            let inode = inode(state, ino);
            write_into(&mut inode.visible, offset, buf);
            inode.unsynced.push(FileOp::Write {
                offset,
                bytes: buf.to_vec(),
            });
            Ok(())
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.with_inode(|state, ino| Ok(inode(state, ino).visible.len() as u64))
    }

    fn set_len(&self, len_bytes: u64) -> io::Result<()> {
        self.check_writable()?;
        self.with_inode(|state, ino| {
            let len = inode(state, ino).visible.len() as u64;
            state.check_write_fault(ino, len_bytes.saturating_sub(len))?;
            let inode = inode(state, ino);
            inode.visible.resize(len_bytes as usize, 0);
            inode.unsynced.push(FileOp::SetLen(len_bytes));
            Ok(())
        })
    }

    fn preallocate(&self, len_bytes: u64) -> io::Result<()> {
        let len = self.len()?;
        if len_bytes > len {
            self.write_all_at(&vec![0u8; (len_bytes - len) as usize], len)?;
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.check_writable()?;
        self.with_inode(|state, ino| {
            // A power cut stops the machine: the unsynced writes stay in
            // flight, and the crash decides which of them reached the disk.
            state.check_power_on(Some(ino))?;
            if let Err(error) = state.check_sync_fault("sync_data") {
                // Like Linux after a writeback error: the dirty data is
                // forgotten (never persisted) but stays visible.
                inode(state, ino).unsynced.clear();
                return Err(error);
            }
            state.stats.syncs += 1;
            let inode = inode(state, ino);
            for op in std::mem::take(&mut inode.unsynced) {
                apply_op(&mut inode.durable, &op);
            }
            Ok(())
        })
    }

    fn map(&self) -> io::Result<Mapping> {
        self.with_inode(|state, ino| Ok(Mapping::owned(inode(state, ino).visible.clone())))
    }

    fn try_lock_exclusive(&self) -> io::Result<()> {
        let handle = self.handle;
        self.with_inode(|state, ino| {
            let inode = inode(state, ino);
            match inode.lock_holder {
                Some(holder) if holder != handle => Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "the file is locked by another holder",
                )),
                _ => {
                    inode.lock_holder = Some(handle);
                    Ok(())
                }
            }
        })
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if state.generation != self.generation {
            return;
        }
        let Some(inode) = state.inodes.get_mut(&self.inode) else {
            return;
        };
        inode.handles_open = inode.handles_open.saturating_sub(1);
        if inode.lock_holder == Some(self.handle) {
            inode.lock_holder = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> PathBuf {
        PathBuf::from("/d").join(name)
    }

    fn setup() -> SimIo {
        let io = SimIo::new(7);
        io.create_dir_all(Path::new("/d")).unwrap();
        io
    }

    // Goal: unsynced bytes and unsynced directory entries vanish at power loss.
    #[test]
    fn power_loss_drops_unsynced_data_and_entries() {
        let io = setup();
        let file = io.open(&path("a"), OpenMode::CreateNew).unwrap();
        file.write_all_at(b"hello", 0).unwrap();
        file.sync_data().unwrap();
        io.crash(CrashMode::PowerLoss);
        // The entry was never synced, so the file is gone.
        assert!(!io.exists(&path("a")).unwrap());

        let file = io.open(&path("b"), OpenMode::CreateNew).unwrap();
        io.sync_dir(Path::new("/d")).unwrap();
        file.write_all_at(b"durable", 0).unwrap();
        file.sync_data().unwrap();
        file.write_all_at(b"LOST", 7).unwrap();
        io.crash(CrashMode::PowerLoss);
        assert_eq!(io.read_file(&path("b")).unwrap(), b"durable");
        // The old handle is stale after the crash.
        assert!(file.len().is_err());
    }

    // Goal: a torn write keeps a sector-aligned prefix of the unsynced write.
    #[test]
    fn torn_write_keeps_sector_prefix() {
        for seed in 0..200 {
            let io = SimIo::new(seed);
            io.create_dir_all(Path::new("/d")).unwrap();
            let file = io.open(&path("a"), OpenMode::CreateNew).unwrap();
            io.sync_dir(Path::new("/d")).unwrap();
            file.preallocate(4096).unwrap();
            file.sync_data().unwrap();
            file.write_all_at(&[0xAB; 2000], 100).unwrap();
            io.crash(CrashMode::TornWrite);
            let contents = io.read_file(&path("a")).unwrap();
            assert_eq!(contents.len(), 4096, "seed {seed}");
            let kept = contents[100..2100]
                .iter()
                .take_while(|&&b| b == 0xAB)
                .count();
            assert!(
                contents[100 + kept..].iter().all(|&b| b == 0),
                "seed {seed}"
            );
            assert!(
                kept == 0 || kept == 2000 || (100 + kept) % 512 == 0,
                "seed {seed}: kept {kept}"
            );
        }
    }

    // Goal: after a failed sync, a retried sync succeeds without persisting
    // anything (the Linux behaviour that makes poisoning necessary).
    #[test]
    fn failed_sync_forgets_dirty_data() {
        let io = setup();
        let file = io.open(&path("a"), OpenMode::CreateNew).unwrap();
        io.sync_dir(Path::new("/d")).unwrap();
        file.write_all_at(b"data", 0).unwrap();
        io.fail_sync_after(0);
        assert!(file.sync_data().is_err());
        assert!(file.sync_data().is_ok());
        io.crash(CrashMode::PowerLoss);
        assert_eq!(io.read_file(&path("a")).unwrap(), b"");
    }

    // Goal: writes past the space budget fail with ENOSPC and change nothing.
    #[test]
    fn space_budget_gives_enospc() {
        let io = setup();
        let file = io.open(&path("a"), OpenMode::CreateNew).unwrap();
        io.set_space_budget(Some(10));
        file.write_all_at(b"0123456789", 0).unwrap();
        let error = file.write_all_at(b"x", 10).unwrap_err();
        assert!(crate::storage::io::is_no_space(&error));
        assert_eq!(file.len().unwrap(), 10);
        // Overwriting in place needs no space.
        file.write_all_at(b"x", 0).unwrap();
    }

    // Goal: exclusive locks exclude a second handle and die with the process.
    #[test]
    fn locks_are_exclusive_until_crash() {
        let io = setup();
        let a = io.open(&path("lock"), OpenMode::CreateNew).unwrap();
        let b = io.open(&path("lock"), OpenMode::ReadWrite).unwrap();
        a.try_lock_exclusive().unwrap();
        assert_eq!(
            b.try_lock_exclusive().unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        drop(a);
        b.try_lock_exclusive().unwrap();
    }
}
