//! Writing a sort's patches: in place, or as a new file renamed into place.
//!
//! **In place** ([`patch_in_place`]) writes only the patched bytes through the already open
//! file: first the table and the relocations, then the marker word (a table marked sorted
//! that is not has its marker set to "sort needed" before anything else). The inode, its hard
//! links and every other byte stay. A process killed before the marker write leaves the
//! marker saying "sort needed", which the runtime (and Linux) honour by sorting at boot and
//! which the next `sort` repairs. The page cache keeps the writes in that order for every
//! reader, but not on the disk: [`Durability::Sync`] adds an `fdatasync` between the table
//! and the marker (and one after), for a power loss; see the README for the whole model.
//!
//! **As a new file** ([`write_patched`], for `-o` and `--atomic`) a temporary file gets the
//! source's bytes (a reflink where the file system has them, else copied in the kernel), the
//! patches, the source's permissions and an `fsync`; then it is renamed over the destination
//! and the directory is synced. A crash leaves the old file or the new one, never a mix. The
//! temporary is an unnamed `O_TMPFILE` where the file system has them, given a name only for
//! the rename; that name, and the name used where there is no `O_TMPFILE`, is derived from
//! the destination's ([`temporary_name`]), so a run that finds one left by a killed run
//! removes it, and it stays short for destination names of any length.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::Problem;
use crate::sort::{self, Patch, Plan};

/// Refuse to write over `path` when it is read-only: no write permission bit is set, or
/// (for a non-root user) the process may not write it.
pub fn ensure_writable(path: &Path) -> Result<(), Problem> {
    let meta = fs::metadata(path).map_err(|e| Problem::io_error("cannot stat", e))?;
    if meta.permissions().mode() & 0o222 == 0 {
        return Err(Problem::io("file is read-only"));
    }
    let c = c_path(path)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        return Err(Problem::io(format!(
            "file is not writable: {}",
            io::Error::last_os_error()
        )));
    }
    Ok(())
}

fn c_path(path: &Path) -> Result<CString, Problem> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Problem::io("file name contains a NUL byte"))
}

/// The regular file a write to `path` replaces: `path` itself, or the file a symbolic link
/// at `path` points to (the link stays). A `path` that does not exist yet is returned as
/// is. Anything but a regular file (a device, a FIFO, a socket, a directory, a dangling
/// link) is refused, before anything is written.
pub fn destination(path: &Path) -> Result<PathBuf, Problem> {
    let link = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path.to_path_buf()),
        Err(e) => return Err(Problem::io_error("cannot stat", e)),
    };
    let target = if link.file_type().is_symlink() {
        fs::metadata(path).map_err(|e| {
            Problem::io(format!(
                "is a symbolic link to a file that cannot be written ({e})"
            ))
        })?
    } else {
        link
    };
    if !target.is_file() {
        return Err(Problem::io("not a regular file: refusing to write over it"));
    }
    ensure_writable(path)?;
    fs::canonicalize(path).map_err(|e| Problem::io_error("cannot resolve", e))
}

/// What an in-place write waits for before it returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// The writes are in the page cache, in order: every reader, and the file after the
    /// process is killed at any point, sees the table before the marker. A power loss can
    /// still lose them, or write the marker's page before the table's.
    #[default]
    PageCache,
    /// `fdatasync` between the table and the marker, and after the marker: the marker can
    /// only reach the disk after the table, and the sort is on the disk when it returns.
    Sync,
}

/// Write `plan` into the open `file` in place, in stages: the reopened marker if the plan
/// has one, every patch but the marker, then the marker; with [`Durability::Sync`] each
/// stage is on the disk before the next is written, and the last before this returns.
pub fn patch_in_place(file: &File, plan: &Plan, durability: Durability) -> Result<(), Problem> {
    let (marker, body): (Vec<&Patch>, Vec<&Patch>) =
        plan.patches.iter().partition(|p| p.what == sort::MARKER);
    let reopen: Vec<&Patch> = plan.reopen.iter().collect();
    let write = |p: &Patch| {
        file.write_all_at(&p.bytes, p.offset)
            .map_err(|e| Problem::io(format!("cannot write the {}: {e}", p.what)))
    };
    let sync = || {
        file.sync_data()
            .map_err(|e| Problem::io_error("cannot sync", e))
    };
    let syncing = durability == Durability::Sync;
    let stages = [reopen, body, marker];
    for (k, stage) in stages.iter().filter(|s| !s.is_empty()).enumerate() {
        if syncing && k > 0 {
            sync()?;
        }
        stage.iter().try_for_each(|p| write(p))?;
    }
    if syncing {
        sync()?;
    }
    Ok(())
}

/// Apply `patches` to `bytes` in memory.
pub fn apply_patches(bytes: &mut [u8], patches: &[Patch]) -> Result<(), Problem> {
    for p in patches {
        let range = usize::try_from(p.offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(p.bytes.len())?))
            .and_then(|r| bytes.get_mut(r))
            .ok_or_else(|| Problem::malformed(format!("the {} lies outside the file", p.what)))?;
        range.copy_from_slice(&p.bytes);
    }
    Ok(())
}

/// The name of the temporary file used to replace `dest`: hidden, in the same directory,
/// fixed-length, and the same in every run, so that a run removes what a killed one left.
pub fn temporary_name(dest: &Path) -> PathBuf {
    // FNV-1a: stable across builds and Rust versions, unlike the standard library's hasher.
    let hash = dest
        .file_name()
        .unwrap_or_default()
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    directory_of(dest).join(format!(".extable-tmp-{hash:016x}"))
}

