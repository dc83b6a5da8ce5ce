//! The targets (`perf/targets.sh`): one row per target of experiments a–f, with its goal, the
//! median, the verdict and every run's figure, then details, commands and the machine.
//!
//! Every ratio is taken inside one loadgen process (lockstep's figure over another engine's in
//! the same run), or between the two runs of one back-to-back pair; the median of those ratios
//! is reported, never a ratio of medians from different runs.

use std::path::Path;

use crate::results::experiment;

mod latency;
mod memory;
mod page;
mod throughput;

use page::Page;

/// targets.md from the runs in `out` (`<results>/targets`), and f's chart if f ran; `None`
/// when no target has a run there (a page kept from runs since deleted stays as it is).
pub fn render(out: &Path) -> Option<(String, Option<String>)> {
    let mut page = Page::default();
    let (a_runs, b_runs, c_runs) = (experiment(out, "a"), experiment(out, "b"), experiment(out, "c"));
    let (e2, e8) = (experiment(out, "e-p2"), experiment(out, "e-p8"));
    if !a_runs.is_empty() {
        throughput::a(&mut page, &a_runs);
    }
    if !b_runs.is_empty() {
        throughput::b(&mut page, &b_runs);
    }
    if !c_runs.is_empty() {
        latency::c(&mut page, &c_runs, out);
    }
    throughput::d(&mut page, out);
    if !e2.is_empty() && !e8.is_empty() {
        throughput::e(&mut page, &e2, &e8);
    }
    let chart = memory::f(&mut page, out);
    if page.rows.is_empty() {
        return None;
    }

    let mut lines = vec![
        "| | target | goal | measured (median) | verdict | per run |".to_owned(),
        "| --- | --- | --- | ---: | --- | --- |".to_owned(),
    ];
    lines.extend(page.rows.iter().map(|row| format!("| {} |", row.join(" | "))));
    lines.extend(["".to_owned(), "Details:".to_owned(), "".to_owned()]);
    lines.extend(page.details);
    lines.extend([
        "".to_owned(),
        "Commands (each run REPEAT times by `perf/targets.sh`):".to_owned(),
        "".to_owned(),
    ]);
    for (name, command) in page.commands {
        if let Some(command) = command.filter(|c| !c.is_empty()) {
            lines.push(format!("- {name}: `{command}`"));
        }
    }
    if let Ok(machine) = std::fs::read_to_string(out.join("machine.txt")) {
        lines.extend([
            "".to_owned(),
            "Machine (`targets/machine.txt`):".to_owned(),
            "".to_owned(),
            "```".to_owned(),
            machine.trim_end().to_owned(),
            "```".to_owned(),
        ]);
    }
    Some((lines.join("\n"), chart))
}
