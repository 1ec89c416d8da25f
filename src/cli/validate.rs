//! `validate`: a dry run. The manifest is read and every row validated exactly as staging
//! does (`manifest::read_with`), against the built-in id types table; nothing is sent and
//! no database is opened. It reports rows by country and id_type, invalid rows with line
//! and field, duplicate job_ids, and how long the run will take at the rate.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

use crate::api::SubmitEndpoint;
use crate::api::id_types::{IdTypes, UnknownIdTypes};
use crate::config::Layer;
use crate::config::declare::DEFAULT_RATE;
use crate::engine::callbacks::CallbackConfirm;
use crate::exit::{Error, ExitStatus};
use crate::job_spec::{JobSpec, RunMode};
use crate::manifest::{self, ManifestSource, ReadError, Row, RowBody, RowError, RowKind};

use super::args::{ModeArg, ValidateArgs};

/// Invalid rows and duplicates listed in the text output; `--json` lists every one.
const SHOWN: usize = 50;

/// What a manifest holds, row by row.
#[derive(Debug, Default)]
struct Check {
    rows: u64,
    /// Valid verify rows by (country, id_type).
    by_type: BTreeMap<(String, String), u64>,
    invalid: Vec<RowError>,
    /// (line, job_id, the line that used it first).
    duplicates: Vec<(i64, String, i64)>,
    /// Rows that would be sent: valid, and not a repeated job_id.
    sendable: u64,
    seen: HashMap<String, i64>,
}

impl Check {
    /// Counts one row. A valid row whose job_id an earlier valid row uses is a duplicate
    /// (staging makes it invalid); derived job_ids are unique by construction.
    fn add(&mut self, row: Row) {
        self.rows += 1;
        let verify = match row.body {
            RowBody::Invalid(e) => {
                self.invalid.push(e);
                return;
            }
            RowBody::Verify(v) => Some(v),
            RowBody::Poll(_) => None,
        };
        if !row.job_id_derived {
            if let Some(first) = self.seen.get(&row.job_id) {
                self.duplicates.push((row.line, row.job_id, *first));
                return;
            }
            self.seen.insert(row.job_id, row.line);
        }
        self.sendable += 1;
        if let Some(v) = verify {
            let key = (v.id_info.country.clone(), v.id_info.id_type.clone());
            *self.by_type.entry(key).or_default() += 1;
        }
    }

    /// Every row can be sent, and there is at least one (a run refuses a manifest with no
    /// rows, exit 1, unless `--allow-empty`: a failed export must not pass unnoticed).
    fn clean(&self) -> bool {
        self.rows > 0 && self.invalid.is_empty() && self.duplicates.is_empty()
    }
}

/// What to read and how fast the run would go.
struct Target {
    source: ManifestSource,
    mode: RunMode,
    /// Requests per second; `None`: no limit.
    rate: Option<f64>,
    unknown: UnknownIdTypes,
    /// Requests each sendable row costs at least: an async submission whose callback
    /// job_status confirms (the default) costs two.
    per_row: u64,
}

/// The requests one row costs at least: one, plus a job_status call to confirm each
/// callback's result when the endpoint is async and callbacks are confirmed.
fn requests_per_row(
    mode: RunMode,
    endpoint: Option<SubmitEndpoint>,
    confirm: Option<CallbackConfirm>,
) -> u64 {
    let async_submit =
        mode == RunMode::Submit && endpoint.unwrap_or_default().endpoint().is_async();
    let confirmed = confirm.unwrap_or_default() == CallbackConfirm::JobStatus;
    if async_submit && confirmed { 2 } else { 1 }
}

