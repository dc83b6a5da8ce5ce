//! Out of the pipeline: sealed segments to the `sink`, figures in `stats` (recorded into
//! lock-free `histogram`s), written as text by `export` and as plain numbers by `report`.

/// Writing `Stats` out: Prometheus text exposition and `.hgrm` percentile distributions.
pub(crate) mod export;
/// The metric families, named and described once for every exporter.
pub(crate) mod families;
/// A histogram recorded with relaxed atomic adds, read as an hdrhistogram `Histogram`.
pub(crate) mod histogram;
/// `Stats` through the `metrics` facade (the `metrics` feature).
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
/// `Stats` as plain numbers, serializable with the `serde` feature.
pub(crate) mod report;
/// The sink for sealed segments, and retention.
pub(crate) mod sink;
/// Statistics.
pub(crate) mod stats;
