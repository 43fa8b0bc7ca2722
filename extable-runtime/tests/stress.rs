//! Stress of the module-table protocol with real threads and real faults: four threads look
//! entries up and take real `SIGSEGV`s fixed through module tables, while another thread
//! loads, registers, trims, unregisters and rewrites (reuses) the tables' memory.
//!
//! Every lookup checks, inside its read section, that the entry it found is the one its table
//! holds in the table's current generation: a table rewritten under a reader (a retire that
//! did not wait) shows up as a wrong fixup. A lookup running while modules come and go may
//! miss one (as with RCU lists, it sees a module registered or retired concurrently, or not):
//! misses are counted, not errors. The real faults are always covered: a backstop module
//! holding only the probe's entry stays registered in a slot searched after the churning
//! ones, so most faults are fixed through a churning table and none goes unfixed.
//! 10^7 lookups in an optimised build (`cargo test --release --test stress`), 10^6 otherwise.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "arm", target_arch = "aarch64")
))]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

use extable_runtime::entry::{ExceptionTableEntry, Targets, ENTRY_SIZE};
use extable_runtime::handlers;
use extable_runtime::table::{register_module, unregister_module, with_exception_entry, Module};

mod common;
use common::{map, protect, setup, PAGE};

/// Lookup threads.
const READERS: usize = 4;
/// Lookups per reader.
const LOOKUPS: usize = if cfg!(debug_assertions) {
    250_000
} else {
    2_500_000
};
/// One real fault every this many lookups.
const FAULT_EVERY: usize = 64;
/// Fake entries per table; the last `INIT` are in the init code.
const FAKE: usize = 48;
const INIT: usize = 8;
/// Table memory blocks the writer cycles through.
const BLOCKS: usize = 4;
/// Generations are encoded in fixups modulo this.
const GENERATIONS: usize = 256;

/// Load the word at `p` with the load covered by a module table entry (handler `fault`: the
/// return register gets the signal number). Returns the result register (0 when the load did
/// not fault) and the addresses of the load and of its fixup.
#[inline(never)]
fn probe(p: usize) -> (usize, usize, usize) {
    let (ret, insn, fixup): (usize, usize, usize);
    // SAFETY: the load may fault only when a module table covers it (the test registers one
    // before any bad address is probed); the fixup resumes inside the block.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!(
            "lea {insn}, [rip + 2f]",
            "lea {fixup}, [rip + 3f]",
            "xor eax, eax",
            "2: mov {t}, qword ptr [{p}]",
            "3:",
            p = in(reg) p, t = out(reg) _, insn = out(reg) insn, fixup = out(reg) fixup,
            out("rax") ret, options(nostack),
        );
    }
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!(
            "adr {insn}, 2f",
            "adr {fixup}, 3f",
            "mov x0, #0",
            "2: ldr {t}, [{p}]",
            "3:",
            p = in(reg) p, t = out(reg) _, insn = out(reg) insn, fixup = out(reg) fixup,
            out("x0") ret, options(nostack),
        );
    }
    // SAFETY: as above.
    #[cfg(target_arch = "arm")]
    unsafe {
        core::arch::asm!(
            "adr {insn}, 2f",
            "adr {fixup}, 3f",
            "mov r0, #0",
            "2: ldr {t}, [{p}]",
            "3:",
            p = in(reg) p, t = out(reg) _, insn = out(reg) insn, fixup = out(reg) fixup,
            out("r0") ret, options(nostack),
        );
    }
    (ret, insn, fixup)
}

/// The memory of the tables, and what the readers check against.
struct World {
    /// Start of block 0; block `i` is at `start + i * BLOCK_BYTES`.
    start: usize,
    /// Generation each block was last written with.
    generation: [AtomicUsize; BLOCKS],
    /// Base of the fake instruction addresses.
    fake: usize,
    probe_insn: usize,
    probe_fixup: usize,
    /// An address that faults (a `PROT_NONE` page).
    bad: usize,
}

const BLOCK_LEN: usize = FAKE + 1;
const BLOCK_BYTES: usize = BLOCK_LEN * ENTRY_SIZE;

impl World {
    fn insn(&self, k: usize) -> usize {
        self.fake + 16 * k
    }

