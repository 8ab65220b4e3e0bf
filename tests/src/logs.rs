//! Captures what the product logs, to check that no secret reaches a log line.

use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Routes the whole process's tracing output (info and up, the production
    /// default) into the capture. Global, because tracing caches per-callsite
    /// interest across threads: a thread-scoped subscriber misses events whenever
    /// another test thread has none. So a test that scans logs gets a test binary
    /// of its own.
    pub fn install_global(&self) {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first global subscriber");
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }

    pub fn append(&self, bytes: &[u8]) {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The CloudWatch Embedded Metric Format records in a function's output, each
/// checked the way CloudWatch reads one: a JSON object on a line of its own,
/// namespace `wxauth`, every dimension and metric it declares present, values
/// numeric. Panics on a record CloudWatch would reject.
pub fn metric_records(output: &str) -> Vec<serde_json::Value> {
    let mut records = Vec::new();
    for line in output.lines().filter(|line| line.contains("\"_aws\"")) {
        let record: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("an EMF line that is not JSON ({err}): {line}"));
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert!(record["_aws"]["Timestamp"].is_u64(), "{line}");
        assert_eq!(directive["Namespace"], "wxauth", "{line}");
        for set in directive["Dimensions"].as_array().expect("dimension sets") {
            for name in set.as_array().expect("a dimension set") {
                let name = name.as_str().expect("a dimension name");
                assert!(record[name].is_string(), "dimension {name} missing: {line}");
            }
        }
        for metric in directive["Metrics"].as_array().expect("metrics") {
            let name = metric["Name"].as_str().expect("a metric name");
            assert!(record[name].is_number(), "metric {name} missing: {line}");
            assert!(
                matches!(metric["Unit"].as_str(), Some("Count" | "Milliseconds")),
                "{line}"
            );
        }
        records.push(record);
    }
    records
}

/// Whether `records` hold `metric` with every `(dimension, value)` given.
pub fn has_metric(
    records: &[serde_json::Value],
    metric: &str,
    dimensions: &[(&str, &str)],
) -> bool {
    records.iter().any(|record| {
        record[metric].is_number()
            && dimensions
                .iter()
                .all(|(name, value)| record[*name] == *value)
    })
}