fn target(args: &ValidateArgs) -> Result<Target, Error> {
    let (source, mode, spec_rate, spec_unknown, per_row) = match (&args.spec, &args.manifest) {
        (Some(path), _) => {
            let (spec, _name) = JobSpec::load(path)?;
            let source = ManifestSource::from_args(spec.manifest.path, spec.manifest.query);
            let per_row = requests_per_row(
                spec.mode,
                spec.submit.endpoint,
                spec.submit.callback_confirm,
            );
            (
                source,
                spec.mode,
                spec.limits.rate,
                spec.submit.unknown_id_types,
                per_row,
            )
        }
        (None, Some(path)) => {
            let mode = match args.mode {
                Some(ModeArg::Poll) => RunMode::Poll,
                Some(ModeArg::Submit) | None => RunMode::Submit,
            };
            let source = ManifestSource::from_args(path.clone(), args.query.clone());
            (source, mode, None, None, requests_per_row(mode, None, None))
        }
        (None, None) => {
            return Err(Error::usage("validate needs a job spec or --manifest FILE"));
        }
    };
    let layer = Layer {
        rate: args.rate.or(spec_rate),
        ..Layer::default()
    };
    layer.check()?;
    // 0 means no limit.
    let rate = Some(layer.rate.unwrap_or(DEFAULT_RATE)).filter(|r| *r > 0.0);
    Ok(Target {
        source,
        mode,
        rate,
        per_row,
        unknown: args
            .unknown_id_types
            .map(Into::into)
            .or(spec_unknown)
            .unwrap_or_default(),
    })
}

pub fn run(args: ValidateArgs) -> Result<ExitStatus, Error> {
    let target = target(&args)?;
    let kind = match target.mode {
        RunMode::Submit => RowKind::Verify,
        RunMode::Poll => RowKind::Poll,
    };
    let rules = IdTypes::builtin().with_unknown(target.unknown);
    let mut check = Check::default();
    let read = manifest::read_with(&target.source, kind, "validate", 0, &rules, |row| {
        check.add(row);
        Ok::<(), Infallible>(())
    });
    match read {
        Ok(_) => {}
        Err(ReadError::Manifest(e)) => return Err(Error::fatal(e.to_string())),
        Err(ReadError::Sink(never)) => match never {},
    }
    let requests = check.sendable * target.per_row;
    let seconds = target.rate.map(|r| requests as f64 / r);
    if args.json {
        println!("{}", json(&target, &check, seconds));
    } else {
        print!("{}", text(&target, &check, seconds));
    }
    Ok(if check.clean() {
        ExitStatus::Success
    } else {
        ExitStatus::JobErrors
    })
}

fn json(target: &Target, check: &Check, seconds: Option<f64>) -> serde_json::Value {
    let by_type: Vec<_> = check
        .by_type
        .iter()
        .map(|((country, id_type), n)| {
            serde_json::json!({"country": country, "id_type": id_type, "rows": n})
        })
        .collect();
    let invalid: Vec<_> = check
        .invalid
        .iter()
        .map(|e| serde_json::json!({"line": e.line, "field": e.field, "reason": e.reason}))
        .collect();
    let duplicates: Vec<_> = check
        .duplicates
        .iter()
        .map(|(line, job_id, first)| {
            serde_json::json!({"line": line, "job_id": job_id, "first_line": first})
        })
        .collect();
    serde_json::json!({
        "manifest": target.source.display(),
        "mode": target.mode.as_str(),
        "id_types": "built-in",
        "unknown_id_types": target.unknown.as_str(),
        "rows": check.rows,
        "valid": check.sendable,
        "invalid": check.invalid.len(),
        "duplicate_job_ids": check.duplicates.len(),
        "by_country_and_id_type": by_type,
        "invalid_rows": invalid,
        "duplicates": duplicates,
        "rate": target.rate,
        "requests": check.sendable * target.per_row,
        "requests_per_row": target.per_row,
        "seconds": seconds.map(|s| s.ceil()),
    })
}

