//! Workshop lab building blocks: everything here acts only inside a network namespace that the
//! caller created (tests, the lab, the benchmarks). Nothing touches the host's namespace.

pub mod syn;
