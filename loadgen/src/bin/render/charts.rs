//! The matrix's charts: records/s per configuration, and latency percentiles per configuration.

use crate::matrix::{Config, ENGINES};
use crate::numbers::{float, si, us};
use crate::results::latency;
use crate::svg::{color, esc, legend, nice_ceiling, svg_open};

/// The engines that ran in any configuration, in table order.
fn engines_in(configs: &[Config]) -> Vec<&'static str> {
    ENGINES.into_iter().filter(|e| configs.iter().any(|c| c.engines().iter().any(|x| x == e))).collect()
}

/// One configuration's bars: each engine's records/s.
type Bars<'a> = Vec<(&'a str, Option<f64>)>;

/// Records/s per configuration and engine, as horizontal bars (medians of the runs).
pub fn throughput(configs: &[Config]) -> String {
    let engines = engines_in(configs);
    let (bar, gap, label_w, chart_w, top) = (9u32, 10u32, 260u32, 560u32, 50u32);
    let rows: Vec<(&Config, Bars)> = configs
        .iter()
        .map(|config| {
            let engines_here = config.engines();
            let bars = engines
                .iter()
                .filter(|e| engines_here.iter().any(|x| x == *e))
                .map(|&e| (e, config.med(e, |r| r["records_per_sec"].as_f64())))
                .collect();
            (config, bars)
        })
        .collect();
    let height = top + rows.iter().map(|(_, bars)| bars.len() as u32 * bar + gap).sum::<u32>() + 40;
    let peak =
        rows.iter().flat_map(|(_, bars)| bars.iter().map(|(_, v)| v.unwrap_or(0.0))).fold(0.0, f64::max);
    let scale = nice_ceiling(if peak > 0.0 { peak } else { 1.0 });
    let mut out = vec![
        svg_open(label_w + chart_w + 120, height),
        "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">records/s per configuration \
         (median of runs; closed loop unless @rate)</text>"
            .to_owned(),
    ];
    legend(&mut out, &engines, 10, 38);
    let x0 = f64::from(label_w);
    for i in 0..6 {
        let value = scale * f64::from(i) / 5.0;
        let x = x0 + f64::from(chart_w) * f64::from(i) / 5.0;
        out.push(format!(
            "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#ddd\"/>",
            top - 4,
            height - 30
        ));
        out.push(format!(
            "<text x=\"{x:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            height - 14,
            si(Some(value))
        ));
    }
    let mut y = top;
    for (config, bars) in &rows {
        let block = bars.len() as u32 * bar;
        let label = esc(&config.label());
        out.push(format!(
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{label}</text>",
            x0 - 6.0,
            f64::from(y) + f64::from(block) / 2.0 + 4.0
        ));
        for &(engine, value) in bars {
            let w = f64::from(chart_w) * value.unwrap_or(0.0) / scale;
            out.push(format!(
                "<rect x=\"{x0}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\">\
                 <title>{label} {engine}: {} records/s</title></rect>",
                bar - 1,
                color(engine),
                si(value)
            ));
            out.push(format!(
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"8\">{}</text>",
                x0 + w + 3.0,
                float(f64::from(y) + f64::from(bar) - 1.5),
                si(value)
            ));
            y += bar;
        }
        y += gap;
    }
    out.push("</svg>".to_owned());
    out.join("\n")
}

