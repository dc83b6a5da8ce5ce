//! The memory target, f: resident memory over the long run at peak, and its chart.

use std::fmt::Write as _;
use std::path::Path;

use super::page::{verdict, Page};
use crate::numbers::{general, mib, si};
use crate::results::{command_of, load, number, run_of};
use crate::svg::{color, nice_ceiling, svg_open};

/// The row of experiment f: resident memory over the long run, and its chart. Returns the
/// chart, to be written to `targets/f.rss.svg`.
pub fn f(page: &mut Page, out: &Path) -> Option<String> {
    let (json, csv) = (out.join("f.json"), out.join("f.rss.csv"));
    let (Ok(doc), Ok(csv_text)) = (load(&json), std::fs::read_to_string(&csv)) else { return None };
    let seconds = |key: &str| doc["config"][key].as_f64().unwrap_or(0.0);
    let (warmup, duration) = (seconds("warmup_secs"), seconds("duration_secs"));
    let samples: Vec<(f64, u64)> = csv_text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (t, kib) = line.trim().split_once(',')?;
            Some((t.parse().ok()?, kib.parse().ok()?))
        })
        .collect();
    let at10 = samples.iter().copied().find(|&(t, _)| t >= 10.0);
    let end = samples.iter().copied().rfind(|&(t, _)| t <= warmup + duration);
    let mut chart = None;
    if let (Some(at10), Some(end)) = (at10, end) {
        let r = end.1 as f64 / at10.1 as f64;
        let later = samples
            .iter()
            .filter(|&&(t, _)| at10.0 <= t && t <= end.0)
            .map(|&(_, k)| k)
            .max()
            .unwrap_or(at10.1);
        page.row(
            "f",
            format!("{} s closed loop (peak), DiscardSink: VmRSS at the end ÷ at 10 s", general(duration, 6)),
            "<= 1.2x",
            format!("{r:.2}x"),
            verdict(Some(r), 1.2, false),
            format!(
                "{:.1} MiB at {:.0} s, {:.1} MiB at {:.0} s",
                at10.1 as f64 / 1024.0,
                at10.0,
                end.1 as f64 / 1024.0,
                end.0
            ),
        );
        let run = run_of(&doc, "lockstep");
        page.details.push(format!(
            "- f: VmRSS sampled every 1 s from launch (warm-up {} s, then {} s measured); highest sample between \
             10 s and the end {:.1} MiB ({:.2}x the 10 s value); loadgen's own peak RSS {}; records/s over the run \
             {}; {} samples in `targets/f.rss.csv`, chart `targets/f.rss.svg`",
            general(warmup, 6),
            general(duration, 6),
            later as f64 / 1024.0,
            later as f64 / at10.1 as f64,
            mib(number(run, "peak_rss_bytes")),
            si(number(run, "records_per_sec")),
            samples.len()
        ));
        chart = Some(rss(&samples, at10, end));
    }
    page.commands.push(("f".to_owned(), command_of(&json)));
    chart
}

/// Resident memory over the long run: `samples` are (seconds since launch, KiB); `at10` and
/// `end` are marked.
fn rss(samples: &[(f64, u64)], at10: (f64, u64), end: (f64, u64)) -> String {
    let (width, height, left, top, chart_w, chart_h) = (640u32, 300u32, 70u32, 40u32, 540u32, 210u32);
    let t_max = samples.iter().map(|s| s.0).fold(0.0, f64::max);
    let t_max = if t_max == 0.0 { 1.0 } else { t_max };
    let k_max = nice_ceiling(samples.iter().map(|s| s.1).max().unwrap_or(0) as f64 / 1024.0);
    let xy = |t: f64, kib: f64| {
        (
            f64::from(left) + f64::from(chart_w) * t / t_max,
            f64::from(top) + f64::from(chart_h) * (1.0 - kib / 1024.0 / k_max),
        )
    };
    let mut out = vec![
        svg_open(width, height),
        "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">lockstep VmRSS over the long run \
         (MiB; sampled every 1 s)</text>"
            .to_owned(),
    ];
    for i in 0..6 {
        let v = k_max * f64::from(i) / 5.0;
        let (_, y) = xy(0.0, v * 1024.0);
        out.push(format!(
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>",
            left + chart_w
        ));
        out.push(format!(
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            left - 6,
            y + 4.0,
            general(v, 6)
        ));
    }
    let step = if t_max > 30.0 { 10 } else { 5 };
    let mut t = 0u32;
    while f64::from(t) <= t_max {
        let (x, _) = xy(f64::from(t), 0.0);
        out.push(format!(
            "<text x=\"{x:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{t} s</text>",
            top + chart_h + 16
        ));
        t += step;
    }
    let mut points = String::new();
    for (i, &(t, k)) in samples.iter().enumerate() {
        let (x, y) = xy(t, k as f64);
        let _ = write!(points, "{}{x:.1},{y:.1}", if i == 0 { "" } else { " " });
    }
    out.push(format!(
        "<polyline points=\"{points}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
        color("lockstep")
    ));
    for ((t, k), name, anchor) in [(at10, "10 s", "middle"), (end, "end", "end")] {
        let (x, y) = xy(t, k as f64);
        out.push(format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"#d62728\"/>"));
        out.push(format!(
            "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"{anchor}\">{name}: {:.1} MiB</text>",
            y - 8.0,
            k as f64 / 1024.0
        ));
    }
    out.push("</svg>".to_owned());
    out.join("\n")
}
