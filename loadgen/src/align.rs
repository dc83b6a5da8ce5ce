//! The alignment check: after shutdown, every segment of every path lies on the arithmetic grid.

use lockstep::{Merge, SegmentInfo, Snapshot};

/// Problems listed in full; the rest are only counted.
const LISTED: usize = 10;

/// What the check found.
#[derive(Debug, Default)]
pub struct Alignment {
    pub paths: u64,
    pub segments: u64,
    /// Segments per level, index = level.
    pub per_level: Vec<u64>,
    pub problems: u64,
    /// The first few problems, described.
    pub listed: Vec<String>,
}

impl Alignment {
    pub fn ok(&self) -> bool {
        self.problems == 0
    }

    fn problem(&mut self, path: &str, segment: &SegmentInfo, why: &str) {
        self.problems += 1;
        if self.listed.len() < LISTED {
            let SegmentInfo { level, start, end } = segment;
            self.listed.push(format!("{path}: level {level} [{start}, {end}]: {why}"));
        }
    }
}

/// Checks every segment of every path in `snapshot`: a level-0 segment is one commit
/// (`start == end`); a level-`L` one covers `end - D^L + 1 ..= end` with `end % D^L == 0`.
/// Also: segments ascend without overlap and end at or below the frontier.
pub fn check<M: Merge>(snapshot: &Snapshot<M>, divisor: u64) -> Alignment {
    let mut found = Alignment::default();
    let frontier = snapshot.frontier();
    for path in snapshot.paths() {
        found.paths += 1;
        let mut previous_end = 0;
        for segment in snapshot.segments(path) {
            found.segments += 1;
            let level = segment.level as usize;
            if found.per_level.len() <= level {
                found.per_level.resize(level + 1, 0);
            }
            found.per_level[level] += 1;
            if segment.start <= previous_end {
                found.problem(path, &segment, "overlaps or precedes the previous segment");
            }
            if segment.end > frontier {
                found.problem(path, &segment, "ends past the frontier");
            }
            previous_end = segment.end;
            match divisor.checked_pow(segment.level) {
                None => found.problem(path, &segment, "D^level overflows u64"),
                Some(1) if segment.start != segment.end => {
                    found.problem(path, &segment, "level 0 covers more than one commit")
                }
                Some(span) => {
                    if segment.end % span != 0 {
                        found.problem(path, &segment, "end is not a multiple of D^level");
                    }
                    if segment.end.checked_sub(span - 1) != Some(segment.start) {
                        found.problem(path, &segment, "start is not end - D^level + 1");
                    }
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockstep::{merge::Sum, Pipeline};

    #[test]
    fn a_finished_pipeline_is_aligned() -> Result<(), lockstep::Error> {
        let pipeline = Pipeline::builder(Sum).shards(2).divisor(2).max_level(3).build()?;
        let mut producer = pipeline.producer()?;
        for commit in 1..=13i64 {
            producer.commit([("/every", commit)])?;
            if commit % 2 == 1 {
                producer.commit([("/odd", commit)])?;
            }
        }
        let last = pipeline.shutdown()?;
        let alignment = check(&last, 2);
        assert!(alignment.ok(), "{:?}", alignment.listed);
        assert_eq!(alignment.paths, 2);
        Ok(())
    }
}
