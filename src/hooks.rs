//! OCI hooks: programs the runtime runs at fixed points of a container's life, each
//! given the container's state as JSON on its stdin (chapter 11).
//!
//! | stage | when | where it runs |
//! |---|---|---|
//! | `prestart`, `createRuntime` | during `create`, the namespaces made, before pivot_root | nutshell, on the host |
//! | `createContainer` | during `create`, the mounts made, before pivot_root | the container's first process |
//! | `startContainer` | during `start`, just before the program is exec'd | the container's first process |
//! | `poststart` | once the program runs, before `start` returns | nutshell, on the host |
//! | `poststop` | during `delete`, after everything else is gone | nutshell, on the host |
//!
//! A hook that fails or outlives its timeout fails `create` or `start`, and the
//! container is torn down; a failed `poststart` or `poststop` hook is only a warning,
//! as the runtime spec says. Each hook gets a timeout: its own, or
//! [`DEFAULT_TIMEOUT_SECS`], so that no hook can hang the runtime.
//!
//! See the runtime spec's [config.md#posix-platform-hooks](https://github.com/opencontainers/runtime-spec/blob/main/config.md#posix-platform-hooks).

use std::fmt;
use std::io::{Read, Seek, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long a hook without a timeout of its own may run.
pub const DEFAULT_TIMEOUT_SECS: u32 = 10;

/// The longest a hook run by the container's first process may take, all its stage's
/// hooks together: nutshell waits [`crate::launch::CHILD_TIMEOUT_SECS`] for that process.
pub const CHILD_STAGE_LIMIT_SECS: u32 = 25;

// ANCHOR: hook
/// One hook: a program, its argv and its environment (OCI `hooks.<stage>[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// The program, an absolute path.
    pub path: PathBuf,
    /// Its argv, argv[0] included; empty: just the path.
    #[serde(default)]
    pub args: Vec<String>,
    /// Its whole environment, `NAME=value`.
    #[serde(default)]
    pub env: Vec<String>,
    /// Seconds it may run before it is killed and counted as failed.
    #[serde(default)]
    pub timeout_secs: Option<u32>,
}

/// The hooks of every stage, and the fixed part of the state they read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// Run by nutshell during create, before pivot_root (deprecated by the spec for
    /// `createRuntime`, and run just before those).
    #[serde(default)]
    pub prestart: Vec<Hook>,
    /// Run by nutshell during create, before pivot_root.
    #[serde(default)]
    pub create_runtime: Vec<Hook>,
    /// Run in the container during create, before pivot_root.
    #[serde(default)]
    pub create_container: Vec<Hook>,
    /// Run in the container during start, before its program is exec'd.
    #[serde(default)]
    pub start_container: Vec<Hook>,
    /// Run by nutshell once the program runs.
    #[serde(default)]
    pub poststart: Vec<Hook>,
    /// Run by nutshell when the container is deleted.
    #[serde(default)]
    pub poststop: Vec<Hook>,
    /// The state's fields that do not change (`ociVersion`, `id`, `bundle`,
    /// `annotations`); `status` and `pid` are added when a stage runs.
    #[serde(default)]
    pub state: serde_json::Map<String, serde_json::Value>,
}
// ANCHOR_END: hook

/// A point of the lifecycle where hooks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// See [`Hooks::prestart`].
    Prestart,
    /// See [`Hooks::create_runtime`].
    CreateRuntime,
    /// See [`Hooks::create_container`].
    CreateContainer,
    /// See [`Hooks::start_container`].
    StartContainer,
    /// See [`Hooks::poststart`].
    Poststart,
    /// See [`Hooks::poststop`].
    Poststop,
}

