//! Showing progress on pull, push, import and unpack: a bar per step when stderr is a
//! terminal (the `indicatif` crate), one plain line per finished step otherwise, so
//! that logs and test snapshots read well.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use super::store::Progress;

/// Progress on stderr: bars on a terminal, lines elsewhere.
pub struct Reporter {
    bar: Option<ProgressBar>,
    terminal: bool,
    what: String,
    done: u64,
}

impl Reporter {
    /// A reporter that draws bars if stderr is a terminal.
    pub fn stderr() -> Reporter {
        Reporter {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            what: String::new(),
            done: 0,
        }
    }
}

impl Progress for Reporter {
    fn begin(&mut self, what: &str, total: u64) {
        self.what = what.to_string();
        self.done = 0;
        if self.terminal {
            let bar = if total > 0 {
                ProgressBar::new(total)
            } else {
                ProgressBar::new_spinner()
            };
            let template = if total > 0 {
                "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}"
            } else {
                "{msg:24} {spinner} {elapsed}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what.to_string());
            self.bar = Some(bar);
        }
    }

    fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn end(&mut self, note: &str) {
        match self.bar.take() {
            Some(bar) => bar.finish_with_message(format!("{}: {note}", self.what)),
            None => eprintln!("{}: {note}", self.what),
        }
    }
}
