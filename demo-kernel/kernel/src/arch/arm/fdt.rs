//! Just enough of a flattened device tree reader to find `/chosen/bootargs`: QEMU passes
//! `-append` there, and for a bare-metal ELF it places the DTB at the start of RAM.

/// FDT magic, big-endian in the blob.
const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// A read-only view of a device tree blob.
struct Fdt<'a> {
    blob: &'a [u8],
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The NUL-terminated string at `at`, without its NUL.
fn cstr(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let rest = bytes.get(at..)?;
    let len = rest.iter().position(|&b| b == 0)?;
    Some(&rest[..len])
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl<'a> Fdt<'a> {
    /// The value of property `prop` of the node `node` directly under the root.
    fn find(&self, node: &[u8], prop: &[u8]) -> Option<&'a [u8]> {
        let structs = be32(self.blob, 8)? as usize;
        let strings = be32(self.blob, 12)? as usize;
        let (mut at, mut depth, mut inside) = (structs, 0usize, false);
        loop {
            let token = be32(self.blob, at)?;
            at += 4;
            match token {
                FDT_BEGIN_NODE => {
                    let name = cstr(self.blob, at)?;
                    at = align4(at + name.len() + 1);
                    depth += 1;
                    inside = depth == 2 && name == node;
                }
                FDT_END_NODE => {
                    depth = depth.checked_sub(1)?;
                    inside = false;
                }
                FDT_PROP => {
                    let len = be32(self.blob, at)? as usize;
                    let name_off = be32(self.blob, at + 4)? as usize;
                    let value = self.blob.get(at + 8..at + 8 + len)?;
                    at = align4(at + 8 + len);
                    if inside && cstr(self.blob, strings + name_off)? == prop {
                        return Some(value);
                    }
                }
                FDT_NOP => {}
                FDT_END => return None,
                _ => return None,
            }
        }
    }
}

/// `/chosen/bootargs` of the blob at `addr`, without its NUL; empty when there is no valid
/// blob, one larger than `max` bytes, or no such property.
///
/// # Safety
/// `max` bytes from `addr` must be readable and stay unchanged for the kernel's lifetime.
pub unsafe fn bootargs(addr: usize, max: usize) -> &'static [u8] {
    if max < 8 {
        return &[];
    }
    // SAFETY: the caller guarantees `max` (at least 8) bytes are readable.
    let header = unsafe { core::slice::from_raw_parts(addr as *const u8, 8) };
    if be32(header, 0) != Some(FDT_MAGIC) {
        return &[];
    }
    let total = be32(header, 4).unwrap_or(0) as usize;
    if total > max {
        return &[];
    }
    // SAFETY: `total` is within the `max` readable bytes the caller guarantees.
    let blob = unsafe { core::slice::from_raw_parts(addr as *const u8, total) };
    let fdt = Fdt { blob };
    let value = fdt.find(b"chosen", b"bootargs").unwrap_or(&[]);
    value.split(|&b| b == 0).next().unwrap_or(&[])
}
