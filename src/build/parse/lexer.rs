//! Physical lines to logical lines: parser directives, comments, empty lines and
//! continuations, with a map back to where each piece was written (for error columns).

use super::{Fail, ParseErrorKind};

/// One instruction's text, its continuations joined, and where each piece came from.
#[derive(Debug)]
pub(super) struct Logical {
    /// The 1-based line the instruction starts on.
    pub line: usize,
    /// The instruction as written: leading whitespace dropped, continuations joined
    /// (the escape character and the line break removed), trailing whitespace trimmed.
    pub text: String,
    spans: Vec<Span>,
}

/// Where a piece of [`Logical::text`] starts: its byte offset in the joined text, and
/// the physical line and the number of characters before it on that line.
#[derive(Debug, Clone, Copy)]
struct Span {
    at: usize,
    line: usize,
    before: usize,
}

impl Logical {
    /// The 1-based line and column of byte `offset` of [`Logical::text`].
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let span = self
            .spans
            .iter()
            .rev()
            .find(|span| span.at <= offset)
            .copied()
            .unwrap_or(Span {
                at: 0,
                line: self.line,
                before: 0,
            });
        // Columns count characters, not bytes, as an editor does.
        let within = self
            .text
            .get(span.at..offset)
            .map_or(0, |piece| piece.chars().count());
        (span.line, span.before + within + 1)
    }

    /// An error pointing at byte `offset` of the text.
    pub fn fail(&self, offset: usize, kind: ParseErrorKind) -> Fail {
        let (line, column) = self.position(offset);
        Fail { line, column, kind }
    }

    /// An error pointing at the instruction's first column.
    pub fn fail_line(&self, kind: ParseErrorKind) -> Fail {
        self.fail(0, kind)
    }
}

/// A Containerfile cut into logical lines, and the escape character its directives chose.
#[derive(Debug)]
pub(super) struct Lexed {
    /// `\` unless `# escape=` chose `` ` ``.
    pub escape: char,
    /// Every instruction's logical line, in order.
    pub lines: Vec<Logical>,
}

/// Cuts `text` into logical lines.
pub(super) fn lex(text: &str) -> Result<Lexed, Fail> {
    // An editor's byte-order mark is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut escape = '\\';
    let mut seen: Vec<String> = Vec::new();
    let mut directives_open = true;
    let mut lines = Vec::new();
    let mut current: Option<Logical> = None;

    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        if directives_open {
            if let Some((key, value)) = directive(raw) {
                let key = key.to_ascii_lowercase();
                // Unknown directives are comments, and (as in docker) end the directives.
                if matches!(key.as_str(), "escape" | "syntax" | "check") {
                    if seen.contains(&key) {
                        return Err(Fail {
                            line: number,
                            column: 1,
                            kind: ParseErrorKind::DuplicateDirective(key),
                        });
                    }
                    if key == "escape" {
                        escape = match value {
                            "\\" => '\\',
                            "`" => '`',
                            other => {
                                return Err(Fail {
                                    line: number,
                                    column: 1,
                                    kind: ParseErrorKind::BadEscape(other.to_string()),
                                });
                            }
                        };
                    }
                    // `syntax` names a BuildKit frontend image; nutshell is its own
                    // frontend, so the directive is accepted and has no effect.
                    seen.push(key);
                    continue;
                }
            }
            // Anything else (a comment, an empty line, an instruction) closes the
            // directives: a `# escape=` further down is an ordinary comment.
            directives_open = false;
        }

        let trimmed = raw.trim_start();
        let blank = trimmed.is_empty() || trimmed.starts_with('#');
        if let Some(logical) = current.as_mut() {
            // Docker drops comment lines and empty lines inside a continuation, so a
            // long RUN can carry comments between its lines.
            if blank {
                continue;
            }
            let (body, continues) = strip_continuation(raw, escape);
            logical.spans.push(Span {
                at: logical.text.len(),
                line: number,
                before: 0,
            });
            // The next line's leading whitespace is kept, as docker keeps it.
            logical.text.push_str(body);
            if !continues && let Some(done) = current.take() {
                finish(done, &mut lines);
            }
        } else {
            if blank {
                continue;
            }
            let before = raw[..raw.len() - trimmed.len()].chars().count();
            let (body, continues) = strip_continuation(trimmed, escape);
            let logical = Logical {
                line: number,
                text: body.to_string(),
                spans: vec![Span {
                    at: 0,
                    line: number,
                    before,
                }],
            };
            if continues {
                current = Some(logical);
            } else {
                finish(logical, &mut lines);
            }
        }
    }
    // A continuation on the last line simply ends the instruction.
    if let Some(done) = current {
        finish(done, &mut lines);
    }
    Ok(Lexed { escape, lines })
}

/// Trims a finished logical line and keeps it unless nothing is left.
fn finish(mut logical: Logical, lines: &mut Vec<Logical>) {
    let kept = logical.text.trim_end().len();
    logical.text.truncate(kept);
    if !logical.text.is_empty() {
        lines.push(logical);
    }
}

/// A parser directive, `# key=value`, as docker's pattern
/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` reads it.
fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let (key, value) = rest.split_once('=')?;
    let key = key.trim_end();
    let mut chars = key.chars();
    if !chars.next()?.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let value = value.trim();
    (!value.is_empty()).then_some((key, value))
}

/// The line without its continuation mark, and whether it had one: the escape character
/// last on the line, optionally followed by spaces or tabs (invisible, so forgiven).
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    match line.trim_end_matches([' ', '\t']).strip_suffix(escape) {
        Some(body) => (body, true),
        None => (line, false),
    }
}
