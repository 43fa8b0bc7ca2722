//! Host harness for the demo kernels (see issues 5 and 6).
