//! The request signature: `base64(HMAC-SHA256(api_key, timestamp + partner_id + "sid_request"))`.
//!
//! The same computation signs our requests and confirms the server's responses and
//! callbacks, which carry their own `timestamp` and `signature`. The signature covers no
//! body bytes: it proves the sender knows the key, nothing more.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The fixed suffix of the signed message.
const SIGNED_SUFFIX: &str = "sid_request";

/// An API key. It has no `Display`, and its `Debug` prints a placeholder, so it cannot end
/// up in a log line, an error message or a report by accident.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Result<Self, SignatureError> {
        let key = key.into();
        let trimmed = key.trim();
        if trimmed.is_empty() {
            return Err(SignatureError::EmptyKey);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// Reads a key from a file. The format: the whole file is the key, as UTF-8 text on
    /// one line; white space around it (a final newline, a CRLF) is ignored. Anything else
    /// is refused with what was found, never with the file's content: an empty file, only
    /// white space, NUL bytes, text that is not UTF-8, more than one non-empty line, white
    /// space inside the key, or more than [`MAX_KEY_FILE_BYTES`].
    pub fn from_file(path: &Path) -> Result<Self, SignatureError> {
        use std::io::Read as _;
        let bad = |reason: String| SignatureError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let file = open_without_waiting(path).map_err(|e| bad(e.to_string()))?;
        let mut bytes = Vec::new();
        file.take(MAX_KEY_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(e.to_string()))?;
        Self::new(key_file_text(&bytes).map_err(bad)?).map_err(|_| bad("the file is empty".into()))
    }

    /// The key's bytes, for the HMAC and nothing else. Callers that need to make sure the
    /// key appears nowhere (tests scanning databases and logs) use this too.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Opens a key file for reading without waiting for a writer: a FIFO nobody writes to
/// (`mkfifo key`) would block `open` for ever; opened non-blocking it reads as empty and
/// is refused. Process substitution (`--api-key-file <(pass show smile)`) still works:
/// once open, reads block again until the writer is done.
fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        // SAFETY: fcntl on a descriptor this function owns, with integer arguments only.
        unsafe {
            let fd = file.as_raw_fd();
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        std::fs::File::open(path)
    }
}

/// A key file larger than this is not a key file.
pub const MAX_KEY_FILE_BYTES: u64 = 4_096;

/// The key in a key file's bytes, or what is wrong with them (never quoting them).
fn key_file_text(bytes: &[u8]) -> Result<&str, String> {
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(format!(
            "the file is larger than {MAX_KEY_FILE_BYTES} bytes; it must hold only the key, \
             on one line"
        ));
    }
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    if bytes.contains(&0) {
        return Err(
            "the file contains NUL bytes (a binary file?); it must hold only the \
                    key, as text on one line"
                .into(),
        );
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines.as_slice() {
        [] => Err("the file holds only white space".into()),
        [line] => {
            let key = line.trim();
            if key.chars().any(char::is_whitespace) {
                Err(format!(
                    "the key's line holds {} words separated by white space; the file must \
                     hold only the key",
                    key.split_whitespace().count()
                ))
            } else {
                Ok(key)
            }
        }
        more => Err(format!(
            "the file has {} non-empty lines; it must hold only the key, on one line",
            more.len()
        )),
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("the API key is empty")]
    EmptyKey,
    #[error("cannot read the API key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("the partner id is empty")]
    EmptyPartnerId,
}

/// A partner id and its API key: everything needed to sign and to confirm.
#[derive(Clone)]
pub struct Credentials {
    partner_id: String,
    api_key: ApiKey,
    /// The HMAC keyed once with the API key (its inner and outer pads hashed), cloned for
    /// each signature.
    keyed: HmacSha256,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("partner_id", &self.partner_id)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

/// What goes into a request body next to the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedStamp {
    pub timestamp: String,
    pub signature: String,
}

impl Credentials {
    pub fn new(partner_id: impl Into<String>, api_key: ApiKey) -> Result<Self, SignatureError> {
        let partner_id = partner_id.into();
        if partner_id.trim().is_empty() {
            return Err(SignatureError::EmptyPartnerId);
        }
        // HMAC accepts keys of any length, so this cannot fail.
        let keyed = <HmacSha256 as KeyInit>::new_from_slice(api_key.0.as_bytes())
            .expect("HMAC takes a key of any length");
        Ok(Self {
            partner_id,
            api_key,
            keyed,
        })
    }

    pub fn partner_id(&self) -> &str {
        &self.partner_id
    }

