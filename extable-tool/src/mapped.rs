//! Reading an input file through a mapping that survives a concurrent truncation.
//!
//! `check` and `sort` touch only the headers, the symbol table and the table of a file that
//! can be hundreds of megabytes, so the file is mapped rather than read. A plain mapping
//! turns a truncation by another process into `SIGBUS` at the next read of a page past the
//! new end. Here every mapping is registered with a process-wide `SIGBUS` handler: a fault
//! inside a registered mapping puts a zero-filled page over the faulting one and flags the
//! mapping, so the read completes; [`Mapped::verify_unchanged`] then reports the truncation
//! as an I/O error before any result is used or any byte written. Faults elsewhere go to the
//! handler that was installed before, or kill the process as they would have.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

use memmap2::{Mmap, UncheckedAdvice};

use crate::error::{Error, Problem};
use crate::records;

/// How many mappings can be guarded at once; further files are read into memory instead.
const GUARDED_MAPPINGS: usize = 32;

/// One guarded mapping: its address range and whether a read faulted past the file's end.
struct Guard {
    start: AtomicUsize,
    len: AtomicUsize,
    truncated: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Guard = Guard {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    truncated: AtomicBool::new(false),
};

static GUARDS: [Guard; GUARDED_MAPPINGS] = [FREE; GUARDED_MAPPINGS];
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// The `SIGBUS` action in place before ours, for faults outside our mappings (set before
/// ours is installed; reading it is an atomic load, fine in a handler).
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// The `SIGBUS` handler: map a zero page over a faulting page of a guarded mapping and flag
/// it; otherwise hand the fault on.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE_SIZE.load(Ordering::Relaxed);
    for g in &GUARDS {
        let start = g.start.load(Ordering::Acquire);
        let len = g.len.load(Ordering::Acquire);
        // 0: a free slot; usize::MAX: a slot being registered (its range not yet set).
        if start == 0 || start == usize::MAX || addr < start || addr - start >= len {
            continue;
        }
        let at = addr & !(page - 1);
        // SAFETY: `at..at + page` lies inside a live read-only mapping this module owns
        // (registered until it is unmapped); replacing it with an anonymous zero page keeps
        // the range mapped and readable, and no reference sees bytes change except from
        // "faulting" to zero. mmap is a plain system call, safe to make in a handler.
        let fixed = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if fixed != libc::MAP_FAILED {
            g.truncated.store(true, Ordering::Release);
            return;
        }
    }
    forward(sig, info, ctx);
}

/// Give a fault that is not ours to the previous handler, or restore the default action so
/// that the faulting access, executed again on return, ends the process as usual.
fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    if let Some(prev) = PREVIOUS.get() {
        let handler = prev.sa_sigaction;
        if handler != libc::SIG_DFL && handler != libc::SIG_IGN {
            if prev.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous action was installed with SA_SIGINFO and this
                // signature; it receives exactly what the kernel gave us.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(handler) };
                f(sig, info, ctx);
            } else {
                // SAFETY: a handler installed without SA_SIGINFO takes the signal number.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
                f(sig);
            }
            return;
        }
    }
    // SAFETY: resetting a signal's action to its default is async-signal-safe.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
    }
}

/// Install the handler once per process. Returns whether it is installed.
fn install() -> bool {
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            PAGE_SIZE.store(page as usize, Ordering::Relaxed);
        }
        // SAFETY: a zeroed sigaction is a valid "no handler" value to fill in; the pointers
        // passed to sigaction point at live locals.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
                return;
            }
            let _ = PREVIOUS.set(previous);
            if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) == 0 {
                INSTALLED.store(true, Ordering::Release);
            }
        }
    });
    INSTALLED.load(Ordering::Acquire)
}

/// Register `map` with the handler; `None` when every slot is taken.
fn register(map: &Mmap) -> Option<usize> {
    if !install() {
        return None;
    }
    let start = map.as_ptr() as usize;
    GUARDS.iter().position(|g| {
        if g.start
            .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        g.truncated.store(false, Ordering::Relaxed);
        g.len.store(map.len(), Ordering::Release);
        g.start.store(start, Ordering::Release);
        true
    })
}

enum Contents {
    /// A mapping registered in `GUARDS[slot]`.
    Guarded { map: Mmap, slot: usize },
    /// The whole file, read (when no guard slot was free).
    Read(Vec<u8>),
}

/// An input file, opened and readable as bytes, safe against concurrent truncation.
pub struct Mapped {
    file: File,
    contents: Contents,
    len: u64,
}

impl Mapped {
    /// Open `path` read-only. Missing, unreadable and non-regular files are I/O errors.
    pub fn open(path: &Path) -> Result<Self, Error> {
        Self::open_with(path, false)
    }