fn text(target: &Target, check: &Check, seconds: Option<f64>) -> String {
    let mut out = format!(
        "{} ({} rows; id types: the built-in table, not /v1/services, unknown types {}; \
         nothing sent)\n",
        target.source.display(),
        target.mode.as_str(),
        target.unknown.as_str()
    );
    out.push_str(&format!(
        "rows: {}  valid: {}  invalid: {}  duplicate job_ids: {}\n",
        check.rows,
        check.sendable,
        check.invalid.len(),
        check.duplicates.len()
    ));
    if !check.by_type.is_empty() {
        out.push_str("\nvalid rows by country and id_type:\n");
        for ((country, id_type), n) in &check.by_type {
            out.push_str(&format!("  {country:<4} {id_type:<28} {n:>9}\n"));
        }
    }
    list(
        &mut out,
        "invalid rows",
        check.invalid.iter().map(|e| e.to_string()),
    );
    list(
        &mut out,
        "duplicate job_ids (staged invalid)",
        check.duplicates.iter().map(|(line, job_id, first)| {
            manifest::RowError::duplicate_job_id(*line, job_id, *first).to_string()
        }),
    );
    if check.rows == 0 {
        out.push_str("no rows: a run of this manifest is refused (exit 1) unless --allow-empty\n");
    }
    out.push('\n');
    out.push_str(&match (target.rate, seconds) {
        (Some(rate), Some(s)) => format!(
            "time at {rate} requests/s: {} for {} requests (at least: {})\n",
            duration_text(s),
            check.sendable * target.per_row,
            per_row_text(target.per_row)
        ),
        _ => format!(
            "no rate limit (--rate 0): {} requests as fast as the API answers\n",
            check.sendable * target.per_row
        ),
    });
    out
}

fn list(out: &mut String, title: &str, lines: impl ExactSizeIterator<Item = String>) {
    let total = lines.len();
    if total == 0 {
        return;
    }
    out.push_str(&format!("\n{title}:\n"));
    for line in lines.take(SHOWN) {
        out.push_str(&format!("  {line}\n"));
    }
    if total > SHOWN {
        out.push_str(&format!(
            "  ... and {} more (--json lists every one)\n",
            total - SHOWN
        ));
    }
}

/// "5h 33m", "2m 05s", "12s" (rounded up to the second).
fn per_row_text(per_row: u64) -> &'static str {
    if per_row == 2 {
        "two per row sent: its submission and the job_status call confirming its callback"
    } else {
        "one per row sent"
    }
}

fn duration_text(seconds: f64) -> String {
    let total = seconds.max(0.0).ceil() as u64;
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m ({:.1} hours)", total as f64 / 3600.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(duration_text(200_000.0 / 10.0), "5h 33m (5.6 hours)");
        assert_eq!(duration_text(125.0), "2m 05s");
        assert_eq!(duration_text(11.2), "12s");
        assert_eq!(duration_text(0.0), "0s");
    }

    fn row(line: i64, job_id: &str, derived: bool, body: RowBody) -> Row {
        Row {
            line,
            user_id: "u".into(),
            job_id: job_id.into(),
            job_id_derived: derived,
            country: None,
            id_type: None,
            body,
        }
    }

    fn poll() -> RowBody {
        RowBody::Poll(manifest::PollRow {
            expected_result_code: None,
            expected_status: None,
            extra: Default::default(),
        })
    }

    #[test]
    fn a_repeated_job_id_is_a_duplicate_of_its_first_line() {
        let mut check = Check::default();
        check.add(row(2, "a", false, poll()));
        check.add(row(3, "a", false, poll()));
        check.add(row(4, "b", false, poll()));
        check.add(row(
            5,
            "a",
            false,
            RowBody::Invalid(RowError {
                line: 5,
                field: "job_id".into(),
                reason: "bad".into(),
            }),
        ));
        assert_eq!(check.rows, 4);
        assert_eq!(check.sendable, 2);
        assert_eq!(check.duplicates, vec![(3, "a".to_owned(), 2)]);
        assert_eq!(check.invalid.len(), 1);
        assert!(!check.clean());
    }
}