/// Commit-call and commit-to-visible p50, p99 and p99.9 per configuration and engine, on a
/// log scale, one panel each (medians of the runs).
pub fn latencies(configs: &[Config]) -> String {
    let engines = engines_in(configs);
    let (row, gap, label_w, panel_w, top) = (9u32, 10u32, 260u32, 330u32, 60u32);
    let rows: Vec<(&Config, Vec<&str>)> = configs
        .iter()
        .map(|c| {
            let here = c.engines();
            (c, engines.iter().copied().filter(|e| here.iter().any(|x| x == e)).collect())
        })
        .collect();
    let height = top + rows.iter().map(|(_, es)| es.len() as u32 * row + gap).sum::<u32>() + 40;
    let width = label_w + 2 * panel_w + 120;
    let mut out = vec![
        svg_open(width, height),
        "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">latency, µs (log scale): \
         p50 ● p99 ◆ p99.9 ■, median of runs</text>"
            .to_owned(),
    ];
    legend(&mut out, &engines, 10, 38);
    for (p, (kind, title)) in
        [("commit", "commit call"), ("visible", "commit-to-visible")].into_iter().enumerate()
    {
        let x0 = f64::from(label_w) + p as f64 * f64::from(panel_w + 80);
        let med = |c: &Config, e: &str, key: &str| c.med(e, |r| latency(Some(r), kind, key));
        let values: Vec<f64> = rows
            .iter()
            .flat_map(|(c, es)| es.iter().map(move |e| (*c, *e)))
            .flat_map(|(c, e)| ["p50", "p99", "p999"].map(|key| med(c, e, key)))
            .flatten()
            .filter(|&v| v > 0.0)
            .collect();
        let (lo, hi) = if values.is_empty() {
            (0.01, 1e5)
        } else {
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(0.0, f64::max);
            (10f64.powi(min.log10().floor() as i32), 10f64.powi(max.log10().ceil() as i32))
        };
        let x_of = |v: f64| {
            let v = v.clamp(lo, hi);
            x0 + f64::from(panel_w) * (v.log10() - lo.log10()) / (hi.log10() - lo.log10())
        };
        out.push(format!(
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\" font-weight=\"bold\">{title}</text>",
            float(x0 + f64::from(panel_w) / 2.0),
            top - 8
        ));
        let mut decade = lo;
        while decade <= hi * 1.0001 {
            let x = x_of(decade);
            out.push(format!(
                "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#ddd\"/>",
                top - 4,
                height - 30
            ));
            let tick = if decade < 1000.0 { us(Some(decade)) } else { si(Some(decade)).replace(' ', "") };
            out.push(format!(
                "<text x=\"{x:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{tick}</text>",
                height - 14
            ));
            decade *= 10.0;
        }
        let mut y = f64::from(top);
        for (config, es) in &rows {
            let label = esc(&config.label());
            if p == 0 {
                out.push(format!(
                    "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{label}</text>",
                    label_w - 6,
                    y + es.len() as f64 * f64::from(row) / 2.0 + 4.0
                ));
            }
            for &engine in es {
                let color = color(engine);
                let [p50, p99, p999] = ["p50", "p99", "p999"].map(|key| med(config, engine, key));
                let cy = y + f64::from(row) / 2.0;
                let xs: Vec<f64> =
                    [p50, p99, p999].into_iter().flatten().filter(|&v| v != 0.0).map(x_of).collect();
                if !xs.is_empty() {
                    let (min, max) =
                        xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
                    out.push(format!(
                        "<line x1=\"{min:.1}\" y1=\"{}\" x2=\"{max:.1}\" y2=\"{}\" stroke=\"{color}\"/>",
                        float(cy),
                        float(cy)
                    ));
                }
                let tip = format!(
                    "{label} {engine} {title}: p50 {} / p99 {} / p99.9 {} µs",
                    us(p50),
                    us(p99),
                    us(p999)
                );
                let mark = |v: Option<f64>| v.filter(|&v| v != 0.0).map(x_of);
                if let Some(x) = mark(p50) {
                    out.push(format!(
                        "<circle cx=\"{x:.1}\" cy=\"{}\" r=\"3\" fill=\"{color}\"><title>{tip}</title></circle>",
                        float(cy)
                    ));
                }
                if let Some(x) = mark(p99) {
                    out.push(format!(
                        "<path d=\"M{x:.1},{} l3.5,3.5 l-3.5,3.5 l-3.5,-3.5 z\" fill=\"{color}\"><title>{tip}</title></path>",
                        float(cy - 3.5)
                    ));
                }
                if let Some(x) = mark(p999) {
                    out.push(format!(
                        "<rect x=\"{:.1}\" y=\"{}\" width=\"6\" height=\"6\" fill=\"{color}\"><title>{tip}</title></rect>",
                        x - 3.0,
                        float(cy - 3.0)
                    ));
                }
                y += f64::from(row);
            }
            y += f64::from(gap);
        }
    }
    out.push("</svg>".to_owned());
    out.join("\n")
}
