//! The layout check: after shutdown, how many segments each level holds, and whether every
//! segment of every path lies on the arithmetic grid.
//!
//! On the grid, a level-0 segment is one commit and a level-`L` one covers
//! `end - D^L + 1 ..= end` with `end % D^L == 0`. Two paths' segments on the grid either cover
//! the same range or are disjoint, which is what lets them be rolled up across paths. lockstep
//! guarantees it; the count-driven baselines (`mutex`, `channel`) are checked the same way, and
//! are expected to miss it whenever paths are written at different commits.

use lockstep::SegmentInfo;

/// Problems listed in full; the rest are only counted.
const LISTED: usize = 10;

/// What the check found.
#[derive(Debug, Default, Clone)]
pub struct Layout {
    pub paths: u64,
    pub segments: u64,
    /// Segments per level, index = level.
    pub per_level: Vec<u64>,
    /// Segments with at least one problem.
    pub off_grid: u64,
    /// The first few problems, described.
    pub listed: Vec<String>,
}

impl Layout {
    /// An empty layout with levels `0..=max_level`.
    pub fn new(max_level: u32) -> Self {
        Self { per_level: vec![0; max_level as usize + 1], ..Self::default() }
    }

    pub fn aligned(&self) -> bool {
        self.off_grid == 0
    }

    /// Checks one path's segments, ascending, against the grid of `divisor` and the final
    /// `frontier`. Also: segments ascend without overlap and end at or below the frontier.
    pub fn add_path(&mut self, path: &str, segments: &[SegmentInfo], divisor: u64, frontier: u64) {
        self.paths += 1;
        let mut previous_end = 0;
        for segment in segments {
            self.segments += 1;
            let level = segment.level as usize;
            if self.per_level.len() <= level {
                self.per_level.resize(level + 1, 0);
            }
            self.per_level[level] += 1;
            let problem = if segment.start <= previous_end {
                Some("overlaps or precedes the previous segment")
            } else if segment.end > frontier {
                Some("ends past the frontier")
            } else {
                off_grid(segment, divisor)
            };
            previous_end = segment.end;
            if let Some(why) = problem {
                self.off_grid += 1;
                if self.listed.len() < LISTED {
                    let SegmentInfo { level, start, end } = segment;
                    self.listed.push(format!("{path}: level {level} [{start}, {end}]: {why}"));
                }
            }
        }
    }
}

/// Why `segment` is not on the grid of `divisor`, if it is not.
fn off_grid(segment: &SegmentInfo, divisor: u64) -> Option<&'static str> {
    match divisor.checked_pow(segment.level) {
        None => Some("D^level overflows u64"),
        Some(1) if segment.start != segment.end => Some("level 0 covers more than one commit"),
        Some(span) if !segment.end.is_multiple_of(span) => Some("end is not a multiple of D^level"),
        Some(span) if segment.end.checked_sub(span - 1) != Some(segment.start) => {
            Some("start is not end - D^level + 1")
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockstep::{merge::Sum, Pipeline};

    fn segment(level: u32, start: u64, end: u64) -> SegmentInfo {
        SegmentInfo { level, start, end }
    }

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
        let mut layout = Layout::new(3);
        for path in last.paths() {
            layout.add_path(path, &last.segments(path), 2, last.frontier());
        }
        assert!(layout.aligned(), "{:?}", layout.listed);
        assert_eq!(layout.paths, 2);
        Ok(())
    }

    #[test]
    fn count_driven_boundaries_are_caught() {
        // Divisor 2: a path written at commits 1, 3, 5, 7 compacted by count gets [1, 3] and
        // [5, 7] at level 1, which the grid does not have.
        let mut layout = Layout::new(2);
        layout.add_path("/odd", &[segment(1, 1, 3), segment(1, 5, 7)], 2, 8);
        layout.add_path("/every", &[segment(2, 1, 4), segment(1, 5, 6), segment(0, 7, 7)], 2, 8);
        assert_eq!(layout.segments, 5);
        assert_eq!(layout.per_level, [1, 3, 1]);
        assert_eq!(layout.off_grid, 2);
        assert!(!layout.aligned());
        assert!(layout.listed[0].contains("/odd: level 1 [1, 3]"), "{:?}", layout.listed);
    }

    #[test]
    fn overlaps_and_segments_past_the_frontier_are_caught() {
        let mut layout = Layout::new(1);
        layout.add_path("/a", &[segment(1, 1, 2), segment(0, 2, 2), segment(0, 9, 9)], 2, 8);
        assert_eq!(layout.off_grid, 2);
    }
}
