//! Variable substitution in Containerfile arguments, by BuildKit's rules.
//!
//! `FROM $BASE`, `ENV PATH=/opt/bin:$PATH` and `COPY app /srv/${APP:-web}` name variables
//! that the build fills in from the `ARG` and `ENV` values in effect. This is not a shell:
//! nothing runs, there is no word splitting, no globbing, no `$(command)`. It is the small
//! language of BuildKit's `frontend/dockerfile/shell/lex.go`:
//!
//! | written              | gives                                                      |
//! |----------------------|------------------------------------------------------------|
//! | `$NAME`, `${NAME}`   | the value; an unset variable gives the empty string        |
//! | `${NAME:-word}`      | `word` if NAME is unset or empty, else the value           |
//! | `${NAME-word}`       | `word` if NAME is unset, else the value (even empty)       |
//! | `${NAME:+word}`      | `word` if NAME is set and not empty, else nothing          |
//! | `${NAME+word}`       | `word` if NAME is set (even empty), else nothing           |
//! | `${NAME:?msg}`       | the value, or an error with `msg` if unset or empty        |
//! | `${NAME?msg}`        | the value, or an error with `msg` if unset                 |
//! | `${NAME#pat}`, `##`  | the value without its shortest (`##`: longest) prefix matching `pat` |
//! | `${NAME%pat}`, `%%`  | the value without its shortest (`%%`: longest) suffix matching `pat` |
//! | `${NAME/pat/new}`    | the first (`//`: every) match of `pat` replaced by `new`   |
//!
//! `word`, `pat` and `new` may hold variables themselves (`${A:-${B:-x}}`). Patterns know
//! `*` (any string) and `?` (one character); `\*`, `\?` and `\\` match themselves, and
//! `\}`, `\/` keep `}` and `/` from ending the pattern. `${A=x}`, `${#A}` and anything
//! else are refused, as BuildKit refuses them.
//!
//! A name is letters, digits and `_`, not starting with a digit. Like BuildKit, `$1` or
//! `$12` (positional parameters) and `$$`, `$#`, `$?`, `$@`, `$*`, `$-`, `$!` (special
//! parameters) are read as names no build sets, so `he$1x` gives `hex`; a `$` before
//! anything else (`$.`, `$/`, a trailing `$`) stays a `$`.
//!
//! The escape character (`\`, or `` ` `` after `# escape=`) makes the next character
//! literal and disappears, whatever that character is: `\$A` is `$A`, `\\` is `\`, and
//! `a\b` is `ab`, as in BuildKit (which is why Windows paths want ``# escape=` ``). A lone
//! escape at the very end disappears too.
//!
//! [`expand`] is for ENV, LABEL and ARG values, which the parser has already unquoted into
//! exactly this form (with `\` as the escape). [`expand_quoted`] is for the other
//! arguments, kept as written: it also removes quotes the way BuildKit does, `'...'`
//! taken literally and `"..."` with variables and the escapes `\"`, `\$` and `\\`.
//!
//! Ref: <https://docs.docker.com/reference/dockerfile/#environment-replacement>

use std::collections::BTreeMap;

/// Where variable values come from: the ARG and ENV values in effect.
pub trait Vars {
    /// The value of `name`, or `None` if it is unset (which differs from empty).
    fn var(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Vars for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

impl Vars for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Declared variables, some without a value (`ARG NAME` with no default): unset.
impl Vars for BTreeMap<String, Option<String>> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned().flatten()
    }
}

/// A word that cannot be expanded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot expand {word:?}: {kind}")]
pub struct SubstError {
    /// The word as given.
    pub word: String,
    /// What is wrong with it.
    pub kind: SubstErrorKind,
}

