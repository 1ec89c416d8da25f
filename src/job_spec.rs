//! Job specs (`jobs/*.toml`): a named, repeatable run: mode, manifest, target, limits and
//! reports. Relative paths in a spec are relative to the spec file's folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::api::{Environment, SubmitEndpoint};
use crate::config::{Layer, check};
use crate::exit::Error;

pub use crate::config::policy::OnChangedManifest;
pub use crate::config::report::{ReportSpec, default_formats};
pub use crate::store::RunMode;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// The run's name: with `key`, the run's identity. Defaults to the spec file's stem.
    pub name: Option<String>,
    /// The identifying key (`{date}` becomes today's date); by default the manifest's
    /// SHA-256.
    pub key: Option<String>,
    /// The checkpoint database (relative to the spec's folder), unless `--db` or
    /// `SMILE_RECON_DB` says otherwise.
    pub db: Option<PathBuf>,
    /// `refuse` (default) or `abandon` an unfinished run whose manifest changed.
    pub on_changed_manifest: Option<OnChangedManifest>,
    pub mode: RunMode,
    pub manifest: ManifestSpec,
    #[serde(default)]
    pub api: ApiSpec,
    #[serde(default)]
    pub limits: LimitsSpec,
    #[serde(default)]
    pub submit: SubmitSpec,
    #[serde(default)]
    pub poll: PollSpec,
    pub report: Option<ReportSpec>,
    /// `[metrics] file = "PATH"`: the Prometheus textfile, like `--metrics-file`.
    pub metrics: Option<MetricsSpec>,
    #[serde(default)]
    pub privacy: PrivacySpec,
}

