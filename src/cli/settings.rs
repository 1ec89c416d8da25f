//! Settings derived from the raw flags: the API key, credentials, durations. The client's
//! whole configuration is layered (flag > environment > job spec > stored > default) in
//! [`crate::runner::config::Layer`].

use std::path::Path;
use std::time::Duration;

use crate::api::{ApiKey, Credentials};
use crate::exit::Failure;

/// The environment variable that holds the API key. Read directly (not through clap) so
/// that `--help` can never show its value.
pub const API_KEY_ENV: &str = "SMILE_API_KEY";

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The API key: from `--api-key-file` when given, else from `SMILE_API_KEY`.
pub fn api_key(file: Option<&Path>) -> Result<ApiKey, Failure> {
    if let Some(path) = file {
        if let Some(warning) = key_file_warning(path) {
            eprintln!("smile-recon: warning: {warning}");
        }
        return ApiKey::from_file(path).map_err(|e| Failure::fatal(e.to_string()));
    }
    match std::env::var(API_KEY_ENV) {
        Ok(v) => {
            ApiKey::new(v).map_err(|_| Failure::fatal(format!("{API_KEY_ENV} is set but empty")))
        }
        Err(_) => Err(Failure::fatal(format!(
            "no API key: set {API_KEY_ENV} or pass --api-key-file FILE"
        ))),
    }
}

/// A key file that group or others may read or write: a warning (the key is read anyway),
/// saying how to fix it. `None` when the file is private (or cannot be examined: reading it
/// then says why).
pub fn key_file_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "the API key file {} is open to group or others (mode {mode:04o}); make it \
                 private: chmod 600 {}",
                path.display(),
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

pub fn credentials(
    partner_id: Option<&str>,
    key_file: Option<&Path>,
) -> Result<Credentials, Failure> {
    let partner_id = partner_id.filter(|p| !p.trim().is_empty()).ok_or_else(|| {
        Failure::fatal("no partner id: pass --partner-id or set SMILE_PARTNER_ID")
    })?;
    let key = api_key(key_file)?;
    Credentials::new(partner_id, key).map_err(|e| Failure::fatal(e.to_string()))
}

pub fn seconds(flag: &str, value: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Failure::usage(format!(
                "{flag} must be a positive number of seconds, got {value}"
            ))
        })
}

/// A number of seconds within `min..=max` (finite), as a usage error naming the range.
pub fn seconds_within(flag: &str, value: f64, min: f64, max: f64) -> Result<Duration, Failure> {
    if !(value.is_finite() && value >= min && value <= max) {
        return Err(Failure::usage(format!(
            "{flag} must be between {min} and {max} seconds, got {value}"
        )));
    }
    seconds(flag, value)
}

/// Makes this process non-dumpable (`PR_SET_DUMPABLE` 0: no core dump, no ptrace attach by
/// other processes of the same user, `/proc/PID/mem` and `environ` closed to them) and sets
/// its core size limit (`RLIMIT_CORE`) to 0, soft and hard. Called at start, before the
/// API key is read, for every command. Elsewhere than Linux it does nothing.
pub fn disable_core_dumps() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain system calls with valid arguments; no memory is shared with them
        // beyond `zero`, which outlives the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: as above; PR_SET_DUMPABLE takes an integer argument.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// After the call, the process is not dumpable and may not write a core file (this
    /// test process keeps those settings, which nothing else here needs).
    #[test]
    fn disable_core_dumps_makes_the_process_non_dumpable_with_no_core_limit() {
        super::disable_core_dumps().unwrap();
        // SAFETY: a plain query.
        let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        assert_eq!(dumpable, 0);
        let mut lim = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: `lim` is a valid out pointer for the call.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) }, 0);
        assert_eq!((lim.rlim_cur, lim.rlim_max), (0, 0));
    }
}
