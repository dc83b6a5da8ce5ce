//! What an embedding gets with the defaults, measured in one run: one producer commits one `Sum`
//! record per commit to 10,000 paths, first with the defaults (no sink, `Retention::All`: every
//! top-level block stays readable), then with `DiscardSink` and `Retention::Newest(1)` (the
//! loadgen's setting), each for three equal thirds; before both, the machine's bare hand-off of
//! `(u32, u64, u64)` items between two threads through one crossbeam `ArrayQueue`.
//!
//! It prints records/s per third, the defaults' last third over its first (does a growing history
//! slow it down?), the defaults over the window setting, and both over the hand-off. The window
//! setting runs twice: at the default geometry (divisor 4, top level 8), and at top level 4, the
//! loadgen's default and the library's before, which merges less. The system
//! allocator, as an embedding that picks none gets. With everything kept, the defaults' memory
//! grows with every record, so it also prints the bytes kept per record, and for both settings
//! the shard worker's user and system CPU time per record: system time is mostly the kernel
//! handing out and zeroing pages, which on a VM can bound the defaults' throughput.
//!
//! `cargo run --release --example defaults [seconds per third, default 4]`

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use lockstep::merge::Sum;
use lockstep::{DiscardSink, Pipeline, Retention};

const PATHS: usize = 10_000;

/// Items per second through one `ArrayQueue` between two threads, for `time`.
fn hand_off(time: Duration) -> f64 {
    let queue = ArrayQueue::<(u32, u64, u64)>::new(4096);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let received = std::thread::scope(|scope| {
        let consumer = scope.spawn(|| {
            let mut received = 0u64;
            // Relaxed: a stop flag; the scope's join orders the count.
            while !stop.load(Ordering::Relaxed) || !queue.is_empty() {
                if let Some(item) = queue.pop() {
                    black_box(item);
                    received += 1;
                }
            }
            received
        });
        let mut i = 0u64;
        while started.elapsed() < time {
            for _ in 0..1024 {
                while queue.push(((i % PATHS as u64) as u32, i, i)).is_err() {
                    std::hint::spin_loop();
                }
                i += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        consumer.join().unwrap_or(0)
    });
    received as f64 / started.elapsed().as_secs_f64()
}

/// Resident memory in bytes, from `/proc/self/statm` (Linux; `None` elsewhere).
fn resident() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The shard worker's user and system CPU seconds so far, from `/proc/self/task/*/stat`
/// (Linux; `None` elsewhere; the kernel cuts thread names to 15 bytes). System time is mostly
/// the kernel zeroing pages on first touch.
fn worker_cpu() -> Option<(f64, f64)> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("lockstep-shard") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        // Fields after the parenthesized name: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok());
        // 100 ticks per second on Linux (USER_HZ).
        return Some((ticks(14)? / 100.0, ticks(15)? / 100.0));
    }
    None
}

/// Records per second in each third of `3 * third`, committing through `pipeline`.
fn thirds(pipeline: &Pipeline<Sum>, third: Duration) -> Result<[f64; 3], lockstep::Error> {
    let paths: Vec<String> = (0..PATHS).map(|i| format!("/p/{i:05}")).collect();
    let mut producer = pipeline.producer()?;
    let committed = AtomicU64::new(0);
    let mut rates = [0.0; 3];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for rate in &mut rates {
        let (started, before) = (Instant::now(), committed.load(Ordering::Relaxed));
        while started.elapsed() < third {
            for _ in 0..1024 {
                // xorshift: a uniform path without a shared generator.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                producer.commit([(&paths[(state % PATHS as u64) as usize], 1i64)])?;
            }
            committed.fetch_add(1024, Ordering::Relaxed);
        }
        *rate = (committed.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
    }
    Ok(rates)
}

/// The worker's CPU time per record of a run at `rates` for `third` each, as a line.
fn cpu_line(cpu: Option<(f64, f64)>, rates: [f64; 3], third: Duration) -> String {
    let Some((user, system)) = cpu else { return String::from("  worker CPU: not measured here") };
    let records = rates.iter().sum::<f64>() * third.as_secs_f64();
    format!(
        "  worker CPU per record: user {:.0} ns, system {:.0} ns (idle polling counts as user)",
        user / records * 1e9,
        system / records * 1e9
    )
}

/// Runs `pipeline` for three thirds and prints its line, CPU and turn sizes, and with `before`
/// (resident memory before the pipeline was built) the memory it kept, read while its last
/// snapshot still holds everything; returns its rates.
fn measure(
    name: &str,
    pipeline: Pipeline<Sum>,
    third: Duration,
    before: Option<u64>,
) -> Result<[f64; 3], lockstep::Error> {
    let rates = thirds(&pipeline, third)?;
    let cpu = worker_cpu();
    let turns = pipeline.stats().batch_size;
    let last = pipeline.shutdown()?;
    let kept = before.zip(resident()).map(|(before, after)| after.saturating_sub(before));
    println!("{name:<34} thirds {:>11.0} {:>11.0} {:>11.0} records/s", rates[0], rates[1], rates[2]);
    println!("  {} paths kept, frontier {}", last.paths().count(), last.frontier());
    drop(last);
    println!("{}", cpu_line(cpu, rates, third));
    println!(
        "  records per worker turn: p50 {}, p90 {}",
        turns.value_at_quantile(0.5),
        turns.value_at_quantile(0.9)
    );
    if let Some(kept) = kept {
        let per_record = kept as f64 / (rates.iter().sum::<f64>() * third.as_secs_f64());
        println!("  kept {:.0} MiB: {per_record:.1} bytes/record", kept as f64 / f64::from(1 << 20));
    }
    Ok(rates)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(4);
    let third = Duration::from_secs(seconds.max(1));
    let limit = hand_off(Duration::from_secs(1));
    println!("bare hand-off (ArrayQueue, two threads):  {:>12.0} items/s", limit);

    let before = resident();
    let all = measure("defaults (Retention::All)", Pipeline::builder(Sum).shards(1).build()?, third, before)?;
    let window = || Pipeline::builder(Sum).shards(1).sink(DiscardSink).retain(Retention::Newest(1));
    let windowed = measure("DiscardSink + Newest(1)", window().build()?, third, None)?;
    // The loadgen's setting: the window, with the loadgen's default top level of 4 (blocks of
    // 256 commits, the library's default before it became 8), so less merging.
    let loadgen = measure("DiscardSink + Newest(1), top 4", window().max_level(4).build()?, third, None)?;

    let mean = |r: [f64; 3]| r.iter().sum::<f64>() / 3.0;
    println!("defaults: last third / first third       {:.2}x", all[2] / all[0]);
    println!("defaults / DiscardSink + Newest(1)       {:.2}x", mean(all) / mean(windowed));
    println!("defaults / the same, top level 4         {:.2}x", mean(all) / mean(loadgen));
    println!("defaults / bare hand-off                 {:.2}x", mean(all) / limit);
    println!("DiscardSink + Newest(1) / bare hand-off  {:.2}x", mean(windowed) / limit);
    Ok(())
}
