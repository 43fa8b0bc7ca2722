//! Sort, check and dump exception tables in ELF files (see issue 4).
