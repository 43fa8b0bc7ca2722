//! Writing a patched copy of a file atomically: a temporary file in the destination's
//! directory gets the source's bytes (a reflink where the file system has them, else copied
//! in the kernel), the patches, the source's permissions and an `fsync`; then it is renamed
//! over the destination and the directory is synced. A crash leaves the old file or the new
//! one, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::Problem;
use crate::sort::Patch;

/// Refuse to write over `path` when it is read-only: no write permission bit is set, or
/// (for a non-root user) the process may not write it.
pub fn ensure_writable(path: &Path) -> Result<(), Problem> {
    let meta = fs::metadata(path).map_err(|e| Problem::io(format!("cannot stat: {e}")))?;
    if meta.permissions().mode() & 0o222 == 0 {
        return Err(Problem::io("file is read-only"));
    }
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Problem::io("file name contains a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        return Err(Problem::io(format!(
            "file is not writable: {}",
            io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// The path a write to `path` should replace: symlinks resolved, so the link stays.
pub fn resolve_destination(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Give the empty file `dst` the bytes of `src` (`len` bytes) that `patches` will not
/// overwrite: a reflink of the whole file (`FICLONE`: the two files share their blocks,
/// nothing is copied) where the file system can, else copies inside the kernel of the ranges
/// between the patches (`io::copy` between files is `copy_file_range`, falling back to
/// reading and writing).
fn copy_contents(src: &File, dst: &mut File, len: u64, patches: &[Patch]) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: FICLONE takes the source descriptor as its argument; both descriptors are
        // open for the whole call (borrowed). On failure the destination is left unchanged.
        if unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) } == 0 {
            return Ok(());
        }
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

/// Write `source`'s bytes with `patches` applied to `dest`, atomically.
pub fn write_patched(source: &File, dest: &Path, patches: &[Patch]) -> Result<(), Problem> {
    let io_err = |what: &str| {
        let what = what.to_string();
        move |e: io::Error| Problem::io(format!("{what}: {e}"))
    };
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".extable-tmp")
        .tempfile_in(&dir)
        .map_err(io_err("cannot create a temporary file next to it"))?;
    let meta = source.metadata().map_err(io_err("cannot stat"))?;
    copy_contents(source, tmp.as_file_mut(), meta.len(), patches).map_err(io_err("cannot copy"))?;
    for p in patches {
        tmp.as_file()
            .write_all_at(&p.bytes, p.offset)
            .map_err(io_err("cannot write"))?;
    }
    let perms = fs::Permissions::from_mode(meta.permissions().mode());
    tmp.as_file()
        .set_permissions(perms)
        .map_err(io_err("cannot set permissions"))?;
    // Keep the owner when we may (root); otherwise the new file is ours, as with any rewrite.
    let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()));
    tmp.as_file().sync_all().map_err(io_err("cannot sync"))?;
    tmp.persist(dest)
        .map_err(|e| Problem::io(format!("cannot rename into place: {}", e.error)))?;
    if let Ok(d) = OpenOptions::new().read(true).open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
