//! The numbers of the rendered tables and charts, written as they have always been written
//! there (three significant digits for rates, up to two decimals for latencies), so a table
//! rendered today reads like the ones already in perf/README.md.

use serde_json::Value;

/// `value` with `precision` significant digits, trailing zeros dropped, in positional
/// notation unless the exponent is below -4 or at least `precision` (then `1e+03`): the
/// general format of C's `printf("%g")`.
pub fn general(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    if !value.is_finite() {
        return if value.is_nan() {
            "nan"
        } else if value > 0.0 {
            "inf"
        } else {
            "-inf"
        }
        .to_owned();
    }
    let precision = precision.max(1);
    // The exponent after rounding to `precision` digits: 999.6 at 3 digits is 1.00e3.
    let scientific = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if exponent < -4 || exponent >= precision as i32 {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_zeros(mantissa), exponent.abs())
    } else {
        let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
        trim_zeros(&format!("{value:.decimals$}")).to_owned()
    }
}

fn trim_zeros(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

/// A float as Python prints one: the shortest text that reads back the same, with `.0` on a
/// whole number.
pub fn float(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e16 {
        format!("{value:.1}")
    } else {
        format!("{value}")
    }
}

/// A JSON value as Python's `str` prints it: numbers as they were written (whole or not),
/// text as it is, nothing as `None`.
pub fn plain(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::String(text) => text.clone(),
        Value::Number(number) if number.is_f64() => number.as_f64().map_or_else(String::new, float),
        other => other.to_string(),
    }
}

/// A rate with an SI prefix and three significant digits: `2.34 M`, `850 k`, `12`.
pub fn si(value: Option<f64>) -> String {
    let Some(value) = value else { return "-".to_owned() };
    for (scale, suffix) in [(1e9, " G"), (1e6, " M"), (1e3, " k")] {
        if value.abs() >= scale {
            return format!("{}{suffix}", general(value / scale, 3));
        }
    }
    general(value, 3)
}

/// Microseconds with about three significant digits, thousands grouped from 1,000 on.
pub fn us(value: Option<f64>) -> String {
    match value {
        None => "-".to_owned(),
        Some(v) if v >= 1000.0 => grouped(v),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// Bytes in MiB, one decimal.
pub fn mib(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{:.1} MiB", v / (1u64 << 20) as f64))
}

/// A ratio: `1.85x`.
pub fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}x"))
}

/// `value` rounded to a whole number, thousands grouped: `12,345`.
fn grouped(value: f64) -> String {
    let digits = format!("{value:.0}");
    let (sign, digits) = digits.strip_prefix('-').map_or(("", digits.as_str()), |d| ("-", d));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    out.push_str(sign);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The median of the values there are (the mean of the middle two for an even count).
pub fn median(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    let mut values: Vec<f64> = values.into_iter().flatten().collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 })
}

/// `values`, each written by `write`, separated by commas.
pub fn list<T>(values: impl IntoIterator<Item = T>, write: impl Fn(T) -> String) -> String {
    values.into_iter().map(write).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn general_matches_printf_g() {
        for (value, text) in [
            (2.341458, "2.34"),
            (31.0, "31"),
            (9.3, "9.3"),
            (166.4, "166"),
            (0.0001234, "0.000123"),
            (0.00001234, "1.23e-05"),
            (999.6, "1e+03"),
            (123456.0, "1.23e+05"),
            (0.5, "0.5"),
        ] {
            assert_eq!(general(value, 3), text, "{value}");
        }
        assert_eq!(general(60.0, 6), "60");
        assert_eq!(general(2.5, 6), "2.5");
    }

    #[test]
    fn figures_read_as_in_the_tables() {
        assert_eq!(si(Some(2_341_458.0)), "2.34 M");
        assert_eq!(si(Some(88_800.0)), "88.8 k");
        assert_eq!(si(Some(0.0)), "0");
        assert_eq!(si(None), "-");
        assert_eq!(us(Some(12_632.4)), "12,632");
        assert_eq!(us(Some(133.2)), "133");
        assert_eq!(us(Some(56.94)), "56.9");
        assert_eq!(us(Some(0.1)), "0.10");
        assert_eq!(mib(Some(21_390_950.0)), "20.4 MiB");
        assert_eq!(ratio(Some(1.8456)), "1.85x");
        assert_eq!(float(425.0), "425.0");
        assert_eq!(float(64.5), "64.5");
        assert_eq!(median([Some(3.0), None, Some(1.0), Some(2.0), Some(10.0)]), Some(2.5));
        assert_eq!(median([None]), None);
    }
}
