//! `export`: a run's jobs or its audit trail on stdout.

use std::cell::Cell;
use std::io::Write;
use std::rc::Rc;

use crate::exit::{Error, ExitStatus};
use crate::report::Pii;
use crate::report::export::{self, ExportFormat};
use crate::store::{JobState, Store};

use super::args::{ExportArgs, ExportFormatArg};

pub fn run(args: ExportArgs) -> Result<ExitStatus, Error> {
    if !args.store.db.exists() {
        return Err(super::runs::no_database(&args.store.db));
    }
    let mut states = Vec::new();
    for s in &args.state {
        let state = JobState::parse(s.trim()).ok_or_else(|| {
            Error::usage(format!(
                "--state: unknown state {s:?} (queued, in_flight, awaiting, done, failed, \
                 gave_up, invalid)"
            ))
        })?;
        states.push(state);
    }
    let format = match args.format {
        ExportFormatArg::Csv => ExportFormat::Csv,
        ExportFormatArg::Jsonl => ExportFormat::Jsonl,
    };
    let store = Store::open_read_only(&args.store.db).map_err(fatal)?;
    let closed = Rc::new(Cell::new(false));
    let stdout = PipeWatch {
        inner: std::io::stdout().lock(),
        closed: closed.clone(),
    };
    let mut out = std::io::BufWriter::new(stdout);
    let written = if args.events {
        export::events(&store, args.run, format, &mut out, "stdout").map(|_| ())
    } else {
        let pii = Pii::from_show_pii(args.show_pii);
        export::jobs(&store, args.run, format, &states, pii, &mut out, "stdout").map(|_| ())
    };
    let flushed = written
        .map_err(fatal)
        .and_then(|()| out.flush().map_err(|e| fatal(format!("stdout: {e}"))));
    match flushed {
        // `export ... | head -1`: the reader has what it wanted; a quiet, successful end.
        Err(_) if closed.get() => Ok(ExitStatus::Success),
        Err(e) => Err(e),
        Ok(()) => Ok(ExitStatus::Success),
    }
}

/// stdout, noting when its reader has gone (EPIPE: Rust ignores SIGPIPE), so that the
/// error this becomes deep in a CSV or JSON writer can be told apart from a real one.
struct PipeWatch<W> {
    inner: W,
    closed: Rc<Cell<bool>>,
}

impl<W: Write> PipeWatch<W> {
    fn note<T>(&self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            self.closed.set(true);
        }
        result
    }
}

impl<W: Write> Write for PipeWatch<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.inner.write(buf);
        self.note(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.inner.flush();
        self.note(result)
    }
}

fn fatal(e: impl std::fmt::Display) -> Error {
    Error::fatal(e.to_string())
}
