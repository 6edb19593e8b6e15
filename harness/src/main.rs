//! `consensus-lab`: run consensus protocols in a deterministic simulator, under a client
//! workload and faults, and check what the clients saw.

fn main() -> std::process::ExitCode {
    harness::cli::main()
}
