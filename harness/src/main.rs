//! `consensus-lab`: run consensus protocols in a deterministic simulator, under a client
//! workload and faults, and check what the clients saw.

/// mimalloc instead of the system allocator: the simulator allocates and frees per event.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    harness::cli::main()
}
