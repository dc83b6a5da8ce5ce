//! jitter: how much time a busy thread loses on this machine, and in what chunks.
//!
//! One thread per core spins reading the clock for `--duration`. Any gap between two readings
//! longer than `--above` is time the thread did not run: an interrupt, a timer tick, another
//! thread, or (in a VM) the host taking the virtual CPU away. A latency figure cannot be
//! trusted far below what this shows: a shard worker loses the same share of its time in the
//! same chunks, and the commits waiting on it wait that long (perf/README.md, "The machine and
//! the runs", has what this machine loses).
//!
//! ```sh
//! cargo run --release -p loadgen --bin jitter -- --duration 3s
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;

#[derive(Debug, Parser)]
#[command(
    about = "Measures the stalls a spinning thread sees on each core (run it on an otherwise idle machine)"
)]
struct Args {
    /// How long each thread spins: e.g. 3s, 500ms.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Gaps between two clock readings longer than this count as stalls: e.g. 5us.
    #[arg(long, default_value = "5us", value_parser = humantime::parse_duration)]
    above: Duration,
}

/// What one spinning thread saw.
struct Seen {
    stalls: Histogram<u64>,
    lost: Duration,
    spun: Duration,
}

fn spin(duration: Duration, above: Duration) -> Seen {
    // Up to one hour in nanoseconds at 2 significant digits: a few KiB, never resized.
    let mut stalls = Histogram::new_with_bounds(1, 3_600_000_000_000, 2).expect("valid bounds");
    let above = above.as_nanos() as u64;
    let start = Instant::now();
    let mut last = start;
    let mut lost = 0u64;
    while last - start < duration {
        let now = Instant::now();
        let gap = (now - last).as_nanos() as u64;
        if gap > above {
            stalls.saturating_record(gap);
            lost += gap;
        }
        last = now;
    }
    Seen { stalls, lost: Duration::from_nanos(lost), spun: last - start }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let threads = cores.len().max(1);
    let seen: Vec<Seen> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let core = cores.get(i).copied();
                scope.spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    spin(args.duration, args.above)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    if seen.len() != threads {
        eprintln!("jitter: a spinning thread panicked");
        return ExitCode::FAILURE;
    }
    let micros = |nanos: u64| nanos as f64 / 1000.0;
    println!(
        "stalls longer than {} µs seen by a thread spinning on each core for {:.1} s",
        micros(args.above.as_nanos() as u64),
        args.duration.as_secs_f64()
    );
    println!("core   stalls/s   p50 µs   p99 µs   max µs   time lost");
    for (i, s) in seen.iter().enumerate() {
        let per_second = s.stalls.len() as f64 / s.spun.as_secs_f64();
        let share = s.lost.as_secs_f64() / s.spun.as_secs_f64() * 100.0;
        let at = |q: f64| if s.stalls.is_empty() { 0.0 } else { micros(s.stalls.value_at_quantile(q)) };
        println!(
            "{i:>4} {per_second:>10.0} {:>8.1} {:>8.1} {:>8.0} {share:>10.2} %",
            at(0.5),
            at(0.99),
            micros(s.stalls.max())
        );
    }
    ExitCode::SUCCESS
}
