//! Files that stay ours (issue 14, findings 4 and 5): the lock is on the database file,
//! so every path to it meets the same lock; no file of ours is opened through a symbolic
//! link; a database another user could write is refused with how to fix it; -wal and -shm
//! are 0600; reports are private, atomic and never written through a link.

mod common;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::batch::{self, Batch};
use smile_recon::api::SubmitEndpoint;
use smile_recon::exit::{Error, ExitStatus};
use smile_recon::job_spec::RunMode;
use smile_recon::report::{self, Format, ReportOptions};
use smile_recon::runner::{self, Layer, Target};
use smile_recon::sandbox::{Faults, Stats};
use smile_recon::store::{DbLock, Store};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Submissions beyond the first of each job_id: 2215 answers plus second acceptances.
fn duplicates(stats: &Stats) -> u64 {
    stats.duplicate_rejections
        + stats
            .accepted_by_job_id
            .values()
            .map(|n| n.saturating_sub(1))
            .sum::<u64>()
}

/// A run stopped by a wrong key: staged, every job still queued, resumable.
async fn staged(b: &Batch) {
    std::fs::write(&b.key_file, "not-the-key").unwrap();
    let stopped =
        runner::execute(b.request(RunMode::Submit, b.submit_flags(SubmitEndpoint::Verify)))
            .await
            .unwrap_err();
    assert!(matches!(stopped, Error::Breaker { .. }), "{stopped:?}");
    std::fs::write(&b.key_file, common::KEY).unwrap();
}

