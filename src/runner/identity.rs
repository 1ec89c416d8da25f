//! A run's identity: its name plus an identifying key (`--run-key`, the spec's `key`, by
//! default the manifest's SHA-256). The same identity unfinished resumes; finished, it is
//! refused unless `--again` asks for a new run of it (the next generation, whose derived
//! job_ids differ). Also the pieces of a command that hints print, so that every hint works
//! when pasted.

use std::path::Path;

use crate::exit::Error;
use crate::job_spec::OnChangedManifest;
use crate::store::{DbLock, RunRecord, RunStatus, Store};

/// The database a command opens when neither `--db`, `SMILE_RECON_DB` nor a spec says.
pub const DEFAULT_DB: &str = "smile-recon.db";

/// Today's date (local time), as `{date}` in a key or a report path becomes.
pub fn today() -> String {
    chrono::Local::now().format("%Y-%m-%d").to_string()
}

/// `template` with each `{name}` of `vars` replaced by its value.
pub fn expand(template: &str, vars: &[(&str, &str)]) -> String {
    vars.iter()
        .fold(template.to_owned(), |text, (name, value)| {
            text.replace(&format!("{{{name}}}"), value)
        })
}

/// `value` as one safe path component, for `{name}`, `{run}` and `{date}` in a report
/// folder: path separators (`/`, `\`, `:`) and control characters become `_`, as do
/// leading dots and every `..`, so a substituted value can neither climb out of the folder
/// nor hide; an empty value is `_`.
pub fn path_component(value: &str) -> String {
    let mut clean: String = value
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | ':') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    while clean.contains("..") {
        clean = clean.replace("..", "__");
    }
    let dots = clean.len() - clean.trim_start_matches('.').len();
    clean.replace_range(..dots, &"_".repeat(dots));
    if clean.is_empty() {
        clean.push('_');
    }
    clean
}

/// The identifying key: the one given (`{date}` expanded), else the manifest's SHA-256.
pub fn key(given: Option<&str>, fingerprint: &str) -> String {
    match given {
        Some(k) => expand(k, &[("date", &today())]),
        None => fingerprint.to_owned(),
    }
}

/// ` --db PATH` when `db` is not the default database, else nothing: appended to every
/// command a hint prints.
pub fn db_arg(db: &Path) -> String {
    if db == Path::new(DEFAULT_DB) {
        return String::new();
    }
    format!(" --db {}", shell_word(&db.display().to_string()))
}

/// `resume --run ID` for this database, ready to paste.
pub fn resume_command(db: &Path, run: i64) -> String {
    format!("smile-recon resume --run {run}{}", db_arg(db))
}

/// `runs abandon ID` for this database, ready to paste.
pub fn abandon_command(db: &Path, run: i64) -> String {
    format!("smile-recon runs abandon {run}{}", db_arg(db))
}

/// `report --run ID` for this database, ready to paste.
pub fn report_command(db: &Path, run: i64) -> String {
    format!("smile-recon report --run {run}{}", db_arg(db))
}

/// A word as a POSIX shell reads it back: bare when it is plain, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Who a new or resumed run is.
pub struct Identity<'a> {
    pub name: &'a str,
    pub key: &'a str,
    /// The key was given (`--run-key`, spec `key`), not the manifest's fingerprint.
    pub explicit: bool,
    /// The database, for the commands a refusal names.
    pub db: &'a Path,
}

/// What the command works on.
#[derive(Debug)]
pub enum Choice {
    /// An unfinished run of the identity (or, from before identities, of the name).
    Resume(Box<RunRecord>),
    /// A new run of the identity, of this generation.
    New {
        generation: i64,
        /// The finished run `--again` runs again.
        again_of: Option<i64>,
    },
}

