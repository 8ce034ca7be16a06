//! One logical line to one [`Instruction`]: the keyword, flags, shell or exec form,
//! whitespace-separated words, and `name=value` pairs with quotes.

use super::lexer::Logical;
use super::{Command, CopySpec, Fail, Instruction, ParseErrorKind as Kind};

/// Parses one logical line; `escape` is the file's escape character.
pub(super) fn instruction(logical: &Logical, escape: char) -> Result<Instruction, Fail> {
    let text = logical.text.as_str();
    let keyword_end = text.find(char::is_whitespace).unwrap_or(text.len());
    let keyword = &text[..keyword_end];
    let rest = skip_space(text, keyword_end);
    // Keywords are case-insensitive; upper case is only the convention.
    let upper = keyword.to_ascii_uppercase();
    match upper.as_str() {
        "FROM" => from(logical, rest),
        "RUN" => {
            if text[rest..].starts_with("--") {
                // BuildKit's RUN --mount, --network and --security: none of them here.
                let flag = text[rest..].split(['=', ' ', '\t']).next().unwrap_or("--");
                return Err(logical.fail(
                    rest,
                    Kind::UnsupportedFlag {
                        instruction: upper,
                        flag: flag.to_string(),
                    },
                ));
            }
            command(logical, rest, "RUN", false).map(Instruction::Run)
        }
        "CMD" => command(logical, rest, "CMD", true).map(Instruction::Cmd),
        "ENTRYPOINT" => command(logical, rest, "ENTRYPOINT", true).map(Instruction::Entrypoint),
        // Docker has no ADD --from: ADD fetches URLs and unpacks archives from the context.
        "COPY" => copy(logical, rest, "COPY", &["from", "chown", "chmod"]).map(Instruction::Copy),
        "ADD" => copy(logical, rest, "ADD", &["chown", "chmod"]).map(Instruction::Add),
        "ENV" => {
            pairs(logical, rest, escape, "ENV", "at least one name=value").map(Instruction::Env)
        }
        "LABEL" => {
            pairs(logical, rest, escape, "LABEL", "at least one key=value").map(Instruction::Label)
        }
        "ARG" => arg(logical, rest, escape),
        "WORKDIR" => single(logical, rest, "WORKDIR", "a path").map(Instruction::Workdir),
        "USER" => single(logical, rest, "USER", "a user name or id").map(Instruction::User),
        "STOPSIGNAL" => {
            single(logical, rest, "STOPSIGNAL", "a signal").map(Instruction::StopSignal)
        }
        "EXPOSE" => expose(logical, rest),
        "VOLUME" => volume(logical, rest),
        "SHELL" => shell(logical, rest),
        "ONBUILD" | "HEALTHCHECK" | "MAINTAINER" => {
            Err(logical.fail_line(Kind::Unsupported(upper)))
        }
        _ => Err(logical.fail_line(Kind::UnknownInstruction(keyword.to_string()))),
    }
}

/// The offset of the first non-whitespace character at or after `from`.
fn skip_space(text: &str, from: usize) -> usize {
    text[from..]
        .find(|c: char| !c.is_whitespace())
        .map_or(text.len(), |at| from + at)
}

/// Whitespace-separated words from `from` on, each with its offset. No quoting: docker
/// splits FROM, COPY, EXPOSE and VOLUME this way (use the JSON form for spaces).
fn words(text: &str, from: usize) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (at, c) in text[from..].char_indices() {
        let at = from + at;
        if c.is_whitespace() {
            if let Some(begin) = start.take() {
                out.push((begin, &text[begin..at]));
            }
        } else if start.is_none() {
            start = Some(at);
        }
    }
    if let Some(begin) = start {
        out.push((begin, &text[begin..]));
    }
    out
}

/// A `--name=value` flag: its name and value.
type Flag<'a> = (&'a str, &'a str);

/// Leading `--name=value` flags, and the offset of what follows them.
fn flags<'a>(
    logical: &'a Logical,
    from: usize,
    instruction: &str,
    known: &[&str],
) -> Result<(Vec<Flag<'a>>, usize), Fail> {
    let text = logical.text.as_str();
    let mut found: Vec<Flag> = Vec::new();
    let mut next = from;
    for (at, word) in words(text, from) {
        let Some(flag) = word.strip_prefix("--") else {
            return Ok((found, at));
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (flag, None),
        };
        if instruction == "FROM" && name == "platform" {
            return Err(logical.fail(
                at,
                Kind::UnsupportedFlag {
                    instruction: instruction.to_string(),
                    flag: "--platform".to_string(),
                },
            ));
        }
        if !known.contains(&name) {
            return Err(logical.fail(
                at,
                Kind::UnknownFlag {
                    instruction: instruction.to_string(),
                    flag: name.to_string(),
                },
            ));
        }
        let Some(value) = value.filter(|value| !value.is_empty()) else {
            return Err(logical.fail(
                at,
                Kind::FlagNeedsValue {
                    instruction: instruction.to_string(),
                    flag: name.to_string(),
                },
            ));
        };
        if found.iter().any(|(seen, _)| *seen == name) {
            return Err(logical.fail(
                at,
                Kind::DuplicateFlag {
                    instruction: instruction.to_string(),
                    flag: name.to_string(),
                },
            ));
        }
        found.push((name, value));
        next = text.len();
    }
    Ok((found, next))
}

