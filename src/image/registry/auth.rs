//! Registry authentication: the `WWW-Authenticate` challenge, the token it points to, and
//! the docker-style auth file that holds a user's credentials.
//!
//! A registry that wants credentials answers `401 Unauthorized` with a challenge:
//!
//! ```text
//! WWW-Authenticate: Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"
//! ```
//!
//! *Bearer* means "get a token from `realm`": the client asks
//! `GET realm?service=…&scope=repository:NAME:pull` (with `pull,push` to upload),
//! anonymously or with the user's name and password as HTTP Basic credentials, gets JSON
//! `{"token": "…"}` back, and repeats the request with `Authorization: Bearer TOKEN`. A
//! token is good for one scope, so the client keeps one per scope. *Basic* means "send the
//! name and password on every request".
//!
//! Credentials come from the file `docker login` and `podman login` write:
//! `{"auths": {"HOST": {"auth": "base64(user:password)"}}}`. Docker Hub's entry is keyed
//! `https://index.docker.io/v1/` for historical reasons.
//!
//! See also [the token flow](https://distribution.github.io/distribution/spec/auth/token/)
//! and [containers-auth.json(5)](https://github.com/containers/image/blob/main/docs/containers-auth.json.5.md).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use super::RegistryError;
use crate::image::reference::DOCKER_HUB;

/// One challenge of a `WWW-Authenticate` header: its scheme and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lowercased: `bearer`, `basic`, …
    pub scheme: String,
    /// The parameters, names lowercased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (lowercase), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

// ANCHOR: challenges
/// Parse a `WWW-Authenticate` value into its challenges (RFC 9110 §11.6.1): a scheme,
/// then `name=value` or `name="quoted, value"` parameters separated by commas; a comma
/// followed by a word with no `=` starts the next challenge.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut cursor = Cursor {
        text: header.as_bytes(),
        at: 0,
    };
    let mut challenges = Vec::new();
    loop {
        cursor.skip(|b| b == b',' || b.is_ascii_whitespace());
        let scheme = cursor.token();
        if scheme.is_empty() {
            break;
        }
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        loop {
            cursor.skip(|b| b.is_ascii_whitespace());
            let before = cursor.at;
            let name = cursor.token();
            cursor.skip(|b| b.is_ascii_whitespace());
            if name.is_empty() || !cursor.eat(b'=') {
                // Not a parameter: the next challenge's scheme (or junk to skip).
                cursor.at = before;
                if name.is_empty() && !cursor.done() {
                    cursor.at += 1;
                }
                break;
            }
            cursor.skip(|b| b.is_ascii_whitespace());
            let value = if cursor.eat(b'"') {
                cursor.quoted()
            } else {
                cursor.token()
            };
            challenge.params.push((name.to_ascii_lowercase(), value));
            cursor.skip(|b| b.is_ascii_whitespace());
            if !cursor.eat(b',') {
                break;
            }
        }
        challenges.push(challenge);
    }
    challenges
}
// ANCHOR_END: challenges

/// A position in a header value.
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.at >= self.text.len()
    }

    fn skip(&mut self, what: impl Fn(u8) -> bool) {
        while !self.done() && what(self.text[self.at]) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = !self.done() && self.text[self.at] == byte;
        if hit {
            self.at += 1;
        }
        hit
    }

    /// A run of visible characters other than `"`, `,`, `=` and `;`: a scheme, a
    /// parameter name or an unquoted value.
    fn token(&mut self) -> String {
        let start = self.at;
        self.skip(|b| b.is_ascii_graphic() && !b"\",=;".contains(&b));
        String::from_utf8_lossy(&self.text[start..self.at]).into_owned()
    }

    /// The rest of a quoted string whose opening quote is eaten; `\x` stands for `x`.
    fn quoted(&mut self) -> String {
        let mut value = Vec::new();
        while !self.done() {
            let byte = self.text[self.at];
            self.at += 1;
            match byte {
                b'"' => break,
                b'\\' if !self.done() => {
                    value.push(self.text[self.at]);
                    self.at += 1;
                }
                _ => value.push(byte),
            }
        }
        String::from_utf8_lossy(&value).into_owned()
    }
}

