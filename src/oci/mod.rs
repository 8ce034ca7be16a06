//! Chapter 11: the OCI runtime. An OCI *bundle* — a root filesystem and a `config.json`
//! — becomes a container through the same pipeline every chapter uses, driven by runc's
//! command line (`create`, `start`, `state`, `kill`, `delete` ...), so that podman and
//! containerd can use nutshell in place of runc.
//!
//! - [`config`]: `config.json` → [`crate::spec::ContainerSpec`], refusing what nutshell
//!   cannot honour.
//! - [`cli`]: runc's flags, parsed with clap.
//! - [`exec`]: a process joining a running container.
//! - [`runtime`]: the commands, and the state JSON runc prints.
//!
//! See the [runtime spec](https://github.com/opencontainers/runtime-spec/blob/main/runtime.md)
//! for the lifecycle and [config.md](https://github.com/opencontainers/runtime-spec/blob/main/config.md)
//! for the fields.

pub mod cli;
pub mod config;
pub mod exec;
pub mod runtime;
