//! Replacing a file atomically, so that a reader, or the next start after a
//! crash, finds the old content or the new one, never a mix or an empty file.
//!
//! The new content goes to a uniquely named temporary file in the target's
//! own directory (rename(2) is atomic only within one filesystem, and unique
//! names keep concurrent writers from clobbering each other's half-written
//! file). It is created with exactly the mode asked for, whatever the umask:
//! a secret is never readable by others, not even before a chmod, and a
//! file meant to be shared does not depend on the caller's umask. It is
//! written, fsynced (so the rename never exposes data still in the page
//! cache, which a power cut turns into an empty file on ext4/xfs), renamed
//! over the target, and the directory is fsynced so the rename itself is
//! durable when the call returns.
//!
//! On failure the temporary file is removed and the target is untouched. A
//! process killed between creating the temporary file and renaming it leaves
//! it behind as `.<name>.<pid>.<n>.tmp`: hidden, and with an extension no
//! reader of keel's directories picks up. [`remove_temps`] clears them for a
//! caller that knows no other writer of that file is running.

use std::{
    ffi::{OsStr, OsString},
    fs::{self, File, OpenOptions, Permissions},
    io::{self, BufWriter, Write},
    os::unix::{
        ffi::OsStrExt,
        fs::{OpenOptionsExt, PermissionsExt},
    },
    path::{Path, PathBuf},
    process,
    sync::atomic::{AtomicU64, Ordering},
};

/// The buffer of [`write_atomic_with`]: large enough that serialising a big
/// object costs a few hundred writes per megabyte, not one per field.
const STREAM_BUFFER: usize = 256 * 1024;

/// Which step of an atomic replacement failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Step {
    #[error("creating the temporary file")]
    Create,
    #[error("writing")]
    Write,
    #[error("fsync")]
    Sync,
    #[error("renaming the temporary file into place")]
    Rename,
    #[error("fsync of the directory (the new content is in place)")]
    SyncDir,
}

/// An atomic replacement of `path` failed at `step`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {step}: {source}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub step: Step,
    #[source]
    pub source: io::Error,
}

/// Replaces `path` with `bytes`, created with permission bits `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    replace(path, mode, |mut f| {
        f.write_all(bytes)?;
        Ok(f)
    })
}

/// Replaces `path` with what `write` writes, created with permission bits
/// `mode`: for content too large to build in memory first. An error from
/// `write` (serde_json's converts with `?`) abandons the new content.
pub fn write_atomic_with<F>(path: &Path, mode: u32, write: F) -> Result<(), WriteError>
where
    F: FnOnce(&mut BufWriter<File>) -> io::Result<()>,
{
    replace(path, mode, |f| {
        let mut w = BufWriter::with_capacity(STREAM_BUFFER, f);
        write(&mut w)?;
        w.into_inner().map_err(io::IntoInnerError::into_error)
    })
}

/// Moves a finished file `tmp`, written by someone else (a download, a
/// copy), over `path` with the same guarantees: `tmp` is fsynced before the
/// rename and the directory after it. `tmp` must be on `path`'s filesystem;
/// it is left where it is if this fails.
pub fn persist(tmp: &Path, path: &Path) -> Result<(), WriteError> {
    let err = |step| {
        move |source| WriteError {
            path: path.to_path_buf(),
            step,
            source,
        }
    };
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(err(Step::Sync))?;
    fs::rename(tmp, path).map_err(err(Step::Rename))?;
    sync_dir(path).map_err(err(Step::SyncDir))
}

/// Removes the temporary files that killed writers of `path` left behind,
/// returning how many. Only for a caller that knows no other writer of
/// `path` is running (one holding the file's lock, say): a live writer's
/// temporary file would go too, and its rename fail.
pub fn remove_temps(path: &Path) -> io::Result<usize> {
    let Some(name) = path.file_name() else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in fs::read_dir(dir_of(path))? {
        let entry = entry?;
        if is_temp_of(entry.file_name().as_bytes(), name.as_bytes()) {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                // Gone meanwhile: the goal is reached all the same.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// Whether `candidate` is a temporary file of [`temp_name`] for `name`:
/// exactly `.<name>.<digits>.<digits>.tmp`, so that the temporary files of
/// `a.b` are never taken for those of `a`.
fn is_temp_of(candidate: &[u8], name: &[u8]) -> bool {
    let Some(ids) = candidate
        .strip_prefix(b".")
        .and_then(|c| c.strip_prefix(name))
        .and_then(|c| c.strip_prefix(b"."))
        .and_then(|c| c.strip_suffix(b".tmp"))
    else {
        return false;
    };
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let mut parts = ids.splitn(2, |&b| b == b'.');
    let (pid, n) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    digits(pid) && digits(n)
}

fn temp_name(name: &OsStr, n: u64) -> OsString {
    let mut t = OsString::from(".");
    t.push(name);
    t.push(format!(".{}.{n}.tmp", process::id()));
    t
}

/// The directory a rename of `path` changes (`.` for a bare file name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(dir_of(path))?.sync_all()
}

/// Removes the temporary file unless disarmed, so that an error or a panic
/// in the middle of a replacement leaves nothing behind.
struct TempGuard<'a> {
    path: Option<&'a Path>,
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.path {
            let _ = fs::remove_file(p);
        }
    }
}

fn replace(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(File) -> io::Result<File>,
) -> Result<(), WriteError> {
    let err = |step| {
        move |source| WriteError {
            path: path.to_path_buf(),
            step,
            source,
        }
    };
    let (tmp, file) = create_temp(path, mode).map_err(err(Step::Create))?;
    let mut guard = TempGuard { path: Some(&tmp) };
    let file = fill(file).map_err(err(Step::Write))?;
    file.sync_all().map_err(err(Step::Sync))?;
    drop(file);
    fs::rename(&tmp, path).map_err(err(Step::Rename))?;
    guard.path = None;
    sync_dir(path).map_err(err(Step::SyncDir))
}

/// Creates a new temporary file beside `path` with exactly `mode`.
fn create_temp(path: &Path, mode: u32) -> io::Result<(PathBuf, File)> {
    // Unique within the process by the counter and across processes by the
    // pid; O_EXCL settles what is left (a writer with the same pid in
    // another pid namespace, or a leftover of a killed process whose pid
    // came back) and never follows a planted symlink.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let dir = dir_of(path);
    let mut tries = 0;
    loop {
        let tmp = dir.join(temp_name(name, NEXT.fetch_add(1, Ordering::Relaxed)));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(file) => {
                // open(2) applied the umask; set exactly what was asked.
                if let Err(e) = file.set_permissions(Permissions::from_mode(mode)) {
                    let _ = fs::remove_file(&tmp);
                    return Err(e);
                }
                return Ok((tmp, file));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 100 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
