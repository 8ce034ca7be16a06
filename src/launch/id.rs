//! Container ids: given by the caller, or random; never derived from a pid, which the
//! kernel hands out again.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A container's id: it names the state directory, the cgroup and the container's
/// directories, so it is checked to be one plain path component.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "container id {0:?} is not valid: use 1 to 64 letters, digits, '_', '.' and '-', starting with a letter or digit"
)]
pub struct InvalidId(pub String);

impl ContainerId {
    /// `id`, if it is 1 to 64 letters, digits, `_`, `.` and `-`, starting with a letter
    /// or digit (runc's rule, less `+`, with podman's length).
    pub fn parse(id: &str) -> Result<ContainerId, InvalidId> {
        let valid = (1..=64).contains(&id.len())
            && id.starts_with(|c: char| c.is_ascii_alphanumeric())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if valid {
            Ok(ContainerId(id.to_string()))
        } else {
            Err(InvalidId(id.to_string()))
        }
    }

    /// A new random id: 12 hexadecimal digits from getrandom(2), like a short Docker id.
    pub fn random() -> ContainerId {
        ContainerId(random_hex(6))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `bytes` random bytes from getrandom(2), as hexadecimal digits (two a byte): short
/// container ids, and docker-style 64-digit ones.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    // SAFETY: getrandom writes at most the length it is given into the buffer.
    let filled = unsafe { libc::getrandom(buffer.as_mut_ptr().cast(), buffer.len(), 0) };
    if filled != buffer.len() as isize {
        // Not enough entropy yet is not a reason to fail: time and pid are unique
        // enough for one machine's containers, and the state dir's mkdir checks.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mixed = (now ^ (u128::from(std::process::id()) << 64)).to_le_bytes();
        for (i, byte) in buffer.iter_mut().enumerate() {
            *byte = mixed[i % mixed.len()] ^ (i as u8).wrapping_mul(0x9d);
        }
    }
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}

impl TryFrom<String> for ContainerId {
    type Error = InvalidId;
    fn try_from(id: String) -> Result<Self, InvalidId> {
        ContainerId::parse(&id)
    }
}

impl From<ContainerId> for String {
    fn from(id: ContainerId) -> String {
        id.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_plain_component() {
        for bad in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "-flag",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(ContainerId::parse(bad).is_err(), "{bad:?}");
        }
        for good in ["web", "web-1.prod_2", "3fa2c1d9e8b7"] {
            assert!(ContainerId::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn random_ids_are_valid_and_differ() {
        let (a, b) = (ContainerId::random(), ContainerId::random());
        assert_eq!(a.as_str().len(), 12);
        assert!(ContainerId::parse(a.as_str()).is_ok());
        assert_ne!(a, b);
    }
}
