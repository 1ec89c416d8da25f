//! Extra trusted roots for the client (`--ca-cert FILE`): a private CA, a TLS-inspecting
//! proxy's, or a local sandbox's self-signed certificate. They are added to the built-in
//! roots, never instead of them, and verification is never turned off.

use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::RootCertStore;

/// Why a CA file cannot be used; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaCertError {
    #[error("{}: no such file", path.display())]
    Missing { path: PathBuf },
    #[error("{}: cannot read it: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "{}: no certificate in it (expected PEM: one or more \
         -----BEGIN CERTIFICATE----- blocks)", path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error("{}: certificate {index} is not usable as a trusted root: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        /// 1-based, in the order of the file.
        index: usize,
        reason: String,
    },
    #[error("{}: not readable PEM: {reason}", path.display())]
    BadPem { path: PathBuf, reason: String },
    #[error(
        "{}: larger than {} MiB; a CA bundle is a few hundred KiB (is this the right file?)",
        path.display(), MAX_CA_FILE_BYTES / (1024 * 1024)
    )]
    TooLarge { path: PathBuf },
}

/// A CA file larger than this is refused unread: the system's whole bundle is about
/// 200 KiB, and `--ca-cert /dev/zero` must not eat the machine's memory.
pub const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a PEM file of one or more certificates, each checked as a trust anchor.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, CaCertError> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => CaCertError::Missing {
            path: path.to_owned(),
        },
        _ => CaCertError::Unreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        },
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(unreadable)?
        .take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(CaCertError::TooLarge {
            path: path.to_owned(),
        });
    }
    parse_ca_pem(path, &bytes)
}

/// The certificates in `bytes` (PEM); `path` only names the source in errors. Other PEM
/// sections (a private key, say) are skipped.
pub fn parse_ca_pem(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, CaCertError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| CaCertError::BadPem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(CaCertError::NoCertificate {
            path: path.to_owned(),
        });
    }
    for (i, cert) in certs.iter().enumerate() {
        // What the client will do with it at build time: fail here, with the file's name.
        RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| CaCertError::Invalid {
                path: path.to_owned(),
                index: i + 1,
                reason: e.to_string(),
            })?;
    }
    Ok(certs)
}

/// A hint for a failed request whose error chain says the server's certificate was not
/// trusted; `None` for any other failure.
pub(crate) fn untrusted_certificate_hint(chain: &str) -> Option<&'static str> {
    let lower = chain.to_ascii_lowercase();
    (lower.contains("invalid peer certificate") || lower.contains("certificate verify failed"))
        .then_some(
            "the server's TLS certificate is not trusted: if your own CA or a TLS-inspecting \
             proxy signed it, trust that CA's certificate with --ca-cert FILE",
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> String {
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
            .unwrap()
            .cert
            .pem()
    }

    #[test]
    fn an_endless_file_is_refused_unread() {
        match load_ca_file(Path::new("/dev/zero")) {
            Err(CaCertError::TooLarge { path }) => assert_eq!(path, Path::new("/dev/zero")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_or_more_certificates_are_read() {
        let p = Path::new("ca.pem");
        assert_eq!(parse_ca_pem(p, cert().as_bytes()).unwrap().len(), 1);
        let two = format!("# a comment before\n{}\n{}", cert(), cert());
        assert_eq!(parse_ca_pem(p, two.as_bytes()).unwrap().len(), 2);
    }

    #[test]
    fn a_file_without_a_certificate_is_refused_by_name() {
        let p = Path::new("/etc/ca/empty.pem");
        for text in [
            "",
            "not pem at all\n",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let e = parse_ca_pem(p, text.as_bytes()).unwrap_err();
            assert!(
                matches!(e, CaCertError::NoCertificate { .. }),
                "{text:?}: {e:?}"
            );
            let msg = e.to_string();
            assert!(
                msg.starts_with("/etc/ca/empty.pem: no certificate"),
                "{msg}"
            );
        }
    }

    #[test]
    fn a_block_that_is_not_a_certificate_is_refused_with_its_number() {
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n";
        let text = format!("{}{garbage}", cert());
        let e = parse_ca_pem(Path::new("ca.pem"), text.as_bytes()).unwrap_err();
        assert!(matches!(e, CaCertError::Invalid { index: 2, .. }), "{e:?}");
        assert!(e.to_string().starts_with("ca.pem: certificate 2 "), "{e}");
        let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let e = parse_ca_pem(Path::new("ca.pem"), broken.as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("ca.pem: "), "{e}");
    }

    #[test]
    fn a_missing_file_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.pem");
        let e = load_ca_file(&path).unwrap_err();
        assert!(matches!(e, CaCertError::Missing { .. }));
        assert_eq!(e.to_string(), format!("{}: no such file", path.display()));
        let e = load_ca_file(dir.path()).unwrap_err();
        assert!(matches!(e, CaCertError::Unreadable { .. }), "{e:?}");
    }

    #[test]
    fn only_certificate_errors_get_the_hint() {
        assert!(
            untrusted_certificate_hint(
                "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer"
            )
            .is_some()
        );
        assert!(untrusted_certificate_hint("connection refused").is_none());
    }
}
