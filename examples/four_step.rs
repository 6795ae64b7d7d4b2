//! The four-step workload (`benches/workflows/four_step.rs`) for a fixed number of passes of
//! 40,000 steps (10,000 instances, four steps each), with the time per step: the program to
//! count a step's instructions with callgrind, which criterion's adaptive runs are not.
//!
//! ```sh
//! cargo build --release --example four_step
//! valgrind --tool=callgrind --toggle-collect='sopflow::machine::step::step' \
//!     target/release/examples/four_step 1
//! ```
//!
//! The instructions callgrind counts, divided by 40,000 per pass, are one step's; run with
//! `--toggle-collect='*Instance::apply*'` for the snapshot's part. (Under valgrind SHA-256
//! runs its portable code, not the CPU's SHA instructions: callgrind's count overstates it.)
//!
//! It also counts the heap allocations of one instance's four steps (`machine::step` alone,
//! by a counting global allocator), printed per step.

#[path = "../benches/workflows/four_step.rs"]
mod four_step;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The system allocator, counting allocations (and reallocations) while `COUNTING` is set.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The allocations of each of one instance's four steps, in `machine::step` alone.
fn allocations(workload: &four_step::FourStep) -> Vec<u64> {
    let mut instance = workload.started[0].clone();
    let mut counts = Vec::new();
    for command in &workload.commands {
        ALLOCATIONS.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        let entry = sopflow::machine::step(&workload.def, &instance, command, &workload.sandbox);
        COUNTING.store(false, Ordering::Relaxed);
        counts.push(ALLOCATIONS.load(Ordering::Relaxed));
        instance.apply(&entry.expect("accepted")).expect("applies");
    }
    counts
}

fn main() {
    let passes: u64 = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("the number of passes"))
        .unwrap_or(1);
    let mut workload = four_step::FourStep::new();
    workload.check();
    let spent = workload.run(passes * four_step::PASS, false);
    println!(
        "{} steps, {:.0} ns per step (machine::step alone)",
        passes * four_step::PASS,
        spent.as_nanos() as f64 / (passes * four_step::PASS) as f64
    );
    let counts = allocations(&workload);
    println!(
        "allocations per step (review, approve, pay, close): {counts:?}, {:.1} on average",
        counts.iter().sum::<u64>() as f64 / counts.len() as f64
    );
}
