//! One colour per engine, in every chart: the loadgen's `--plot` and the perf renderer's
//! tables' charts (`src/bin/render`, which includes this file), so an engine looks the same
//! wherever it is drawn.

/// Red, green and blue of `engine`'s colour; grey for a name it does not know.
pub fn rgb(engine: &str) -> (u8, u8, u8) {
    match engine {
        "lockstep" => (31, 119, 180),
        "mutex" => (214, 39, 40),
        "channel" => (44, 160, 44),
        "raw" => (110, 110, 110),
        _ => (153, 153, 153),
    }
}