/// The run an identity names: its unfinished run, a new one, or (finished, without
/// `again`) a refusal naming the run and its date. An unfinished run whose manifest
/// changed is refused, or abandoned with `OnChangedManifest::Abandon` (a new run follows).
pub fn choose(
    store: &mut Store,
    lock: &DbLock,
    who: &Identity<'_>,
    fingerprint: &str,
    policy: OnChangedManifest,
    again: bool,
) -> Result<Choice, Error> {
    let candidate = match store.latest_run_of_identity(who.name, who.key)? {
        Some(run) if run.status == RunStatus::Finished => {
            if !again {
                return Err(Error::AlreadyFinished {
                    run: run.id,
                    name: run.name.clone(),
                    key: short(who.key).to_owned(),
                    date: date_of(run.finished_at.unwrap_or(run.updated_at)),
                });
            }
            let generation = store.next_generation(who.name, who.key)?;
            return Ok(Choice::New {
                generation,
                again_of: Some(run.id),
            });
        }
        Some(run) => Some(run),
        // An unfinished run of the name under another key: the same manifest changed
        // (the default key is its fingerprint), or a run from before identities. A run
        // under another explicit key is another identity and is left as it is.
        None => store
            .unfinished_run_named(who.name)?
            .filter(|r| r.run_key.is_none() || !who.explicit),
    };
    match candidate {
        Some(run) if run.manifest_sha256 != fingerprint => match policy {
            OnChangedManifest::Refuse => Err(Error::ManifestChanged {
                manifest: run.manifest_path.clone(),
                run: run.id,
                then: short(&run.manifest_sha256).to_owned(),
                now: short(fingerprint).to_owned(),
                abandon: abandon_command(who.db, run.id),
            }),
            OnChangedManifest::Abandon => {
                let why = "abandoned: its manifest changed (on_changed_manifest = abandon)";
                store.abandon_run(lock, run.id, why)?;
                crate::log::say(
                    false,
                    &format!(
                        "run {} abandoned: {} changed since it started \
                         (on_changed_manifest = \"abandon\"); a new run starts",
                        run.id, run.manifest_path
                    ),
                );
                let generation = store.next_generation(who.name, who.key)?;
                Ok(Choice::New {
                    generation,
                    again_of: None,
                })
            }
        },
        Some(run) => Ok(Choice::Resume(Box::new(run))),
        // Its runs pruned: refused as its finished run would be (without `--again`).
        None if !again && store.identity_pruned(who.name, who.key)? => {
            Err(Error::RanBeforePruned {
                name: who.name.to_owned(),
                key: short(who.key).to_owned(),
            })
        }
        None => Ok(Choice::New {
            generation: store.next_generation(who.name, who.key)?,
            again_of: None,
        }),
    }
}

/// A stored time (Unix ms) as `YYYY-MM-DD HH:MM UTC`.
fn date_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "an unknown date".into())
}

/// The first 12 characters of a key or digest.
pub fn short(text: &str) -> &str {
    match text.char_indices().nth(12) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_expand_the_date_and_default_to_the_fingerprint() {
        assert_eq!(key(None, "abc"), "abc");
        let nightly = key(Some("nightly-{date}"), "abc");
        assert_eq!(nightly, format!("nightly-{}", today()));
        assert_eq!(
            expand("r/{name}/{run}", &[("run", "7"), ("name", "n")]),
            "r/n/7"
        );
    }

    #[test]
    fn substituted_values_are_one_safe_path_component() {
        for (given, safe) in [
            ("..", "__"),
            ("../x", "___x"),
            (".hidden", "_hidden"),
            ("a/b\\c:d", "a_b_c_d"),
            ("a..b", "a__b"),
            ("line\nbreak", "line_break"),
            ("", "_"),
            ("nightly", "nightly"),
            ("v1.2", "v1.2"),
        ] {
            assert_eq!(path_component(given), safe, "{given:?}");
        }
    }

    #[test]
    fn short_keeps_twelve_characters_of_any_key() {
        assert_eq!(short("abcdefghijklmnop"), "abcdefghijkl");
        assert_eq!(short("abc"), "abc");
        let wide = "é".repeat(5000);
        assert_eq!(short(&wide), "é".repeat(12));
        assert_eq!(short(&format!("a{wide}")), format!("a{}", "é".repeat(11)));
    }

    #[test]
    fn hints_name_the_database_unless_it_is_the_default() {
        assert_eq!(
            resume_command(Path::new(DEFAULT_DB), 3),
            "smile-recon resume --run 3"
        );
        assert_eq!(
            resume_command(Path::new("big/submit.db"), 3),
            "smile-recon resume --run 3 --db big/submit.db"
        );
        assert_eq!(db_arg(Path::new("my dir/x.db")), " --db 'my dir/x.db'");
    }
}