#[test]
fn every_path_to_one_database_meets_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let _held = DbLock::acquire(&db).unwrap();
    let pid = std::process::id().to_string();

    // Through a linked directory, or `..`: the same file, refused with the holder's pid.
    let alias = dir.path().join("alias");
    symlink(dir.path(), &alias).unwrap();
    for other in [alias.join("a.db"), dir.path().join("x/../a.db")] {
        if let Some(parent) = other.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        let err = DbLock::acquire(&other).unwrap_err().to_string();
        assert!(
            err.contains("in use by another smile-recon process") && err.contains(&pid),
            "{}: {err}",
            other.display()
        );
    }

    // A second hard link is refused (its -wal would be another file).
    let hard = dir.path().join("hard.db");
    std::fs::hard_link(&db, &hard).unwrap();
    let err = DbLock::acquire(&hard).unwrap_err().to_string();
    assert!(err.contains("hard links"), "{err}");
    std::fs::remove_file(&hard).unwrap();

    // A link as --db is refused outright, for the lock and for the database alike.
    let link = dir.path().join("b.db");
    symlink(&db, &link).unwrap();
    let err = DbLock::acquire(&link).unwrap_err().to_string();
    assert!(err.contains("symbolic link"), "{err}");
    let err = Store::open(&link).unwrap_err().to_string();
    assert!(err.contains("symbolic link"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_through_two_paths_to_one_database_send_nothing_twice() {
    let b = batch::setup(200, 141, Faults::default(), None).await;
    staged(&b).await;
    // The finding: `ln -s runs.db b.db`, then one run on each name at once.
    let link = b.dir.path().join("b.db");
    symlink(&b.db, &link).unwrap();
    let flags = || Layer {
        rate: Some(400.0),
        ..b.submit_flags(SubmitEndpoint::Verify)
    };
    let mut direct = b.request(RunMode::Submit, flags());
    direct.target = Target::Resume(None);
    let mut via_link = b.request(RunMode::Submit, flags());
    via_link.target = Target::Resume(None);
    via_link.db = link;

    let (first, second) = tokio::join!(runner::execute(direct), runner::execute(via_link));
    let stats = b.sandbox.stats();
    let dup = duplicates(&stats);
    println!(
        "figure: duplicate submissions with a linked --db run at the same time: {dup} ({} \
         submissions accepted for 200 jobs)",
        stats.accepted_submissions
    );
    assert_eq!(dup, 0, "submissions sent twice");
    let refused: Vec<_> = [&first, &second]
        .into_iter()
        .filter_map(|r| r.as_ref().err())
        .collect();
    assert_eq!(refused.len(), 1, "exactly one of the two runs is refused");
    assert!(
        matches!(second, Err(Error::Store(_))) && refused[0].to_string().contains("symbolic link"),
        "{}",
        refused[0]
    );
    let finished = [first, second]
        .into_iter()
        .find_map(Result::ok)
        .expect("one run finished");
    batch::assert_matches_manifest(&b, finished.run_id);
}

#[test]
fn a_linked_lock_file_truncates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("precious.txt");
    std::fs::write(&victim, "keep me\n").unwrap();
    let db = dir.path().join("runs.db");
    symlink(&victim, dir.path().join("runs.db.lock")).unwrap();
    let err = DbLock::acquire(&db).unwrap_err().to_string();
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");
    // The link is refused when the database is opened too.
    let err = Store::open(&db).unwrap_err().to_string();
    assert!(
        err.contains("runs.db.lock") && err.contains("symbolic link"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_db_is_refused_before_anything_is_sent() {
    let b = batch::setup(10, 142, Faults::default(), None).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("theirs.db");
    std::fs::write(&target, b"").unwrap();
    set_mode(&target, 0o644);
    symlink(&target, &b.db).unwrap();
    let refused =
        runner::execute(b.request(RunMode::Submit, b.submit_flags(SubmitEndpoint::Verify)))
            .await
            .unwrap_err();
    assert_eq!(refused.outcome(), ExitStatus::Fatal);
    assert!(matches!(refused, Error::Store(_)), "{refused:?}");
    assert!(refused.to_string().contains("symbolic link"), "{}", refused);
    assert_eq!(b.sandbox.stats().total_requests, 0);
    assert_eq!(std::fs::metadata(&target).unwrap().len(), 0, "not written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_others_can_write_is_refused_with_how_to_fix_it() {
    let b = batch::setup(10, 143, Faults::default(), None).await;
    drop(Store::open(&b.db).unwrap());
    set_mode(&b.db, 0o666);
    let refused =
        runner::execute(b.request(RunMode::Submit, b.submit_flags(SubmitEndpoint::Verify)))
            .await
            .unwrap_err();
    assert_eq!(refused.outcome(), ExitStatus::Fatal);
    assert!(matches!(refused, Error::Store(_)), "{refused:?}");
    assert!(
        refused.to_string().contains("writable by group and others")
            && refused.to_string().contains("chmod 600"),
        "{}",
        refused
    );
    assert_eq!(b.sandbox.stats().total_requests, 0);
    // Reports refuse it too (they would read planted rows).
    let err = Store::open_read_only(&b.db).unwrap_err().to_string();
    assert!(err.contains("chmod 600"), "{err}");

    // Fixed as told, the run goes ahead.
    set_mode(&b.db, 0o600);
    let finished = b
        .run(b.request(RunMode::Submit, b.submit_flags(SubmitEndpoint::Verify)))
        .await;
    batch::assert_matches_manifest(&b, finished.run_id);

    // A -wal left writable by others is refused the same way.
    let wal = b.dir.path().join("runs.db-wal");
    std::fs::write(&wal, b"").unwrap();
    set_mode(&wal, 0o666);
    let err = Store::open(&b.db).unwrap_err().to_string();
    assert!(
        err.contains("runs.db-wal") && err.contains("chmod 600"),
        "{err}"
    );
}

#[test]
fn wal_and_shm_are_private_whatever_the_database_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.db");
    drop(Store::open(&db).unwrap());
    // A database its owner made group- and world-readable (allowed: not writable).
    set_mode(&db, 0o644);
    let store = Store::open(&db).unwrap();
    let reader = Store::open_read_only(&db).unwrap();
    for suffix in ["-wal", "-shm"] {
        let path = dir.path().join(format!("runs.db{suffix}"));
        let m = mode(&path);
        println!("figure: {} mode {m:04o}", path.display());
        assert_eq!(m, 0o600, "{}", path.display());
    }
    drop((store, reader));
}

async fn finished_run(rows: usize, seed: u64) -> (Batch, i64) {
    let b = batch::setup(rows, seed, Faults::default(), None).await;
    let finished = b
        .run(b.request(RunMode::Submit, b.submit_flags(SubmitEndpoint::Verify)))
        .await;
    (b, finished.run_id)
}

fn options(out: &Path, show_pii: bool) -> ReportOptions {
    ReportOptions {
        formats: vec![Format::Json, Format::Csv, Format::Md, Format::Html],
        out: out.to_owned(),
        show_pii,
        compare: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_private_and_never_written_through_a_link() {
    let (b, run_id) = finished_run(30, 144).await;
    let store = Store::open_read_only(&b.db).unwrap();

    let out = b.dir.path().join("reports");
    let written = report::write(&store, run_id, &options(&out, true)).unwrap();
    assert!(written.files.len() >= 5, "{:?}", written.files);
    for file in &written.files {
        let m = mode(file);
        assert_eq!(m, 0o600, "{} is {m:04o}", file.display());
    }
    assert_eq!(mode(&out), 0o700, "a report folder made here is private");

    // A link planted as summary.md (and one as results.csv): refused, the files they
    // point to untouched, and the previous reports kept whole.
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("notes.md");
    std::fs::write(&victim, "mine\n").unwrap();
    for name in ["summary.md", "results.csv"] {
        let before = std::fs::read(out.join("results.csv")).unwrap();
        std::fs::remove_file(out.join(name)).unwrap();
        symlink(&victim, out.join(name)).unwrap();
        let err = report::write(&store, run_id, &options(&out, true))
            .unwrap_err()
            .to_string();
        assert!(err.contains(name) && err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "mine\n");
        std::fs::remove_file(out.join(name)).unwrap();
        if name != "results.csv" {
            assert_eq!(std::fs::read(out.join("results.csv")).unwrap(), before);
        }
    }
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "temporary files left: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_leaves_the_previous_report_whole() {
    let (b, run_id) = finished_run(400, 145).await;
    let out = b.dir.path().join("reports");
    {
        let store = Store::open_read_only(&b.db).unwrap();
        report::write(&store, run_id, &options(&out, false)).unwrap();
    }
    let before = std::fs::read(out.join("results.csv")).unwrap();
    // A file size limit stands in for a full disk: every write past it fails (EFBIG, as
    // ENOSPC would), SIGXFSZ ignored so the process sees the error.
    let limit = (before.len() / 2) as u64;
    assert!(limit > 40_000, "results.csv is {} bytes", before.len());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smile-recon"));
    cmd.args(["report", "--db"])
        .arg(&b.db)
        .arg("--out")
        .arg(&out)
        .env_remove("SMILE_RECON_LOG");
    // SAFETY: setrlimit and signal are async-signal-safe; nothing else runs here.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let cap = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &cap) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("results.csv"), "{stderr}");
    let after = std::fs::read(out.join("results.csv")).unwrap();
    println!(
        "figure: results.csv after a report cut at {limit} bytes: {} of {} bytes, {}",
        after.len(),
        before.len(),
        if after == before {
            "the previous file whole"
        } else {
            "HALF WRITTEN"
        }
    );
    assert_eq!(after, before, "results.csv is not the previous one whole");
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "temporary files left: {names:?}"
    );
}

#[test]
fn a_database_of_another_user_is_refused_with_chown() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.db");
    drop(Store::open(&db).unwrap());
    let euid = smile_recon::files::euid();
    if euid == 0 {
        // As root the file can really be given away (to nobody), and root is refused too:
        // a file another user could have altered is not ours to trust.
        let c = std::ffi::CString::new(db.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string; chown has no other precondition.
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        for err in [
            DbLock::acquire(&db).unwrap_err().to_string(),
            Store::open(&db).unwrap_err().to_string(),
            Store::open_read_only(&db).unwrap_err().to_string(),
        ] {
            assert!(
                err.contains("owned by uid 65534") && err.contains("chown 0"),
                "{err}"
            );
        }
    } else {
        // Without root no file can be given away: the same check, with this process
        // taken for another uid than the file's owner.
        let meta = std::fs::symlink_metadata(&db).unwrap();
        let reason = smile_recon::files::unsafe_reason(&db, &meta, euid + 1).unwrap();
        assert!(reason.contains(&format!("owned by uid {euid}")), "{reason}");
        assert!(reason.contains(&format!("chown {}", euid + 1)), "{reason}");
    }
}
