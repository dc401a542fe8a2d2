//! The `sockq` binary: a thin shell over the library.

fn main() -> std::process::ExitCode {
    sockq::cli::main()
}
