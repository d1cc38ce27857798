//! The real file system: `std::fs` plus `memmap2` for read-only maps.
//!
//! `sync_data` is `fdatasync(2)`; `sync_dir` opens the directory and calls
//! `fsync(2)` on it, which is how Linux makes directory entries durable.

use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{File, Io, Mapping, MappingInner, OpenMode};

/// Zero-fill writes are issued in chunks of this size.
const ZERO_CHUNK_BYTES: usize = 1 << 20;

/// [`Io`] on the real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealIo;

#[derive(Debug)]
struct RealFile {
    file: fs::File,
}

impl Io for RealIo {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn File>> {
        let mut options = fs::OpenOptions::new();
        match mode {
            OpenMode::CreateNew => options.read(true).write(true).create_new(true),
            OpenMode::ReadWrite => options.read(true).write(true),
            OpenMode::ReadOnly => options.read(true),
        };
        Ok(Box::new(RealFile {
            file: options.open(path)?,
        }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            // Names that are not UTF-8 were not written by syncpay; skip them.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        fs::File::open(path)?.sync_all()
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }
}

impl File for RealFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len_bytes: u64) -> io::Result<()> {
        self.file.set_len(len_bytes)
    }

    fn preallocate(&self, len_bytes: u64) -> io::Result<()> {
        let zeros = vec![0u8; ZERO_CHUNK_BYTES];
        let mut offset = self.len()?;
        while offset < len_bytes {
            let chunk = (len_bytes - offset).min(ZERO_CHUNK_BYTES as u64) as usize;
            self.file.write_all_at(&zeros[..chunk], offset)?;
            offset += chunk as u64;
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn map(&self) -> io::Result<Mapping> {
        if self.len()? == 0 {
            return Ok(Mapping::owned(Vec::new()));
        }
        // SAFETY: syncpay maps only files it owns under a data directory held
        // with an exclusive lock (so no other syncpay process writes them),
        // and only files that no thread of this process modifies while the
        // map is alive: snapshot files after their rename, and log segments
        // during recovery, before the log writer starts. Another program
        // truncating the file would be outside the supported fault model.
        let map = unsafe { memmap2::Mmap::map(&self.file)? };
        Ok(Mapping(MappingInner::Mmap(map)))
    }

    fn try_lock_exclusive(&self) -> io::Result<()> {
        match self.file.try_lock() {
            Ok(()) => Ok(()),
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the file is locked by another holder",
            )),
            Err(fs::TryLockError::Error(error)) => Err(error),
        }
    }
}
