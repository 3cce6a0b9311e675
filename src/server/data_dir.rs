//! A node's data directory: one process at a time (an exclusive lock held for the life of
//! the process, released by the OS even on SIGKILL), the storage engine in `db/`.
//!
//! ```text
//!   DIR/phantomdb.lock   locked while a node runs; holds its pid, for the error message
//!   DIR/db/              the fjall database
//! ```

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Held while the node runs; dropping it releases the lock.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates `path` if needed and locks it. Refuses a directory another process holds.
    pub fn lock(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        std::fs::create_dir_all(path).map_err(|e| format!("--data-dir {shown}: {e}"))?;
        let lock_path = path.join("phantomdb.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| format!("--data-dir {shown}: cannot open {}: {e}", lock_path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let by = if holder.is_empty() { String::new() } else { format!(" (by pid {holder})") };
                return Err(format!("--data-dir {shown} is in use by another phantomdb process{by}"));
            }
            Err(TryLockError::Error(e)) => return Err(format!("--data-dir {shown}: cannot lock: {e}")),
        }
        // Best effort: the pid only decorates the message a second process prints.
        let _ = file.set_len(0).and_then(|_| file.seek(SeekFrom::Start(0))).and_then(|_| {
            write!(file, "{}", std::process::id())?;
            file.sync_all()
        });
        Ok(DataDir { path: path.to_path_buf(), _lock: file })
    }

    /// Where the storage engine keeps its files.
    pub fn db_path(&self) -> PathBuf {
        self.path.join("db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_directory_is_refused_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataDir::lock(dir.path()).unwrap();
        let e = DataDir::lock(dir.path()).unwrap_err();
        assert!(e.contains("in use by another phantomdb process"), "{e}");
        assert!(e.contains(&std::process::id().to_string()), "{e}");
        drop(held);
        DataDir::lock(dir.path()).unwrap();
    }
}
