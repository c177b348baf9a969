//! What a run measured and how it is shown: HDR latency histograms (p50 to max), errors by
//! code, throughput, CPU time; as text for a person or as one JSON line (`--json`).

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::BenchError;
use super::cpu::CpuTime;
use super::lists::{ListFilter, ListLoad};
use super::runner::Outcome;
use super::workload::Workload;

/// The slowest latency the histogram resolves; slower operations are recorded as this.
const LATENCY_MAX_US: u64 = 60_000_000;
/// Significant figures kept per value: 3 keeps every percentile within 0.1%.
const LATENCY_SIGNIFICANT_FIGURES: u8 = 3;

/// Latencies in microseconds.
#[derive(Debug, Clone)]
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Latency {
    pub fn new() -> Self {
        // Constant bounds that hdrhistogram accepts (1 <= low, 2 * low <= high, 3 <= 5 figures).
        let histogram = Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGNIFICANT_FIGURES)
            .expect("constant histogram bounds are valid");
        Self { histogram }
    }

    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(micros.max(1));
    }

    pub fn merge(&mut self, other: &Latency) -> Result<(), BenchError> {
        self.histogram
            .add(&other.histogram)
            .map_err(|err| BenchError::Task(format!("merging latency histograms: {err:?}")))
    }

    fn percentile_us(&self, quantile: f64) -> u64 {
        if self.histogram.is_empty() {
            0
        } else {
            self.histogram.value_at_quantile(quantile)
        }
    }

    fn max_us(&self) -> u64 {
        self.histogram.max()
    }
}

/// How many errors of each code; the code is the server's error code or the kind of client
/// failure (`CONNECTION_LOST`, `TIMEOUT`, `UNEXPECTED_RESULT`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    by_code: BTreeMap<String, u64>,
}

impl ErrorCounts {
    pub fn add(&mut self, code: &str, count: u64) {
        if count == 0 {
            return;
        }
        match self.by_code.get_mut(code) {
            Some(total) => *total += count,
            None => {
                self.by_code.insert(code.to_owned(), count);
            }
        }
    }

    pub fn merge(&mut self, other: &ErrorCounts) {
        for (code, count) in &other.by_code {
            self.add(code, *count);
        }
    }

    pub fn total(&self) -> u64 {
        self.by_code.values().sum()
    }
}

/// What was run, for the report's header.
#[derive(Debug, Clone)]
pub struct RunShape {
    pub workload: Workload,
    pub connections: u32,
    pub pipeline: u32,
    pub instances: u64,
    pub payload_bytes: u64,
    pub batch_size: Option<u32>,
    pub watchers: Option<u32>,
    pub lists: Option<ListLoad>,
    pub target: String,
    pub fsync: Option<String>,
}

#[derive(Debug)]
pub struct Report {
    shape: RunShape,
    outcome: Outcome,
    pub errors: ErrorCounts,
}

impl Report {
    pub fn new(shape: RunShape, outcome: Outcome) -> Self {
        let errors = outcome.errors.clone();
        Self {
            shape,
            outcome,
            errors,
        }
    }

    fn secs(&self) -> f64 {
        self.outcome.elapsed.as_secs_f64().max(1e-9)
    }

    /// Successful operations per second: failed ones never count as throughput.
    fn ops_per_sec(&self) -> f64 {
        self.outcome.ok_ops as f64 / self.secs()
    }

    fn items_per_sec(&self) -> f64 {
        self.outcome.items_ok as f64 / self.secs()
    }

    fn server_cpu_us_per_item(&self) -> Option<f64> {
        let cpu = self.outcome.server_cpu?;
        (self.outcome.items_ok > 0).then(|| cpu.total_secs() * 1e6 / self.outcome.items_ok as f64)
    }

