//! The latency chart: percentile curves of every engine run, on one SVG.
//!
//! As HdrHistogram plots do, the x axis is the percentile on a log scale of `1 / (1 - p)`, so
//! 0%, 90%, 99%, 99.9%, 99.99% are evenly spaced, and the y axis is latency in microseconds,
//! also on a log scale. One colour per engine; the commit call solid, commit-to-visible dashed.
//! Below, when the run kept intervals, commit-to-visible p50 (thin, faint), p99 (thick) and max
//! (dashed) of each interval over time, engine after engine, so a stall shows where it
//! happened; the legend draws each sample with the curve's own style. Legends sit in a strip of
//! their own, clear of the curves; the title says what ran, in which mode, at which commit.
//! The SVG backend needs no font library: text is left to whatever displays the file.

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::engine::Kind;
use crate::palette;
use crate::run::Measured;

const SIZE: (u32, u32) = (1280, 900);
/// The strip on the right that holds the legends.
const LEGEND_WIDTH: u32 = 300;
/// Ticks per half distance to 100%, as in the `.hgrm` files.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// How a line is drawn: the legend draws its sample with the same style, so what the legend
/// says is what the chart shows. Three properties, each visible on its own (in the SVG: the
/// `opacity` and `stroke-width` attributes, and a dashed line drawn as separate segments).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Style {
    /// 0 (invisible) to 1 (opaque).
    opacity: f64,
    width: u32,
    dashed: bool,
}

impl Style {
    /// The top panel: the commit call, and commit-to-visible.
    const CALL: Style = Style { opacity: 1.0, width: 2, dashed: false };
    const VISIBLE: Style = Style { opacity: 1.0, width: 2, dashed: true };
    /// The bottom panel: p50 thin and faint, p99 thick and solid, max thin and dashed.
    const P50: Style = Style { opacity: 0.45, width: 1, dashed: false };
    const P99: Style = Style { opacity: 1.0, width: 3, dashed: false };
    const MAX: Style = Style { opacity: 1.0, width: 1, dashed: true };

    fn shape(self, color: RGBColor) -> ShapeStyle {
        color.mix(self.opacity).stroke_width(self.width)
    }
}

/// One curve: (nines, microseconds) points, where nines = log10(1 / (1 - p)).
#[derive(Debug, Clone, PartialEq)]
struct Curve {
    label: String,
    color: RGBColor,
    style: Style,
    points: Vec<(f64, f64)>,
}

