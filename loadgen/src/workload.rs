//! The workload: path names, records, and each producer's choice of parts.
//!
//! Everything a producer commits is generated before the clock starts: path names once for the
//! whole run, a pool of records once per producer. The hot loop only draws random indexes and
//! makes each part's record from the pool ([`Kind::make`]: a copy, an allocation and a copy,
//! or a reference count, as `--record` says). Every engine gets exactly the same parts, drawn
//! the same way.

use std::fmt;
use std::str::FromStr;

use crate::record::Kind;
use crate::rng::Rng;
use crate::zipf::Zipf;

/// One part of a commit: a path and its record.
pub type Part<R> = (Path, R);

/// A path of the workload: its index (`0..paths`, for engines that resolve paths once, as
/// lockstep does with keys) and where its name is. The name is read only by an engine that asks
/// for it: with a million paths the table of names is a cache miss per lookup, which an engine
/// committing by key must not be charged for. Names live as long as the process (see
/// [`Workload::new`]), so engines may pass them between threads without copying them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path {
    pub index: u32,
    names: &'static [&'static str],
}

impl Path {
    /// The path's name: one load from the workload's table of names.
    #[inline]
    pub fn name(self) -> &'static str {
        self.names[self.index as usize]
    }

    /// How many paths the workload has (one more than the highest index).
    pub fn paths(self) -> usize {
        self.names.len()
    }
}

/// At most this many distinct records per producer.
const RECORD_POOL: usize = 1024;
/// At most this many payload bytes per producer's pool.
const POOL_BYTES: usize = 16 << 20;

/// How the paths of a commit's parts are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// Every path equally likely.
    Uniform,
    /// Path of rank `r` (1-based, `/p/00000000` is rank 1) drawn with probability proportional
    /// to `1 / r^s`: a few hot paths and a long tail.
    Zipf(f64),
    /// Paths split into `k` groups (path `i` is in group `i % k`); a producer's `c`-th commit
    /// draws its paths uniformly from group `c % k`, so a path is written at most every `k`-th
    /// commit. `sparse:2` is the seed's odd-commit case.
    Sparse(u64),
}

impl FromStr for Distribution {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (kind, arg) = match text.split_once(':') {
            Some((kind, arg)) => (kind, Some(arg)),
            None => (text, None),
        };
        match (kind, arg) {
            ("uniform", None) => Ok(Self::Uniform),
            ("zipf", Some(arg)) => match arg.parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 && s <= 100.0 => Ok(Self::Zipf(s)),
                Ok(_) => Err(format!("zipf exponent {arg:?} must be above 0 and at most 100 (try zipf:1.1)")),
                Err(_) => Err(format!("zipf exponent {arg:?} is not a number (try zipf:1.1)")),
            },
            ("sparse", Some(arg)) => match arg.parse::<u64>() {
                Ok(k) if k >= 1 => Ok(Self::Sparse(k)),
                _ => {
                    Err(format!("sparse period {arg:?} must be a whole number of at least 1 (try sparse:2)"))
                }
            },
            ("zipf" | "sparse", None) => {
                Err(format!("{kind} needs a parameter: {kind}:<value>, e.g. zipf:1.1, sparse:2"))
            }
            _ => Err(format!("unknown distribution {text:?}: use uniform, zipf:<s> or sparse:<k>")),
        }
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uniform => write!(f, "uniform"),
            Self::Zipf(s) => write!(f, "zipf:{s}"),
            Self::Sparse(k) => write!(f, "sparse:{k}"),
        }
    }
}

/// The shape of the load, shared by every producer and every engine.
#[derive(Debug)]
pub struct Workload {
    paths: &'static [&'static str],
    distribution: Distribution,
    record_bytes: usize,
    parts_per_commit: usize,
}

impl Workload {
    /// `paths` names `/p/00000000`, `/p/00000001`, … (at least eight digits).
    ///
    /// The names (and their table) are leaked on purpose: they live as long as the process, so
    /// every engine can hand `&'static str` paths to its own threads without copying or
    /// reference counting them, and no engine is charged for how the load generator keeps its
    /// names.
    pub fn new(
        paths: usize,
        distribution: Distribution,
        record_bytes: usize,
        parts_per_commit: usize,
    ) -> Self {
        let width = paths.saturating_sub(1).to_string().len().max(8);
        let paths = (0..paths).map(|i| &*Box::leak(format!("/p/{i:0width$}").into_boxed_str())).collect();
        Self { paths: Vec::leak(paths), distribution, record_bytes, parts_per_commit }
    }

    /// How many paths there are.
    pub fn paths(&self) -> usize {
        self.paths.len()
    }

    pub fn distribution(&self) -> Distribution {
        self.distribution
    }

    pub fn parts_per_commit(&self) -> usize {
        self.parts_per_commit
    }

    pub fn record_bytes(&self) -> usize {
        self.record_bytes
    }

