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
//! `--toggle-collect='*Instance::apply*'` for the snapshot's part.

#[path = "../benches/workflows/four_step.rs"]
mod four_step;

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
}
