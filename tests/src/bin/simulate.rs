//! Runs the deterministic simulation over many seeds.
//!
//! ```text
//! cargo run --release -p windlass-testkit --bin simulate -- --seeds N [--seed S] [--trace]
//! ```
//!
//! `--seeds N` runs seeds `S..S+N` (S defaults to 0); `--seed S` alone runs
//! that one seed. Every divergence prints its seed, what broke and the
//! command that replays it; `--trace` prints the trace of each diverging run
//! (of every run, with a single seed). The last line is always
//! `schedules: N, divergences: D, schedules/s: X`; the exit code is 1 when
//! D > 0 and 2 on bad arguments.

use std::process::ExitCode;
use std::time::Instant;

use windlass_testkit::sim::{Options, run};

const USAGE: &str = "usage: simulate [--seeds N] [--seed S] [--trace]";

fn main() -> ExitCode {
    let mut seeds: Option<u64> = None;
    let mut first: Option<u64> = None;
    let mut trace = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| match args.next().map(|v| v.parse::<u64>()) {
            Some(Ok(n)) => Ok(n),
            _ => Err(format!("{name} needs a number\n{USAGE}")),
        };
        let parsed = match arg.as_str() {
            "--seeds" => number("--seeds").map(|n| seeds = Some(n)),
            "--seed" => number("--seed").map(|n| first = Some(n)),
            "--trace" => {
                trace = true;
                Ok(())
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => Err(format!("unknown argument {other:?}\n{USAGE}")),
        };
        if let Err(e) = parsed {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    }
    let count = seeds.unwrap_or(if first.is_some() { 1 } else { 1000 });
    let start = first.unwrap_or(0);
    // A panic is reported as a divergence with its message; the default
    // hook would print it a second time.
    std::panic::set_hook(Box::new(|_| {}));

    let began = Instant::now();
    let mut divergences = 0u64;
    let mut requests = 0u64;
    for seed in start..start.saturating_add(count) {
        let outcome = run(&Options {
            seed,
            trace: trace && (count == 1),
            ..Options::default()
        });
        requests += outcome.requests;
        let done = seed - start + 1;
        if count >= 20_000 && done.is_multiple_of(10_000) {
            eprintln!(
                "progress: {done} schedules, {divergences} divergences, {:.0} schedules/s",
                done as f64 / began.elapsed().as_secs_f64().max(1e-9)
            );
        }
        let show_trace = trace && count == 1;
        if let Some(why) = &outcome.divergence {
            divergences += 1;
            println!("seed {seed}: DIVERGENCE: {why}");
            println!("  replay: {}", outcome.replay_command());
            if trace && !show_trace {
                let again = run(&Options {
                    seed,
                    trace: true,
                    ..Options::default()
                });
                again.trace.iter().for_each(|l| println!("  {l}"));
            }
        }
        if show_trace {
            outcome.trace.iter().for_each(|l| println!("{l}"));
            println!(
                "seed {seed}: {} requests over {:.1}s simulated",
                outcome.requests,
                outcome.simulated.as_secs_f64()
            );
        }
    }
    let elapsed = began.elapsed().as_secs_f64();
    eprintln!("requests: {requests}");
    println!(
        "schedules: {count}, divergences: {divergences}, schedules/s: {:.0}",
        count as f64 / elapsed.max(1e-9)
    );
    if divergences > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
