//! Staging: every manifest row is validated and written to the store before anything is
//! sent, in batches, so a run killed while staging continues where it stopped.

use std::sync::mpsc;
use std::time::Instant;

use crate::api::id_types::IdTypes;
use crate::engine::SubmitInput;
use crate::exit::Error;
use crate::manifest::{self, ManifestSource, ReadError, Row, RowBody, RowKind};
use crate::store::{JobState, NewJob, RunRecord, RunStatus, StageCounts, Store};

/// Rows per staging transaction.
const BATCH: usize = 5_000;

/// The salt of a run's derived job_ids: its identity (name and key) and generation, so the
/// same row of the same identity has the same job_id in any database (a re-run that
/// reaches Smile ID meets 2215 and reads the result instead of paying again), and
/// `--again` (the next generation) gives new ones. A run stored before identities keeps
/// the salt it was staged with: its id and creation time.
pub fn job_id_salt(run: &RunRecord) -> String {
    match &run.run_key {
        Some(key) => format!("identity:{}\0{}\0{}", run.name, key, run.generation),
        None => format!("run:{}:{}", run.id, run.created_at),
    }
}

/// Stages the rest of a run's manifest (all of it for a new run) and marks the run ready.
/// Verify rows are checked against `rules` (the run's id types).
///
/// Two threads share the work: a reader thread reads, validates and builds the rows of
/// each batch, this thread writes the batches (one transaction each, in manifest order).
/// A batch is staged whole or not at all, so a kill mid-staging resumes after
/// the last staged line; a manifest error stops the reader, and the batches it completed
/// before the error are staged, the partial one is not.
pub fn stage(
    store: &mut Store,
    run: &RunRecord,
    source: &ManifestSource,
    kind: RowKind,
    rules: &IdTypes,
) -> Result<StageCounts, Error> {
    let started = Instant::now();
    let skip_through = store.max_staged_line(run.id)?;
    if skip_through > 0 {
        tracing::info!(run = run.id, after_line = skip_through, "staging continues");
    }
    let salt = job_id_salt(run);
    let mut totals = StageCounts::default();
    let (full_tx, full_rx) = mpsc::sync_channel::<Vec<NewJob>>(QUEUED_BATCHES);
    // Staged batches go back to the reader, which drops their rows and refills them: the
    // rows' memory is freed on the thread that has time to spare.
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<NewJob>>(QUEUED_BATCHES + 1);
    let (staged, read) = std::thread::scope(|scope| {
        let salt = &salt;
        let reader = scope.spawn(move || {
            read_batches(source, kind, salt, skip_through, rules, &full_tx, &empty_rx)
        });
        let staged = (|| {
            for batch in full_rx.iter() {
                let counts = store.stage(run.id, &batch)?;
                totals.staged += counts.staged;
                totals.invalid += counts.invalid;
                totals.duplicate_job_ids += counts.duplicate_job_ids;
                // The reader may have stopped; a full return queue only means it has
                // batches enough.
                let _ = empty_tx.try_send(batch);
            }
            Ok::<(), Error>(())
        })();
        // A reader waiting on a full queue after a failed batch sees the queue closed.
        drop(full_rx);
        let read = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (staged, read)
    });
    staged?;
    match read {
        Ok(()) | Err(ReadError::Sink(())) => {}
        Err(ReadError::Manifest(e)) => return Err(Error::Manifest(e)),
    }
    store.set_run_status(run.id, RunStatus::Ready)?;
    tracing::info!(
        run = run.id,
        rows = totals.staged,
        invalid = totals.invalid,
        duplicate_job_ids = totals.duplicate_job_ids,
        seconds = (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        "manifest staged"
    );
    Ok(totals)
}

/// Batches read ahead of the one being written: enough that neither thread waits on the
/// other for long, few enough that memory stays flat (a batch is a few MiB at most).
const QUEUED_BATCHES: usize = 2;

/// The reader thread: the manifest's rows after `skip_through`, validated and built, sent
/// in batches of [`BATCH`] (the last one shorter). Stops with `Sink` when the writer has
/// stopped taking batches.
fn read_batches(
    source: &ManifestSource,
    kind: RowKind,
    salt: &str,
    skip_through: i64,
    rules: &IdTypes,
    full: &mpsc::SyncSender<Vec<NewJob>>,
    empty: &mpsc::Receiver<Vec<NewJob>>,
) -> Result<(), ReadError<()>> {
    let fresh = || match empty.try_recv() {
        Ok(mut staged) => {
            staged.clear();
            staged
        }
        Err(_) => Vec::with_capacity(BATCH),
    };
    let mut batch = fresh();
    manifest::read_with(source, kind, salt, skip_through, rules, |row| {
        batch.push(new_job(row));
        if batch.len() >= BATCH {
            let next = fresh();
            full.send(std::mem::replace(&mut batch, next))
                .map_err(|_| ())?;
        }
        Ok(())
    })?;
    if !batch.is_empty() {
        full.send(batch).map_err(|_| ReadError::Sink(()))?;
    }
    Ok(())
}

/// A manifest row as the store keeps it.
pub fn new_job(row: Row) -> NewJob {
    let Row {
        line,
        user_id,
        job_id,
        job_id_derived,
        country,
        id_type,
        body,
    } = row;
    let base = NewJob {
        line,
        user_id,
        job_id,
        job_id_derived,
        country: None,
        id_type: None,
        input_json: String::new(),
        state: JobState::Queued,
        error: None,
        expected_result_code: None,
        expected_status: None,
    };
    match body {
        RowBody::Verify(v) => {
            let v = *v;
            NewJob {
                country: Some(v.id_info.country.clone()),
                id_type: Some(v.id_info.id_type.clone()),
                expected_result_code: v.expected_result_code,
                input_json: to_json(&SubmitInput {
                    id_info: v.id_info,
                    extra: v.extra,
                }),
                ..base
            }
        }
        RowBody::Poll(p) => NewJob {
            expected_result_code: p.expected_result_code,
            expected_status: p.expected_status,
            input_json: to_json(&p.extra),
            ..base
        },
        RowBody::Invalid(e) => NewJob {
            // Where the row belongs, as the manifest gave it, for the reports.
            country,
            id_type,
            state: JobState::Invalid,
            input_json: to_json(&serde_json::json!({
                "field": e.field,
                "reason": e.reason,
            })),
            error: Some(e.to_string()),
            ..base
        },
    }
}

fn to_json(value: &impl serde::Serialize) -> String {
    // Serialising plain strings and maps cannot fail; an empty object is a safe fallback.
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::manifest::ManifestError;
    use crate::store::{NewRun, RunMode};

    /// A manifest that breaks after two full batches and part of a third: the full
    /// batches are staged (in order, each whole), the partial one is not, and the error
    /// names the line where the manifest broke.
    #[test]
    fn a_manifest_error_keeps_the_full_batches_before_it_and_drops_the_partial_one() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("m.csv");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        writeln!(file, "user_id,job_id").unwrap();
        let good = 2 * BATCH + 10;
        for n in 0..good {
            writeln!(file, "u{n},j{n}").unwrap();
        }
        // One record longer than any row may be: the reader refuses it.
        let bad_line = good as u64 + 2;
        file.write_all(&vec![
            b'x';
            crate::manifest::MAX_COLUMNS
                * (crate::manifest::MAX_FIELD_BYTES + 3)
                + (1 << 17)
        ])
        .unwrap();
        file.flush().unwrap();
        drop(file);

        let mut store = Store::open(&dir.path().join("db")).unwrap();
        let id = store
            .create_run(&NewRun {
                name: "t".into(),
                mode: RunMode::Poll,
                endpoint: None,
                manifest_path: csv.display().to_string(),
                manifest_query: None,
                manifest_sha256: "0".repeat(64),
                config_json: "{}".into(),
                run_key: "k".into(),
                generation: 0,
            })
            .unwrap();
        let run = store.run(id).unwrap().unwrap();
        let source = ManifestSource::Csv(csv.clone());
        let result = stage(
            &mut store,
            &run,
            &source,
            RowKind::Poll,
            IdTypes::builtin_shared(),
        );
        match result {
            Err(Error::Manifest(ManifestError::RecordTooLong { line, .. })) => {
                assert_eq!(line, bad_line)
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(store.max_staged_line(id).unwrap(), 2 * BATCH as i64 + 1);
        let run = store.run(id).unwrap().unwrap();
        assert_eq!(run.staged_rows, 2 * BATCH as i64);
        assert_eq!(run.status, RunStatus::Staging);
    }
}