    fn fixup(&self, generation: usize, k: usize) -> usize {
        self.fake + 0x10_0000 + (generation % GENERATIONS) * 0x1000 + k
    }

    fn init(&self) -> std::ops::Range<usize> {
        self.insn(FAKE - INIT)..self.insn(FAKE)
    }

    fn block(&self, i: usize) -> *mut ExceptionTableEntry {
        (self.start + i * BLOCK_BYTES) as *mut ExceptionTableEntry
    }

    /// The block an entry lives in.
    fn block_of(&self, entry: &ExceptionTableEntry) -> Option<usize> {
        let at = (entry as *const ExceptionTableEntry as usize).checked_sub(self.start)?;
        (at < BLOCKS * BLOCK_BYTES).then_some(at / BLOCK_BYTES)
    }

    /// Rewrite block `i` for `generation`: the fake entries and the probe's.
    ///
    /// # Safety
    /// No module holding block `i` may be registered.
    unsafe fn write(&self, i: usize, generation: usize) -> &'static mut [ExceptionTableEntry] {
        // SAFETY: the block is ours (leaked at start) and no lookup can reach it.
        let table = unsafe { std::slice::from_raw_parts_mut(self.block(i), BLOCK_LEN) };
        let base = table.as_ptr() as usize;
        for (slot, (j, e)) in table.iter_mut().enumerate().map(|(j, e)| (j, (j, e))) {
            let targets = if j < FAKE {
                Targets {
                    insn: self.insn(j),
                    fixup: self.fixup(generation, j),
                    handler: handlers::default as *const () as usize,
                }
            } else {
                Targets {
                    insn: self.probe_insn,
                    fixup: self.probe_fixup,
                    handler: handlers::fault as *const () as usize,
                }
            };
            let [insn, fixup, handler] =
                ExceptionTableEntry::encode(base + slot * ENTRY_SIZE, targets).expect("in reach");
            *e = ExceptionTableEntry {
                insn,
                fixup,
                handler,
            };
        }
        self.generation[i].store(generation, Ordering::Relaxed);
        table
    }
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        // In .bss, within `i32` reach of the code the entries point to (a heap block may not be).
        static mut BLOCKS_MEMORY: [u32; BLOCKS * BLOCK_BYTES / 4] = [0; BLOCKS * BLOCK_BYTES / 4];
        let start = core::ptr::addr_of_mut!(BLOCKS_MEMORY) as usize;
        let (_, probe_insn, probe_fixup) = probe(start);
        let bad = map(PAGE);
        protect(bad, PAGE, libc::PROT_NONE);
        World {
            start,
            generation: [const { AtomicUsize::new(0) }; BLOCKS],
            // Above the code, so that the probe's entry sorts first and the init entries last.
            fake: start.max(probe_insn) + 0x100_0000,
            probe_insn,
            probe_fixup,
            bad,
        }
    })
}

/// What the readers counted.
#[derive(Default)]
struct Counts {
    lookups: AtomicUsize,
    wrong: AtomicUsize,
    missed: AtomicUsize,
    faults: AtomicUsize,
    bad_faults: AtomicUsize,
}

/// One lookup of fake entry `k`, checked inside the read section.
fn check(w: &World, k: usize, counts: &Counts) {
    let found = with_exception_entry(w.insn(k), |entry| {
        let Some(i) = w.block_of(entry) else {
            return false;
        };
        let generation = w.generation[i].load(Ordering::Relaxed);
        entry.insn_addr() == w.insn(k) && entry.fixup_addr() == w.fixup(generation, k)
    });
    match found {
        Some(true) => {}
        Some(false) => {
            counts.wrong.fetch_add(1, Ordering::Relaxed);
        }
        None if k < FAKE - INIT => {
            counts.missed.fetch_add(1, Ordering::Relaxed);
        }
        None => {}
    }
}

