use std::time::{Duration, Instant};
use lockstep::merge::Concat;
use lockstep::Pipeline;
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let top: u32 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(8);
    let pipeline = Pipeline::builder(Concat::<u64>::default()).shards(1).max_level(top).build()?;
    let paths: Vec<String> = (0..10_000).map(|i| format!("/p/{i:05}")).collect();
    let mut producer = pipeline.producer()?;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(4) {
        for _ in 0..1024 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            producer.commit([(&paths[(state % 10_000) as usize], state)])?;
        }
        n += 1024;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64() / 1e6;
    drop(producer);
    let last = pipeline.shutdown()?;
    let rss = std::fs::read_to_string("/proc/self/statm")?.split_whitespace().nth(1).unwrap_or("0").parse::<u64>()? * 4096;
    let t = Instant::now();
    let total: usize = last.paths().take(100).map(|p| last.read(&p).map_or(0, |v| v.len())).sum();
    println!("top {top}: {rate:.2} M/s, rss {} MiB, {:.1} B/record, read 100 paths ({total} records) {:?}", rss >> 20, rss as f64 / n as f64, t.elapsed());
    Ok(())
}