/// What is wrong with a word.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubstErrorKind {
    /// `${` with no `}` after it.
    #[error("\"${{\" is never closed by \"}}\"")]
    MissingBrace,
    /// `${NAME/pattern}` with no second `/`.
    #[error("\"${{NAME/pattern/replacement}}\" is missing its second \"/\"")]
    MissingSlash,
    /// `${}`, `${:x}`, `${{`: no name where one must be.
    #[error("bad substitution: \"${{\" must be followed by a name")]
    BadSubstitution,
    /// `${NAME=x}`, `${NAME:x}` and other modifiers BuildKit does not know.
    #[error("unsupported modifier \"{0}\" in \"${{...}}\"")]
    UnsupportedModifier(String),
    /// `${NAME?message}` or `${NAME:?message}` with NAME unset (or empty).
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message written after `?`, or a default.
        message: String,
    },
    /// A pattern with a `\` before something other than `*`, `?`, `\`, `}` or `/`.
    #[error("invalid escape in pattern {0:?}: only \\*, \\?, \\\\, \\}} and \\/ are escapes")]
    BadPatternEscape(String),
    /// A quote opened and never closed ([`expand_quoted`] only).
    #[error("unterminated {0} quote")]
    UnterminatedQuote(char),
}

/// Expands the variables in an ENV, LABEL or ARG value as the parser left it; quotes are
/// plain characters. `escape` makes the next character literal: pass `\`, which is what
/// the parser writes in values whatever the file's escape character.
pub fn expand(word: &str, escape: char, vars: &dyn Vars) -> Result<String, SubstError> {
    Lexer::run(word, escape, false, vars)
}

/// Expands the variables in an argument as written (FROM image, COPY paths, WORKDIR,
/// USER, ...) and removes its quotes, as BuildKit's `ProcessWord` does. `escape` is the
/// file's escape character.
pub fn expand_quoted(word: &str, escape: char, vars: &dyn Vars) -> Result<String, SubstError> {
    Lexer::run(word, escape, true, vars)
}

type Kind = SubstErrorKind;

struct Lexer<'a> {
    chars: Vec<char>,
    at: usize,
    escape: char,
    quotes: bool,
    vars: &'a dyn Vars,
}

