//! Image references: what `nutshell pull busybox` means by `busybox`.
//!
//! A reference names an image in a registry: `REGISTRY/REPOSITORY[:TAG][@DIGEST]`, as in
//! `docker.io/library/busybox:latest` or `localhost:5000/test/img@sha256:…`. A tag is a
//! movable label the registry resolves to a manifest; a digest names the manifest's bytes,
//! so a reference with a digest always means the same image.
//!
//! People write short forms, and docker's normalisation turns them into full ones:
//!
//! ```text
//! busybox                       → docker.io/library/busybox:latest
//! alpine:3.20                   → docker.io/library/alpine:3.20
//! user/app                      → docker.io/user/app:latest
//! localhost:5000/app            → localhost:5000/app:latest
//! quay.io/org/app@sha256:…      → quay.io/org/app@sha256:…     (no tag is implied)
//! ```
//!
//! The first `/`-separated component is a registry only if it looks like a host: it
//! contains a `.` or a `:` (a port), or it is `localhost`. Otherwise the whole name is a
//! repository on Docker Hub, where one-component names live under `library/`.
//!
//! Repository components are lowercase letters and digits, joined by `.`, `_`, `__` or
//! dashes; a tag is a word character followed by up to 127 word characters, `.` or `-`.
//! See [distribution's reference grammar](https://github.com/distribution/reference/blob/main/reference.go).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::digest::Digest;

/// The registry a name without one lives on.
pub const DOCKER_HUB: &str = "docker.io";

/// The longest repository name a registry accepts.
const MAX_NAME_LEN: usize = 255;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// The registry host, with its port if any: `docker.io`, `localhost:5000`.
    pub registry: String,
    /// The repository path inside the registry: `library/busybox`.
    pub repository: String,
    /// The tag; `latest` when the reference had neither a tag nor a digest.
    pub tag: Option<String>,
    /// The manifest digest, when the reference pins one.
    pub digest: Option<Digest>,
}

/// A string that is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct BadReference {
    /// What was given.
    pub reference: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Reference {
    /// What to ask the registry's manifest endpoint for: the digest if there is one (it
    /// pins the bytes), else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// Whether the registry is this machine: `localhost`, `127.x.y.z` or `[::1]`, with
    /// any port. Docker treats these as insecure registries: plain HTTP is allowed.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.registry)
    }
}