fn color(kind: Kind) -> RGBColor {
    let (r, g, b) = palette::rgb(kind.name());
    RGBColor(r, g, b)
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
        for (what, histogram, style) in [
            ("commit call", &m.commit_latency, Style::CALL),
            ("commit-to-visible", &m.visible_latency, Style::VISIBLE),
        ] {
            let points = points(histogram);
            if !points.is_empty() {
                curves.push(Curve {
                    label: format!("{} {what}", m.kind),
                    color: color(m.kind),
                    style,
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

/// One line of the second panel: (seconds since the run started, microseconds).
fn over_time(runs: &[(f64, &Measured)]) -> Vec<Curve> {
    let mut curves = Vec::new();
    for &(offset, m) in runs {
        for (what, quantile, style) in
            [("p50", Some(0.5), Style::P50), ("p99", Some(0.99), Style::P99), ("max", None, Style::MAX)]
        {
            let points: Vec<(f64, f64)> = m
                .intervals
                .iter()
                .filter(|i| !i.visible.is_empty())
                .map(|i| {
                    let value = match quantile {
                        Some(q) => i.visible.value_at_quantile(q),
                        None => i.visible.max(),
                    };
                    (offset + (i.start + i.length).as_secs_f64(), value.max(1) as f64 / 1000.0)
                })
                .collect();
            if !points.is_empty() {
                curves.push(Curve {
                    label: format!("{} visible {what}", m.kind),
                    color: color(m.kind),
                    style,
                    points,
                });
            }
        }
    }
    curves
}

fn bounds(curves: &[Curve]) -> (f64, f64) {
    let all = || curves.iter().flat_map(|c| c.points.iter().copied());
    let low = all().map(|(_, y)| y).fold(f64::INFINITY, f64::min);
    let high = all().map(|(_, y)| y).fold(0.0, f64::max);
    if low.is_finite() && high > 0.0 {
        (low / 1.5, high * 1.5)
    } else {
        (0.1, 1000.0)
    }
}

fn draw_curves<DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    curves: &[Curve],
) -> Result<(), String> {
    for curve in curves {
        let style = curve.style.shape(curve.color);
        if curve.style.dashed {
            chart.draw_series(DashedLineSeries::new(curve.points.iter().copied(), 6, 4, style))
        } else {
            chart.draw_series(LineSeries::new(curve.points.iter().copied(), style))
        }
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The legend, in its own strip beside the chart, so it never covers a curve.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    curves: &[Curve],
) -> Result<(), String> {
    let font = ("sans-serif", 13).into_font();
    let error = |e: &dyn std::fmt::Display| e.to_string();
    area.draw(&Text::new(title.to_owned(), (4, 4), font.clone().style(FontStyle::Bold)))
        .map_err(|e| error(&e))?;
    for (i, curve) in curves.iter().enumerate() {
        let y = 26 + 18 * i as i32;
        let style = curve.style.shape(curve.color);
        let line: Vec<(i32, i32)> =
            if curve.style.dashed { vec![(4, y + 6), (10, y + 6)] } else { vec![(4, y + 6), (26, y + 6)] };
        area.draw(&PathElement::new(line, style)).map_err(|e| error(&e))?;
        if curve.style.dashed {
            area.draw(&PathElement::new(vec![(16, y + 6), (26, y + 6)], style)).map_err(|e| error(&e))?;
        }
        area.draw(&Text::new(curve.label.clone(), (32, y), font.clone())).map_err(|e| error(&e))?;
    }
    Ok(())
}

/// The chart's title: the commit, the workload (producers, shards, paths and their
/// distribution, parts per commit, the record, the geometry) and the mode.
pub fn title(settings: &crate::run::Settings, workload: &crate::workload::Workload) -> String {
    format!(
        "loadgen at {}: {}, divisor {}, max level {}; {}",
        crate::report::COMMIT,
        crate::report::workload_line(settings, workload),
        settings.engine.divisor,
        settings.engine.max_level,
        crate::report::mode_line(settings)
    )
}

/// Every run's curves as an SVG document: percentile curves on top, commit-to-visible per
/// interval below (when the runs have intervals). `title` says what ran.
pub fn render(title: &str, runs: &[Measured]) -> Result<String, String> {
    let mut svg = String::new();
    draw(&mut svg, title, runs)?;
    Ok(svg)
}

fn draw(svg: &mut String, title: &str, runs: &[Measured]) -> Result<(), String> {
    let error = |e: &dyn std::fmt::Display| e.to_string();
    let curves = curves(runs);
    let mut offset = 0.0;
    let mut timed = Vec::new();
    let start = runs.iter().map(|m| m.opened).min();
    for m in runs {
        if let Some(start) = start {
            offset = m.opened.duration_since(start).map_or(offset, |d| d.as_secs_f64());
        }
        timed.push((offset, m));
    }
    let lines = over_time(&timed);

    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let root = root.titled(title, ("sans-serif", 16)).map_err(|e| error(&e))?;
    let (top, bottom) = if lines.is_empty() {
        (root.clone(), None)
    } else {
        let (top, bottom) = root.split_vertically(SIZE.1 * 55 / 100);
        (top, Some(bottom))
    };

    let (chart_area, legend_area) = top.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    let max_nines = curves.iter().flat_map(|c| c.points.iter().map(|p| p.0)).fold(1.0, f64::max).ceil();
    let (low, high) = bounds(&curves);
    let mut chart = ChartBuilder::on(&chart_area)
        .caption("latency by percentile", ("sans-serif", 15))
        .margin(10)
        .margin_right(30)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..max_nines, (low..high).log_scale())
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_labels(max_nines as usize + 1)
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| micros_label(*y))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| error(&e))?;
    draw_curves(&mut chart, &curves)?;
    legend(&legend_area, "solid: call, dashed: visible", &curves)?;

    if let Some(bottom) = bottom {
        let (chart_area, legend_area) = bottom.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        let end = lines.iter().flat_map(|c| c.points.iter().map(|p| p.0)).fold(0.0, f64::max);
        let (low, high) = bounds(&lines);
        let mut chart = ChartBuilder::on(&chart_area)
            .caption("commit-to-visible per interval", ("sans-serif", 15))
            .margin(10)
            .margin_right(30)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..end.max(0.001) * 1.02, (low..high).log_scale())
            .map_err(|e| error(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds since the first engine's window opened")
            .y_desc("latency (µs)")
            .y_label_formatter(&|y| micros_label(*y))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| error(&e))?;
        draw_curves(&mut chart, &lines)?;
        legend(&legend_area, "p50 thin, faint; p99 thick; max dashed", &lines)?;
    }
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

#[cfg(test)]
mod svg_tests {
    use super::*;

    /// One `<polyline>` of the SVG: its colour, opacity, width and number of points.
    #[derive(Debug, Clone, PartialEq)]
    struct Line {
        stroke: String,
        opacity: f64,
        width: u32,
        points: usize,
    }

    fn attribute<'a>(element: &'a str, name: &str) -> Option<&'a str> {
        let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
        let end = start + element[start..].find('"')?;
        Some(&element[start..end])
    }

    fn lines(svg: &str) -> Vec<Line> {
        svg.split("<polyline")
            .skip(1)
            .map(|rest| {
                let element = &rest[..rest.find("/>").expect("a closed polyline")];
                Line {
                    stroke: attribute(element, "stroke").expect("stroke").to_owned(),
                    opacity: attribute(element, "opacity").map_or(1.0, |o| o.parse().expect("a number")),
                    width: attribute(element, "stroke-width").map_or(1, |w| w.parse().expect("a number")),
                    points: attribute(element, "points").map_or(0, |p| p.split_whitespace().count()),
                }
            })
            .collect()
    }

    /// The legend's promise, checked in the SVG itself: each of p50, p99 and max has a style of
    /// its own (opacity, width, dashes), the curves are drawn with it, and so is the legend's
    /// sample of it. The bug this guards against: every line at opacity 1 and width 2.
    #[test]
    fn the_chart_draws_each_line_as_its_legend_says() {
        let title = "loadgen at abc: 1 producer, 1 shard, 10,000 paths (uniform); closed loop";
        let svg = render(title, &[Measured::example(Kind::Raw)]).unwrap();
        assert!(svg.contains(title), "the title names the workload and the mode");
        assert!(svg.contains("p50 thin, faint; p99 thick; max dashed"), "the legend says how to read it");
        let raw = {
            let (r, g, b) = palette::rgb("raw");
            format!("#{r:02X}{g:02X}{b:02X}")
        };
        let mine: Vec<Line> =
            lines(&svg).into_iter().filter(|l| l.stroke.eq_ignore_ascii_case(&raw)).collect();
        let styled = |style: Style| -> Vec<&Line> {
            mine.iter()
                .filter(|l| (l.opacity - style.opacity).abs() < 1e-3 && l.width == style.width)
                .collect()
        };
        // Solid: one polyline through every interval's point (4 of them), and the legend's sample.
        for style in [Style::P50, Style::P99] {
            let drawn = styled(style);
            assert!(drawn.iter().any(|l| l.points == 4), "{style:?}: no solid curve in {mine:?}");
            assert!(drawn.iter().any(|l| l.points == 2), "{style:?}: no legend sample in {mine:?}");
        }
        // Dashed: many short pieces (one may turn a corner), none through all 4 points.
        let max = styled(Style::MAX);
        assert!(max.len() >= 8 && max.iter().all(|l| l.points < 4), "max is not dashed: {max:?}");
        // Visibly distinct, pairwise: opacity, width or dashes.
        let styles = [Style::P50, Style::P99, Style::MAX];
        for (i, a) in styles.iter().enumerate() {
            for b in &styles[i + 1..] {
                assert!(a.opacity != b.opacity || a.width != b.width || a.dashed != b.dashed, "{a:?} {b:?}");
            }
        }
        const { assert!(Style::P50.opacity < 0.6, "p50 is faint") };
        assert!(mine.iter().any(|l| l.opacity < 1.0), "the alpha reaches the SVG");
    }
}