    /// Open `path` for reading and for writing in place (see [`crate::write::patch_in_place`]).
    pub fn open_for_update(path: &Path) -> Result<Self, Error> {
        Self::open_with(path, true)
    }

    fn open_with(path: &Path, write: bool) -> Result<Self, Error> {
        let io = |m: String| Problem::io(m).in_file(path);
        let file = OpenOptions::new()
            .read(true)
            .write(write)
            .open(path)
            .map_err(|e| Problem::io_error("cannot open", e).in_file(path))?;
        let meta = file
            .metadata()
            .map_err(|e| Problem::io_error("cannot stat", e).in_file(path))?;
        if !meta.is_file() {
            return Err(io("not a regular file".into()));
        }
        let len = meta.len();
        let contents = if len == 0 {
            Contents::Read(Vec::new())
        } else {
            // SAFETY: the map is read-only and private; nothing is written through it. A
            // concurrent truncation makes reads past the new end fault: the map is registered
            // with the SIGBUS guard below before any read, or dropped unread.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| io(format!("cannot map: {e}")))?;
            match register(&map) {
                Some(slot) => Contents::Guarded { map, slot },
                None => {
                    drop(map);
                    Contents::Read(
                        read_all(&file, len).map_err(|e| io(format!("cannot read: {e}")))?,
                    )
                }
            }
        };
        Ok(Mapped {
            file,
            contents,
            len,
        })
    }

    /// The file's bytes (as they were when opened; see [`Mapped::verify_unchanged`]).
    pub fn bytes(&self) -> &[u8] {
        match &self.contents {
            Contents::Guarded { map, .. } => map,
            Contents::Read(v) => v,
        }
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The file's size when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// An I/O error when the file was truncated (or otherwise changed size) since it was
    /// opened: what was read from it is then not the file, and must not be used.
    pub fn verify_unchanged(&self) -> Result<(), Problem> {
        let faulted = match &self.contents {
            Contents::Guarded { slot, .. } => GUARDS[*slot].truncated.load(Ordering::Acquire),
            Contents::Read(_) => false,
        };
        let now = self
            .file
            .metadata()
            .map_err(|e| Problem::io(format!("cannot stat: {e}")))?
            .len();
        if faulted || now != self.len {
            return Err(Problem::io(format!(
                "the file changed size while it was read ({} bytes, now {now})",
                self.len
            )));
        }
        Ok(())
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if let Contents::Guarded { slot, .. } = self.contents {
            // Unmap first, then free the slot: the range is never mapped and unguarded.
            self.contents = Contents::Read(Vec::new());
            GUARDS[slot].start.store(0, Ordering::Release);
        }
    }
}

fn read_all(file: &File, len: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut v = vec![0; usize::try_from(len).map_err(std::io::Error::other)?];
    file.read_exact_at(&mut v, 0)?;
    Ok(v)
}

impl records::Pages for Mapped {
    /// Read `bytes` from the file when they lie in the map (see the trait); a short or
    /// failed read copies them from the map, where a truncation is the guard's to report.
    fn copy(&self, bytes: &[u8]) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let Contents::Guarded { map, .. } = &self.contents else {
            return bytes.to_vec();
        };
        let base = map.as_ptr() as usize;
        let start = bytes.as_ptr() as usize;
        if start < base || start + bytes.len() > base + map.len() {
            return bytes.to_vec();
        }
        let mut out = vec![0; bytes.len()];
        match self.file.read_exact_at(&mut out, (start - base) as u64) {
            Ok(()) => out,
            Err(_) => bytes.to_vec(),
        }
    }

    /// Drop the pages of `bytes` (when they lie in the map) from this process: they are
    /// read again from the file if touched, so the memory the table took while it was read
    /// is free for its sorted copy.
    fn release(&self, bytes: &[u8]) {
        let Contents::Guarded { map, .. } = &self.contents else {
            return;
        };
        let base = map.as_ptr() as usize;
        let start = bytes.as_ptr() as usize;
        if bytes.is_empty() || start < base || start + bytes.len() > base + map.len() {
            return;
        }
        // SAFETY: the map is a private, read-only mapping; MADV_DONTNEED only drops this
        // process's page table entries, and the next read maps the same file pages again (or
        // faults into the SIGBUS guard if the file was truncated), so the bytes any reference
        // sees do not change unless the file changed, which `verify_unchanged` reports.
        // The range lies inside the map (checked above).
        let _ = unsafe {
            map.unchecked_advise_range(UncheckedAdvice::DontNeed, start - base, bytes.len())
        };
    }
}
