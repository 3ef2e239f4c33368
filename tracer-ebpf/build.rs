//! Rebuild the kernel programs when the BPF linker changes (e.g. after it was
//! reinstalled against another LLVM).
use which::which;

fn main() {
    if let Ok(linker) = which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