    /// Producer `index`'s generator: its own random stream and its own record pool. The same
    /// index gives the same sequence of parts, whichever engine runs.
    pub fn generator<K: Kind>(&self, index: usize) -> Generator<K> {
        let mut rng = Rng::new(0x5EED_0000_0000_0000 ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let pool = (POOL_BYTES / self.record_bytes.max(1)).clamp(1, RECORD_POOL);
        let records = (0..pool).map(|_| K::pooled(&mut rng, self.record_bytes)).collect();
        let n = self.paths.len() as u64;
        let draw = match self.distribution {
            Distribution::Uniform => Draw::Uniform,
            Distribution::Zipf(s) => Draw::Zipf(Zipf::new(n, s)),
            // More groups than paths would leave groups empty; main refuses that.
            Distribution::Sparse(k) => Draw::Sparse(k.min(n)),
        };
        Generator {
            paths: self.paths,
            draw,
            records,
            next_record: 0,
            commits: 0,
            rng,
            parts: self.parts_per_commit,
        }
    }
}

#[derive(Debug)]
enum Draw {
    Uniform,
    Zipf(Zipf),
    Sparse(u64),
}

/// Draws the parts of one producer's commits.
#[derive(Debug)]
pub struct Generator<K: Kind> {
    paths: &'static [&'static str],
    draw: Draw,
    records: Vec<K::Record>,
    next_record: usize,
    /// Commits filled so far; the sparse distribution picks its group from it.
    commits: u64,
    rng: Rng,
    parts: usize,
}

impl<K: Kind> Generator<K> {
    /// Fills `parts` (cleared first) with one commit's parts: each names a path drawn from the
    /// distribution, independently of the others (a commit may name a path twice), and carries
    /// a record made from the pool's next one.
    #[inline]
    pub fn fill(&mut self, parts: &mut Vec<Part<K::Record>>) {
        parts.clear();
        self.commits += 1;
        for _ in 0..self.parts {
            let index = self.path_index();
            let record = self.record();
            parts.push((Path { index: index as u32, names: self.paths }, record));
        }
    }

    /// Parts per commit.
    pub fn parts(&self) -> usize {
        self.parts
    }

    /// A record made from the pool's next one, without a path: what the `limit` row hands over.
    #[inline]
    pub fn record(&mut self) -> K::Record {
        let record = K::make(&self.records[self.next_record]);
        self.next_record += 1;
        if self.next_record == self.records.len() {
            self.next_record = 0;
        }
        record
    }

    #[inline]
    fn path_index(&mut self) -> usize {
        let n = self.paths.len() as u64;
        let index = match &self.draw {
            Draw::Uniform => self.rng.below(n),
            Draw::Zipf(zipf) => zipf.sample(&mut self.rng) - 1,
            Draw::Sparse(k) => {
                // Group g holds the paths g, g + k, g + 2k, … below n.
                let group = self.commits % k;
                let members = (n - group).div_ceil(*k);
                group + self.rng.below(members) * k
            }
        };
        index as usize
    }

    /// The generator's random stream, for the producer's sampling decisions.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Shared;

    #[test]
    fn parts_have_the_configured_shape() {
        let workload = Workload::new(100, Distribution::Uniform, 16, 3);
        let mut generator = workload.generator::<Shared>(0);
        let mut parts = Vec::new();
        generator.fill(&mut parts);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|(path, record)| path.name().len() == 11 && record.len() == 16));
        assert!(parts.iter().all(|(path, _)| path.name().starts_with("/p/000000")));
        assert!(parts.iter().all(|(path, _)| path.name()[3..].parse::<u32>().ok() == Some(path.index)));
    }

    #[test]
    fn distributions_parse_and_print_back() {
        for text in ["uniform", "zipf:1.1", "zipf:0.5", "sparse:2", "sparse:1"] {
            let parsed: Distribution = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        for bad in
            ["zipf:x", "zipf:", "zipf", "zipf:0", "zipf:-1", "zipf:inf", "zipf:NaN", "sparse:0", "sparse:x"]
        {
            assert!(bad.parse::<Distribution>().is_err(), "{bad} was accepted");
        }
        for bad in ["sparse:1.5", "uniform:2", "normal", ""] {
            assert!(bad.parse::<Distribution>().is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn sparse_writes_each_path_only_in_its_group_of_commits() {
        let k = 3;
        let workload = Workload::new(10, Distribution::Sparse(k), 8, 4);
        let mut generator = workload.generator::<Shared>(0);
        let mut parts = Vec::new();
        let mut seen = [false; 10];
        for commit in 1..=300u64 {
            generator.fill(&mut parts);
            for (path, _) in &parts {
                let index = u64::from(path.index);
                assert_eq!(index % k, commit % k, "commit {commit} wrote {}", path.name());
                seen[index as usize] = true;
            }
        }
        assert!(seen.iter().all(|&s| s), "some path was never written: {seen:?}");
    }

    #[test]
    fn sparse_two_is_the_odd_commit_case() {
        let workload = Workload::new(2, Distribution::Sparse(2), 8, 1);
        let mut generator = workload.generator::<Shared>(0);
        let mut parts = Vec::new();
        for commit in 1..=10u64 {
            generator.fill(&mut parts);
            let expected = if commit % 2 == 1 { "/p/00000001" } else { "/p/00000000" };
            assert_eq!(parts[0].0.name(), expected);
        }
    }

    #[test]
    fn the_same_producer_index_draws_the_same_parts() {
        let workload = Workload::new(1000, Distribution::Zipf(1.2), 8, 2);
        let (mut a, mut b) = (workload.generator::<Shared>(3), workload.generator::<Shared>(3));
        let (mut pa, mut pb) = (Vec::new(), Vec::new());
        for _ in 0..100 {
            a.fill(&mut pa);
            b.fill(&mut pb);
            assert_eq!(pa, pb);
        }
    }
}
