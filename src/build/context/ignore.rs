//! `.containerignore` (`.dockerignore`) patterns, and the glob matcher COPY sources share.
//!
//! The ignore file lists paths, relative to the context root, that the build must not see:
//!
//! ```text
//! # comments start in column 1
//! target
//! **/*.log
//! *.md
//! !README.md
//! ```
//!
//! Each line is cleaned the way Go's `filepath.Clean` cleans a path (`docs/` is `docs`,
//! `/build` is `build`). `*` and `?` match within one path component, `[a-c]` and `[^a-c]`
//! are character classes, `\` escapes the next character, and `**` matches any number of
//! directories, none included. A pattern that matches a directory hides everything below
//! it, so `docs` hides `docs/a.md`. A `!` line re-includes what it matches, and the last
//! matching line decides: `*.md` then `!README.md` keeps the README.
//!
//! These are the rules of moby's `patternmatcher` package. Two details differ, both on
//! purpose: a character class never matches `/` (docker's translation to a regexp lets
//! `[^a]` match it), and `[!a-c]` negates like `[^a-c]`, as in the shell (docker reads it
//! as a class holding `!`, `a`, `b`, `c`).
//!
//! Ref: <https://docs.docker.com/build/concepts/context/#dockerignore-files>

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::ContextError;

/// The ignore files a context may hold, in the order they are looked for: podman's and
/// buildah's name first, docker's second.
pub const IGNORE_FILES: [&str; 2] = [".containerignore", ".dockerignore"];

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// This character.
    Literal(char),
    /// `*`: any run of characters but `/`.
    AnyChars,
    /// `?`: one character but `/`.
    AnyChar,
    /// `[...]`: one character (never `/`) in, or with `negated` not in, the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` with more pattern after it: any number of whole directories, none included.
    AnyDirs,
    /// `**` at the end: everything, `/` included.
    Anything,
}

/// A compiled glob pattern, in Go's `filepath.Match` syntax, optionally with `**`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    /// Compiles `pattern`. With `double_star`, `**` spans directories (ignore files);
    /// without it, `**` is just two `*` (COPY sources, matched one component at a time).
    /// The error says what is wrong with the pattern.
    pub(super) fn compile(pattern: &str, double_star: bool) -> Result<Glob, &'static str> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            let token = match c {
                '*' if double_star && chars.peek() == Some(&'*') => {
                    chars.next();
                    // `a/**/b` is `a/` then "any directories" then `b`: the slash after
                    // `**` belongs to the directories it matches.
                    if chars.peek() == Some(&'/') {
                        chars.next();
                    }
                    if chars.peek().is_none() {
                        Token::Anything
                    } else {
                        Token::AnyDirs
                    }
                }
                '*' => Token::AnyChars,
                '?' => Token::AnyChar,
                '[' => parse_class(&mut chars)?,
                '\\' => Token::Literal(chars.next().ok_or("a trailing '\\' escapes nothing")?),
                other => Token::Literal(other),
            };
            tokens.push(token);
        }
        Ok(Glob { tokens })
    }

    /// Whether the whole of `text` matches.
    pub(super) fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        match_tokens(&self.tokens, &text)
    }
}

/// Parses a character class after its `[`, with Go's rules: non-empty, `\` escapes, and
/// a `-` or `]` that is neither a range's dash nor the closing bracket is an error.
fn parse_class(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<Token, &'static str> {
    let negated = matches!(chars.peek(), Some('^' | '!'));
    if negated {
        chars.next();
    }
    let mut ranges = Vec::new();
    loop {
        if chars.peek() == Some(&']') && !ranges.is_empty() {
            chars.next();
            return Ok(Token::Class { negated, ranges });
        }
        let lo = class_char(chars)?;
        let hi = if chars.peek() == Some(&'-') {
            chars.next();
            class_char(chars)?
        } else {
            lo
        };
        ranges.push((lo, hi));
    }
}

/// One character of a class: `\x` is `x`; a bare `-` or `]` here is out of place.
fn class_char(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<char, &'static str> {
    match chars.next() {
        None => Err("'[' is never closed"),
        Some('-' | ']') => Err("a '-' or ']' is out of place in '[...]'; escape it with '\\'"),
        Some('\\') => chars.next().ok_or("'[' is never closed"),
        Some(c) => Ok(c),
    }
}

/// Backtracking match; patterns and paths are short, so the simple way is fast enough.
fn match_tokens(tokens: &[Token], text: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return text.is_empty();
    };
    let one = |fits: &dyn Fn(char) -> bool| match text.split_first() {
        Some((&c, after)) => c != '/' && fits(c) && match_tokens(rest, after),
        None => false,
    };
    match first {
        Token::Literal(want) => match text.split_first() {
            Some((c, after)) => c == want && match_tokens(rest, after),
            None => false,
        },
        Token::AnyChar => one(&|_| true),
        Token::Class { negated, ranges } => {
            one(&|c| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated)
        }
        Token::AnyChars => {
            let run = text.iter().take_while(|&&c| c != '/').count();
            (0..=run).any(|skip| match_tokens(rest, &text[skip..]))
        }
        Token::AnyDirs => {
            match_tokens(rest, text)
                || (0..text.len()).any(|i| text[i] == '/' && match_tokens(rest, &text[i + 1..]))
        }
        Token::Anything => true,
    }
}

