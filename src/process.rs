//! How a container's process ended, in the shell's terms.
//!
//! Starting one is [`crate::launch`]'s job: chapter 1's container is the first one
//! launched, with no namespaces at all.
//!
//! See also [waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html).

use std::fmt;

/// How a container process ended, in the shell's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Exit {
    /// It called exit with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// The status a shell reports: the exit code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(signal) => 128 + signal,
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exited with code {code}"),
            Exit::Signal(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_of_a_signal_is_128_plus_the_signal() {
        assert_eq!(Exit::Signal(9).code(), 137);
        assert_eq!(Exit::Code(3).code(), 3);
    }
}
