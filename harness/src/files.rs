//! Files that several processes may touch at once (two `grid run`s into one `--out`, the
//! tasks of a Slurm array):
//!
//! - [`write_atomically`]: a temporary file created with `O_EXCL` under an unpredictable
//!   name beside the target, then renamed over it. A reader sees the old file or the new
//!   one, never half of one, and a symlink planted at a temporary name redirects nothing.
//! - [`DirLock`]: `OUT/.lock`, held while a command writes a grid's tables and figures or
//!   the manifest, so that overlapping runs neither interleave tables nor lose manifest
//!   entries.
//! - [`Claim`]: `cells/.<shard>.claim`, held while a process computes a cell, so that
//!   another process does not start it again. The lock is the kernel's (`flock`): it goes
//!   with the process, so a claim left by a killed run is stale, and taken over.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Write `path` through `write` on a fresh temporary file beside it, then rename.
pub fn write_atomically(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    write(tmp.as_file_mut())?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// [`write_atomically`] with the whole text at once.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomically(path, |file| {
        file.write_all(text.as_bytes())
            .map_err(|e| Error::io(path, e))
    })
}

/// Open (creating) a lock or claim file without following a symlink, and without
/// truncating what its holder wrote.
fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// Who holds a lock, as its holder wrote it: `pid N on HOST since T`.
fn holder_of(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut text));
    let text = text.trim();
    if text.is_empty() {
        "another process".to_string()
    } else {
        crate::error::abbreviate(text)
    }
}

/// Write this process's identity into a lock file it holds.
fn sign(file: &mut File) {
    let me = format!(
        "pid {} on {} since {}\n",
        std::process::id(),
        crate::host::hostname(),
        crate::host::now()
    );
    let _ = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| file.write_all(me.as_bytes()));
}

/// `OUT/.lock`, held exclusively while tables, figures or the manifest of `OUT` are
/// written. Released when dropped.
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Take the lock, waiting (and saying so on stderr) while another run holds it: the
    /// writes it guards take seconds.
    pub fn acquire(out: &Path) -> Result<DirLock> {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let path = out.join(".lock");
        let mut file = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                eprintln!(
                    "another run holds {} ({}): waiting for it to finish writing",
                    path.display(),
                    holder_of(&mut file)
                );
                file.lock().map_err(|e| Error::io(&path, e))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        sign(&mut file);
        Ok(DirLock { _file: file })
    }
}

/// A process's claim on one cell: while it lives, no other process starts the cell.
/// Dropping it removes the claim file.
#[derive(Debug)]
pub struct Claim {
    file: File,
    path: PathBuf,
}

impl Claim {
    /// Claim the cell whose shard is `shard_path`: `Ok(Err(holder))` when another process
    /// holds it now. A claim file nobody holds (its process died) is taken over.
    pub fn take(shard_path: &Path) -> Result<std::result::Result<Claim, String>> {
        let path = claim_path(shard_path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        loop {
            let mut file = open_lock_file(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Ok(Err(holder_of(&mut file))),
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            // The holder before us may have removed the file between our open and our
            // lock: then we hold a lock on a file no one else will open. Try again.
            let same = match (file.metadata(), std::fs::symlink_metadata(&path)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            };
            if same {
                sign(&mut file);
                return Ok(Ok(Claim { file, path }));
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Remove first, unlock second (when the file closes): a process that opened the
        // file meanwhile sees, once it has the lock, that the path is no longer its file.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// `cells/.<shard file name>.claim`.
pub fn claim_path(shard_path: &Path) -> PathBuf {
    let name = shard_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    shard_path.with_file_name(format!(".{name}.claim"))
}

/// Who holds the claim on the cell of `shard_path`, if a live process does, as a
/// message can say it. Read from the claim file without touching its lock, so that
/// asking never makes a runner skip a cell.
pub fn claim_holder(shard_path: &Path) -> Option<String> {
    let path = claim_path(shard_path);
    let text = std::fs::read_to_string(&path).ok()?;
    let text = text.trim();
    let mut words = text.split_whitespace();
    let pid: i32 = match (words.next(), words.next()) {
        (Some("pid"), Some(pid)) => pid.parse().ok()?,
        _ => return None,
    };
    let host = match (words.next(), words.next()) {
        (Some("on"), Some(host)) => host,
        _ => return None,
    };
    // On this machine a dead pid means a stale claim; on another, trust the file.
    if host == crate::host::hostname() && !process_alive(pid) {
        return None;
    }
    Some(crate::error::abbreviate(text))
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_at_the_old_temporary_name_redirects_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "keep me").unwrap();
        let target = dir.path().join("cell.json");
        // The name the writers used before: `.<name>.<pid>.tmp`.
        let planted = dir
            .path()
            .join(format!(".cell.json.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        write_text(&target, "{}").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "{}");
    }

    #[test]
    fn a_symlink_at_the_lock_file_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "keep me").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(".lock")).unwrap();
        assert!(DirLock::acquire(dir.path()).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    }

    #[test]
    fn a_held_claim_is_refused_and_a_released_one_taken() {
        let dir = tempfile::tempdir().unwrap();
        let shard = dir.path().join("cells").join("e-0123.json");
        let first = Claim::take(&shard).unwrap().expect("free");
        assert!(claim_path(&shard).exists());
        let holder = Claim::take(&shard).unwrap().expect_err("held");
        assert!(
            holder.contains(&format!("pid {}", std::process::id())),
            "{holder}"
        );
        assert!(claim_holder(&shard).is_some());
        drop(first);
        assert!(!claim_path(&shard).exists());
        assert!(claim_holder(&shard).is_none());
        // A claim file left by a dead process (nobody holds its lock) is taken over.
        std::fs::write(claim_path(&shard), "pid 999999999 on elsewhere since 0\n").unwrap();
        let again = Claim::take(&shard)
            .unwrap()
            .expect("stale claims are taken over");
        drop(again);
    }
}