/// A user name and password for one registry. `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The `Authorization` header value for HTTP Basic.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

/// The docker/podman auth file: only its `auths` map matters here.
#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
}

/// One registry's entry.
#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
}

/// Where credentials are looked up, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFiles {
    /// A file the user named: it must exist.
    Named(PathBuf),
    /// The default places: the first of these files that has an entry for the registry
    /// wins; missing files are skipped.
    Search(Vec<PathBuf>),
}

// ANCHOR: auth_files
/// The auth files to look in: `named` (the option) if given, else `$REGISTRY_AUTH_FILE`,
/// else podman's `$XDG_RUNTIME_DIR/containers/auth.json` and docker's
/// `~/.docker/config.json`. `env` reads an environment variable.
pub fn auth_files(named: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> AuthFiles {
    if let Some(path) = named {
        return AuthFiles::Named(path.to_path_buf());
    }
    let set = |name: &str| env(name).filter(|value| !value.is_empty());
    if let Some(path) = set("REGISTRY_AUTH_FILE") {
        return AuthFiles::Search(vec![PathBuf::from(path)]);
    }
    let mut files = Vec::new();
    if let Some(runtime) = set("XDG_RUNTIME_DIR") {
        files.push(Path::new(&runtime).join("containers/auth.json"));
    }
    if let Some(home) = set("HOME") {
        files.push(Path::new(&home).join(".docker/config.json"));
    }
    AuthFiles::Search(files)
}
// ANCHOR_END: auth_files

impl AuthFiles {
    /// The credentials for `registry`, and the file they came from; `None` when no file
    /// has any (anonymous access). A malformed file is an error, not silence.
    pub fn lookup(&self, registry: &str) -> Result<Option<(Credentials, PathBuf)>, RegistryError> {
        match self {
            AuthFiles::Named(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| {
                    RegistryError::AuthFileRead {
                        path: path.clone(),
                        source,
                    }
                })?;
                Ok(credentials_in(&text, path, registry)?.map(|c| (c, path.clone())))
            }
            AuthFiles::Search(paths) => {
                for path in paths {
                    let text = match std::fs::read_to_string(path) {
                        Ok(text) => text,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(source) => {
                            return Err(RegistryError::AuthFileRead {
                                path: path.clone(),
                                source,
                            });
                        }
                    };
                    if let Some(credentials) = credentials_in(&text, path, registry)? {
                        return Ok(Some((credentials, path.clone())));
                    }
                }
                Ok(None)
            }
        }
    }

    /// How an error message names where credentials were looked for.
    pub fn describe(&self) -> String {
        let paths = match self {
            AuthFiles::Named(path) => std::slice::from_ref(path),
            AuthFiles::Search(paths) => paths.as_slice(),
        };
        match paths {
            [] => "any auth file".to_string(),
            paths => paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }
}

/// The names an auth file may use for `registry`: Docker Hub has several.
fn registry_aliases(registry: &str) -> Vec<&str> {
    if registry == DOCKER_HUB {
        vec![DOCKER_HUB, "index.docker.io", "registry-1.docker.io"]
    } else {
        vec![registry]
    }
}

/// An auth file key as a host: `https://index.docker.io/v1/` is `index.docker.io`.
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// The credentials for `registry` in the auth file `text` (read from `path`).
fn credentials_in(
    text: &str,
    path: &Path,
    registry: &str,
) -> Result<Option<Credentials>, RegistryError> {
    let file: AuthFile =
        serde_json::from_str(text).map_err(|source| RegistryError::AuthFileJson {
            path: path.to_path_buf(),
            source,
        })?;
    let aliases = registry_aliases(registry);
    // Several keys may name the host (`quay.io`, `https://quay.io/v1/`): a bare name
    // first, then in sorted order, so the choice never depends on the map's order.
    let Some(key) = file
        .auths
        .keys()
        .filter(|key| aliases.contains(&key_host(key)))
        .min_by_key(|key| (!aliases.contains(&key.as_str()), key.as_str()))
    else {
        return Ok(None);
    };
    let bad = |reason: &str| RegistryError::AuthFileEntry {
        path: path.to_path_buf(),
        key: key.clone(),
        reason: reason.to_string(),
    };
    let Some(encoded) = file.auths[key].auth.as_deref().filter(|a| !a.is_empty()) else {
        // An entry without "auth" (a credential helper's placeholder): nothing here.
        return Ok(None);
    };
    let decoded = BASE64
        .decode(encoded.trim())
        .map_err(|_| bad("its \"auth\" is not base64"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad("its \"auth\" is not UTF-8"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| bad("its \"auth\" is not base64 of user:password"))?;
    Ok(Some(Credentials {
        username: username.to_string(),
        password: password.to_string(),
    }))
}

/// A token endpoint's answer: docker's `token`, OAuth2's `access_token`.
#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// The bearer token in a token endpoint's JSON answer.
pub fn token_from_json(body: &[u8]) -> Result<String, String> {
    let response: TokenResponse =
        serde_json::from_slice(body).map_err(|e| format!("its answer is not token JSON: {e}"))?;
    response
        .token
        .filter(|t| !t.is_empty())
        .or(response.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| "its answer has neither \"token\" nor \"access_token\"".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(challenge: &Challenge) -> Vec<(&str, &str)> {
        challenge
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn a_bearer_challenge_gives_its_realm_service_and_scope() {
        let challenges = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(challenges.len(), 1);
        assert_eq!(challenges[0].scheme, "bearer");
        assert_eq!(
            params(&challenges[0]),
            [
                ("realm", "https://auth.docker.io/token"),
                ("service", "registry.docker.io"),
                ("scope", "repository:library/busybox:pull"),
            ]
        );
    }

    #[test]
    fn quoted_values_keep_their_commas_and_escapes() {
        let challenges = parse_challenges(
            r#"bearer  Realm = "http://127.0.0.1:1/token?a=b" , scope="repository:a/b:pull,push", error="say \"hi\"""#,
        );
        assert_eq!(
            params(&challenges[0]),
            [
                ("realm", "http://127.0.0.1:1/token?a=b"),
                ("scope", "repository:a/b:pull,push"),
                ("error", "say \"hi\""),
            ]
        );
    }

    #[test]
    fn several_challenges_in_one_header_are_told_apart() {
        let challenges = parse_challenges(
            r#"Basic realm="Registry Realm", Bearer realm="https://t/x",service=s"#,
        );
        assert_eq!(challenges.len(), 2);
        assert_eq!(challenges[0].scheme, "basic");
        assert_eq!(challenges[0].param("realm"), Some("Registry Realm"));
        assert_eq!(challenges[1].scheme, "bearer");
        assert_eq!(challenges[1].param("realm"), Some("https://t/x"));
        assert_eq!(challenges[1].param("service"), Some("s"));
        assert!(parse_challenges("").is_empty());
        assert_eq!(parse_challenges("Basic")[0].params, []);
    }

    #[test]
    fn the_auth_file_is_the_named_one_else_the_environment_s_else_podman_s_then_docker_s() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let all = env(&[
            ("REGISTRY_AUTH_FILE", "/env/auth.json"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("HOME", "/home/u"),
        ]);
        assert_eq!(
            auth_files(Some(Path::new("/given.json")), &all),
            AuthFiles::Named(PathBuf::from("/given.json"))
        );
        assert_eq!(
            auth_files(None, &all),
            AuthFiles::Search(vec![PathBuf::from("/env/auth.json")])
        );
        let defaults = env(&[("XDG_RUNTIME_DIR", "/run/user/1000"), ("HOME", "/home/u")]);
        assert_eq!(
            auth_files(None, &defaults),
            AuthFiles::Search(vec![
                PathBuf::from("/run/user/1000/containers/auth.json"),
                PathBuf::from("/home/u/.docker/config.json"),
            ])
        );
        assert_eq!(auth_files(None, &env(&[])), AuthFiles::Search(vec![]));
    }

    fn lookup(text: &str, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        credentials_in(text, Path::new("/auth.json"), registry)
    }

    #[test]
    fn docker_hub_credentials_are_found_under_its_historical_key() {
        let file = format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}},
                            "localhost:5000": {{"auth": "{}"}}}}, "credsStore": "x"}}"#,
            BASE64.encode("hub:secret"),
            BASE64.encode("local:pa:ss"),
        );
        let hub = lookup(&file, "docker.io").expect("valid").expect("found");
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub", "secret")
        );
        let local = lookup(&file, "localhost:5000")
            .expect("valid")
            .expect("found");
        assert_eq!(local.password, "pa:ss", "only the first ':' splits");
        assert_eq!(lookup(&file, "quay.io").expect("valid"), None);
        assert_eq!(lookup(&file, "localhost").expect("valid"), None);
        assert!(!format!("{hub:?}").contains("secret"));
    }

    #[test]
    fn a_malformed_auth_file_is_an_error_naming_it() {
        let err = lookup("{not json", "quay.io").expect_err("malformed");
        assert!(
            err.to_string().starts_with("parse auth file /auth.json: "),
            "{err}"
        );
        let err = lookup(r#"{"auths": {"quay.io": {"auth": "%%%"}}}"#, "quay.io")
            .expect_err("bad base64");
        assert_eq!(
            err.to_string(),
            "auth file /auth.json: entry \"quay.io\": its \"auth\" is not base64"
        );
        let no_colon = format!(
            r#"{{"auths": {{"quay.io": {{"auth": "{}"}}}}}}"#,
            BASE64.encode("x")
        );
        assert!(lookup(&no_colon, "quay.io").is_err());
        assert_eq!(
            lookup(r#"{"auths": {"quay.io": {}}}"#, "quay.io").expect("valid"),
            None
        );
        assert_eq!(lookup("{}", "quay.io").expect("valid"), None);
    }

    #[test]
    fn missing_default_files_mean_anonymous_but_a_named_one_must_exist() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("missing.json");
        let search = AuthFiles::Search(vec![missing.clone()]);
        assert_eq!(search.lookup("quay.io").expect("anonymous"), None);
        let err = AuthFiles::Named(missing.clone())
            .lookup("quay.io")
            .expect_err("named");
        assert!(
            err.to_string()
                .starts_with(&format!("read auth file {}", missing.display()))
        );

        let present = dir.path().join("auth.json");
        let entry = format!(
            r#"{{"auths": {{"quay.io": {{"auth": "{}"}}}}}}"#,
            BASE64.encode("u:p")
        );
        std::fs::write(&present, entry).expect("write");
        let search = AuthFiles::Search(vec![missing, present.clone()]);
        let (credentials, from) = search.lookup("quay.io").expect("valid").expect("found");
        assert_eq!(credentials.username, "u");
        assert_eq!(from, present);
    }

    #[test]
    fn the_token_is_token_or_access_token() {
        assert_eq!(
            token_from_json(br#"{"token": "a", "expires_in": 300}"#),
            Ok("a".into())
        );
        assert_eq!(token_from_json(br#"{"access_token": "b"}"#), Ok("b".into()));
        assert_eq!(
            token_from_json(br#"{"token": "", "access_token": "c"}"#),
            Ok("c".into())
        );
        assert!(token_from_json(br#"{}"#).is_err());
        assert!(token_from_json(b"<html>").is_err());
    }
}