/// `[privacy] keep_pii = true`: final jobs keep their personal data, like `--keep-pii`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySpec {
    pub keep_pii: Option<bool>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSpec {
    pub file: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSpec {
    pub path: PathBuf,
    pub query: Option<String>,
    /// A manifest with no rows is a run (otherwise exit 1).
    pub allow_empty: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    pub env: Option<Environment>,
    pub base_url: Option<String>,
    pub partner_id: Option<String>,
    /// A file holding the API key (never the key itself: a spec is not a secret store).
    pub api_key_file: Option<PathBuf>,
    pub timeout: Option<f64>,
    pub connect_timeout: Option<f64>,
    /// A PEM file of extra trusted certificates (`--ca-cert`).
    pub ca_cert: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    pub rate: Option<f64>,
    pub burst: Option<u32>,
    pub concurrency: Option<usize>,
    pub max_attempts: Option<u32>,
    pub result_timeout: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitSpec {
    pub endpoint: Option<SubmitEndpoint>,
    pub callback_url: Option<String>,
    pub callback_listen: Option<SocketAddr>,
    pub callback_grace: Option<f64>,
    /// `job-status` (default) or `none`: whether a callback's result needs job_status.
    pub callback_confirm: Option<crate::engine::callbacks::CallbackConfirm>,
    /// Seconds a callback's timestamp may be from now (default 300).
    pub callback_max_age: Option<f64>,
    /// `refuse` (default) or `allow` a row whose id type is known neither to
    /// `/v1/services` nor to the built-in table.
    pub unknown_id_types: Option<crate::api::id_types::UnknownIdTypes>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollSpec {
    pub deadline: Option<f64>,
    pub interval: Option<f64>,
}

impl JobSpec {
    /// The spec's `name` and `key` are printed on log lines and in hints: refused (exit 2)
    /// when they would break a line, and the key when empty or too long.
    fn check_identity(&self, path: &Path) -> Result<(), Error> {
        if let Some(problem) = self.name.as_deref().and_then(check::printable_problem) {
            return Err(Error::usage(format!(
                "{}: name {problem} (the spec's `name`)",
                path.display()
            )));
        }
        if let Some(problem) = self.key.as_deref().and_then(check::run_key_problem) {
            return Err(Error::usage(format!(
                "{}: key {problem} (the spec's `key`, like --run-key)",
                path.display()
            )));
        }
        Ok(())
    }

    /// Reads a spec; relative paths become absolute, relative to the spec's folder.
    pub fn load(path: &Path) -> Result<(Self, String), Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Spec(format!("{}: {e}", path.display())))?;
        // The error's own Display quotes the offending line, which could hold a secret
        // someone pasted into the spec: say only where and what.
        let mut spec: JobSpec = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let at = line.map(|l| format!(" line {l}:")).unwrap_or_default();
            Error::Spec(format!("{}:{at} {}", path.display(), e.message().trim()))
        })?;
        spec.check_identity(path)?;
        // Absolute, so that the paths stored with the run (and the hints printed) work
        // from any working directory.
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let dir = std::fs::canonicalize(dir).map_err(|e| {
            Error::Spec(format!(
                "{}: cannot resolve its folder {}: {e}",
                path.display(),
                dir.display()
            ))
        })?;
        let dir = dir.as_path();
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = join_lexically(dir, p);
            }
        };
        rebase(&mut spec.manifest.path);
        if let Some(f) = spec.api.api_key_file.as_mut() {
            rebase(f);
        }
        if let Some(f) = spec.api.ca_cert.as_mut() {
            rebase(f);
        }
        if let Some(r) = spec.report.as_mut() {
            rebase(&mut r.out);
        }
        if let Some(m) = spec.metrics.as_mut() {
            rebase(&mut m.file);
        }
        if let Some(db) = spec.db.as_mut() {
            if db.as_os_str().is_empty() {
                return Err(Error::Spec(format!(
                    "{}: db is empty: name the database file (e.g. db = \"../state/nightly.db\") \
                     or leave db out",
                    path.display()
                )));
            }
            rebase(db);
            if db.is_dir() {
                return Err(Error::Spec(format!(
                    "{}: db = {} is a folder: name the database file in it (e.g. {})",
                    path.display(),
                    db.display(),
                    db.join("nightly.db").display()
                )));
            }
        }
        let name = spec.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "job".into())
        });
        Ok((spec, name))
    }

    /// The settings this spec gives, as a layer (below the flags, above a stored run's).
    pub fn layer(&self) -> Layer {
        Layer {
            env: self.api.env,
            base_url: self.api.base_url.clone(),
            partner_id: self.api.partner_id.clone(),
            api_key_file: self.api.api_key_file.clone(),
            timeout: self.api.timeout,
            connect_timeout: self.api.connect_timeout,
            rate: self.limits.rate,
            burst: self.limits.burst,
            concurrency: self.limits.concurrency,
            max_attempts: self.limits.max_attempts,
            endpoint: self.submit.endpoint,
            callback_url: self.submit.callback_url.clone(),
            callback_listen: self.submit.callback_listen,
            callback_grace: self.submit.callback_grace,
            callback_confirm: self.submit.callback_confirm,
            callback_max_age: self.submit.callback_max_age,
            deadline: self.poll.deadline,
            result_timeout: self.limits.result_timeout,
            poll_interval: self.poll.interval,
            report_dir: self.report.as_ref().map(|r| r.out.clone()),
            report_formats: self.report.as_ref().map(|r| r.formats.clone()),
            ca_cert: self.api.ca_cert.clone(),
            unknown_id_types: self.submit.unknown_id_types,
            metrics_file: self.metrics.as_ref().map(|m| m.file.clone()),
            run_key: self.key.clone(),
            on_changed_manifest: self.on_changed_manifest,
            allow_empty: self.manifest.allow_empty,
            fail_on: self.report.as_ref().and_then(|r| r.fail_on),
            keep_pii: self.privacy.keep_pii,
        }
    }
}

