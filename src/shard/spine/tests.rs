//! The spine on fixed cases: the seed case, and commit-by-commit turns.

use super::*;
use crate::merge::{Column, Concat};
use crate::tier::SegmentInfo;

fn rows(commits: &[(u64, u32)]) -> Vec<Row<u64>> {
    commits.iter().map(|&(commit, id)| Row { commit, id, record: commit }).collect()
}

fn layout(spine: &Spine<Concat<u64>>, id: u32, cut: u64) -> Vec<SegmentInfo> {
    let view = spine.view();
    let mut found = Vec::new();
    view.find(id, &mut found);
    let infos = found.iter().map(|(batch, segment)| batch.info(&spine.geometry, *segment));
    infos.filter(|info| info.end <= cut).collect()
}

fn settle(spine: &mut Spine<Concat<u64>>) {
    let mut fuel = usize::MAX;
    spine.work(&Concat::new(), &mut fuel);
}

#[test]
fn a_turn_forms_the_highest_blocks_and_the_seed_case_aligns() {
    let geometry = Geometry::new(2, 3).expect("valid");
    let mut spine = Spine::new(geometry, None, None);
    // Path 0 at every commit, path 1 at odd ones, 13 commits in one turn.
    let mut commits: Vec<(u64, u32)> = (1..=13).map(|c| (c, 0)).collect();
    commits.extend((1..=13).step_by(2).map(|c| (c, 1)));
    spine.seal(&Concat::new(), &mut rows(&commits), 13, 13);
    settle(&mut spine);
    let expected = [
        SegmentInfo { level: 3, start: 1, end: 8 },
        SegmentInfo { level: 2, start: 9, end: 12 },
        SegmentInfo { level: 0, start: 13, end: 13 },
    ];
    assert_eq!(layout(&spine, 0, 13), expected);
    assert_eq!(layout(&spine, 1, 13), expected);
    let view = spine.view();
    let handed = view.history.as_ref().map_or(0, |(_, runs)| *runs);
    assert_eq!((handed, view.batches.len()), (1, 2), "one batch per range, for both paths");
}

#[test]
fn commit_by_commit_merges_to_the_same_layout_and_records() {
    let geometry = Geometry::new(2, 3).expect("valid");
    let mut spine = Spine::new(geometry, None, None);
    for commit in 1..=13u64 {
        let mut parts = vec![(commit, 0)];
        if commit % 2 == 1 {
            parts.push((commit, 1));
        }
        // The bound lags one commit behind, as with a second shard.
        spine.seal(&Concat::new(), &mut rows(&parts), commit, commit - 1);
        let mut fuel = 1;
        spine.work(&Concat::new(), &mut fuel);
    }
    spine.seal(&Concat::new(), &mut Vec::new(), 13, 13);
    settle(&mut spine);
    assert_eq!(layout(&spine, 1, 13), layout(&spine, 0, 13));
    let view = spine.view();
    let mut found = Vec::new();
    view.find(1, &mut found);
    let odd: Vec<Part<'_, _>> = found.iter().map(|(batch, segment)| batch.part(*segment)).collect();
    let read = <_ as Column<Concat<u64>>>::read(&Concat::new(), &odd);
    assert_eq!(read, (1..=13).step_by(2).map(|c| (c, c)).collect::<Vec<_>>());
}
