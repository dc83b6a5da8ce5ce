//! What every chart is built of: an SVG document, the engines' colours and their legend, text
//! escaped, and round axis ends. The charts are written by hand, as text: each mark carries a
//! `<title>`, so a browser shows its figures on hover.

use crate::palette;

/// `engine`'s colour, as every chart of the loadgen draws it.
pub fn color(engine: &str) -> String {
    let (r, g, b) = palette::rgb(engine);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Text for SVG: `&`, `<` and `>` escaped.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn svg_open(width: u32, height: u32) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    )
}

/// A swatch and a name per engine, in a row from (`x`, `y`).
pub fn legend(out: &mut Vec<String>, engines: &[&str], x: u32, y: u32) {
    for (i, engine) in engines.iter().enumerate() {
        let left = x + i as u32 * 90;
        out.push(format!(
            "<rect x=\"{left}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>",
            y - 9,
            color(engine)
        ));
        out.push(format!("<text x=\"{}\" y=\"{y}\" font-size=\"12\">{engine}</text>", left + 14));
    }
}

/// The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 or 10 times a power of ten at or above
/// `value`: the end of an axis.
pub fn nice_ceiling(value: f64) -> f64 {
    let exponent = 10f64.powi(value.log10().floor() as i32);
    for step in [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if step * exponent >= value {
            return step * exponent;
        }
    }
    10.0 * exponent
}
