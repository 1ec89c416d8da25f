//! `summary.md`: the totals for an email or a chat message.

use std::fmt::Write as _;

use super::summary::Summary;

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    run_table(&mut out, s);
    counts(&mut out, s);
    findings(&mut out, s);
    out
}

/// The run's metadata as a two-column table.
fn run_table(out: &mut String, s: &Summary) {
    let r = &s.run;
    let _ = writeln!(out, "# smile-recon run {}: {}\n", r.id, r.name);
    if s.pii_shown {
        let _ = writeln!(
            out,
            "**Personal data**: this report's `results.csv` shows ID numbers in clear \
             (`--show-pii`).\n"
        );
    }
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(
        out,
        "| mode | {} {} |",
        r.mode,
        r.endpoint.as_deref().unwrap_or("")
    );
    let _ = writeln!(out, "| status | {} |", r.status);
    if let Some(url) = &r.base_url {
        let _ = writeln!(out, "| API | {url} |");
    }
    let _ = writeln!(out, "| manifest | `{}` |", r.manifest_path);
    let _ = writeln!(out, "| manifest SHA-256 | `{}` |", r.manifest_sha256);
    let _ = writeln!(out, "| started | {} |", r.created_at);
    let _ = writeln!(
        out,
        "| finished | {} |",
        r.finished_at.as_deref().unwrap_or("not finished")
    );
    let _ = writeln!(out, "| executions | {} |", r.executions.len());
    let _ = writeln!(out, "| jobs | {} |", s.totals.jobs);
    let g = &s.generated_by;
    let _ = writeln!(
        out,
        "| written by | smile-recon {} on {} as {} |\n",
        g.tool_version, g.host, g.os_user
    );
}

/// Jobs by state, category and ResultCode.
fn counts(out: &mut String, s: &Summary) {
    let _ = writeln!(out, "## By state\n\n| state | jobs |\n|---|---:|");
    for (state, n) in &s.totals.by_state {
        let _ = writeln!(out, "| {state} | {n} |");
    }
    let _ = writeln!(out, "\n## By category\n\n| category | jobs |\n|---|---:|");
    for (c, n) in &s.totals.by_category {
        let _ = writeln!(out, "| {c} | {n} |");
    }
    if !s.result_codes.is_empty() {
        let _ = writeln!(
            out,
            "\n## By ResultCode\n\n| code | text | category | jobs |\n|---|---|---|---:|"
        );
        for c in &s.result_codes {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                c.code,
                c.text,
                c.category.map_or("", crate::api::Category::as_str),
                c.count
            );
        }
    }
}

/// Requests, reconciliation and drift.
fn findings(out: &mut String, s: &Summary) {
    let q = &s.requests;
    let ms = |v: Option<i64>| v.map(|v| format!("{v} ms")).unwrap_or_else(|| "-".into());
    let _ = writeln!(
        out,
        "\n## Requests\n\n{} requests, {} retries over {} jobs, {} pending polls; latency p50 {}, \
         p90 {}, p99 {}, max {}. Signatures: {} confirmed, {} unconfirmed.",
        q.total,
        q.retries,
        q.jobs_retried,
        q.pending_polls,
        ms(q.latency_ms.p50),
        ms(q.latency_ms.p90),
        ms(q.latency_ms.p99),
        ms(q.latency_ms.max),
        s.signatures.confirmed,
        s.signatures.unconfirmed
    );
    if s.reconciliation.checked > 0 {
        let _ = writeln!(
            out,
            "\n## Reconciliation\n\n{} of {} jobs disagree with the records (details in \
             `discrepancies.csv`).",
            s.reconciliation.discrepancies, s.reconciliation.checked
        );
        for (kind, n) in &s.reconciliation.by_kind {
            let _ = writeln!(out, "- {kind}: {n}");
        }
    }
    if let Some(d) = &s.drift {
        let _ = writeln!(
            out,
            "\n## Drift\n\nAgainst run {}: {} of {} shared jobs changed (details in \
             `drift.csv`).",
            d.compared_with_run, d.changed, d.matched
        );
    }
}
