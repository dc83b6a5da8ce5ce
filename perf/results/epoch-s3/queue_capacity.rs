use lockstep::merge::Sum;
use lockstep::{DiscardSink, Pipeline, Retention};
use std::time::{Duration, Instant};
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let top: u32 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(8);
    let all = std::env::args().nth(2).is_some();
    let q: usize = std::env::var("Q").ok().and_then(|v| v.parse().ok()).unwrap_or(4096); let b = Pipeline::builder(Sum).shards(1).max_level(top).queue_capacity(q);
    let pipeline = if all { b.build()? } else { b.sink(DiscardSink).retain(Retention::Newest(1)).build()? };
    let paths: Vec<String> = (0..10_000).map(|i| format!("/p/{i:05}")).collect();
    let mut producer = pipeline.producer()?;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(4) {
        for _ in 0..1024 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            producer.commit([(&paths[(state % 10_000) as usize], 1i64)])?;
        }
        n += 1024;
    }
    println!("{:.1} M/s", n as f64 / started.elapsed().as_secs_f64() / 1e6);
    drop(producer);
    pipeline.shutdown()?;
   
    Ok(())
}