/// Cleans a slash-separated path the way Go's `filepath.Clean` does on Unix: no empty or
/// `.` components, `..` folded into its parent (and dropped at the root), `.` if nothing
/// is left.
pub(super) fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|&last| last != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// One line of an ignore file.
#[derive(Debug, Clone)]
struct Rule {
    glob: Glob,
    /// A `!` line: what it matches is included again.
    exception: bool,
}

/// The parsed ignore file of a build context. The default ignores nothing.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    file: Option<PathBuf>,
    rules: Vec<Rule>,
}

impl Ignore {
    /// Reads `.containerignore` from `context`, or `.dockerignore` if there is none; with
    /// neither, nothing is ignored.
    pub fn load(context: &Path) -> Result<Ignore, ContextError> {
        for name in IGNORE_FILES {
            let file = context.join(name);
            match fs::read(&file) {
                Ok(bytes) => return Ignore::parse(&String::from_utf8_lossy(&bytes), &file),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ContextError::Io {
                        op: "read",
                        path: file,
                        source,
                    });
                }
            }
        }
        Ok(Ignore::default())
    }

    /// Parses the text of an ignore file; `file` names it in errors and in
    /// [`describe`](Ignore::describe).
    pub fn parse(text: &str, file: &Path) -> Result<Ignore, ContextError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (index, line) in text.lines().enumerate() {
            // Only column 1 starts a comment: " # x" is a pattern, as in docker.
            if line.starts_with('#') {
                continue;
            }
            let bad = |reason| ContextError::BadPattern {
                file: file.to_path_buf(),
                line: index + 1,
                pattern: line.trim().to_string(),
                reason,
            };
            let mut pattern = line.trim();
            if pattern.is_empty() {
                continue;
            }
            let exception = pattern.starts_with('!');
            if exception {
                pattern = pattern[1..].trim();
                if pattern.is_empty() {
                    return Err(bad("a '!' needs a pattern after it"));
                }
            }
            let cleaned = clean(pattern);
            let cleaned = match cleaned.strip_prefix('/') {
                Some(relative) if !relative.is_empty() => relative,
                _ => cleaned.as_str(),
            };
            let glob = Glob::compile(cleaned, true).map_err(bad)?;
            rules.push(Rule { glob, exception });
        }
        Ok(Ignore {
            file: Some(file.to_path_buf()),
            rules,
        })
    }

    /// Whether `relative` (a path below the context root) is ignored: the last rule that
    /// matches it or one of its parent directories decides. The root itself never is.
    pub fn is_ignored(&self, relative: &Path) -> bool {
        let path = relative.to_string_lossy();
        if path.is_empty() || path == "." {
            return false;
        }
        // The path and each parent directory: `docs/a/b.md`, `docs`, `docs/a`.
        let prefixes: Vec<&str> = std::iter::once(path.as_ref())
            .chain(path.match_indices('/').map(|(i, _)| &path[..i]))
            .collect();
        let mut ignored = false;
        for rule in &self.rules {
            // A rule can only change the answer when it points the other way.
            if rule.exception == ignored && prefixes.iter().any(|p| rule.glob.matches(p)) {
                ignored = !rule.exception;
            }
        }
        ignored
    }

    /// Whether any `!` rule exists, so that an ignored directory may still hold included
    /// files and must be looked into.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|rule| rule.exception)
    }

    /// The ignore file read, if there was one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The ignore file's name for messages: `.containerignore`, or `the ignore file`.
    pub fn describe(&self) -> String {
        self.file.as_deref().and_then(Path::file_name).map_or_else(
            || "the ignore file".to_string(),
            |name| name.to_string_lossy().into_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(lines: &[&str]) -> Ignore {
        Ignore::parse(&lines.join("\n"), Path::new(".containerignore")).expect("valid patterns")
    }

    fn ignored(lines: &[&str], path: &str) -> bool {
        ignore(lines).is_ignored(Path::new(path))
    }

    #[test]
    fn star_md_matches_markdown_in_the_root_only() {
        assert!(ignored(&["*.md"], "README.md"));
        assert!(!ignored(&["*.md"], "docs/guide.md"));
        assert!(!ignored(&["*.md"], "README.mdx"));
    }

    #[test]
    fn double_star_in_the_middle_spans_zero_or_more_directories() {
        let rules = ["docs/**/*.go"];
        assert!(ignored(&rules, "docs/a.go"));
        assert!(ignored(&rules, "docs/x/y/a.go"));
        assert!(!ignored(&rules, "a.go"));
        assert!(!ignored(&rules, "docsx/a.go"));
    }

    #[test]
    fn lone_double_star_ignores_everything_but_the_root() {
        for path in ["file", "dir/file", ".hidden/x/y"] {
            assert!(ignored(&["**"], path), "{path}");
        }
        assert!(!ignored(&["**"], ""));
    }

    #[test]
    fn double_star_slash_foo_matches_foo_at_any_depth() {
        let rules = ["**/foo"];
        for path in ["foo", "a/foo", "a/b/foo", "foo/inside"] {
            assert!(ignored(&rules, path), "{path}");
        }
        for path in ["barfoo", "a/xfoo", "foobar"] {
            assert!(!ignored(&rules, path), "{path}");
        }
    }

    #[test]
    fn the_last_matching_rule_wins() {
        assert!(!ignored(&["*.md", "!README.md"], "README.md"));
        assert!(ignored(&["*.md", "!README.md"], "CHANGES.md"));
        assert!(ignored(&["!fileutils.go", "*.go"], "fileutils.go"));
    }

    #[test]
    fn a_directory_pattern_hides_its_contents_unless_excepted() {
        for rules in [&["docs"][..], &["docs/"], &["docs/*"]] {
            assert!(ignored(rules, "docs/a.md"), "{rules:?}");
            assert!(ignored(rules, "docs/deep/er/b.md"), "{rules:?}");
        }
        let rules = ["docs", "!docs/README.md"];
        assert!(!ignored(&rules, "docs/README.md"));
        assert!(ignored(&rules, "docs/other.md"));
        let rules = ["**", "!util/docker/web", "util/docker/web/foo"];
        assert!(!ignored(&rules, "util/docker/web/bar"));
        assert!(ignored(&rules, "util/docker/web/foo"));
    }

    #[test]
    fn classes_question_marks_and_escapes() {
        let cases = [
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[b-d]e", "ae", false),
            ("a[^b-d]e", "aze", true),
            ("a[!b-d]e", "ace", false),
            ("a[^b-d]e", "a/e", false),
            ("[\\]a]", "]", true),
            ("[x\\-]", "-", true),
            ("[a-ζ]*", "α", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a?c", "a/c", false),
            ("a?b", "a☺b", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("a\\\\", "a\\", true),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(ignored(&[pattern], path), want, "{pattern} on {path}");
        }
    }

    #[test]
    fn moby_match_table() {
        let cases = [
            ("**/", "dir/file", true),
            ("**/**", "dir/file", true),
            ("dir/**", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt**", "a/file.txt", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", "bar.foo", false),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcZdef", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(ignored(&[pattern], path), want, "{pattern} on {path}");
        }
    }

    #[test]
    fn comments_blank_lines_and_slashes_are_handled_like_docker() {
        let rules = ignore(&[
            "\u{feff}# a comment",
            "",
            "   ",
            "/build/",
            "  target  ",
            " #x",
        ]);
        assert!(rules.is_ignored(Path::new("build/out")));
        assert!(rules.is_ignored(Path::new("target")));
        assert!(rules.is_ignored(Path::new("#x")));
        assert!(!rules.is_ignored(Path::new("# a comment")));
        assert!(ignored(&["./src/../gen"], "gen/x.rs"));
    }

    #[test]
    fn an_invalid_pattern_is_an_error_naming_file_and_line() {
        let err = Ignore::parse("ok\n# fine\n[abc\n", Path::new("/ctx/.dockerignore"))
            .expect_err("unclosed class");
        assert_eq!(
            err.to_string(),
            "/ctx/.dockerignore:3: invalid pattern \"[abc\": '[' is never closed"
        );
        for bad in [
            "[", "[]a]", "[-]", "[x-]", "[a-b-c]", "[^bc", "a\\", "!", "! ",
        ] {
            assert!(Ignore::parse(bad, Path::new("f")).is_err(), "{bad}");
        }
    }

    #[test]
    fn load_prefers_containerignore_and_defaults_to_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let none = Ignore::load(dir.path()).expect("no file");
        assert!(!none.is_ignored(Path::new("anything")));
        assert_eq!(none.describe(), "the ignore file");
        fs::write(dir.path().join(".dockerignore"), "docker\n").expect("write");
        assert_eq!(
            Ignore::load(dir.path()).expect("load").describe(),
            ".dockerignore"
        );
        fs::write(dir.path().join(".containerignore"), "container\n").expect("write");
        let both = Ignore::load(dir.path()).expect("load");
        assert_eq!(both.describe(), ".containerignore");
        assert!(both.is_ignored(Path::new("container")));
        assert!(!both.is_ignored(Path::new("docker")));
    }

    #[test]
    fn clean_matches_go() {
        let cases = [
            ("", "."),
            (".", "."),
            ("a/", "a"),
            ("a//b/./c", "a/b/c"),
            ("a/../..", ".."),
            ("../a/../b", "../b"),
            ("/../x", "/x"),
            ("/", "/"),
            ("./a/b/..", "a"),
        ];
        for (path, want) in cases {
            assert_eq!(clean(path), want, "{path}");
        }
    }
}