impl Stage {
    /// The container's status while this stage's hooks run, as they read it.
    pub fn status(self) -> &'static str {
        match self {
            Stage::Prestart | Stage::CreateRuntime | Stage::CreateContainer => "creating",
            Stage::StartContainer => "created",
            Stage::Poststart => "running",
            Stage::Poststop => "stopped",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Prestart => "prestart",
            Stage::CreateRuntime => "createRuntime",
            Stage::CreateContainer => "createContainer",
            Stage::StartContainer => "startContainer",
            Stage::Poststart => "poststart",
            Stage::Poststop => "poststop",
        })
    }
}

impl Hooks {
    /// The hooks of `stage`.
    pub fn of(&self, stage: Stage) -> &[Hook] {
        match stage {
            Stage::Prestart => &self.prestart,
            Stage::CreateRuntime => &self.create_runtime,
            Stage::CreateContainer => &self.create_container,
            Stage::StartContainer => &self.start_container,
            Stage::Poststart => &self.poststart,
            Stage::Poststop => &self.poststop,
        }
    }

    /// Run every hook of `stage`, in order, stopping at the first that fails; `pid` is
    /// the container's first process as the hooks' namespace sees it.
    pub fn run(&self, stage: Stage, pid: i32) -> Result<(), HookError> {
        run_stage(self.of(stage), &self.state, stage, pid)
    }
}

/// The state JSON the hooks of `stage` read: `fixed`, with the status and (but once
/// stopped) `pid`.
pub fn state_json(
    fixed: &serde_json::Map<String, serde_json::Value>,
    stage: Stage,
    pid: i32,
) -> Vec<u8> {
    let mut state = fixed.clone();
    state.insert("status".to_string(), stage.status().into());
    if stage != Stage::Poststop {
        state.insert("pid".to_string(), pid.into());
    }
    serde_json::to_vec(&state).unwrap_or_default()
}

/// Run `hooks`, the hooks of `stage`, in order, stopping at the first that fails.
pub fn run_stage(
    hooks: &[Hook],
    fixed: &serde_json::Map<String, serde_json::Value>,
    stage: Stage,
    pid: i32,
) -> Result<(), HookError> {
    if hooks.is_empty() {
        return Ok(());
    }
    let state = state_json(fixed, stage, pid);
    hooks.iter().try_for_each(|hook| run(hook, &state))
}

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// It could not be started.
    #[error("hook {path}: cannot run it: {source}")]
    Spawn {
        /// The hook's program.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It exited non-zero or was killed by a signal.
    #[error("hook {path} failed: {status}{output}")]
    Failed {
        /// The hook's program.
        path: PathBuf,
        /// How it ended.
        status: String,
        /// The first line it wrote, after `: `, or nothing.
        output: String,
    },
    /// It ran longer than its timeout, and was killed.
    #[error("hook {path} ran longer than its timeout of {secs} s, and was killed")]
    TimedOut {
        /// The hook's program.
        path: PathBuf,
        /// The timeout.
        secs: u32,
    },
}

impl HookError {
    /// The errno the container's first process reports for this failure, which the
    /// host side explains by the step's kind.
    pub fn errno(&self) -> nix::errno::Errno {
        match self {
            HookError::Spawn { source, .. } => source
                .raw_os_error()
                .map_or(nix::errno::Errno::ENOEXEC, nix::errno::Errno::from_raw),
            HookError::Failed { .. } => nix::errno::Errno::ECANCELED,
            HookError::TimedOut { .. } => nix::errno::Errno::ETIMEDOUT,
        }
    }
}

