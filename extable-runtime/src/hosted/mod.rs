//! Hosted backend: recovers real SIGSEGV/SIGBUS in Linux user space through the tables.
