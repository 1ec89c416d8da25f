//! Log output on stderr: plain text without escape codes when stderr is not a terminal
//! (cron), or one JSON object per line with `--log-format json`. `SMILE_RECON_LOG`
//! (an env-filter directive, e.g. `debug`) overrides the level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use super::args::LogFormat;

pub const LOG_ENV: &str = "SMILE_RECON_LOG";

/// Installs the subscriber once; later calls do nothing. With a progress bar on the
/// terminal only warnings are logged, so that lines do not tear the bar.
pub fn init(format: LogFormat, bar_on_terminal: bool) {
    let default = if bar_on_terminal { "warn" } else { "info" };
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