    pub fn api_key(&self) -> &ApiKey {
        &self.api_key
    }

    /// The signature for `timestamp`, used verbatim: the server signs whatever string it
    /// receives, so the timestamp's format does not matter as long as it is sent as signed.
    pub fn sign(&self, timestamp: &str) -> String {
        STANDARD.encode(self.mac(timestamp))
    }

    /// A fresh timestamp (ISO-8601 UTC, milliseconds, `Z`) and its signature.
    pub fn stamp_now(&self) -> SignedStamp {
        self.stamp_now_as(TimestampStyle::MillisZ)
    }

    /// A fresh timestamp written in `style`, and its signature.
    pub fn stamp_now_as(&self, style: TimestampStyle) -> SignedStamp {
        let timestamp = style.now();
        let signature = self.sign(&timestamp);
        SignedStamp {
            timestamp,
            signature,
        }
    }

    /// Whether `signature` is the one this partner's key gives for `timestamp`. The
    /// comparison runs in constant time over the base64 text, as the SDKs compare text.
    pub fn confirm(&self, timestamp: &str, signature: &str) -> bool {
        let expected = self.sign(timestamp);
        expected.as_bytes().ct_eq(signature.as_bytes()).into()
    }

    fn mac(&self, timestamp: &str) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(timestamp.as_bytes());
        mac.update(self.partner_id.as_bytes());
        mac.update(SIGNED_SUFFIX.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Now, as the Node SDK sends it: `2026-11-22T15:37:19.123Z`.
pub fn now_timestamp() -> String {
    TimestampStyle::MillisZ.now()
}

/// How a timestamp is written. Smile ID's pages show two forms for what its servers sign:
/// `2018-03-13T21:04:11.193Z` (the job_status page) and `2021-08-12T17:57:00.614879`, UTC
/// without an offset, in microseconds (the Identity Verification page's answer, the body
/// a callback carries). Both are read by whoever confirms them; the signature covers the
/// string as written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimestampStyle {
    /// `2026-11-22T15:37:19.123Z`
    #[default]
    MillisZ,
    /// `2026-11-22T15:37:19.123456`
    MicrosNoOffset,
}

impl TimestampStyle {
    pub fn now(self) -> String {
        let now = chrono::Utc::now();
        match self {
            TimestampStyle::MillisZ => now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            TimestampStyle::MicrosNoOffset => now.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new("002", ApiKey::new("secret").unwrap()).unwrap()
    }

    #[test]
    fn confirms_its_own_signature_and_rejects_others() {
        let c = creds();
        let s = c.sign("2026-01-01T00:00:00.000Z");
        assert!(c.confirm("2026-01-01T00:00:00.000Z", &s));
        assert!(!c.confirm("2026-01-01T00:00:00.001Z", &s));
        assert!(!c.confirm("2026-01-01T00:00:00.000Z", &s[..s.len() - 1]));
        assert!(!c.confirm("2026-01-01T00:00:00.000Z", ""));
    }

    #[test]
    fn other_partner_or_key_gives_another_signature() {
        let a = creds();
        let b = Credentials::new("003", ApiKey::new("secret").unwrap()).unwrap();
        let c = Credentials::new("002", ApiKey::new("secreT").unwrap()).unwrap();
        let t = "2026-01-01T00:00:00Z";
        assert_ne!(a.sign(t), b.sign(t));
        assert_ne!(a.sign(t), c.sign(t));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let c = creds();
        let text = format!("{c:?}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn now_timestamp_is_iso_with_millis_and_z() {
        let t = now_timestamp();
        assert!(t.ends_with('Z') && t.len() == 24, "{t}");
        assert!(chrono::DateTime::parse_from_rfc3339(&t).is_ok());
    }

    #[test]
    fn the_microsecond_form_has_no_offset_and_is_signed_as_written() {
        let stamp = creds().stamp_now_as(TimestampStyle::MicrosNoOffset);
        let t = &stamp.timestamp;
        assert_eq!(t.len(), 26, "{t}");
        assert_eq!(&t[19..20], ".", "{t}");
        assert!(!t.ends_with('Z') && !t.contains('+'), "{t}");
        assert!(chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").is_ok());
        assert!(creds().confirm(t, &stamp.signature));
    }

    #[test]
    fn empty_inputs_are_refused() {
        assert!(ApiKey::new("  ").is_err());
        assert!(Credentials::new("", ApiKey::new("k").unwrap()).is_err());
    }
}
