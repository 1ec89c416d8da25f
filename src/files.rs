//! Files that stay ours: the checkpoint database, its lock and the reports hold identity
//! data, so none of them is opened through a symbolic link, a file another user owns or
//! can write is refused (saying how to fix it), and what we write is private (0600) and
//! atomic (a temporary file in the same directory, renamed over the destination).

use std::ffi::OsString;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `O_NOFOLLOW | O_CLOEXEC`: a symbolic link as the last component fails with ELOOP
/// instead of being followed (std already sets O_CLOEXEC; said again for clarity).
pub const NOFOLLOW: i32 = libc::O_NOFOLLOW | libc::O_CLOEXEC;

/// The effective uid of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Why a file is not safe to use, with what to do about it.
pub fn unsafe_reason(path: &Path, meta: &Metadata, euid: u32) -> Option<String> {
    let shown = path.display();
    if meta.file_type().is_symlink() {
        return Some(format!(
            "is a symbolic link; smile-recon does not follow links to its files: pass the \
             file itself, or remove the link (`rm {shown}`)"
        ));
    }
    if !meta.is_file() {
        return Some("is not a regular file".into());
    }
    if meta.uid() != euid {
        return Some(format!(
            "is owned by uid {}, not by this user (uid {euid}): another user could have read \
             or altered it; if it is yours, `chown {euid} {shown}`, otherwise use another path",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Some(format!(
            "is writable by {} (mode {mode:04o}): `chmod 600 {shown}`",
            match (mode & 0o020 != 0, mode & 0o002 != 0) {
                (true, true) => "group and others",
                (true, false) => "its group",
                _ => "others",
            }
        ));
    }
    None
}

/// A database must have one name: SQLite keeps its -wal and -shm beside the name it was
/// opened by, so a second hard link can pair the file with another journal.
pub fn one_name(path: &Path, meta: &Metadata) -> io::Result<()> {
    if meta.is_file() && meta.nlink() > 1 {
        return Err(refused(format!(
            "has {} names (hard links); SQLite keeps its -wal beside the name used, so a \
             second name can corrupt it: remove the other links, keeping {}",
            meta.nlink(),
            path.display()
        )));
    }
    Ok(())
}

/// An error for a path we refuse; `io::ErrorKind::PermissionDenied` with the reason.
pub fn refused(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, reason)
}

/// `path` with its directory resolved (`..`, links in the directories) and its last
/// component kept as given, so that a link there is seen and refused rather than
/// followed. The file itself need not exist yet.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "does not name a file (it ends in `..` or `/`)",
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Ok(std::fs::canonicalize(dir)?.join(name))
}

/// `lstat`, `None` if there is no such file.
pub fn lstat(path: &Path) -> io::Result<Option<Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Refuses `path` if it exists and is a link, not ours, or writable by others.
pub fn check_existing(path: &Path) -> io::Result<()> {
    match lstat(path)? {
        Some(meta) => match unsafe_reason(path, &meta, euid()) {
            Some(reason) => Err(refused(reason)),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

/// Opens (creating it 0600 if absent, never truncating) a file read-write without
/// following a link, and refuses it unless it is ours and not writable by others.
pub fn open_private_rw(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(NOFOLLOW)
        .open(path)
        .map_err(|e| link_error(path, e))?;
    let meta = file.metadata()?;
    if let Some(reason) = unsafe_reason(path, &meta, euid()) {
        return Err(refused(reason));
    }
    Ok(file)
}

/// ELOOP from O_NOFOLLOW, said plainly.
pub fn link_error(path: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return refused(
            unsafe_reason_for_link(path)
                .unwrap_or_else(|| "is a symbolic link; smile-recon does not follow it".into()),
        );
    }
    e
}

fn unsafe_reason_for_link(path: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    unsafe_reason(path, &meta, euid())
}

/// Sets an existing file of ours to 0600 if it is more open than that, without following
/// a link (fchmod on a handle opened O_NOFOLLOW).
pub fn make_private(path: &Path) -> io::Result<()> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(link_error(path, e)),
    };
    let meta = file.metadata()?;
    if let Some(reason) = unsafe_reason(path, &meta, euid()) {
        return Err(refused(reason));
    }
    if meta.mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Creates `dir` and its missing parents 0700 (a folder we make holds identity data);
/// folders that already exist are left as they are.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Proves `dir` writable by creating a fresh, empty 0600 file in it (O_CREAT|O_EXCL|
/// O_NOFOLLOW: a file or link planted under the probe's name is never opened, let alone
/// written through) and removing it again.
pub fn probe_writable(dir: &Path) -> io::Result<()> {
    let mut last = None;
    for _ in 0..16 {
        let probe = dir.join(format!(
            ".smile-recon-write-check-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(NOFOLLOW)
            .open(&probe)
        {
            Ok(file) => {
                drop(file);
                return std::fs::remove_file(&probe);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no probe name was free")))
}

/// A file written beside its destination and renamed over it once complete, so the
/// destination holds either its old content or all of the new, never half (a full disk,
/// a kill). Created 0600 with O_EXCL|O_NOFOLLOW; the rename replaces a directory entry
/// and never writes through a link. Dropped without [`AtomicFile::commit`], the
/// temporary file is removed.
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    temp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    /// Refuses a destination that is a link (or not a regular file), so a link planted
    /// where a report goes is reported, not silently replaced.
    pub fn create(dest: &Path) -> io::Result<Self> {
        if let Some(meta) = lstat(dest)? {
            if meta.file_type().is_symlink() {
                return Err(refused(format!(
                    "is a symbolic link; reports are never written through one: remove it \
                     (`rm {}`) or choose another --out directory",
                    dest.display()
                )));
            }
            if !meta.is_file() {
                return Err(refused("exists and is not a regular file".into()));
            }
        }
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = dest
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "does not name a file"))?;
        let mut last = None;
        for _ in 0..16 {
            let mut temp_name = OsString::from(".");
            temp_name.push(name);
            temp_name.push(format!(".{:016x}.tmp", rand::random::<u64>()));
            let temp = dir.join(temp_name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(NOFOLLOW)
                .open(&temp)
            {
                Ok(file) => {
                    return Ok(Self {
                        file: Some(file),
                        temp,
                        dest: dest.to_owned(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no temporary name was free")))
    }

    /// Flushes to disk and renames over the destination.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("already committed"))?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temp, &self.dest)?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_another_user_is_refused_with_chown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        // As if this process ran under another uid than the file's owner.
        let other = meta.uid().wrapping_add(1);
        let reason = unsafe_reason(&path, &meta, other).unwrap();
        assert!(reason.contains("owned by uid"), "{reason}");
        assert!(reason.contains(&format!("chown {other}")), "{reason}");
        assert_eq!(unsafe_reason(&path, &meta, meta.uid()), None);
    }

    #[test]
    fn a_file_others_can_write_is_refused_with_chmod() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        std::fs::write(&path, b"").unwrap();
        for (mode, who) in [
            (0o666, "group and others"),
            (0o620, "its group"),
            (0o602, "others"),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let reason = unsafe_reason(&path, &meta, meta.uid()).unwrap();
            assert!(reason.contains(who), "{reason}");
            assert!(reason.contains("chmod 600"), "{reason}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(unsafe_reason(&path, &meta, meta.uid()), None);
    }

    #[test]
    fn an_atomic_file_left_unfinished_leaves_the_old_content_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("results.csv");
        std::fs::write(&dest, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"half of the new").unwrap();
            // dropped: a write error, a kill
        }
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
