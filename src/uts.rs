//! The UTS namespace's one resource: the hostname (and the NIS domain name).
//!
//! "UTS" is the `struct utsname` that uname(2) fills in; a UTS namespace gives the
//! processes inside their own `nodename` and `domainname`, so a container can be called
//! something else without renaming the machine. Chapter 2 introduces it.
//!
//! See also [uts_namespaces(7)](https://man7.org/linux/man-pages/man7/uts_namespaces.7.html),
//! [sethostname(2)](https://man7.org/linux/man-pages/man2/sethostname.2.html).

use nix::errno::Errno;

/// The longest hostname the kernel accepts (`HOST_NAME_MAX`).
pub const HOST_NAME_MAX: usize = 64;

/// The hostname a container gets when none is asked for.
pub const DEFAULT_HOSTNAME: &str = "nutshell";

/// Why a hostname was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostnameError {
    /// Empty, or longer than the kernel allows.
    #[error("hostname {name:?} must be 1 to {HOST_NAME_MAX} characters long")]
    Length {
        /// The name given.
        name: String,
    },
    /// A label (the part between dots) is empty, too long, or has a bad character.
    #[error(
        "hostname {name:?} is not valid: each dot-separated label must be 1 to 63 letters, digits or '-', not starting or ending with '-'"
    )]
    Label {
        /// The name given.
        name: String,
    },
}

/// Check `name` against RFC 1123 host name rules, which the kernel itself does not
/// enforce (it takes any bytes up to 64), but resolvers and most programs expect.
pub fn validate_hostname(name: &str) -> Result<(), HostnameError> {
    if name.is_empty() || name.len() > HOST_NAME_MAX {
        return Err(HostnameError::Length {
            name: name.to_string(),
        });
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !name.split('.').all(label_ok) {
        return Err(HostnameError::Label {
            name: name.to_string(),
        });
    }
    Ok(())
}

// ANCHOR: set_hostname
/// Set the hostname of the calling process's UTS namespace.
pub fn set_hostname(name: &str) -> Result<(), Errno> {
    nix::unistd::sethostname(name)
}
// ANCHOR_END: set_hostname

/// The hostname of the calling process's UTS namespace.
pub fn hostname() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.nodename().to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_valid() {
        for name in ["nutshell", "web-1", "a.b.example", "x"] {
            assert_eq!(validate_hostname(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn a_name_longer_than_64_is_refused() {
        let long = "a".repeat(65);
        assert!(matches!(
            validate_hostname(&long),
            Err(HostnameError::Length { .. })
        ));
    }

    #[test]
    fn bad_labels_are_refused() {
        for name in ["-web", "web-", "a..b", "under_score", "sp ace", "ünï"] {
            assert!(
                matches!(validate_hostname(name), Err(HostnameError::Label { .. })),
                "{name}"
            );
        }
    }

    #[test]
    fn an_empty_name_is_refused() {
        assert!(matches!(
            validate_hostname(""),
            Err(HostnameError::Length { .. })
        ));
    }
}