/// Whether `registry` (a host with an optional port) is this machine.
pub fn is_loopback_host(registry: &str) -> bool {
    let host = host_without_port(registry);
    host.eq_ignore_ascii_case("localhost")
        || host == "[::1]"
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// `registry` without its `:port`; a bracketed IPv6 address keeps its brackets.
fn host_without_port(registry: &str) -> &str {
    if registry.starts_with('[') {
        match registry.find(']') {
            Some(end) => &registry[..=end],
            None => registry,
        }
    } else {
        registry.split(':').next().unwrap_or(registry)
    }
}

impl FromStr for Reference {
    type Err = BadReference;

    fn from_str(text: &str) -> Result<Reference, BadReference> {
        let bad = |reason: &str| BadReference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let digest = digest.parse::<Digest>().map_err(|_| {
                    bad("the part after @ is not sha256: and 64 lowercase hex digits")
                })?;
                (rest, Some(digest))
            }
            None => (text, None),
        };
        // A tag's ':' comes after the last '/'; an earlier one is a registry's port.
        let last_slash = rest.rfind('/').map_or(0, |at| at + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(at) => {
                let at = last_slash + at;
                (&rest[..at], Some(&rest[at + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|reason| bad(&reason))?;
        }
        let (registry, repository) = split_registry(name);
        validate_registry(&registry)
            .map_err(|reason| bad(&format!("registry {registry:?} {reason}")))?;
        validate_repository(&repository).map_err(|reason| bad(&reason))?;
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

// ANCHOR: split_registry
/// Docker's rule: the first component names a registry only if it looks like a host
/// (a `.`, a `:port`, `localhost`, or uppercase, which a repository never has). Docker
/// Hub's official images live under `library/`.
fn split_registry(name: &str) -> (String, String) {
    let (registry, repository) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    let registry = if registry == "index.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        registry
    };
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    (registry, repository)
}
// ANCHOR_END: split_registry

/// A host is dot-separated labels of letters, digits and inner dashes, or a bracketed
/// IPv6 address, with an optional numeric port.
pub(crate) fn validate_registry(registry: &str) -> Result<(), String> {
    if registry.is_empty() {
        return Err("is empty".to_string());
    }
    let (host, port) = if let Some(inner) = registry.strip_prefix('[') {
        let Some((address, after)) = inner.split_once(']') else {
            return Err("has an unclosed [".to_string());
        };
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("is not a valid IPv6 address".to_string());
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err("has something other than :PORT after ]".to_string()),
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err("is not a valid host name".to_string());
        }
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err("has an invalid port".to_string());
    }
    Ok(())
}

/// Components of `[a-z0-9]+` joined by one separator (`.`, `_`, `__` or dashes), the
/// components themselves joined by `/`.
pub(crate) fn validate_repository(repository: &str) -> Result<(), String> {
    if repository.len() > MAX_NAME_LEN {
        return Err(format!(
            "the repository name is longer than {MAX_NAME_LEN} characters"
        ));
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Err("the repository name has an empty component".to_string());
        }
        if component.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "repository component {component:?} must be lowercase"
            ));
        }
        if !valid_component(component) {
            return Err(format!(
                "repository component {component:?} must be lowercase letters and digits \
                 joined by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

/// One repository component: alphanumeric runs separated by `.`, `_`, `__` or `-+`.
fn valid_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let mut at = 0;
    loop {
        let start = at;
        while at < bytes.len() && alnum(bytes[at]) {
            at += 1;
        }
        if at == start {
            return false;
        }
        if at == bytes.len() {
            return true;
        }
        let separator = &component[at..];
        at += if separator.starts_with("__") {
            2
        } else if separator.starts_with(['.', '_']) {
            1
        } else if separator.starts_with('-') {
            separator.bytes().take_while(|&b| b == b'-').count()
        } else {
            return false;
        };
    }
}

/// `[\w][\w.-]{0,127}`.
pub(crate) fn validate_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be up to 128 letters, digits, '_', '.' or '-', not starting \
             with '.' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn parse(text: &str) -> Reference {
        text.parse()
            .unwrap_or_else(|e| panic!("{text} should parse: {e}"))
    }

    #[test]
    fn short_names_are_normalised_as_docker_does() {
        for (short, full) in [
            ("busybox", "docker.io/library/busybox:latest"),
            ("alpine:3.20", "docker.io/library/alpine:3.20"),
            ("user/app", "docker.io/user/app:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            (
                "index.docker.io/library/busybox:1",
                "docker.io/library/busybox:1",
            ),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("127.0.0.1:5000/test/img:v1", "127.0.0.1:5000/test/img:v1"),
            (
                "quay.io/org/sub/app:v1.2-rc_3",
                "quay.io/org/sub/app:v1.2-rc_3",
            ),
            ("[::1]:5000/app", "[::1]:5000/app:latest"),
            (
                "my-registry:5000/a.b/c__d/e--f",
                "my-registry:5000/a.b/c__d/e--f:latest",
            ),
        ] {
            assert_eq!(parse(short).to_string(), full, "{short}");
        }
    }

    #[test]
    fn a_digest_implies_no_tag_and_is_what_the_manifest_endpoint_is_asked_for() {
        let pinned = parse(&format!("quay.io/org/app@sha256:{HEX}"));
        assert_eq!(pinned.tag, None);
        assert_eq!(pinned.manifest_reference(), format!("sha256:{HEX}"));
        assert_eq!(pinned.to_string(), format!("quay.io/org/app@sha256:{HEX}"));

        let both = parse(&format!("localhost:5000/app:v1@sha256:{HEX}"));
        assert_eq!(both.tag.as_deref(), Some("v1"));
        assert_eq!(both.manifest_reference(), format!("sha256:{HEX}"));
        assert_eq!(
            both.to_string(),
            format!("localhost:5000/app:v1@sha256:{HEX}")
        );

        let tagged = parse("localhost:5000/app");
        assert_eq!(tagged.manifest_reference(), "latest");
        assert_eq!(tagged.registry, "localhost:5000");
        assert_eq!(tagged.repository, "app");
    }

    #[test]
    fn a_first_component_that_is_not_a_host_is_part_of_the_repository() {
        let reference = parse("library/busybox");
        assert_eq!(reference.registry, "docker.io");
        assert_eq!(reference.repository, "library/busybox");
        let reference = parse("myhost/app");
        assert_eq!(reference.registry, "docker.io");
        assert_eq!(reference.repository, "myhost/app");
    }

    #[test]
    fn loopback_registries_are_recognised() {
        for (text, loopback) in [
            ("localhost/a", true),
            ("localhost:5000/a", true),
            ("127.0.0.1:5000/a", true),
            ("127.1.2.3/a", true),
            ("[::1]:5000/a", true),
            ("[::1]/a", true),
            ("busybox", false),
            ("10.0.0.1:5000/a", false),
            ("localhost.example.com/a", false),
            ("128.0.0.1/a", false),
        ] {
            assert_eq!(parse(text).is_loopback(), loopback, "{text}");
        }
    }

    #[test]
    fn bad_references_are_refused_with_one_line_naming_them() {
        for (text, reason) in [
            ("", "it is empty"),
            (
                "Busybox",
                "repository component \"Busybox\" must be lowercase",
            ),
            (
                "quay.io/Org/app",
                "repository component \"Org\" must be lowercase",
            ),
            ("app:", "tag \"\" must be"),
            ("app:-x", "tag \"-x\" must be"),
            ("app:a/b", "invalid port"),
            ("app@sha256:abc", "the part after @ is not sha256"),
            ("app@md5:abc", "the part after @ is not sha256"),
            ("a//b", "empty component"),
            ("/app", "empty component"),
            ("app/", "empty component"),
            ("a..b", "repository component \"a..b\""),
            ("a_-b", "repository component \"a_-b\""),
            ("_a", "repository component \"_a\""),
            ("a___b", "repository component \"a___b\""),
            ("host:port/app", "invalid port"),
            ("-bad.io/app", "not a valid host name"),
            ("[::1/app", "unclosed ["),
            ("[zz]:1/app", "not a valid IPv6 address"),
        ] {
            let err = text.parse::<Reference>().expect_err(text);
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("invalid image reference {text:?}: ")),
                "{message}"
            );
            assert!(message.contains(reason), "{text}: {message}");
            assert!(!message.contains('\n'), "{message}");
        }
        let long_tag = format!("app:{}", "a".repeat(129));
        assert!(long_tag.parse::<Reference>().is_err());
        let long_name = "a".repeat(256);
        assert!(long_name.parse::<Reference>().is_err());
    }
}
