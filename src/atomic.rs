//! atomic: derived files written whole or not at all.
//!
//! Every derived file (pyramids, cached tiles, sidecars) is written under a temporary name
//! beside its destination, `.{name}.tmp-{pid}-{n}`, then renamed into place, so no reader ever
//! sees half a file. Uploads being received are named the same way (in `uploads/.incoming/`).
//! A crash or a kill leaves the temporary behind; [`remove_stale_temps`] recognises the names
//! of processes no longer running and removes them, so nothing is ever left to clean by hand.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// A fresh temporary name beside `path`, unique within this process.
pub fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.tmp-{}-{counter}", std::process::id()))
}

/// The process id in a temporary file's name, if it is one.
pub fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, owner) = rest.rsplit_once(".tmp-")?;
    let (pid, counter) = owner.split_once('-')?;
    counter.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Removes the temporary files that processes no longer running left in `dir`. Files of
/// running processes, and everything else, are left alone. Returns how many it removed.
pub fn remove_stale_temps(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_owner) else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether a write must survive a power cut once it returns (fsync of the file and its
/// folder), or only be whole to readers (enough for data that is checked when read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Synced,
    Whole,
}

/// Writes `parts` one after another as the whole of `path` (creating its folder), atomically;
/// returns the bytes written. A failed write removes its temporary.
pub fn write(path: &Path, parts: &[&[u8]], durability: Durability) -> io::Result<u64> {
    write_inner(path, parts, durability, None)
}

/// As [`write()`], with the file's modification time set before it appears (derived files that
/// carry their source's mtime).
pub fn write_dated(
    path: &Path,
    parts: &[&[u8]],
    durability: Durability,
    modified: SystemTime,
) -> io::Result<u64> {
    write_inner(path, parts, durability, Some(modified))
}

fn write_inner(
    path: &Path,
    parts: &[&[u8]],
    durability: Durability,
    modified: Option<SystemTime>,
) -> io::Result<u64> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)?;
    }
    let (temp, mut file) = TempFile::create(path)?;
    let mut written = 0u64;
    for part in parts {
        file.write_all(part)?;
        written += part.len() as u64;
    }
    if let Some(time) = modified {
        file.set_modified(time)?;
    }
    temp.persist(file, path, durability)?;
    Ok(written)
}

/// A file being written under a temporary name beside its destination, removed on drop
/// unless persisted.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    persisted: bool,
}

impl TempFile {
    /// Creates the temporary file for `out`.
    pub fn create(out: &Path) -> io::Result<(TempFile, File)> {
        if out.file_name().is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path names no file",
            ));
        }
        let path = temp_path(out);
        let file = File::options().write(true).create_new(true).open(&path)?;
        Ok((
            TempFile {
                path,
                persisted: false,
            },
            file,
        ))
    }

    /// Renames the file to `out`, first syncing it (and then its folder) when asked.
    pub fn persist(mut self, mut file: File, out: &Path, durability: Durability) -> io::Result<()> {
        file.flush()?;
        if durability == Durability::Synced {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&self.path, out)?;
        self.persisted = true;
        if durability == Durability::Synced {
            sync_folder_of(out)?;
        }
        Ok(())
    }
}

/// Syncs the folder holding `path`, so that a rename into it survives a power cut.
pub fn sync_folder_of(path: &Path) -> io::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(folder)?.sync_all()
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_their_owner() {
        let temp = temp_path(Path::new("/x/abc.tif"));
        let name = temp.file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_owner(name), Some(std::process::id()));
        assert_eq!(temp_owner(".abc.tif.tmp-1234-7"), Some(1234));
        assert_eq!(temp_owner("abc.tif.tmp-1234-7"), None);
        assert_eq!(temp_owner(".abc.tif"), None);
        assert_eq!(temp_owner(".abc.tif.tmp-x-7"), None);
    }

    #[test]
    fn stale_temps_of_dead_processes_are_removed() {
        let dir = std::env::temp_dir().join(format!("gigatile-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dead = dir.join(".a.tif.tmp-4000000000-0");
        let alive = dir.join(format!(".b.tif.tmp-{}-0", std::process::id()));
        let other = dir.join("c.tif");
        for f in [&dead, &alive, &other] {
            std::fs::write(f, b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(&dir).unwrap(), 1);
        assert!(!dead.exists() && alive.exists() && other.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_are_whole_and_leave_no_temporary() {
        let dir = std::env::temp_dir().join(format!("gigatile-atomic-{}", std::process::id()));
        let path = dir.join("sub/out.bin");
        assert_eq!(
            write(&path, &[b"ab", b"cd"], Durability::Synced).unwrap(),
            4
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"abcd");
        assert_eq!(write(&path, &[b"x"], Durability::Whole).unwrap(), 1);
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
        let then = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        write_dated(&path, &[b"y"], Durability::Synced, then).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), then);
        let entries: Vec<_> = std::fs::read_dir(dir.join("sub")).unwrap().collect();
        assert_eq!(entries.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