/// Whether an argument is meant as a JSON array. Docker falls back to the shell form
/// whenever the JSON does not parse, so a typo like `CMD ["sh", "-c"` silently runs
/// `/bin/sh -c '["sh", "-c"'`. nutshell reports it instead: an argument that opens with
/// `[` followed by `"` or `]` is JSON or an error. `RUN [ -f x ] && …` stays shell form.
fn looks_like_json(body: &str) -> bool {
    body.strip_prefix('[')
        .is_some_and(|inner| matches!(inner.trim_start().chars().next(), Some('"' | ']') | None))
}

/// The JSON array of strings at `at`; errors point at its `[`.
fn json_array(logical: &Logical, at: usize) -> Result<Vec<String>, Fail> {
    let body = &logical.text[at..];
    match serde_json::from_str::<Vec<String>>(body) {
        Ok(items) => Ok(items),
        Err(error) if error.is_eof() => Err(logical.fail(at, Kind::UnterminatedJson)),
        Err(error) => {
            if serde_json::from_str::<Vec<serde_json::Value>>(body).is_ok() {
                return Err(logical.fail(at, Kind::JsonNotStrings));
            }
            // serde_json appends "at line 1 column N"; the column is ours to give.
            let message = error.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_string();
            Err(logical.fail(at, Kind::InvalidJson(message)))
        }
    }
}

fn missing(logical: &Logical, at: usize, instruction: &str, what: &'static str) -> Fail {
    logical.fail(
        at,
        Kind::MissingArguments {
            instruction: instruction.to_string(),
            what,
        },
    )
}

/// `FROM image[:tag|@digest] [AS name]`.
fn from(logical: &Logical, rest: usize) -> Result<Instruction, Fail> {
    let text = logical.text.as_str();
    let (_, after) = flags(logical, rest, "FROM", &[])?;
    let parts = words(text, after);
    match parts.as_slice() {
        [] => Err(missing(logical, after, "FROM", "an image")),
        [(_, image)] => Ok(Instruction::From {
            image: image.to_string(),
            alias: None,
        }),
        [(_, image), (_, as_word), (at, name)] if as_word.eq_ignore_ascii_case("as") => {
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !valid {
                return Err(logical.fail(*at, Kind::BadStageName(name.to_string())));
            }
            // Stage names are case-insensitive in docker; it keeps them lower case.
            Ok(Instruction::From {
                image: image.to_string(),
                alias: Some(name.to_ascii_lowercase()),
            })
        }
        [_, (at, _), ..] => Err(logical.fail(
            *at,
            Kind::Usage {
                instruction: "FROM".to_string(),
                usage: "FROM image [AS name]",
            },
        )),
    }
}

/// RUN, CMD, ENTRYPOINT: exec form (JSON) or shell form (the text as written).
fn command(
    logical: &Logical,
    rest: usize,
    instruction: &str,
    empty_exec_ok: bool,
) -> Result<Command, Fail> {
    let body = &logical.text[rest..];
    if looks_like_json(body) {
        let argv = json_array(logical, rest)?;
        // `CMD []` and `ENTRYPOINT []` clear an inherited value; `RUN []` runs nothing.
        if argv.is_empty() && !empty_exec_ok {
            return Err(missing(logical, rest, instruction, "a command"));
        }
        Ok(Command::Exec(argv))
    } else if body.is_empty() {
        Err(missing(logical, rest, instruction, "a command"))
    } else {
        Ok(Command::Shell(body.to_string()))
    }
}

/// COPY and ADD: flags, then sources and a destination, as words or a JSON array.
fn copy(
    logical: &Logical,
    rest: usize,
    instruction: &str,
    known: &[&str],
) -> Result<CopySpec, Fail> {
    let text = logical.text.as_str();
    let (found, after) = flags(logical, rest, instruction, known)?;
    let mut paths: Vec<String> = if looks_like_json(&text[after..]) {
        json_array(logical, after)?
    } else {
        words(text, after)
            .into_iter()
            .map(|(_, word)| word.to_string())
            .collect()
    };
    if paths.len() < 2 {
        return Err(missing(
            logical,
            after,
            instruction,
            "at least one source and a destination",
        ));
    }
    let flag = |name: &str| {
        found
            .iter()
            .find(|(seen, _)| *seen == name)
            .map(|(_, value)| value.to_string())
    };
    let dest = paths.pop().unwrap_or_default();
    Ok(CopySpec {
        from: flag("from"),
        chown: flag("chown"),
        chmod: flag("chmod"),
        sources: paths,
        dest,
    })
}

