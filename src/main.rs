//! The `pairgate` binary: parses the command line and hands over to [`pairgate::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    pairgate::cli::main()
}
