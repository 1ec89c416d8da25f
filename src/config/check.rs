//! The checks a setting's declaration names: each takes the setting (its flag and spec
//! key, for the message) and the value a layer gives.

use super::error::ConfigError;

/// Which setting a check is looking at.
pub struct Setting {
    pub flag: &'static str,
    pub spec: &'static str,
}

impl Setting {
    /// `--rate ([limits] rate)`: how messages name a setting.
    pub fn named(&self) -> String {
        format!("{} ({})", self.flag, self.spec)
    }

    fn invalid(&self, message: String) -> ConfigError {
        ConfigError::Invalid {
            setting: self.flag,
            message,
        }
    }
}

/// Anything the type allows.
pub fn any<T>(_: &Setting, _: &T) -> Result<(), ConfigError> {
    Ok(())
}

/// Requests per second: 0 (no limit) or within `lo..=hi`.
pub fn rate((lo, hi): (f64, f64)) -> impl Fn(&Setting, &f64) -> Result<(), ConfigError> {
    move |s, &rate| {
        if rate == 0.0 || (lo..=hi).contains(&rate) {
            return Ok(());
        }
        Err(s.invalid(format!(
            "{} must be 0 (no limit) or between {lo} and {hi} requests per second, got {rate}",
            s.named()
        )))
    }
}

/// A whole number within `lo..=hi`.
pub fn within<T>(lo: T, hi: T) -> impl Fn(&Setting, &T) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    move |s, &v| {
        if v < lo || v > hi {
            return Err(s.invalid(format!(
                "{} must be between {lo} and {hi}, got {v}",
                s.named()
            )));
        }
        Ok(())
    }
}

/// A finite number of seconds within `min..=max`.
pub fn seconds(min: f64, max: f64) -> impl Fn(&Setting, &f64) -> Result<(), ConfigError> {
    move |s, &v| seconds_within(&s.named(), v, min, max).map(|_| ())
}

/// A number of seconds within `min..=max` (finite, above zero), as the error naming the
/// range. `flag` is how the message names the setting.
pub fn seconds_within(
    flag: &str,
    value: f64,
    min: f64,
    max: f64,
) -> Result<std::time::Duration, ConfigError> {
    let refused = || ConfigError::Invalid {
        setting: "",
        message: format!("{flag} must be between {min} and {max} seconds, got {value}"),
    };
    if !(value.is_finite() && value >= min && value <= max) {
        return Err(refused());
    }
    std::time::Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| ConfigError::Invalid {
            setting: "",
            message: format!("{flag} must be a positive number of seconds, got {value}"),
        })
}

/// The longest identifying key accepted, in characters.
pub const MAX_RUN_KEY_CHARS: usize = 200;

/// What is wrong with an identifying key, if anything: empty, a control character (a
/// newline would split the log line it is printed in), or over [`MAX_RUN_KEY_CHARS`].
pub fn run_key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("must not be empty (leave it out to key runs by the manifest)".into());
    }
    if let Some(problem) = printable_problem(key) {
        return Some(problem);
    }
    // `{date}` becomes a 10-character date: the limit holds for the key as it is used.
    let n = key.replace("{date}", "YYYY-MM-DD").chars().count();
    if n > MAX_RUN_KEY_CHARS {
        return Some(format!(
            "must be at most {MAX_RUN_KEY_CHARS} characters, got {n}"
        ));
    }
    None
}

/// A character that would break the line a name is printed on, or reorder what follows
/// it: control characters, the Unicode line and paragraph separators, and the
/// bidirectional formatting characters.
fn breaks_a_line(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// What makes `text` unsafe to print on one log line, if anything (used for a run's key
/// and a job spec's name).
pub fn printable_problem(text: &str) -> Option<String> {
    text.chars().find(|c| breaks_a_line(*c)).map(|c| {
        format!(
            "must not hold control, line-separator or text-direction characters (found {:?})",
            c.escape_unicode().to_string()
        )
    })
}

/// An identifying key: see [`run_key_problem`].
#[allow(clippy::ptr_arg)] // `&T` with `T = String`, as the table passes it
pub fn run_key(s: &Setting, key: &String) -> Result<(), ConfigError> {
    match run_key_problem(key) {
        Some(problem) => Err(s.invalid(format!("{} {problem}", s.named()))),
        None => Ok(()),
    }
}

// The table's checks take `&T` for a setting of type `T`; for a URL, `T` is `String`.
#[allow(clippy::ptr_arg)]
/// The base URL: http(s), no user info (`https://user:pw@host`): Smile ID authenticates by
/// signature, and a password in the URL would be echoed in errors and stored with the run.
pub fn base_url(s: &Setting, url: &String) -> Result<(), ConfigError> {
    no_user_info(s, url)?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        // A malformed URL may still carry a password: never echoed.
        let shown = if url.contains('@') {
            "a URL with '@' in it (not shown)".to_owned()
        } else {
            format!("{url:?}")
        };
        return Err(s.invalid(format!(
            "{} must start with http:// or https://, got {shown}",
            s.flag
        )));
    }
    Ok(())
}

/// A URL without user info (`user:password@`).
#[allow(clippy::ptr_arg)] // `&T` with `T = String`, as the table passes it
pub fn no_user_info(s: &Setting, url: &String) -> Result<(), ConfigError> {
    if has_user_info(url) {
        return Err(s.invalid(format!(
            "{} must not hold a user name or password (user:password@): remove it and use {} \
             (requests are authenticated by the signature; a password in the URL would be \
             shown in errors and stored with the run)",
            s.named(),
            without_user_info(url)
        )));
    }
    Ok(())
}

/// The user info of a URL (`user:password@`), if it has any. Only the authority (between
/// `//` and the first `/`, `?` or `#`) is looked at; an `@` there means user info.
pub fn has_user_info(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}

/// `url` with any user info removed, for messages.
pub fn without_user_info(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}{host}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_names_that_would_break_a_line_are_refused() {
        for bad in [
            "a\nb",
            "a\u{2028}b",
            "\u{202e}txt",
            "a\u{2067}b",
            "tab\there",
        ] {
            assert!(run_key_problem(bad).is_some(), "{bad:?}");
            assert!(printable_problem(bad).is_some(), "{bad:?}");
        }
        assert!(run_key_problem("nightly-{date}").is_none());
        let long = format!("{}{{date}}", "k".repeat(195));
        assert!(
            run_key_problem(&long).is_some(),
            "the date counts as 10 characters"
        );
        assert!(printable_problem("nightly é").is_none());
    }
}
