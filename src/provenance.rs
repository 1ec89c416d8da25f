//! Who ran what, where: the tool's version, the host, the OS user and the command line
//! (without secrets), recorded with every execution of a run and in every summary, so an
//! audit can tell which build on which machine produced a result.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub tool_version: String,
    pub host: String,
    pub os_user: String,
    /// The arguments, quoted where needed, with any password in a URL hidden.
    pub command_line: String,
}

impl Provenance {
    /// This process's.
    pub fn current() -> Self {
        Self {
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            host: host_name(),
            os_user: os_user(),
            command_line: command_line(std::env::args()),
        }
    }
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The login name from the environment, else the numeric user id.
fn os_user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| format!("uid {}", crate::files::euid()))
}

/// The arguments as one line. The API key never is one (it comes from the environment or
/// a file), but a URL may carry a password (`https://user:secret@host`): it is hidden.
pub fn command_line(args: impl IntoIterator<Item = String>) -> String {
    args.into_iter()
        .map(|a| quote(&without_url_password(&a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `scheme://user:password@host...` -> `scheme://user:***@host...`, wherever it appears
/// in `arg` (`--base-url=...` too).
pub fn without_url_password(arg: &str) -> String {
    let Some(start) = arg.find("://") else {
        return arg.to_owned();
    };
    let authority_start = start + 3;
    let rest = &arg[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return arg.to_owned();
    };
    let userinfo = &authority[..at];
    let user = userinfo.split(':').next().unwrap_or("");
    format!(
        "{}{}:***{}",
        &arg[..authority_start],
        user,
        &arg[authority_start + at..]
    )
}

fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_url_is_hidden() {
        assert_eq!(
            without_url_password("--base-url=https://me:s3cret@api.example.com/v1?x=1"),
            "--base-url=https://me:***@api.example.com/v1?x=1"
        );
        assert_eq!(
            without_url_password("https://api.example.com/a@b"),
            "https://api.example.com/a@b"
        );
        let line = command_line(
            [
                "smile-recon",
                "poll",
                "--base-url",
                "http://u:pw@h:1",
                "--query",
                "SELECT 1",
            ]
            .map(String::from),
        );
        assert_eq!(
            line,
            "smile-recon poll --base-url 'http://u:***@h:1' --query 'SELECT 1'"
        );
        assert!(!line.contains("pw"));
    }

    #[test]
    fn the_current_process_has_a_version_and_a_user() {
        let p = Provenance::current();
        assert_eq!(p.tool_version, env!("CARGO_PKG_VERSION"));
        assert!(!p.os_user.is_empty());
    }
}
