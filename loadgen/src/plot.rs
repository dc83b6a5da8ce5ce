//! The latency chart: percentile curves of every engine run, on one SVG.
//!
//! As HdrHistogram plots do, the x axis is the percentile on a log scale of `1 / (1 - p)`, so
//! 0%, 90%, 99%, 99.9%, 99.99% are evenly spaced, and the y axis is latency in microseconds,
//! also on a log scale. One colour per engine; the commit call solid, commit-to-visible dashed.
//! The SVG backend needs no font library: text is left to whatever displays the file.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::engine::Kind;
use crate::run::Measured;

const SIZE: (u32, u32) = (1100, 650);
/// Ticks per half distance to 100%, as in the `.hgrm` files.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// One curve: (nines, microseconds) points, where nines = log10(1 / (1 - p)).
#[derive(Debug, Clone, PartialEq)]
struct Curve {
    label: String,
    color: RGBColor,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

fn color(kind: Kind) -> RGBColor {
    match kind {
        Kind::Lockstep => RGBColor(31, 119, 180),
        Kind::Mutex => RGBColor(214, 39, 40),
        Kind::Channel => RGBColor(44, 160, 44),
        Kind::Raw => RGBColor(110, 110, 110),
    }
}

/// The points of `histogram` (nanoseconds): one per quantile step below 100%.
fn points(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    histogram
        .iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .filter(|step| step.quantile_iterated_to() < 1.0)
        .map(|step| {
            let nines = -(1.0 - step.quantile_iterated_to()).log10();
            // Log axis: a zero latency is drawn at the lowest value the histogram resolves.
            (nines, step.value_iterated_to().max(1) as f64 / 1000.0)
        })
        .collect()
}

fn curves(runs: &[Measured]) -> Vec<Curve> {
    let mut curves = Vec::new();
    for m in runs {
        for (what, histogram, dashed) in
            [("commit call", &m.commit_latency, false), ("commit-to-visible", &m.visible_latency, true)]
        {
            let points = points(histogram);
            if !points.is_empty() {
                curves.push(Curve {
                    label: format!("{} {what}", m.kind),
                    color: color(m.kind),
                    dashed,
                    points,
                });
            }
        }
    }
    curves
}

/// The percentile at `nines` (0 → "0%", 2 → "99%"), for whole numbers of nines only.
fn percentile_label(nines: f64) -> String {
    if nines < 0.0 || (nines - nines.round()).abs() > 1e-9 {
        return String::new();
    }
    let percent = 100.0 * (1.0 - 10f64.powf(-nines.round()));
    let decimals = (nines.round() as usize).saturating_sub(2);
    format!("{percent:.decimals$}%")
}

fn micros_label(us: f64) -> String {
    if us >= 1.0 {
        format!("{us:.0}")
    } else {
        format!("{us:.2}")
    }
}

/// Draws every run's curves to `path` as SVG.
pub fn draw(path: &Path, runs: &[Measured]) -> Result<(), String> {
    let curves = curves(runs);
    let all = || curves.iter().flat_map(|c| c.points.iter().copied());
    let max_nines = all().map(|(x, _)| x).fold(1.0, f64::max).ceil();
    let low = all().map(|(_, y)| y).fold(f64::INFINITY, f64::min);
    let high = all().map(|(_, y)| y).fold(0.0, f64::max);
    let (low, high) = if low.is_finite() && high > 0.0 { (low / 1.5, high * 1.5) } else { (0.1, 1000.0) };

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    let error = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("loadgen: latency by percentile", ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..max_nines, (low..high).log_scale())
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_labels(max_nines as usize + 1)
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| micros_label(*y))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| error(&e))?;
    for curve in &curves {
        let style = curve.color.stroke_width(2);
        let annotation = if curve.dashed {
            chart.draw_series(DashedLineSeries::new(curve.points.iter().copied(), 6, 4, style))
        } else {
            chart.draw_series(LineSeries::new(curve.points.iter().copied(), style))
        }
        .map_err(|e| error(&e))?;
        let (color, dashed) = (curve.color, curve.dashed);
        annotation.label(curve.label.clone()).legend(move |(x, y)| {
            let end = if dashed { x + 8 } else { x + 20 };
            PathElement::new(vec![(x, y), (end, y)], color.stroke_width(2))
        });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| error(&e))?;
    root.present().map_err(|e| error(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::histogram;

    #[test]
    fn percentiles_are_labelled_like_hdrhistogram_plots() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(5.0), "99.999%");
        assert_eq!(percentile_label(2.5), "");
    }

    #[test]
    fn points_climb_in_nines_and_latency() {
        let mut h = histogram();
        for v in 1..=10_000u64 {
            h.record(v * 100).unwrap();
        }
        let points = points(&h);
        assert!(points.len() > 20);
        assert_eq!(points[0].0, 0.0);
        assert!(points.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        // Values 0.1 µs to 1000 µs, evenly: the value at quantile q is about 1000 q µs.
        for &(nines, us) in &points[1..] {
            let q = 1.0 - 10f64.powf(-nines);
            assert!((us - 1000.0 * q).abs() <= 1000.0 * q * 0.01 + 0.1, "{nines} nines: {us} µs");
        }
        assert!(points.last().unwrap().0 > 3.0);
        assert!(super::points(&histogram()).is_empty());
    }
}
