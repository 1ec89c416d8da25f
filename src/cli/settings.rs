//! Process settings for every command: no core dumps. The run's settings are declared in
//! [`crate::config`]; the API key and credentials are read by [`crate::config::credentials`].

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