fn directory_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Remove a temporary left at `tmp` by a killed run.
fn remove_stale(tmp: &Path) -> Result<(), Problem> {
    match fs::remove_file(tmp) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Problem::io(format!(
            "cannot remove the stale temporary {}: {e}",
            tmp.display()
        ))),
    }
}

/// A temporary file that becomes `dest` on [`Temporary::persist`].
struct Temporary {
    file: File,
    /// The name it has, or is given before the rename.
    name: PathBuf,
    /// Whether `name` exists and is this file (removed again if the write fails).
    named: bool,
}

impl Temporary {
    fn create(dest: &Path) -> Result<Self, Problem> {
        let name = temporary_name(dest);
        remove_stale(&name)?;
        // An unnamed file is named through /proc/self/fd (see `link`): without /proc, use a
        // named one from the start.
        let unnamed = Path::new("/proc/self/fd").is_dir().then(|| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_TMPFILE)
                .open(directory_of(dest))
        });
        if let Some(Ok(file)) = unnamed {
            return Ok(Temporary {
                file,
                name,
                named: false,
            });
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&name)
            .map_err(|e| Problem::io_error("cannot create a temporary file next to it", e))?;
        Ok(Temporary {
            file,
            name,
            named: true,
        })
    }

    /// Give an unnamed temporary its name: `linkat` with `AT_EMPTY_PATH` (needs a
    /// capability), else through `/proc/self/fd`.
    fn link(&mut self) -> io::Result<()> {
        let target = CString::new(self.name.as_os_str().as_bytes())?;
        let fd = self.file.as_raw_fd();
        // SAFETY: the strings are NUL-terminated and outlive the calls; `fd` is open.
        let by_fd = unsafe {
            libc::linkat(
                fd,
                c"".as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        if by_fd == 0 {
            return Ok(());
        }
        let proc = CString::new(format!("/proc/self/fd/{fd}"))?;
        // SAFETY: as above.
        let by_proc = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                proc.as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if by_proc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn persist(mut self, dest: &Path) -> Result<(), Problem> {
        if !self.named {
            self.link()
                .map_err(|e| Problem::io_error("cannot name the temporary file", e))?;
            self.named = true;
        }
        fs::rename(&self.name, dest)
            .map_err(|e| Problem::io_error("cannot rename into place", e))?;
        self.named = false;
        if let Ok(d) = File::open(directory_of(dest)) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if self.named {
            let _ = fs::remove_file(&self.name);
        }
    }
}

/// Give the empty file `dst` the bytes of `src` (`len` bytes) that `patches` will not
/// overwrite: a reflink of the whole file (`FICLONE`: the two files share their blocks,
/// nothing is copied) where the file system can, else copies inside the kernel of the ranges
/// between the patches (`io::copy` between files is `copy_file_range`, falling back to
/// reading and writing).
fn copy_contents(src: &File, dst: &mut File, len: u64, patches: &[Patch]) -> io::Result<()> {
    // SAFETY: FICLONE takes the source descriptor as its argument; both descriptors are
    // open for the whole call (borrowed). On failure the destination is left unchanged.
    if unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) } == 0 {
        return Ok(());
    }
    let mut patched: Vec<(u64, u64)> = patches
        .iter()
        .map(|p| (p.offset, p.offset.saturating_add(p.bytes.len() as u64)))
        .collect();
    patched.sort_unstable();
    let mut at = 0;
    for (start, end) in patched.into_iter().chain([(len, len)]) {
        let start = start.min(len);
        if start > at {
            copy_range(src, dst, at, start - at)?;
        }
        at = at.max(end);
    }
    dst.set_len(len)
}

/// Copy `len` bytes at `offset` of `src` to the same offset of `dst`.
fn copy_range(src: &File, dst: &mut File, offset: u64, len: u64) -> io::Result<()> {
    let mut src = src;
    src.seek(io::SeekFrom::Start(offset))?;
    dst.seek(io::SeekFrom::Start(offset))?;
    let copied = io::copy(&mut src.take(len), dst)?;
    if copied != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file ended early",
        ));
    }
    Ok(())
}

/// Write `source`'s bytes (`len` of them, as planned) with `patches` applied to `dest` (a
/// path [`destination`] accepted), atomically. A source whose size is no longer `len`
/// changed since it was read: refused, nothing replaced.
pub fn write_patched(
    source: &File,
    len: u64,
    dest: &Path,
    patches: &[Patch],
) -> Result<(), Problem> {
    let io_err = |what: &'static str| move |e: io::Error| Problem::io_error(what, e);
    let changed = || Problem::io("the source changed size while it was sorted");
    let mut tmp = Temporary::create(dest)?;
    let meta = source.metadata().map_err(io_err("cannot stat"))?;
    if meta.len() != len {
        return Err(changed());
    }
    copy_contents(source, &mut tmp.file, len, patches).map_err(io_err("cannot copy"))?;
    if tmp.file.metadata().map_err(io_err("cannot stat"))?.len() != len {
        return Err(changed());
    }
    for p in patches {
        tmp.file
            .write_all_at(&p.bytes, p.offset)
            .map_err(io_err("cannot write"))?;
    }
    let perms = fs::Permissions::from_mode(meta.permissions().mode());
    tmp.file
        .set_permissions(perms)
        .map_err(io_err("cannot set permissions"))?;
    // Keep the owner when we may (root); otherwise the new file is ours, as with any rewrite.
    let _ = std::os::unix::fs::fchown(&tmp.file, Some(meta.uid()), Some(meta.gid()));
    tmp.file.sync_all().map_err(io_err("cannot sync"))?;
    tmp.persist(dest)
}