/// WORKDIR, USER, STOPSIGNAL: the rest of the line, as written.
fn single(
    logical: &Logical,
    rest: usize,
    instruction: &str,
    what: &'static str,
) -> Result<String, Fail> {
    let body = &logical.text[rest..];
    if body.is_empty() {
        return Err(missing(logical, rest, instruction, what));
    }
    Ok(body.to_string())
}

/// `ARG name[=default]`: one per instruction.
fn arg(logical: &Logical, rest: usize, escape: char) -> Result<Instruction, Fail> {
    let parts = shell_words(logical, rest, escape)?;
    match parts.as_slice() {
        [] => Err(missing(logical, rest, "ARG", "a name")),
        [(at, word)] => {
            let (name, default) = match split_pair(word, escape) {
                Some(eq) => (
                    &word[..eq],
                    Some(unquote(logical, *at + eq + 1, &word[eq + 1..], escape)?),
                ),
                None => (*word, None),
            };
            if name.is_empty() {
                return Err(logical.fail(
                    *at,
                    Kind::EmptyName {
                        instruction: "ARG".to_string(),
                    },
                ));
            }
            Ok(Instruction::Arg {
                name: name.to_string(),
                default,
            })
        }
        [_, (at, _), ..] => Err(logical.fail(
            *at,
            Kind::Usage {
                instruction: "ARG".to_string(),
                usage: "ARG name[=default], one per line",
            },
        )),
    }
}

/// ENV and LABEL: `name=value` pairs (quoted as in a shell), or the legacy
/// `NAME value with spaces`, one pair whose value is the rest of the line.
fn pairs(
    logical: &Logical,
    rest: usize,
    escape: char,
    instruction: &str,
    what: &'static str,
) -> Result<Vec<(String, String)>, Fail> {
    let text = logical.text.as_str();
    let parts = shell_words(logical, rest, escape)?;
    let Some(&(first_at, first)) = parts.first() else {
        return Err(missing(logical, rest, instruction, what));
    };
    if split_pair(first, escape).is_none() {
        // The legacy form: docker still reads it, and old Containerfiles use it.
        let name = unquote(logical, first_at, first, escape)?;
        let value_at = skip_space(text, first_at + first.len());
        if value_at == text.len() {
            return Err(logical.fail(
                first_at,
                Kind::MissingEquals {
                    instruction: instruction.to_string(),
                    word: first.to_string(),
                },
            ));
        }
        let value = unquote(logical, value_at, &text[value_at..], escape)?;
        return Ok(vec![(name, value)]);
    }
    let mut out = Vec::new();
    for (at, word) in parts {
        let Some(eq) = split_pair(word, escape) else {
            return Err(logical.fail(
                at,
                Kind::MissingEquals {
                    instruction: instruction.to_string(),
                    word: word.to_string(),
                },
            ));
        };
        let name = unquote(logical, at, &word[..eq], escape)?;
        if name.is_empty() {
            return Err(logical.fail(
                at,
                Kind::EmptyName {
                    instruction: instruction.to_string(),
                },
            ));
        }
        let value = unquote(logical, at + eq + 1, &word[eq + 1..], escape)?;
        out.push((name, value));
    }
    Ok(out)
}

/// `EXPOSE 80 443/tcp 53/udp 8000-8010`: checked unless a variable is involved.
fn expose(logical: &Logical, rest: usize) -> Result<Instruction, Fail> {
    let parts = words(&logical.text, rest);
    if parts.is_empty() {
        return Err(missing(logical, rest, "EXPOSE", "at least one port"));
    }
    for (at, port) in &parts {
        if !valid_port(port) {
            return Err(logical.fail(*at, Kind::BadPort(port.to_string())));
        }
    }
    Ok(Instruction::Expose(
        parts
            .into_iter()
            .map(|(_, port)| port.to_string())
            .collect(),
    ))
}

fn valid_port(port: &str) -> bool {
    if port.contains('$') {
        return true;
    }
    let (number, protocol) = match port.split_once('/') {
        Some((number, protocol)) => (number, Some(protocol)),
        None => (port, None),
    };
    let protocol_ok = protocol.is_none_or(|protocol| {
        ["tcp", "udp", "sctp"].contains(&protocol.to_ascii_lowercase().as_str())
    });
    let one = |text: &str| text.parse::<u16>().is_ok_and(|number| number > 0);
    let number_ok = match number.split_once('-') {
        Some((low, high)) => one(low) && one(high),
        None => one(number),
    };
    protocol_ok && number_ok
}