/// `dir/p` with `..` resolved against the components before it, without touching the file
/// system (so `jobs/../reports` prints as `reports`). A `..` that would climb above a
/// relative start is kept.
fn join_lexically(dir: &Path, p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in dir.join(p).components() {
        match c {
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_paths_join_without_dot_dot() {
        assert_eq!(
            join_lexically(Path::new("jobs"), Path::new("../reports/x")),
            PathBuf::from("reports/x")
        );
        assert_eq!(
            join_lexically(Path::new("jobs"), Path::new("samples/a.csv")),
            PathBuf::from("jobs/samples/a.csv")
        );
        assert_eq!(
            join_lexically(Path::new(""), Path::new("../up.csv")),
            PathBuf::from("../up.csv")
        );
        assert_eq!(
            join_lexically(Path::new("a"), Path::new("..")),
            PathBuf::from(".")
        );
    }

    #[test]
    fn a_full_spec_parses_and_paths_are_rebased() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nightly.toml");
        std::fs::write(
            &path,
            r#"
mode = "submit"
[manifest]
path = "samples/rows.csv"
[api]
env = "production"
partner_id = "002"
ca_cert = "../certs/proxy-ca.pem"
[limits]
rate = 20
concurrency = 8
[submit]
endpoint = "verify"
[report]
out = "reports"
"#,
        )
        .unwrap();
        let (spec, name) = JobSpec::load(&path).unwrap();
        assert_eq!(name, "nightly");
        assert_eq!(spec.mode, RunMode::Submit);
        assert_eq!(spec.manifest.path, dir.path().join("samples/rows.csv"));
        assert_eq!(spec.api.env, Some(Environment::Production));
        let certs = dir.path().parent().unwrap().join("certs/proxy-ca.pem");
        assert_eq!(spec.api.ca_cert, Some(certs));
        assert_eq!(spec.submit.endpoint, Some(SubmitEndpoint::Verify));
        assert_eq!(spec.report.unwrap().formats.len(), 4);
    }

    /// Every setting's declared spec key is a key a job spec takes: a wrong type there is a
    /// type error, never "unknown field".
    #[test]
    fn every_declared_spec_key_is_a_spec_key() {
        for setting in crate::config::SETTINGS {
            let text = match setting.spec.trim_start_matches('[').split_once("] ") {
                Some(("manifest", key)) => {
                    format!("mode = \"poll\"\n[manifest]\npath = \"x.csv\"\n{key} = [[1]]\n")
                }
                Some((section, key)) => format!(
                    "mode = \"poll\"\n[manifest]\npath = \"x.csv\"\n[{section}]\n{key} = [[1]]\n"
                ),
                None => format!(
                    "mode = \"poll\"\n{} = [[1]]\n[manifest]\npath = \"x.csv\"\n",
                    setting.spec
                ),
            };
            let err = toml::from_str::<JobSpec>(&text).unwrap_err().to_string();
            assert!(!err.contains("unknown field"), "{}: {err}", setting.spec);
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(
            &path,
            "mode = \"poll\"\napi_key = \"secret\"\n[manifest]\npath = \"x.csv\"\n",
        )
        .unwrap();
        let err = JobSpec::load(&path).unwrap_err().to_string();
        assert!(err.contains("bad.toml") && err.contains("api_key"), "{err}");
        assert!(
            !err.contains("secret"),
            "a spec error must not echo values: {err}"
        );
    }

    #[test]
    fn a_bad_key_is_refused_naming_the_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nightly.toml");
        for key in ["\"\"", "\"a\\nb\"", &format!("\"{}\"", "k".repeat(201))] {
            let text = format!("mode = \"poll\"\nkey = {key}\n[manifest]\npath = \"x.csv\"\n");
            std::fs::write(&path, text).unwrap();
            let err = JobSpec::load(&path).unwrap_err();
            assert!(matches!(err, Error::Usage(_)), "{key}: {err:?}");
            let err = err.to_string();
            assert!(err.contains("nightly.toml") && err.contains("key"), "{err}");
        }
    }

    #[test]
    fn a_name_that_would_break_a_line_is_refused_naming_the_file_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nightly.toml");
        for name in ["\"evil\\nFAKE LINE\"", "\"a\\u2028b\"", "\"\\u001b[2J\""] {
            let text = format!("mode = \"poll\"\nname = {name}\n[manifest]\npath = \"x.csv\"\n");
            std::fs::write(&path, text).unwrap();
            let err = JobSpec::load(&path).unwrap_err();
            assert!(matches!(err, Error::Usage(_)), "{name}: {err:?}");
            assert!(err.to_string().contains("name"), "{err}");
        }
    }

    #[test]
    fn a_db_that_is_empty_or_a_folder_is_refused_naming_the_file_and_db() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        let path = dir.path().join("nightly.toml");
        for db in ["\"\"", "\"state\"", "\".\""] {
            let text = format!("mode = \"poll\"\ndb = {db}\n[manifest]\npath = \"x.csv\"\n");
            std::fs::write(&path, text).unwrap();
            let err = JobSpec::load(&path).unwrap_err().to_string();
            assert!(
                err.contains("nightly.toml") && err.contains("db "),
                "{db}: {err}"
            );
        }
    }
}