impl Lexer<'_> {
    fn run(word: &str, escape: char, quotes: bool, vars: &dyn Vars) -> Result<String, SubstError> {
        let chars = word.chars().collect();
        let mut lexer = Lexer {
            chars,
            at: 0,
            escape,
            quotes,
            vars,
        };
        lexer.until(None, false).map_err(|kind| SubstError {
            word: word.to_string(),
            kind,
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    /// Reads up to `stop` (consumed) or the end. With `raw`, escapes stay in the result
    /// so that a pattern still tells `\*` (a star) from `*` (any string).
    fn until(&mut self, stop: Option<char>, raw: bool) -> Result<String, Kind> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.bump();
                return Ok(out);
            }
            match c {
                '$' => out.push_str(&self.dollar()?),
                '\'' if self.quotes => out.push_str(&self.single_quoted()?),
                '"' if self.quotes => out.push_str(&self.double_quoted(raw)?),
                _ => {
                    self.bump();
                    if c == self.escape {
                        if raw {
                            out.push(c);
                        }
                        match self.bump() {
                            Some(next) => out.push(next),
                            None => break,
                        }
                    } else {
                        out.push(c);
                    }
                }
            }
        }
        match stop {
            None => Ok(out),
            Some('/') => Err(Kind::MissingSlash),
            Some(_) => Err(Kind::MissingBrace),
        }
    }

    fn single_quoted(&mut self) -> Result<String, Kind> {
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(Kind::UnterminatedQuote('\'')),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    /// Inside `"..."` only `$` is special, and the escape only before `"`, `$` or itself.
    fn double_quoted(&mut self, raw: bool) -> Result<String, Kind> {
        self.bump();
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(Kind::UnterminatedQuote('"')),
                Some('"') => {
                    self.bump();
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    self.bump();
                    if c == self.escape && raw {
                        out.push(c);
                    }
                    match self.peek() {
                        Some(next) if c == self.escape && "\"$".contains(next) => out.push(next),
                        Some(next) if c == self.escape && next == self.escape => out.push(next),
                        _ => {
                            out.push(c);
                            continue;
                        }
                    }
                    self.bump();
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(digit) = self.peek().filter(char::is_ascii_digit) {
                    name.push(digit);
                    self.bump();
                }
                return name;
            }
            Some(c) if "@*#?-$!".contains(c) => {
                self.bump();
                return c.to_string();
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.bump();
        }
        name
    }

    fn dollar(&mut self) -> Result<String, Kind> {
        self.bump();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.vars.var(&name).unwrap_or_default());
        }
        self.bump();
        match self.peek() {
            None => return Err(Kind::MissingBrace),
            Some('{' | '}' | ':') => return Err(Kind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let (colon, op) = match self.bump() {
            None => return Err(Kind::MissingBrace),
            Some('}') => return Ok(self.vars.var(&name).unwrap_or_default()),
            Some('/') => return self.replace(&name),
            Some(':') => (true, self.bump().ok_or(Kind::MissingBrace)?),
            Some(op) => (false, op),
        };
        if !"-+?#%".contains(op) {
            let colon = if colon { ":" } else { "" };
            return Err(Kind::UnsupportedModifier(format!("{colon}{op}")));
        }
        let word = self.until(Some('}'), op == '#' || op == '%')?;
        let value = self.vars.var(&name);
        // With the colon an empty value counts as unset.
        let absent = match &value {
            None => true,
            Some(value) => colon && value.is_empty(),
        };
        match op {
            '-' if absent => Ok(word),
            '+' if absent => Ok(String::new()),
            '+' => Ok(word),
            '?' if absent => {
                let message = match (word.is_empty(), value.is_none()) {
                    (false, _) => word,
                    (true, true) => "is not allowed to be unset".to_string(),
                    (true, false) => "is not allowed to be empty".to_string(),
                };
                Err(Kind::Required { name, message })
            }
            '#' | '%' => {
                let (longest, pattern) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                Ok(trim(
                    op == '#',
                    longest,
                    &glob(pattern)?,
                    &value.unwrap_or_default(),
                ))
            }
            _ => Ok(value.unwrap_or_default()),
        }
    }

    /// `${NAME/pattern/replacement}` and `${NAME//pattern/replacement}`, after the first `/`.
    fn replace(&mut self, name: &str) -> Result<String, Kind> {
        let all = self.peek() == Some('/');
        if all {
            self.bump();
        }
        let pattern = glob(&self.until(Some('/'), true)?)?;
        let replacement = self.until(Some('}'), true)?;
        let text: Vec<char> = self.vars.var(name).unwrap_or_default().chars().collect();
        let mut out = String::new();
        let mut from = 0;
        let mut last_end = None;
        // Leftmost match, longest at that start; like Go's regexp, an empty match right
        // after the previous match does not count.
        while let Some((start, end)) = (from..=text.len()).find_map(|start| {
            let end = (start..=text.len())
                .rev()
                .find(|&end| matches(&pattern, &text[start..end]))?;
            (end > start || last_end != Some(start)).then_some((start, end))
        }) {
            out.extend(&text[from..start]);
            out.push_str(&replacement);
            last_end = Some(end);
            from = end;
            if end == start {
                out.extend(text.get(start));
                from += 1;
            }
            if !all || from > text.len() {
                break;
            }
        }
        out.extend(text.get(from..).unwrap_or_default());
        Ok(out)
    }
}

/// The value without its shortest (or `longest`) prefix (or suffix) matching `pattern`.
fn trim(prefix: bool, longest: bool, pattern: &[Glob], value: &str) -> String {
    let text: Vec<char> = value.chars().collect();
    let len = text.len();
    // Cut points in the order to try: shortest piece first unless `longest`.
    let cut = (0..=len).find_map(|i| {
        let i = if longest { len - i } else { i };
        let at = if prefix { i } else { len - i };
        let piece = if prefix { &text[..at] } else { &text[at..] };
        matches(pattern, piece).then_some(at)
    });
    match cut {
        Some(at) if prefix => text[at..].iter().collect(),
        Some(at) => text[..at].iter().collect(),
        None => value.to_string(),
    }
}

/// One piece of a `#`, `%` or `/` pattern.
enum Glob {
    Char(char),
    AnyChar,
    AnyString,
}

/// Reads a pattern the way BuildKit does, with `\` as its escape (the file's escape is
/// still in the text, so patterns stay the same under ``# escape=` ``).
fn glob(pattern: &str) -> Result<Vec<Glob>, Kind> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Glob::AnyString,
            '?' => Glob::AnyChar,
            '\\' => match chars.peek() {
                Some('}' | '/') => continue,
                Some(&next @ ('*' | '?' | '\\')) => {
                    chars.next();
                    Glob::Char(next)
                }
                _ => return Err(Kind::BadPatternEscape(pattern.to_string())),
            },
            _ => Glob::Char(c),
        });
    }
    Ok(out)
}