/// `VOLUME ["/data"]` or `VOLUME /data /logs`.
fn volume(logical: &Logical, rest: usize) -> Result<Instruction, Fail> {
    let text = logical.text.as_str();
    let paths: Vec<String> = if looks_like_json(&text[rest..]) {
        json_array(logical, rest)?
    } else {
        words(text, rest)
            .into_iter()
            .map(|(_, word)| word.to_string())
            .collect()
    };
    if paths.is_empty() || paths.iter().any(String::is_empty) {
        return Err(missing(logical, rest, "VOLUME", "at least one path"));
    }
    Ok(Instruction::Volume(paths))
}

/// `SHELL ["/bin/bash", "-c"]`: JSON only, as in docker.
fn shell(logical: &Logical, rest: usize) -> Result<Instruction, Fail> {
    if !looks_like_json(&logical.text[rest..]) {
        return Err(logical.fail(
            rest,
            Kind::NeedsJson {
                instruction: "SHELL".to_string(),
            },
        ));
    }
    let argv = json_array(logical, rest)?;
    if argv.is_empty() {
        return Err(logical.fail(
            rest,
            Kind::NeedsJson {
                instruction: "SHELL".to_string(),
            },
        ));
    }
    Ok(Instruction::Shell(argv))
}

/// Words separated by whitespace outside quotes, as written (quotes kept); an
/// unterminated quote is an error at the quote.
fn shell_words(logical: &Logical, from: usize, escape: char) -> Result<Vec<(usize, &str)>, Fail> {
    let text = logical.text.as_str();
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<(usize, char)> = None;
    let mut escaped = false;
    for (at, c) in text[from..].char_indices() {
        let at = from + at;
        if escaped {
            escaped = false;
            continue;
        }
        if let Some((_, open)) = quote {
            if c == open {
                quote = None;
            } else if c == escape && open == '"' {
                // Single quotes take everything literally, the escape character too.
                escaped = true;
            }
            continue;
        }
        if c.is_whitespace() {
            if let Some(begin) = start.take() {
                out.push((begin, &text[begin..at]));
            }
            continue;
        }
        if start.is_none() {
            start = Some(at);
        }
        if c == escape {
            escaped = true;
        } else if c == '"' || c == '\'' {
            quote = Some((at, c));
        }
    }
    if let Some((at, open)) = quote {
        return Err(logical.fail(at, Kind::UnterminatedQuote(open)));
    }
    if let Some(begin) = start {
        out.push((begin, &text[begin..]));
    }
    Ok(out)
}

/// The byte offset of the first `=` outside quotes and not escaped.
fn split_pair(word: &str, escape: char) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (at, c) in word.char_indices() {
        if escaped {
            escaped = false;
        } else if let Some(open) = quote {
            if c == open {
                quote = None;
            } else if c == escape && open == '"' {
                escaped = true;
            }
        } else if c == escape {
            escaped = true;
        } else if c == '"' || c == '\'' {
            quote = Some(c);
        } else if c == '=' {
            return Some(at);
        }
    }
    None
}

/// Removes quotes and resolves escapes the way a shell would, but leaves variables for
/// the substitution step. What remains special is `$` (a variable), `\$` (a literal
/// dollar: escaped or single-quoted in the source) and `\\` (a literal backslash), always
/// with `\`, whatever the file's escape character.
fn unquote(logical: &Logical, at: usize, raw: &str, escape: char) -> Result<String, Fail> {
    fn literal(out: &mut String, c: char) {
        if c == '$' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices();
    while let Some((offset, c)) = chars.next() {
        let unterminated = || logical.fail(at + offset, Kind::UnterminatedQuote(c));
        match c {
            '\'' => loop {
                match chars.next() {
                    None => return Err(unterminated()),
                    Some((_, '\'')) => break,
                    Some((_, inner)) => literal(&mut out, inner),
                }
            },
            '"' => loop {
                match chars.next() {
                    None => return Err(unterminated()),
                    Some((_, '"')) => break,
                    Some((_, '$')) => out.push('$'),
                    Some((_, inner)) if inner == escape => match chars.next() {
                        // Inside double quotes the escape only escapes `"`, `$` and itself.
                        Some((_, next)) if next == '"' || next == '$' || next == escape => {
                            literal(&mut out, next)
                        }
                        Some((_, next)) => {
                            literal(&mut out, inner);
                            literal(&mut out, next);
                        }
                        None => return Err(unterminated()),
                    },
                    Some((_, inner)) => literal(&mut out, inner),
                }
            },
            '$' => out.push('$'),
            _ if c == escape => match chars.next() {
                Some((_, next)) => literal(&mut out, next),
                // A lone escape at the very end stays itself.
                None => literal(&mut out, c),
            },
            _ => literal(&mut out, c),
        }
    }
    Ok(out)
}
