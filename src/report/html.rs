//! `report.html`: one self-contained page (inline CSS and SVG; no scripts, fonts or
//! images from anywhere) an auditor can open in any browser.

use std::fmt::Write as _;

use super::aggregate::{HTML_ROWS, HtmlTables};
use super::summary::Summary;
use crate::api::Category;
use crate::job_spec::RunMode;
use crate::store::JobState;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn color(category: Option<Category>) -> &'static str {
    match category {
        Some(Category::Approved) => "#2e7d32",
        Some(Category::ProvisionallyApproved) => "#9e9d24",
        Some(Category::Rejected) => "#c62828",
        Some(Category::Error) => "#6a1b9a",
        None => "#607d8b",
    }
}

/// A horizontal bar chart: one bar per (label, count, colour).
pub fn bars(title: &str, items: &[(String, u64, &str)]) -> String {
    let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1);
    let row = 26;
    let label_w = 300;
    let bar_w = 420;
    let height = items.len() as i64 * row + 36;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{w}\" height=\"{height}\" \
         viewBox=\"0 0 {w} {height}\" aria-label=\"{t}\"><title>{t}</title>",
        w = label_w + bar_w + 80,
        t = escape(title)
    );
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"16\" class=\"chart-title\">{}</text>",
        escape(title)
    );
    for (i, (label, n, fill)) in items.iter().enumerate() {
        let y = 28 + i as i64 * row;
        let w = ((*n as f64 / max as f64) * bar_w as f64).round().max(1.0) as i64;
        let _ = write!(
            svg,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect x=\"{bx}\" y=\"{y}\" width=\"{w}\" height=\"18\" fill=\"{fill}\" rx=\"2\"/>\
             <text x=\"{nx}\" y=\"{ty}\">{n}</text>",
            lx = label_w - 8,
            ty = y + 14,
            label = escape(label),
            bx = label_w,
            nx = label_w + w + 6,
        );
    }
    svg.push_str("</svg>");
    svg
}

