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