fn reader(seed: usize, counts: &Counts) {
    setup();
    let w = world();
    let mut x = seed.wrapping_mul(0x9e37_79b9) | 1;
    for n in 0..LOOKUPS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        check(w, x % FAKE, counts);
        if n % FAULT_EVERY == 0 {
            let (ret, _, _) = probe(w.bad);
            counts.faults.fetch_add(1, Ordering::Relaxed);
            if ret != libc::SIGSEGV as usize {
                counts.bad_faults.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    counts.lookups.fetch_add(LOOKUPS, Ordering::Relaxed);
}

/// Load, register, trim, then retire the previous module and reuse its block, until told
/// to stop. Returns the number of cycles.
fn writer(stop: &AtomicBool) -> usize {
    static MODULES: [Module; 2] = [Module::new("stress-a"), Module::new("stress-b")];
    let w = world();
    let mut cycles = 0;
    let mut previous: Option<&'static Module> = None;
    while !stop.load(Ordering::Relaxed) || previous.is_none() {
        let module = &MODULES[cycles % 2];
        let block = cycles % BLOCKS;
        // SAFETY: `module` was retired (or never registered) two cycles ago, and block
        // `cycles % BLOCKS` belonged to a module retired at least one cycle ago.
        unsafe {
            let table = w.write(block, cycles);
            module.load(table, w.init());
        }
        register_module(module).expect("a free slot");
        // SAFETY: this thread alone loads and retires the module; its table is live.
        assert_eq!(unsafe { module.trim_init() }, INIT);
        if let Some(old) = previous.replace(module) {
            unregister_module(old);
        }
        cycles += 1;
    }
    if let Some(last) = previous {
        unregister_module(last);
    }
    cycles
}

/// Register a module holding only the probe's entry in the third slot (after the two the
/// writer's modules take), so that every real fault is covered.
fn register_backstop() {
    static BACKSTOP: Module = Module::new("stress-backstop");
    static PLACEHOLDERS: [Module; 2] = [Module::new("slot-0"), Module::new("slot-1")];
    static mut TABLE: [ExceptionTableEntry; 1] = [ExceptionTableEntry {
        insn: 0,
        fixup: 0,
        handler: 0,
    }];
    let w = world();
    // SAFETY: the table is this function's, which runs once, before anything looks it up.
    let table = unsafe { &mut *core::ptr::addr_of_mut!(TABLE) };
    let targets = Targets {
        insn: w.probe_insn,
        fixup: w.probe_fixup,
        handler: handlers::fault as *const () as usize,
    };
    let [insn, fixup, handler] =
        ExceptionTableEntry::encode(table.as_ptr() as usize, targets).expect("in reach");
    table[0] = ExceptionTableEntry {
        insn,
        fixup,
        handler,
    };
    // SAFETY: not registered; the static table lives for the whole program.
    unsafe { BACKSTOP.load(table, 0..0) };
    for p in &PLACEHOLDERS {
        register_module(p).expect("a free slot");
    }
    register_module(&BACKSTOP).expect("a free slot");
    for p in &PLACEHOLDERS {
        unregister_module(p);
    }
}

#[test]
fn lookups_and_faults_race_load_trim_unregister_and_reuse() {
    setup();
    register_backstop();
    let counts = Counts::default();
    let stop = AtomicBool::new(false);
    let cycles = std::thread::scope(|s| {
        let writer = s.spawn(|| writer(&stop));
        // Let the first module be registered before any bad address is probed.
        while !(0..FAKE - INIT).all(|k| with_exception_entry(world().insn(k), |_| ()).is_some()) {
            assert!(!writer.is_finished(), "the writer stopped");
            std::hint::spin_loop();
        }
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let counts = &counts;
                s.spawn(move || reader(r + 1, counts))
            })
            .collect();
        for r in readers {
            r.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap()
    });
    let lookups = counts.lookups.load(Ordering::Relaxed);
    let faults = counts.faults.load(Ordering::Relaxed);
    let missed = counts.missed.load(Ordering::Relaxed);
    println!(
        "{lookups} lookups ({missed} of a live entry found nothing), {faults} real faults, \
         {cycles} load/trim/unregister/reuse cycles"
    );
    assert_eq!(lookups, READERS * LOOKUPS);
    assert!(cycles > 10, "the writer kept up: {cycles} cycles");
    assert_eq!(
        counts.wrong.load(Ordering::Relaxed),
        0,
        "stale or wrong entries"
    );
    assert_eq!(
        counts.bad_faults.load(Ordering::Relaxed),
        0,
        "faults not fixed right"
    );
}
