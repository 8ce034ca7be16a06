//! Containerfiles (Dockerfiles) parsed into instructions, by docker's rules.
//!
//! A Containerfile is a list of instructions, one per line, each a keyword and its
//! arguments. Keywords are case-insensitive (`FROM` by convention, `from` works too).
//! `#` first on a line (after optional whitespace) starts a comment; `#` anywhere else is
//! part of the argument, so `RUN echo #1` echoes `#1`.
//!
//! ```text
//! # syntax=docker/dockerfile:1
//! # escape=\
//! ARG BASE=debian:stable
//! FROM $BASE AS build
//! RUN apt-get update && \
//!     # comments inside a continuation are dropped
//!     apt-get install -y make
//! CMD ["make", "test"]
//! ```
//!
//! **Parser directives** are comments of the form `# key=value` at the very top. Only
//! `escape` (`\` or `` ` ``) changes anything; `syntax` (which BuildKit uses to pick a
//! frontend image) and `check` are accepted and ignored. The first line that is not a
//! directive (a comment, an empty line, an instruction) ends them: a `# escape=` lower
//! down is an ordinary comment. Each directive may appear once.
//!
//! **Continuations**: the escape character last on a line (spaces after it are forgiven)
//! joins the next line to this one. Docker drops comment lines and empty lines inside a
//! continuation, and so does this parser. The backtick escape exists for Windows, where
//! `\` is the path separator: ``# escape=` `` lets `COPY . C:\app\` mean what it says.
//!
//! **Shell form and exec form.** `RUN`, `CMD` and `ENTRYPOINT` take either a string,
//! run as `/bin/sh -c "string"` (or whatever `SHELL` set), or a JSON array, run directly
//! as an argv. The difference matters at run time: in shell form the container's PID 1
//! is the shell, and `sh` neither forwards `SIGTERM` to its child nor has a handler of
//! its own, and PID 1 ignores signals it has no handler for. `docker stop` then waits its
//! ten seconds and kills. In exec form the program itself is PID 1 and sees the signal.
//! Exec form is JSON, so it needs double quotes: `CMD ['a']` is shell form in docker. An
//! argument that opens with `["` but is not valid JSON is an error here, where docker
//! would quietly run it through the shell.
//!
//! The result keeps variables as written (`FROM $BASE`, `ENV PATH=/opt/bin:$PATH`):
//! substituting `ARG` and `ENV` values is a later step of the build. Each instruction
//! keeps its line and its text, continuations joined, which the build cache hashes.
//! ENV, LABEL and ARG values are unquoted here; what stays special in them for the
//! substitution step is `$` (a variable), `\$` (a literal dollar) and `\\` (a literal
//! backslash).
//!
//! Ref: <https://docs.docker.com/reference/dockerfile/>

mod instruction;
mod lexer;

use std::path::{Path, PathBuf};

use serde::Serialize;

/// A parsed Containerfile: its instructions in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Containerfile {
    /// Every instruction, with where it was written.
    pub instructions: Vec<Located>,
    /// The escape character (`\\`, or `` ` `` from the `escape` directive), which the
    /// build's variable substitution needs too.
    pub escape: char,
}

/// One instruction and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Located {
    /// The 1-based line the instruction starts on.
    pub line: usize,
    /// The instruction as written, continuations joined (escape and line break removed),
    /// leading and trailing whitespace trimmed: the build cache key's input.
    pub text: String,
    /// What the instruction says.
    pub instruction: Instruction,
}

