//! Log output on stderr: plain text without escape codes when stderr is not a terminal
//! (cron), or one JSON object per line with `--log-format json`. `SMILE_RECON_LOG`
//! (an env-filter directive, e.g. `debug`) overrides the level.
//!
//! A JSON line carries `timestamp`, `level`, `message`, the event's own fields (numbers as
//! numbers) and `run`, the run's id, once a run exists. Messages for the operator (the
//! interrupt, a fatal error) go through [`say`], so that with JSON they are events too.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::args::LogFormat;

pub const LOG_ENV: &str = "SMILE_RECON_LOG";

use crate::log::{JSON, RUN, write_stderr};
pub use crate::log::{json, say, set_run, show_bar};

/// tracing's writer: stderr, around the bar.
struct Stderr;

impl std::io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_stderr(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Installs the subscriber once; later calls do nothing. With a progress bar on the
/// terminal, or with `--quiet`, only warnings are logged (and, quiet, the final summary),
/// so that lines do not tear the bar and cron mails only what matters.
pub fn init(format: LogFormat, bar_on_terminal: bool, quiet: bool) {
    let default = match (bar_on_terminal, quiet) {
        (_, true) => "warn,smile_recon::runner::summary=info",
        (true, false) => "warn",
        (false, false) => "info",
    };
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Stderr)
        .with_ansi(std::io::stderr().is_terminal() && format == LogFormat::Text)
        .with_target(false);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.event_format(JsonLine).try_init(),
    };
    if installed.is_ok() && format == LogFormat::Json {
        JSON.store(true, Ordering::Relaxed);
    }
}

/// One JSON object per event, fields flattened, the run id added.
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let line = json_line(event, chrono::Utc::now(), RUN.load(Ordering::Relaxed));
        writeln!(writer, "{line}")
    }
}

fn json_line(event: &Event<'_>, at: chrono::DateTime<chrono::Utc>, run: i64) -> String {
    let mut fields = Fields(Map::new());
    fields.0.insert(
        "timestamp".into(),
        Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
    fields.0.insert(
        "level".into(),
        Value::String(event.metadata().level().as_str().to_owned()),
    );
    event.record(&mut fields);
    let mut map = fields.0;
    if run > 0 && !map.contains_key("run") {
        map.insert("run".into(), Value::from(run));
    }
    Value::Object(map).to_string()
}

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // NaN and infinities are not JSON numbers.
        let v = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.0.insert(field.name().into(), v);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn a_json_line_keeps_numbers_as_numbers_and_names_the_run() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buffer.clone())
            .event_format(JsonLine)
            .finish();
        set_run(42);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(done = 3u64, rate = 1.5f64, name = %"x", "progress {}", 7);
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let v: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["run"], 42);
        assert_eq!(v["done"], 3);
        assert_eq!(v["rate"], 1.5);
        assert_eq!(v["name"], "x");
        assert_eq!(v["message"], "progress 7");
        assert_eq!(v["level"], "INFO");
    }
}
