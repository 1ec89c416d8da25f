//! One process per database: an exclusive OS lock (flock) on the database file itself,
//! so every path to that file (a linked directory, `..`, a bind mount) meets the same
//! lock; a link as the file itself, or a second hard link, is refused outright. The holder's pid is kept in `<database>.lock` beside it, only to
//! name the holder when another process is refused.
//!
//! flock and SQLite's own fcntl locks do not interact on Linux. The handle stays open for
//! as long as the lock is held: closing any handle of a file drops the process's fcntl
//! locks on it, so a [`DbLock`] must outlive every connection of its process to that
//! database (in `runner::execute` it is the first value taken and the last dropped).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::StoreError;
use crate::files;

/// Held for the life of the process; the OS releases it if the process dies.
#[derive(Debug)]
pub struct DbLock {
    _db: File,
    _pid: File,
    path: PathBuf,
}

impl DbLock {
    /// Creates the database file (empty, 0600) if it does not exist yet, and locks it.
    /// Refused: a link as `db` or as its `.lock`, a file of another user or writable by
    /// group or others, and of course a database another process holds.
    pub fn acquire(db: &Path) -> Result<Self, StoreError> {
        let resolved = files::resolve(db).map_err(|e| StoreError::io(db, e))?;
        let file = files::open_private_rw(&resolved).map_err(|e| StoreError::io(db, e))?;
        file.metadata()
            .and_then(|meta| files::one_name(&resolved, &meta))
            .map_err(|e| StoreError::io(db, e))?;
        let path = lock_path(&resolved);
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    db: db.display().to_string(),
                    pid: holder(&path).unwrap_or_else(|| "unknown".into()),
                });
            }
            Err(TryLockError::Error(e)) => return Err(StoreError::io(db, e)),
        }
        // Ours now (the database's lock is held): emptied and given our pid. Opened without
        // following a link, so a planted link cannot make us truncate another file.
        let mut pid = files::open_private_rw(&path).map_err(|e| StoreError::io(&path, e))?;
        pid.set_len(0)
            .and_then(|_| pid.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(pid, "{}", std::process::id()))
            .map_err(|e| StoreError::io(&path, e))?;
        Ok(Self {
            _db: file,
            _pid: pid,
            path,
        })
    }

    /// The file naming the holder's pid.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The holder's pid, read without following a link.
fn holder(path: &Path) -> Option<String> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(files::NOFOLLOW)
        .open(path)
        .ok()?;
    let mut text = String::new();
    Read::by_ref(&mut file)
        .take(64)
        .read_to_string(&mut text)
        .ok()?;
    let pid = text.trim();
    (!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())).then(|| pid.to_owned())
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Whether a process holds a database's lock, as seen from outside (`runs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockProbe {
    /// No process holds it: no run of this database is being worked.
    Free,
    /// A process holds it; its pid when the `.lock` file names one.
    Held { pid: Option<u32> },
}

/// Asks whether a process holds `db`'s lock, without taking it for more than an instant
/// and without writing anything: a shared lock is tried on a read-only handle and
/// released at once. Call it before opening a connection to the database: closing this
/// handle drops the process's fcntl locks on the file (see the module's note).
pub fn probe(db: &Path) -> Result<LockProbe, StoreError> {
    let resolved = files::resolve(db).map_err(|e| StoreError::io(db, e))?;
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(files::NOFOLLOW)
        .open(&resolved)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockProbe::Free),
        Err(e) => return Err(StoreError::io(db, e)),
    };
    match file.try_lock_shared() {
        Ok(()) => {
            file.unlock().map_err(|e| StoreError::io(db, e))?;
            Ok(LockProbe::Free)
        }
        Err(TryLockError::WouldBlock) => Ok(LockProbe::Held {
            pid: holder(&lock_path(&resolved)).and_then(|p| p.parse().ok()),
        }),
        Err(TryLockError::Error(e)) => Err(StoreError::io(db, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_sees_the_holder_and_leaves_the_lock_free() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        assert_eq!(probe(&db).unwrap(), LockProbe::Free, "no file yet");
        let held = DbLock::acquire(&db).unwrap();
        // flock locks belong to the open file description: a second handle of this same
        // process is refused like another process would be.
        assert_eq!(
            probe(&db).unwrap(),
            LockProbe::Held {
                pid: Some(std::process::id())
            }
        );
        drop(held);
        assert_eq!(probe(&db).unwrap(), LockProbe::Free);
        // the probe took nothing with it: the lock can be taken again
        let _again = DbLock::acquire(&db).unwrap();
    }
}