/// Whether `pattern` matches all of `text`: the classic wildcard walk that, on a
/// mismatch, lets the last `*` swallow one more character and tries again.
fn matches(pattern: &[Glob], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Glob::AnyString) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Glob::AnyChar) => (p, t) = (p + 1, t + 1),
            Some(Glob::Char(c)) if *c == text[t] => (p, t) = (p + 1, t + 1),
            _ => match star {
                Some((star_p, star_t)) => {
                    star = Some((star_p, star_t + 1));
                    (p, t) = (star_p + 1, star_t + 1);
                }
                None => return false,
            },
        }
    }
    pattern[p..]
        .iter()
        .all(|glob| matches!(glob, Glob::AnyString))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BuildKit's lexer test environment, plus values for the pattern cases.
    fn vars() -> BTreeMap<String, String> {
        let pairs = [
            ("PWD", "/home"),
            ("SHELL", "bash"),
            ("KOREAN", "한국어"),
            ("NULL", ""),
            ("FOO", "xxyy"),
            ("STARS", "a***yy*"),
            ("GLOBS", "/foo*/*/*.txt"),
            ("NEEDLE", "\\*/"),
            ("TMP", "/tmp/tmp/bar.txt"),
        ];
        pairs
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()))
            .collect()
    }

    fn check(
        cases: &[(&str, &str)],
        expand: fn(&str, char, &dyn Vars) -> Result<String, SubstError>,
    ) {
        for (word, want) in cases {
            match expand(word, '\\', &vars()) {
                Ok(got) => assert_eq!(&got, want, "expanding {word:?}"),
                Err(error) => panic!("{error}"),
            }
        }
    }

    const NAMES_ESCAPES_AND_LITERAL_DOLLARS: &[(&str, &str)] = &[
        (
            "$PWD|${PWD}|he${PWD}xx|$PWD.$SHELL",
            "/home|/home|he/homexx|/home.bash",
        ),
        ("안녕$KOREAN", "안녕한국어"),
        ("he${hi}xx|he$pwd.", "hexx|he."),
        ("he\\$PWD|he\\\\$PWD|\\${}aaa", "he$PWD|he\\/home|${}aaa"),
        // The escape drops before any character, and alone at the end.
        ("abc\\tdef|hello\\\\|hello\\", "abctdef|hello\\|hello"),
        ("$|$.|he$.x|a$/b$ c", "$|$.|he$.x|a$/b$ c"),
        // Positional and special parameters are names no build sets.
        ("he$1x|$12a|a$$b${#}c", "hex|a|abc"),
        ("\"$PWD\"'", "\"/home\"'"),
    ];

    #[test]
    fn names_escapes_and_literal_dollars() {
        check(NAMES_ESCAPES_AND_LITERAL_DOLLARS, expand);
    }

    const MODIFIERS_WITH_AND_WITHOUT_COLON: &[(&str, &str)] = &[
        (
            "he${XXX:-000}xx|he${PWD:-000}xx|${XXX:-}",
            "he000xx|he/homexx|",
        ),
        ("${NULL:-x}|${NULL-x}|${XXX-x}", "x||x"),
        ("${PWD+aaa} ${NULL+bbb} ${XXX+ccc}", "aaa bbb "),
        ("${PWD:+aaa} ${NULL:+bbb} ${XXX:+ccc}", "aaa  "),
        ("he${PWD?}|${NULL?}|${PWD:?}", "he/home||/home"),
    ];

    #[test]
    fn modifiers_with_and_without_colon() {
        check(MODIFIERS_WITH_AND_WITHOUT_COLON, expand);
    }

    const NESTED_EXPANSIONS: &[(&str, &str)] = &[
        (
            "he${XXX:-${PWD:-yyy}}xx|he${XXX:-${YYY:-yyy}}xx",
            "he/homexx|heyyyxx",
        ),
        (
            "he${PWD:+${SHELL}}xx|he${PWD:+${PWD}:}xx",
            "hebashxx|he/home:xx",
        ),
        // The escaped `$` is literal, so the first `}` closes the default.
        ("he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"),
    ];

    #[test]
    fn nested_expansions() {
        check(NESTED_EXPANSIONS, expand);
    }

    const PATTERNS_TRIM_AND_REPLACE: &[(&str, &str)] = &[
        ("${FOO#*x*y}|${FOO##*x}|${FOO#*}|${FOO#}", "y|yy|xxyy|xxyy"),
        ("${FOO%y*}|${FOO%%y*}|${FOO%x}", "xxy|xx|xxyy"),
        ("${FOO#$SHELL}|${FOO#${FOO%y}}", "xxyy|y"),
        ("${STARS%%\\**\\*}|${STARS#a\\*?}", "a|*yy*"),
        ("${ABC:-.}${FOO%x}${ABC:-.}", ".xxyy."),
        (
            "${GLOBS/$NEEDLE/.} - ${GLOBS//$NEEDLE/.}",
            "/foo.*/*.txt - /foo..*.txt",
        ),
        (
            "${TMP/\\/tmp/} - ${TMP//\\/tmp/}",
            "/tmp/bar.txt - /bar.txt",
        ),
        ("${TMP//\\//\\/}", "\\/tmp\\/tmp\\/bar.txt"),
        // Empty patterns: not promised by BuildKit, but what it does.
        ("${FOO/$NULL/ww}|${FOO///}|${XXX///}", "wwxxyy|xxyy|"),
    ];

    #[test]
    fn patterns_trim_and_replace() {
        check(PATTERNS_TRIM_AND_REPLACE, expand);
    }

    #[test]
    fn errors_name_the_word_and_the_problem() {
        let cases = [
            ("${XXX?no $SHELL}", "XXX: no bash"),
            ("${NULL:?}", "NULL: is not allowed to be empty"),
            (
                "he${}",
                "bad substitution: \"${\" must be followed by a name",
            ),
            ("he${.}", "unsupported modifier \".\" in \"${...}\""),
            ("he${XXX:YYY}", "unsupported modifier \":Y\" in \"${...}\""),
            (
                "he${PWD:=000}xx",
                "unsupported modifier \":=\" in \"${...}\"",
            ),
            ("${FOO=aaa}", "unsupported modifier \"=\" in \"${...}\""),
            ("he${PWD", "\"${\" is never closed by \"}\""),
            ("${", "\"${\" is never closed by \"}\""),
            ("he${XXX:-abc", "\"${\" is never closed by \"}\""),
            (
                "${FOO//ww}",
                "\"${NAME/pattern/replacement}\" is missing its second \"/\"",
            ),
            (
                "${FOO#\\x}",
                "invalid escape in pattern \"\\\\x\": only \\*, \\?, \\\\, \\} and \\/ are escapes",
            ),
        ];
        for (word, message) in cases {
            let got = expand(word, '\\', &vars()).map_err(|error| error.to_string());
            assert_eq!(got, Err(format!("cannot expand {word:?}: {message}")));
        }
    }

    const QUOTES_ARE_REMOVED_BY_EXPAND_QUOTED: &[(&str, &str)] = &[
        ("he'll'o|\"he'$PWD'\"", "hello|he'/home'"),
        ("'$PWD'|'he\\$PWD'", "$PWD|he\\$PWD"),
        (
            "\"abc\\tdef\"|\"he\\$PWD\"|\"a\\\\b\"",
            "abc\\tdef|he$PWD|a\\b",
        ),
        ("${XXX:-\"a}b\"}", "a}b"),
    ];

    #[test]
    fn quotes_are_removed_by_expand_quoted() {
        check(QUOTES_ARE_REMOVED_BY_EXPAND_QUOTED, expand_quoted);
        let unterminated =
            expand_quoted("he'llo", '\\', &vars()).map_err(|error| error.to_string());
        assert_eq!(
            unterminated,
            Err("cannot expand \"he'llo\": unterminated ' quote".into())
        );
    }

    #[test]
    fn backtick_escape() {
        assert_eq!(expand("he`$PWD", '`', &vars()), Ok("he$PWD".to_string()));
        let windows = expand_quoted("C:\\app\\$SHELL", '`', &vars());
        assert_eq!(windows, Ok("C:\\app\\bash".to_string()));
    }

    #[test]
    fn closures_are_variable_sources() {
        let env = |name: &str| (name == "A").then(|| "a".to_string());
        assert_eq!(expand("${A}-${B:-b}", '\\', &env), Ok("a-b".to_string()));
    }
}