    pub fn to_text(&self) -> String {
        let shape = &self.shape;
        let outcome = &self.outcome;
        let mut out = String::new();
        let _ = write!(
            out,
            "workload: {}  connections: {}  pipeline: {}  instances: {}  payload: {} B",
            shape.workload.name(),
            shape.connections,
            shape.pipeline,
            shape.instances,
            shape.payload_bytes
        );
        if let Some(size) = shape.batch_size {
            let _ = write!(out, "  batch size: {size}");
        }
        if let Some(watchers) = shape.watchers {
            let _ = write!(out, "  watchers: {watchers}");
        }
        if let Some(lists) = &shape.lists {
            let _ = write!(
                out,
                "\nbackground lists: {} in flight, offset {}, filter {}",
                lists.pipeline,
                lists.offset,
                filter_name(lists.filter)
            );
        }
        let _ = writeln!(
            out,
            "\ntarget: {}  fsync: {}",
            shape.target,
            shape.fsync.as_deref().unwrap_or("(server's setting)")
        );
        let _ = writeln!(
            out,
            "ops: {} ({} ok) in {:.2} s: {:.0} ops/s",
            outcome.ops,
            outcome.ok_ops,
            self.secs(),
            self.ops_per_sec()
        );
        if shape.batch_size.is_some() {
            let _ = writeln!(
                out,
                "sub-ops: {} ok: {:.0} sub-ops/s",
                outcome.items_ok,
                self.items_per_sec()
            );
        }
        let l = &outcome.latency;
        let _ = writeln!(
            out,
            "latency (us): p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            l.percentile_us(0.5),
            l.percentile_us(0.9),
            l.percentile_us(0.99),
            l.percentile_us(0.999),
            l.max_us()
        );
        if let Some(watch) = &outcome.watch {
            let secs = watch.elapsed.as_secs_f64().max(1e-9);
            let _ = writeln!(
                out,
                "watch: {} of {} events delivered to {} watchers: {:.0} events/s",
                watch.events_delivered,
                watch.events_expected,
                watch.watchers,
                watch.events_delivered as f64 / secs
            );
        }
        if let Some(lists) = &outcome.lists {
            let l = &lists.latency;
            let _ = writeln!(
                out,
                "lists: {} ops  latency (us): p50 {}  p99 {}  max {}",
                lists.ops,
                l.percentile_us(0.5),
                l.percentile_us(0.99),
                l.max_us()
            );
        }
        let _ = write!(out, "errors: {}", self.errors.total());
        for (code, count) in &self.errors.by_code {
            let _ = write!(out, "  {code}: {count}");
        }
        out.push('\n');
        if let Some(cpu) = &outcome.cpu {
            let _ = writeln!(
                out,
                "bench process cpu: {:.2} s (user {:.2} s, system {:.2} s){}",
                cpu.total_secs(),
                cpu.user_secs,
                cpu.system_secs,
                if shape.target.starts_with("embedded") {
                    ", embedded server included"
                } else {
                    ""
                }
            );
        }
        if let Some(cpu) = &outcome.server_cpu {
            let _ = writeln!(
                out,
                "server process cpu: {:.2} s (user {:.2} s, system {:.2} s): {:.2} us per op",
                cpu.total_secs(),
                cpu.user_secs,
                cpu.system_secs,
                self.server_cpu_us_per_item().unwrap_or(0.0)
            );
        }
        out
    }

    /// One line of JSON with every figure of the text report.
    pub fn to_json(&self) -> String {
        let shape = &self.shape;
        let outcome = &self.outcome;
        let l = &outcome.latency;
        let cpu = |cpu: &Option<CpuTime>| match cpu {
            Some(cpu) => json!({
                "user": cpu.user_secs,
                "system": cpu.system_secs,
                "total": cpu.total_secs(),
            }),
            None => Value::Null,
        };
        let watch = outcome.watch.map(|watch| {
            json!({
                "watchers": watch.watchers,
                "events_delivered": watch.events_delivered,
                "events_expected": watch.events_expected,
                "events_per_sec": watch.events_delivered as f64
                    / watch.elapsed.as_secs_f64().max(1e-9),
            })
        });
        let lists = outcome
            .lists
            .as_ref()
            .zip(shape.lists)
            .map(|(lists, load)| {
                json!({
                    "pipeline": load.pipeline,
                    "offset": load.offset,
                    "filter": filter_name(load.filter),
                    "ops": lists.ops,
                    "latency_us": {
                        "p50": lists.latency.percentile_us(0.5),
                        "p99": lists.latency.percentile_us(0.99),
                        "max": lists.latency.max_us(),
                    },
                })
            });
        json!({
            "workload": shape.workload.name(),
            "connections": shape.connections,
            "pipeline": shape.pipeline,
            "instances": shape.instances,
            "payload_bytes": shape.payload_bytes,
            "batch_size": shape.batch_size,
            "target": shape.target,
            "fsync": shape.fsync,
            "ops": outcome.ops,
            "ok_ops": outcome.ok_ops,
            "items_ok": outcome.items_ok,
            "elapsed_secs": self.secs(),
            "ops_per_sec": self.ops_per_sec(),
            "items_per_sec": self.items_per_sec(),
            "latency_us": {
                "p50": l.percentile_us(0.5),
                "p90": l.percentile_us(0.9),
                "p99": l.percentile_us(0.99),
                "p999": l.percentile_us(0.999),
                "max": l.max_us(),
            },
            "errors": {
                "total": self.errors.total(),
                "by_code": self.errors.by_code,
            },
            "cpu_secs": cpu(&outcome.cpu),
            "server_cpu_secs": cpu(&outcome.server_cpu),
            "server_cpu_us_per_op": self.server_cpu_us_per_item(),
            "watch": watch,
            "lists": lists,
        })
        .to_string()
    }
}

fn filter_name(filter: ListFilter) -> &'static str {
    match filter {
        ListFilter::Rare => "rare",
        ListFilter::None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_counts_add_up_by_code_and_ignore_zero() {
        let mut errors = ErrorCounts::default();
        errors.add("INVALID_TRANSITION", 2);
        errors.add("TIMEOUT", 0);
        let mut other = ErrorCounts::default();
        other.add("INVALID_TRANSITION", 3);
        errors.merge(&other);
        assert_eq!(errors.total(), 5);
        assert_eq!(errors.by_code.len(), 1);
    }

    #[test]
    fn latency_percentiles_come_from_the_recorded_values() {
        let mut latency = Latency::new();
        for micros in 1..=1000 {
            latency.record(Duration::from_micros(micros));
        }
        assert_eq!(latency.percentile_us(0.5), 500);
        assert_eq!(latency.percentile_us(0.99), 990);
        assert_eq!(latency.max_us(), 1000);
    }
}