// ANCHOR: run
/// Run `hook` with `state` on its stdin, and wait for it, at most its timeout. Its
/// stdin and its output are memfds, not pipes: a hook that never reads its stdin, or
/// writes much, cannot block nutshell, and no file is made anywhere.
pub fn run(hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let spawn_error = |source| HookError::Spawn {
        path: hook.path.clone(),
        source,
    };
    let mut stdin = memfd(c"nutshell-hook-state").map_err(spawn_error)?;
    stdin
        .write_all(state)
        .and_then(|()| stdin.rewind())
        .map_err(spawn_error)?;
    let mut output = memfd(c"nutshell-hook-output").map_err(spawn_error)?;
    let mut command = std::process::Command::new(&hook.path);
    if let Some((first, rest)) = hook.args.split_first() {
        command.arg0(first).args(rest);
    }
    let mut child = command
        .env_clear()
        .envs(hook.env.iter().filter_map(|pair| pair.split_once('=')))
        .stdin(stdin)
        .stdout(output.try_clone().map_err(spawn_error)?)
        .stderr(output.try_clone().map_err(spawn_error)?)
        .spawn()
        .map_err(spawn_error)?;
    let secs = hook.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    let deadline = Instant::now() + Duration::from_secs(secs.into());
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                // Ours to end: the hook's own process, by its id.
                let _ = child.kill();
                let _ = child.wait();
                return Err(HookError::TimedOut {
                    path: hook.path.clone(),
                    secs,
                });
            }
            Err(source) => return Err(spawn_error(source)),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let _ = output.rewind();
    let _ = (&mut output).take(4096).read_to_string(&mut text);
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    Err(HookError::Failed {
        path: hook.path.clone(),
        status: match status.code() {
            Some(code) => crate::process::Exit::Code(code),
            None => crate::process::Exit::Signal(status.signal().unwrap_or(0)),
        }
        .to_string(),
        output: first.map(|l| format!(": {l}")).unwrap_or_default(),
    })
}
// ANCHOR_END: run

fn memfd(name: &std::ffi::CStr) -> std::io::Result<std::fs::File> {
    // SAFETY: memfd_create with a NUL-terminated name; the fd is owned at once.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new fd, owned by nothing else.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout_secs: Option<u32>) -> Hook {
        Hook {
            path: PathBuf::from("/bin/sh"),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["GREETING=hello".into()],
            timeout_secs,
        }
    }

    #[test]
    fn a_hook_reads_the_state_on_stdin_and_gets_only_its_own_environment() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("out");
        let script = format!(
            "cat > {0}; echo \" $GREETING ${{HOME:-unset}}\" >> {0}",
            out.display()
        );
        let mut hooks = Hooks {
            poststart: vec![sh(&script, None)],
            ..Hooks::default()
        };
        hooks.state.insert("id".into(), "web".into());
        hooks.run(Stage::Poststart, 42).expect("the hook runs");
        let text = std::fs::read_to_string(&out).expect("the hook wrote");
        let (json, env) = text.split_once(' ').expect("state, then the environment");
        let state: serde_json::Value = serde_json::from_str(json).expect("state is JSON");
        assert_eq!(state["id"], "web");
        assert_eq!(state["status"], "running");
        assert_eq!(state["pid"], 42);
        assert_eq!(env.trim(), "hello unset");
    }

    #[test]
    fn a_failing_hook_is_an_error_with_its_status_and_first_line() {
        let err = run(&sh("echo no network here >&2; exit 3", None), b"{}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "hook /bin/sh failed: exited with code 3: no network here"
        );
        assert_eq!(err.errno(), nix::errno::Errno::ECANCELED);
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed() {
        let started = Instant::now();
        let err = run(&sh("sleep 30", Some(1)), b"{}").unwrap_err();
        assert!(matches!(err, HookError::TimedOut { secs: 1, .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20), "it was killed");
    }

    #[test]
    fn a_missing_hook_cannot_be_started() {
        let hook = Hook {
            path: PathBuf::from("/nonexistent/hook"),
            args: Vec::new(),
            env: Vec::new(),
            timeout_secs: None,
        };
        let err = run(&hook, b"{}").unwrap_err();
        assert_eq!(err.errno(), nix::errno::Errno::ENOENT, "{err}");
    }

    #[test]
    fn poststop_hooks_read_no_pid() {
        let fixed = serde_json::Map::new();
        let state: serde_json::Value =
            serde_json::from_slice(&state_json(&fixed, Stage::Poststop, 7)).expect("JSON");
        assert_eq!(state["status"], "stopped");
        assert!(state.get("pid").is_none());
    }
}
