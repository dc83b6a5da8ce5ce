//! Numbers as every report prints them: thousands grouped, rates with an SI prefix, latencies
//! and ratios to about three significant digits, memory in MiB. The terminal report, the
//! baseline table, the progress bar and the engines' notes all use these, so one figure reads
//! the same wherever it appears.

/// Microseconds with about three significant digits.
pub fn micros(us: f64) -> String {
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 100.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

/// A figure for the baseline table: a rate with an SI prefix, a latency with three digits.
pub fn figure(v: f64) -> String {
    if v >= 1e3 {
        si(v)
    } else {
        micros(v)
    }
}

/// A ratio with about three significant digits.
pub fn ratio(r: f64) -> String {
    if !r.is_finite() {
        "-".to_owned()
    } else if r < 10.0 {
        format!("{r:.2}")
    } else if r < 100.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.0}")
    }
}

/// Bytes as mebibytes, one decimal: `20.4 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// A rate with an SI prefix: `1.93 M`, `850.0 k`, `12.0`.
pub fn si(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2} G", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2} M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} k", n / 1e3)
    } else {
        format!("{n:.1}")
    }
}

/// `1234567` as `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }

    #[test]
    fn micros_keeps_three_digits() {
        assert_eq!(micros(0.123), "0.12");
        assert_eq!(micros(12.345), "12.3");
        assert_eq!(micros(1234.567), "1235");
    }

    #[test]
    fn rates_get_a_prefix() {
        assert_eq!(si(1_930_000.0), "1.93 M");
        assert_eq!(si(850_000.0), "850.0 k");
        assert_eq!(si(12.0), "12.0");
        assert_eq!(ratio(1.8456), "1.85");
        assert_eq!(ratio(f64::INFINITY), "-");
    }
}