/// One Containerfile instruction. Variables (`$NAME`, `${NAME}`) are left unexpanded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Instruction {
    /// `FROM image[:tag|@digest] [AS name]`: starts a stage; `scratch` is the empty image.
    From {
        /// The image reference as written.
        image: String,
        /// The stage's name, lower-cased (stage names are case-insensitive).
        alias: Option<String>,
    },
    /// `RUN`: a command run in the image being built, its changes a new layer.
    Run(Command),
    /// `CMD`: the image's default command (or default arguments to the entrypoint).
    Cmd(Command),
    /// `ENTRYPOINT`: the program the container runs, `CMD` its default arguments.
    Entrypoint(Command),
    /// `COPY`: files from the build context or another stage (`--from`).
    Copy(CopySpec),
    /// `ADD`: like `COPY` from the context; docker also fetches URLs and unpacks archives.
    Add(CopySpec),
    /// `ENV name=value ...`: environment for later instructions and the container.
    Env(Vec<(String, String)>),
    /// `ARG name[=default]`: a build argument, visible to later instructions only.
    Arg {
        /// The argument's name.
        name: String,
        /// Its default, if it has one (unquoted).
        default: Option<String>,
    },
    /// `WORKDIR`: the working directory, as written.
    Workdir(String),
    /// `USER`: `user[:group]` by name or id, as written.
    User(String),
    /// `EXPOSE`: ports (`80`, `80/tcp`, `53/udp`, `8000-8010`), as documentation and
    /// for `-P`.
    Expose(Vec<String>),
    /// `LABEL key=value ...`: metadata in the image config.
    Label(Vec<(String, String)>),
    /// `STOPSIGNAL`: the signal that asks the container to stop, as written.
    StopSignal(String),
    /// `VOLUME`: paths that become volumes when a container starts.
    Volume(Vec<String>),
    /// `SHELL ["prog", "args"]`: what runs shell-form commands (default `/bin/sh -c`).
    Shell(Vec<String>),
}

/// A command in shell form or exec form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Command {
    /// `RUN make test`: the string, as written, handed to the shell (`/bin/sh -c`).
    Shell(String),
    /// `RUN ["make", "test"]`: the argv, executed directly with no shell.
    Exec(Vec<String>),
}

/// What `COPY` or `ADD` copies, and where to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopySpec {
    /// `--from=`: a stage name, a stage index or an image (COPY only).
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=`: octal mode for the copied files.
    pub chmod: Option<String>,
    /// One or more sources (paths or globs), as written.
    pub sources: Vec<String>,
    /// The destination in the image; a trailing `/` means a directory.
    pub dest: String,
}

/// A Containerfile that could not be parsed: `FILE:LINE:COL: what is wrong`, the form
/// editors and compilers use, so the position is clickable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}:{line}:{column}: {kind}", .file.display())]
pub struct ParseError {
    /// The file, as given to [`parse`].
    pub file: PathBuf,
    /// The 1-based line.
    pub line: usize,
    /// The 1-based column (in characters) of the offending token, or 1.
    pub column: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

/// What is wrong in a Containerfile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseErrorKind {
    /// A keyword docker does not know either.
    #[error("unknown instruction \"{0}\"")]
    UnknownInstruction(String),
    /// A real instruction nutshell does not implement.
    #[error("{0} is not supported by nutshell")]
    Unsupported(String),
    /// A real flag nutshell does not implement (`FROM --platform`, `RUN --mount`).
    #[error("{instruction} {flag} is not supported by nutshell")]
    UnsupportedFlag {
        /// The instruction.
        instruction: String,
        /// The flag, with its dashes.
        flag: String,
    },
    /// A flag the instruction does not take.
    #[error("unknown flag --{flag} for {instruction}")]
    UnknownFlag {
        /// The instruction.
        instruction: String,
        /// The flag's name.
        flag: String,
    },
    /// `--from` without `=value`.
    #[error("{instruction} --{flag} needs a value: --{flag}=VALUE")]
    FlagNeedsValue {
        /// The instruction.
        instruction: String,
        /// The flag's name.
        flag: String,
    },
    /// The same flag twice.
    #[error("{instruction} --{flag} is given twice")]
    DuplicateFlag {
        /// The instruction.
        instruction: String,
        /// The flag's name.
        flag: String,
    },
    /// Too few arguments.
    #[error("{instruction} needs {what}")]
    MissingArguments {
        /// The instruction.
        instruction: String,
        /// What it needs.
        what: &'static str,
    },
    /// Arguments in the wrong shape.
    #[error("{instruction} takes `{usage}`")]
    Usage {
        /// The instruction.
        instruction: String,
        /// Its shape.
        usage: &'static str,
    },
    /// A JSON array with no closing `]` (or an unclosed string in it).
    #[error("unterminated JSON array")]
    UnterminatedJson,
    /// A JSON array holding numbers, objects or the like.
    #[error("JSON array must hold only strings")]
    JsonNotStrings,
    /// Other invalid JSON, in serde_json's words.
    #[error("invalid JSON array: {0}")]
    InvalidJson(String),
    /// An instruction that takes only the JSON form.
    #[error("{instruction} needs a JSON array of strings, like [\"/bin/sh\", \"-c\"]")]
    NeedsJson {
        /// The instruction.
        instruction: String,
    },
    /// A stage name docker would refuse.
    #[error("invalid stage name \"{0}\": use a letter, then letters, digits, -, _ or .")]
    BadStageName(String),
    /// An ENV or LABEL word without `=` among pairs.
    #[error("{instruction} needs name=value pairs, \"{word}\" has no =")]
    MissingEquals {
        /// The instruction.
        instruction: String,
        /// The word, as written.
        word: String,
    },
    /// `=value` with nothing before the `=`.
    #[error("{instruction} names must not be empty")]
    EmptyName {
        /// The instruction.
        instruction: String,
    },
    /// A quote opened and never closed.
    #[error("unterminated {0} quote")]
    UnterminatedQuote(char),
    /// An EXPOSE argument that is not a port.
    #[error("invalid port \"{0}\": want PORT, PORT/tcp, PORT/udp, PORT/sctp or LOW-HIGH")]
    BadPort(String),
    /// An instruction other than ARG before the first FROM.
    #[error("the first instruction must be FROM (only ARG may come before it), not {0}")]
    FromFirst(String),
    /// No FROM at all.
    #[error("no FROM instruction: a Containerfile needs at least one stage")]
    NoFrom,
    /// `# escape=` with something else than `\` or `` ` ``.
    #[error("the escape directive takes \\ or `, not \"{0}\"")]
    BadEscape(String),
    /// A directive given twice.
    #[error("the {0} directive is given twice")]
    DuplicateDirective(String),
}