fn table(head: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut t = String::from("<table>");
    if head.iter().any(|h| !h.is_empty()) {
        t.push_str("<thead><tr>");
        for h in head {
            let _ = write!(t, "<th>{}</th>", escape(h));
        }
        t.push_str("</tr></thead>");
    }
    t.push_str("<tbody>");
    let mut any = false;
    for row in rows {
        any = true;
        t.push_str("<tr>");
        for cell in row {
            let _ = write!(t, "<td>{}</td>", escape(&cell));
        }
        t.push_str("</tr>");
    }
    if !any {
        let _ = write!(t, "<tr><td colspan=\"{}\">none</td></tr>", head.len());
    }
    t.push_str("</tbody></table>");
    t
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
margin:2rem auto;max-width:1100px;color:#1d2733;padding:0 1rem}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;\
border-bottom:1px solid #dde3ea;padding-bottom:.3rem}\
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}\
th,td{border:1px solid #dde3ea;padding:.3rem .6rem;text-align:left;vertical-align:top}\
th{background:#f3f6f9}td{overflow-wrap:anywhere;max-width:60rem}td.n{text-align:right}.cards{display:flex;flex-wrap:wrap;gap:.8rem}\
.card{border:1px solid #dde3ea;border-radius:6px;padding:.6rem 1rem;min-width:8rem}\
.card b{display:block;font-size:1.4rem}.muted{color:#5b6b7b;font-size:.85rem}\
svg text{font-size:12px;fill:#1d2733}svg .chart-title{font-weight:600;font-size:13px}\
code{background:#f3f6f9;padding:0 .2rem}.pii{border-left:4px solid #c62828;padding-left:.6rem}";

/// The page: a header, the totals as cards, then one section after another.
pub fn render(s: &Summary, tables: &HtmlTables) -> String {
    let mut h = String::new();
    header(&mut h, s);
    cards(&mut h, s);
    run_section(&mut h, s);
    results_section(&mut h, s);
    places_section(&mut h, s);
    requests_section(&mut h, s);
    drift_section(&mut h, s);
    row_tables(&mut h, s, tables);
    h.push_str("</body></html>\n");
    h
}

fn header(h: &mut String, s: &Summary) {
    let r = &s.run;
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>smile-recon run {id}: {name}</title><style>{STYLE}</style></head><body>\
         <h1>smile-recon run {id}: {name}</h1>\
         <p class=\"muted\">{mode} {endpoint} · {status} · generated {gen} by smile-recon \
         {version}</p>",
        id = r.id,
        name = escape(&r.name),
        mode = escape(r.mode.as_str()),
        endpoint = escape(r.endpoint.as_deref().unwrap_or("")),
        status = escape(&r.status),
        gen = escape(&s.generated_at),
        version = escape(&s.generated_by.tool_version),
    );
    if s.pii_shown {
        h.push_str(
            "<p class=\"pii\"><b>Personal data:</b> this report's <code>results.csv</code> \
             shows ID numbers in clear (<code>--show-pii</code>).</p>",
        );
    }
}

fn cards(h: &mut String, s: &Summary) {
    let get = |c: Category| s.totals.by_category.get(c.as_str()).copied().unwrap_or(0);
    let state = |st: JobState| s.totals.by_state.get(st.as_str()).copied().unwrap_or(0);
    h.push_str("<div class=\"cards\">");
    for (label, n) in [
        ("jobs", s.totals.jobs),
        (
            "approved",
            get(Category::Approved) + get(Category::ProvisionallyApproved),
        ),
        ("rejected", get(Category::Rejected)),
        ("error results", get(Category::Error)),
        (
            "failed / gave up",
            state(JobState::Failed) + state(JobState::GaveUp),
        ),
        ("invalid rows", state(JobState::Invalid)),
        ("discrepancies", s.reconciliation.discrepancies),
    ] {
        let _ = write!(h, "<div class=\"card\"><b>{n}</b>{label}</div>");
    }
    h.push_str("</div>");
}

fn run_section(h: &mut String, s: &Summary) {
    let r = &s.run;
    h.push_str("<h2>Run</h2>");
    h.push_str(&table(
        &["", ""],
        [
            vec!["API".into(), r.base_url.clone().unwrap_or_default()],
            vec![
                "environment".into(),
                r.environment.clone().unwrap_or_else(|| "-".into()),
            ],
            vec!["manifest".into(), r.manifest_path.clone()],
            vec!["manifest SHA-256".into(), r.manifest_sha256.clone()],
            vec!["created".into(), r.created_at.clone()],
            vec![
                "finished".into(),
                r.finished_at
                    .clone()
                    .unwrap_or_else(|| "not finished".into()),
            ],
        ],
    ));
    h.push_str(&table(
        &[
            "execution",
            "pid",
            "command",
            "started",
            "ended",
            "outcome",
            "version",
            "host",
            "user",
            "command line",
        ],
        r.executions.iter().enumerate().map(|(i, e)| {
            vec![
                (i + 1).to_string(),
                e.pid.to_string(),
                e.command.clone(),
                e.started_at.clone(),
                e.ended_at.clone().unwrap_or_default(),
                e.outcome.clone().unwrap_or_default(),
                e.tool_version.clone().unwrap_or_default(),
                e.host.clone().unwrap_or_default(),
                e.os_user.clone().unwrap_or_default(),
                e.command_line.clone().unwrap_or_default(),
            ]
        }),
    ));
    h.push_str("<h2>Configuration</h2>");
    h.push_str(&table(&["setting", "value"], config_rows(&r.config)));
}

/// The stored configuration as (setting, value) rows; a value that is not text or a number
/// is shown as JSON, an absent one as "-".
fn config_rows(config: &serde_json::Value) -> Vec<Vec<String>> {
    let Some(map) = config.as_object() else {
        return Vec::new();
    };
    map.iter()
        .map(|(k, v)| {
            let shown = match v {
                serde_json::Value::Null => "-".to_owned(),
                serde_json::Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            vec![k.clone(), shown]
        })
        .collect()
}

fn results_section(h: &mut String, s: &Summary) {
    h.push_str("<h2>Results</h2>");
    let categories: Vec<(String, u64, &str)> = s
        .totals
        .by_category
        .iter()
        .map(|(c, n)| (c.clone(), *n, color(Category::from_name(c))))
        .collect();
    h.push_str(&bars("Jobs by category", &categories));
    let codes: Vec<(String, u64, &str)> = s
        .result_codes
        .iter()
        .map(|c| (format!("{} {}", c.code, c.text), c.count, color(c.category)))
        .collect();
    if !codes.is_empty() {
        h.push_str(&bars("Jobs by ResultCode", &codes));
    }
    h.push_str(&table(
        &["state", "jobs"],
        s.totals
            .by_state
            .iter()
            .map(|(k, n)| vec![k.clone(), n.to_string()]),
    ));
}

fn places_section(h: &mut String, s: &Summary) {
    h.push_str("<h2>By country and id_type</h2>");
    if s.run.mode == RunMode::Poll {
        h.push_str(
            "<p class=\"muted\">As Smile ID's answers give them (Enhanced KYC answers name the \
             country and id type; other answers do not: <i>unknown</i>).</p>",
        );
    }
    h.push_str(&table(
        &[
            "country",
            "id_type",
            "jobs",
            "approved",
            "rejected",
            "error",
            "no result",
        ],
        s.by_country_id_type.iter().map(|p| {
            vec![
                p.country.clone(),
                p.id_type.clone(),
                p.jobs.to_string(),
                p.approved.to_string(),
                p.rejected.to_string(),
                p.error.to_string(),
                p.no_result.to_string(),
            ]
        }),
    ));
}

fn requests_section(h: &mut String, s: &Summary) {
    h.push_str("<h2>Requests, retries and latency</h2>");
    let q = &s.requests;
    let ms = |v: Option<i64>| v.map(|v| format!("{v} ms")).unwrap_or_else(|| "-".into());
    let mut rows = vec![
        vec!["requests".into(), q.total.to_string()],
        vec!["retries".into(), q.retries.to_string()],
        vec!["jobs retried".into(), q.jobs_retried.to_string()],
        vec!["pending polls".into(), q.pending_polls.to_string()],
        vec!["latency p50".into(), ms(q.latency_ms.p50)],
        vec!["latency p90".into(), ms(q.latency_ms.p90)],
        vec!["latency p99".into(), ms(q.latency_ms.p99)],
        vec!["latency max".into(), ms(q.latency_ms.max)],
        vec![
            "signatures confirmed / unconfirmed".into(),
            format!("{} / {}", s.signatures.confirmed, s.signatures.unconfirmed),
        ],
    ];
    for (kind, n) in &q.by_kind {
        rows.push(vec![format!("{kind} requests"), n.to_string()]);
    }
    for c in &s.job_status_codes {
        rows.push(vec![
            format!("job_status {} {}", c.code, c.text),
            c.count.to_string(),
        ]);
    }
    h.push_str(&table(&["", ""], rows));
}

fn drift_section(h: &mut String, s: &Summary) {
    if let Some(d) = &s.drift {
        let _ = write!(
            h,
            "<h2>Drift</h2><p class=\"muted\">Jobs this run shares with run {}; every changed \
             one is in <code>drift.csv</code>.</p>",
            d.compared_with_run
        );
        h.push_str(&table(
            &["compared with run", "shared jobs", "changed", "unchanged"],
            [vec![
                d.compared_with_run.to_string(),
                d.matched.to_string(),
                d.changed.to_string(),
                d.matched.saturating_sub(d.changed).to_string(),
            ]],
        ));
    }
}

/// The first rows of discrepancies and failures (the CSVs hold all of them).
fn row_tables(h: &mut String, s: &Summary, tables: &HtmlTables) {
    let _ = write!(
        h,
        "<h2>Discrepancies ({})</h2><p class=\"muted\">The first {} rows; all of them are in \
         <code>discrepancies.csv</code>.</p>",
        s.reconciliation.discrepancies, HTML_ROWS
    );
    if !s.reconciliation.by_kind.is_empty() {
        h.push_str(&table(
            &["kind", "jobs"],
            s.reconciliation
                .by_kind
                .iter()
                .map(|(k, n)| vec![k.clone(), n.to_string()]),
        ));
    }
    h.push_str(&table(
        &["line", "user_id", "job_id", "kind", "detail"],
        tables.discrepancies.iter().map(|r| r.to_vec()),
    ));
    let failed: u64 = JobState::ALL
        .into_iter()
        .filter(|st| st.is_error())
        .filter_map(|st| s.totals.by_state.get(st.as_str()))
        .sum();
    let _ = write!(
        h,
        "<h2>Failures ({failed})</h2><p class=\"muted\">Failed, gave up or invalid; the first \
         {HTML_ROWS} rows (all in <code>results.csv</code>).</p>"
    );
    h.push_str(&table(
        &["line", "user_id", "job_id", "state", "why"],
        tables.failures.iter().map(|r| r.to_vec()),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn bars_scale_to_the_largest() {
        let svg = bars("t", &[("a".into(), 10, "#000"), ("b".into(), 5, "#000")]);
        assert!(svg.contains("width=\"420\""), "{svg}");
        assert!(svg.contains("width=\"210\""), "{svg}");
    }
}