/// An error before the file name is attached.
#[derive(Debug)]
struct Fail {
    line: usize,
    column: usize,
    kind: ParseErrorKind,
}

impl Fail {
    fn in_file(self, file: &Path) -> ParseError {
        ParseError {
            file: file.to_path_buf(),
            line: self.line,
            column: self.column,
            kind: self.kind,
        }
    }
}

/// Parses a Containerfile's `text`; `file` names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<Containerfile, ParseError> {
    let lexed = lexer::lex(text).map_err(|fail| fail.in_file(file))?;
    let mut instructions = Vec::with_capacity(lexed.lines.len());
    let mut seen_from = false;
    for logical in &lexed.lines {
        let instruction =
            instruction::instruction(logical, lexed.escape).map_err(|fail| fail.in_file(file))?;
        match instruction {
            Instruction::From { .. } => seen_from = true,
            // ARGs before the first FROM parameterise the FROM lines (`FROM $BASE`).
            Instruction::Arg { .. } => {}
            _ if !seen_from => {
                let keyword = logical.text.split_whitespace().next().unwrap_or_default();
                return Err(logical
                    .fail_line(ParseErrorKind::FromFirst(keyword.to_ascii_uppercase()))
                    .in_file(file));
            }
            _ => {}
        }
        instructions.push(Located {
            line: logical.line,
            text: logical.text.clone(),
            instruction,
        });
    }
    if !seen_from {
        return Err(Fail {
            line: 1,
            column: 1,
            kind: ParseErrorKind::NoFrom,
        }
        .in_file(file));
    }
    Ok(Containerfile {
        instructions,
        escape: lexed.escape,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<Instruction> {
        match parse(text, Path::new("Containerfile")) {
            Ok(file) => file
                .instructions
                .into_iter()
                .map(|l| l.instruction)
                .collect(),
            Err(error) => panic!("{text:?} did not parse: {error}"),
        }
    }

    fn error(text: &str) -> String {
        match parse(text, Path::new("Containerfile")) {
            Ok(file) => panic!("{text:?} parsed: {file:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn from(image: &str) -> Instruction {
        Instruction::From {
            image: image.to_string(),
            alias: None,
        }
    }

    #[test]
    fn full_multi_stage_example_parses_into_every_instruction() {
        let text = r#"# syntax=docker/dockerfile:1
ARG BASE=debian:stable
FROM $BASE AS Build
WORKDIR /src
COPY --chown=1000:1000 Makefile main.c ./
RUN make \
    && make test
ENV CC=gcc OPT="-O2 -g"
FROM scratch
COPY --from=build --chmod=755 /src/app /usr/bin/app
ADD ["notes.txt", "/doc/"]
LABEL org.opencontainers.image.title="the app" version=1
USER 1000:1000
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGTERM
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/usr/bin/app"]
CMD --help
"#;
        let file = parse(text, Path::new("Containerfile")).expect("parses");
        let lines: Vec<usize> = file.instructions.iter().map(|l| l.line).collect();
        assert_eq!(
            lines,
            [2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
        );
        assert_eq!(file.instructions[4].text, "RUN make     && make test");
        let got: Vec<Instruction> = file
            .instructions
            .into_iter()
            .map(|l| l.instruction)
            .collect();
        let expected = vec![
            Instruction::Arg {
                name: "BASE".into(),
                default: Some("debian:stable".into()),
            },
            Instruction::From {
                image: "$BASE".into(),
                alias: Some("build".into()),
            },
            Instruction::Workdir("/src".into()),
            Instruction::Copy(CopySpec {
                from: None,
                chown: Some("1000:1000".into()),
                chmod: None,
                sources: strings(&["Makefile", "main.c"]),
                dest: "./".into(),
            }),
            Instruction::Run(Command::Shell("make     && make test".into())),
            Instruction::Env(pairs(&[("CC", "gcc"), ("OPT", "-O2 -g")])),
            from("scratch"),
            Instruction::Copy(CopySpec {
                from: Some("build".into()),
                chown: None,
                chmod: Some("755".into()),
                sources: strings(&["/src/app"]),
                dest: "/usr/bin/app".into(),
            }),
            Instruction::Add(CopySpec {
                from: None,
                chown: None,
                chmod: None,
                sources: strings(&["notes.txt"]),
                dest: "/doc/".into(),
            }),
            Instruction::Label(pairs(&[
                ("org.opencontainers.image.title", "the app"),
                ("version", "1"),
            ])),
            Instruction::User("1000:1000".into()),
            Instruction::Expose(strings(&["8080", "53/udp"])),
            Instruction::Volume(strings(&["/data"])),
            Instruction::StopSignal("SIGTERM".into()),
            Instruction::Shell(strings(&["/bin/sh", "-ec"])),
            Instruction::Entrypoint(Command::Exec(strings(&["/usr/bin/app"]))),
            Instruction::Cmd(Command::Shell("--help".into())),
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(
            parsed("from alpine as Base\nrun echo hi\n"),
            vec![
                Instruction::From {
                    image: "alpine".into(),
                    alias: Some("base".into())
                },
                Instruction::Run(Command::Shell("echo hi".into())),
            ]
        );
    }

    #[test]
    fn from_takes_tags_and_digests() {
        let digest =
            "alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(parsed(&format!("FROM {digest}")), vec![from(digest)]);
        assert_eq!(
            parsed("FROM registry:5000/a/b:1.2"),
            vec![from("registry:5000/a/b:1.2")]
        );
    }

    #[test]
    fn backslash_continuation_joins_lines_and_forgives_trailing_spaces() {
        let file = parse("FROM a\nRUN echo one \\  \n  two\n", Path::new("C")).expect("parses");
        assert_eq!(file.instructions[1].line, 2);
        assert_eq!(file.instructions[1].text, "RUN echo one   two");
    }

    #[test]
    fn backtick_escape_changes_the_continuation_character() {
        let text = "# escape=`\nFROM a\nCOPY . C:\\app\\\nRUN dir `\n  C:\\\n";
        assert_eq!(
            parsed(text),
            vec![
                from("a"),
                Instruction::Copy(CopySpec {
                    from: None,
                    chown: None,
                    chmod: None,
                    sources: strings(&["."]),
                    dest: "C:\\app\\".into(),
                }),
                Instruction::Run(Command::Shell("dir   C:\\".into())),
            ]
        );
    }

    #[test]
    fn comments_and_empty_lines_inside_a_continuation_are_dropped() {
        let text = "FROM a\nRUN apt-get update && \\\n  # install make\n\n  apt-get install make\n";
        let file = parse(text, Path::new("C")).expect("parses");
        assert_eq!(
            file.instructions[1].text,
            "RUN apt-get update &&   apt-get install make"
        );
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_but_hash_inside_a_line_is_kept() {
        let text = "\n   # indented comment\nFROM a\n\n# another\nRUN echo #1\n";
        assert_eq!(
            parsed(text),
            vec![
                from("a"),
                Instruction::Run(Command::Shell("echo #1".into()))
            ]
        );
    }

    #[test]
    fn escape_directive_after_an_instruction_is_a_plain_comment() {
        // The backtick is not a continuation here, so RUN stays one line.
        let text = "FROM a\n# escape=`\nRUN echo `\nCMD x\n";
        assert_eq!(
            parsed(text),
            vec![
                from("a"),
                Instruction::Run(Command::Shell("echo `".into())),
                Instruction::Cmd(Command::Shell("x".into())),
            ]
        );
    }

    #[test]
    fn a_comment_or_an_empty_line_ends_the_directives() {
        let after_comment = "# hello\n# escape=`\nFROM a\nRUN a `\nCMD b\n";
        assert_eq!(parsed(after_comment).len(), 3);
        let after_blank = "\n# escape=`\nFROM a\nRUN a `\nCMD b\n";
        assert_eq!(parsed(after_blank).len(), 3);
        let first = "# syntax=docker/dockerfile:1\n# ESCAPE = `\nFROM a\nRUN a `\nCMD b\n";
        assert_eq!(parsed(first).len(), 2);
    }

    #[test]
    fn env_takes_pairs_with_quotes_and_escapes() {
        let text = r#"FROM a
ENV A=1 B="two words" C='single $quoted' D=back\ slash E="say \"hi\"" F=$HOME/bin G=\$HOME
"#;
        assert_eq!(
            parsed(text)[1],
            Instruction::Env(pairs(&[
                ("A", "1"),
                ("B", "two words"),
                ("C", "single \\$quoted"),
                ("D", "back slash"),
                ("E", "say \"hi\""),
                ("F", "$HOME/bin"),
                ("G", "\\$HOME"),
            ]))
        );
    }

    #[test]
    fn env_legacy_form_takes_the_rest_of_the_line_as_the_value() {
        assert_eq!(
            parsed("FROM a\nENV GREETING hello  big world\n")[1],
            Instruction::Env(pairs(&[("GREETING", "hello  big world")]))
        );
    }

    #[test]
    fn env_empty_value_is_allowed() {
        assert_eq!(
            parsed("FROM a\nENV EMPTY= QUOTED=\"\"\n")[1],
            Instruction::Env(pairs(&[("EMPTY", ""), ("QUOTED", "")]))
        );
    }

    #[test]
    fn label_keys_and_values_can_be_quoted() {
        let text = "FROM a\nLABEL \"com.example.vendor\"=\"ACME Inc\" multi.line=\"one \\\ntwo\"\n";
        assert_eq!(
            parsed(text)[1],
            Instruction::Label(pairs(&[
                ("com.example.vendor", "ACME Inc"),
                ("multi.line", "one two")
            ]))
        );
    }

    #[test]
    fn arg_with_and_without_default() {
        assert_eq!(
            parsed("ARG V\nARG W=\"a b\"\nFROM a:$V\n")[..2],
            [
                Instruction::Arg {
                    name: "V".into(),
                    default: None
                },
                Instruction::Arg {
                    name: "W".into(),
                    default: Some("a b".into())
                },
            ]
        );
    }

    #[test]
    fn exec_form_is_json_and_shell_form_is_the_text() {
        let text = "FROM a\nRUN [\"echo\", \"a b\"]\nRUN [ -f /x ] && echo yes\nCMD ['single']\nENTRYPOINT []\n";
        assert_eq!(
            parsed(text)[1..],
            [
                Instruction::Run(Command::Exec(strings(&["echo", "a b"]))),
                Instruction::Run(Command::Shell("[ -f /x ] && echo yes".into())),
                // Single quotes are not JSON: docker runs this through the shell too.
                Instruction::Cmd(Command::Shell("['single']".into())),
                Instruction::Entrypoint(Command::Exec(vec![])),
            ]
        );
    }

    #[test]
    fn exec_form_may_span_continuations() {
        assert_eq!(
            parsed("FROM a\nCMD [\"a\", \\\n     \"b\"]\n")[1],
            Instruction::Cmd(Command::Exec(strings(&["a", "b"])))
        );
    }

    #[test]
    fn copy_json_form_and_several_sources() {
        assert_eq!(
            parsed("FROM a\nCOPY --from=0 [\"my file\", \"b\", \"/dest dir/\"]\n")[1],
            Instruction::Copy(CopySpec {
                from: Some("0".into()),
                chown: None,
                chmod: None,
                sources: strings(&["my file", "b"]),
                dest: "/dest dir/".into(),
            })
        );
    }

    #[test]
    fn volume_takes_json_or_words_and_expose_takes_protocols() {
        assert_eq!(
            parsed(
                "FROM a\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\nEXPOSE 80 80/tcp 53/UDP 7000-7010 $PORT\n"
            )[1..],
            [
                Instruction::Volume(strings(&["/a", "/b"])),
                Instruction::Volume(strings(&["/c", "/d"])),
                Instruction::Expose(strings(&["80", "80/tcp", "53/UDP", "7000-7010", "$PORT"])),
            ]
        );
    }

    #[test]
    fn located_text_is_the_instruction_as_written() {
        let file = parse("  FROM   a  \nrun  echo   $X\n", Path::new("C")).expect("parses");
        assert_eq!(file.instructions[0].text, "FROM   a");
        assert_eq!(file.instructions[1].text, "run  echo   $X");
        assert_eq!(
            file.instructions[1].instruction,
            Instruction::Run(Command::Shell("echo   $X".into()))
        );
    }

    #[test]
    fn serializes_to_json() {
        let file = parse("FROM a\nRUN [\"true\"]\n", Path::new("C")).expect("parses");
        let json = serde_json::to_value(&file).expect("serializes");
        assert_eq!(
            json["instructions"][1]["instruction"]["Run"]["Exec"][0],
            "true"
        );
    }

    #[test]
    fn error_unknown_instruction() {
        assert_eq!(
            error("FROM a\n\nRUNN make\n"),
            "Containerfile:3:1: unknown instruction \"RUNN\""
        );
    }

    #[test]
    fn error_copy_without_a_destination() {
        assert_eq!(
            error("FROM a\n\n\n\nCOPY\n"),
            "Containerfile:5:5: COPY needs at least one source and a destination"
        );
        assert_eq!(
            error("FROM a\nCOPY --chown=1 only\n"),
            "Containerfile:2:16: COPY needs at least one source and a destination"
        );
    }

    #[test]
    fn error_unterminated_json_array() {
        assert_eq!(
            error("FROM a\nCOPY [\"a\", \"b\"\n"),
            "Containerfile:2:6: unterminated JSON array"
        );
        assert_eq!(
            error("FROM a\nCMD [\"a\", 1]\n"),
            "Containerfile:2:5: JSON array must hold only strings"
        );
    }

    #[test]
    fn error_unsupported_instructions() {
        assert_eq!(
            error("FROM a\nRUN a\nRUN b\nONBUILD RUN c\n"),
            "Containerfile:4:1: ONBUILD is not supported by nutshell"
        );
        assert_eq!(
            error("FROM a\nhealthcheck NONE\n"),
            "Containerfile:2:1: HEALTHCHECK is not supported by nutshell"
        );
        assert_eq!(
            error("FROM a\nMAINTAINER me\n"),
            "Containerfile:2:1: MAINTAINER is not supported by nutshell"
        );
    }

    #[test]
    fn error_unsupported_flags() {
        assert_eq!(
            error("FROM --platform=linux/arm64 a\n"),
            "Containerfile:1:6: FROM --platform is not supported by nutshell"
        );
        assert_eq!(
            error("FROM a\nRUN --mount=type=cache,target=/c make\n"),
            "Containerfile:2:5: RUN --mount is not supported by nutshell"
        );
        assert_eq!(
            error("FROM a\nCOPY --link a b\n"),
            "Containerfile:2:6: unknown flag --link for COPY"
        );
        assert_eq!(
            error("FROM a\nADD --from=x a b\n"),
            "Containerfile:2:5: unknown flag --from for ADD"
        );
        assert_eq!(
            error("FROM a\nCOPY --from a b\n"),
            "Containerfile:2:6: COPY --from needs a value: --from=VALUE"
        );
    }

    #[test]
    fn error_first_instruction_must_be_from() {
        assert_eq!(
            error("# comment\nARG A\nRUN echo\nFROM a\n"),
            "Containerfile:3:1: the first instruction must be FROM (only ARG may come before it), not RUN"
        );
        assert_eq!(
            error("# only a comment\n"),
            "Containerfile:1:1: no FROM instruction: a Containerfile needs at least one stage"
        );
    }

    #[test]
    fn error_positions_follow_continuations() {
        // The bad port is on the second physical line, third column.
        assert_eq!(
            error("FROM a\nEXPOSE 80 \\\n  http\n"),
            "Containerfile:3:3: invalid port \"http\": want PORT, PORT/tcp, PORT/udp, PORT/sctp or LOW-HIGH"
        );
    }

    #[test]
    fn error_env_and_quotes() {
        assert_eq!(
            error("FROM a\nENV A=1 B\n"),
            "Containerfile:2:9: ENV needs name=value pairs, \"B\" has no ="
        );
        assert_eq!(
            error("FROM a\nENV A=\"open\n"),
            "Containerfile:2:7: unterminated \" quote"
        );
        assert_eq!(
            error("FROM a\nENV =x\n"),
            "Containerfile:2:5: ENV names must not be empty"
        );
        assert_eq!(
            error("FROM a\nENV LONELY\n"),
            "Containerfile:2:5: ENV needs name=value pairs, \"LONELY\" has no ="
        );
    }

    #[test]
    fn error_from_shape_and_stage_name() {
        assert_eq!(
            error("FROM a b\n"),
            "Containerfile:1:8: FROM takes `FROM image [AS name]`"
        );
        assert_eq!(
            error("FROM a AS 1st\n"),
            "Containerfile:1:11: invalid stage name \"1st\": use a letter, then letters, digits, -, _ or ."
        );
        assert_eq!(error("FROM\n"), "Containerfile:1:5: FROM needs an image");
    }

    #[test]
    fn error_shell_needs_json() {
        assert_eq!(
            error("FROM a\nSHELL /bin/bash -c\n"),
            "Containerfile:2:7: SHELL needs a JSON array of strings, like [\"/bin/sh\", \"-c\"]"
        );
    }

    #[test]
    fn error_directives() {
        assert_eq!(
            error("# escape=x\nFROM a\n"),
            "Containerfile:1:1: the escape directive takes \\ or `, not \"x\""
        );
        assert_eq!(
            error("# escape=`\n# escape=\\\nFROM a\n"),
            "Containerfile:2:1: the escape directive is given twice"
        );
    }

    #[test]
    fn error_names_the_file_given() {
        let error = parse("RUNN\n", Path::new("ctx/Dockerfile")).expect_err("fails");
        assert_eq!((error.line, error.column), (1, 1));
        assert_eq!(
            error.to_string(),
            "ctx/Dockerfile:1:1: unknown instruction \"RUNN\""
        );
    }
}
