//! The exercise checker.
//!
//! - `exercises [NAME]` (`just exercises`, `just exercise NAME`): run the tests of every
//!   exercise, or one, against the learner's starter file; print pass, or fail with the
//!   hint from info.toml.
//! - `exercises lint`: check that every exercise is complete — a statement at the top of
//!   the starter, at least one `// TODO:`, a test target, a reference solution, a hint.
//! - `exercises check` (CI): lint, then prove every shipped starter FAILS its tests and
//!   every reference solution PASSES them, so no exercise can be passed by doing nothing.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How long one exercise's `cargo test` may take. Compiling the exercises from scratch
/// takes minutes on a loaded 2-core machine, and each check then ends within a minute
/// (support.rs kills one that runs longer): 15 minutes is generous, and still ends a stuck
/// run long before CI's 90-minute limit.
const CARGO_TEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// How often the checker looks whether `cargo test` has ended.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How long processes killed with SIGKILL, and the pipes they wrote to, may take to end.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// The process group of the `cargo test` running now, 0 when none: where
/// `forward_to_cargo` sends the signals that end the checker.
static CARGO_GROUP: AtomicI32 = AtomicI32::new(0);

#[derive(Debug, Deserialize)]
struct Info {
    exercises: Vec<Exercise>,
}

#[derive(Debug, Deserialize)]
struct Exercise {
    /// The exercise and its test target: `ch01-chroot`.
    name: String,
    /// The file the learner edits, in `exercises/<name>/`.
    file: String,
    /// Whether its tests need root.
    needs_root: bool,
    /// Printed when the tests fail.
    hint: String,
}

fn exercises_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_info() -> Result<Info, String> {
    let path = exercises_dir().join("info.toml");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("parse {}: {e}", path.display()))
}

/// Run the exercise's tests, on the starter or on the reference solution.
fn run_tests(exercise: &Exercise, solution: bool) -> Result<Output, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // A learner needs the failure message, not a backtrace through the test harness.
    command
        .env("RUST_BACKTRACE", "0")
        .current_dir(exercises_dir())
        .args([
            "test",
            "--quiet",
            "-p",
            "nutshell-exercises",
            "--test",
            &exercise.name,
        ]);
    if solution {
        command.args(["--features", "solution"]);
    }
    let what = format!(
        "cargo test for {} ({})",
        exercise.name,
        if solution { "solution" } else { "starter" }
    );
    output_within(command, CARGO_TEST_TIMEOUT, &what)
}

/// Run `command` to its end and collect its output, like `Command::output`, but kill it
/// and everything it started if it runs past `timeout`.
fn output_within(mut command: Command, timeout: Duration, what: &str) -> Result<Output, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A process group of its own, to kill cargo, rustc and the test binaries at once.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("run {what}: {e}"))?;
    let group = child.id() as i32;
    CARGO_GROUP.store(group, Ordering::SeqCst);
    // Read as it comes: a pipe that nobody reads fills up, and blocks the writer.
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let ended = wait_until(&mut child, Instant::now() + timeout);
    let on_time = matches!(ended, Ok(Some(_)));
    if !on_time {
        // SAFETY: kill(2) with plain integer arguments. The group's leader is not reaped
        // yet, so its pid, which names the group, cannot have been reused.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
    let ended = match ended {
        Ok(None) => wait_until(&mut child, Instant::now() + KILL_GRACE),
        other => other,
    };
    CARGO_GROUP.store(0, Ordering::SeqCst);
    let status = match ended {
        Ok(Some(status)) => status,
        Ok(None) => {
            return Err(format!(
                "{what} was still running {KILL_GRACE:?} after SIGKILL"
            ));
        }
        Err(e) => return Err(format!("wait for {what}: {e}")),
    };
    let output = Output {
        status,
        stdout: collect(stdout, what)?,
        stderr: collect(stderr, what)?,
    };
    if !on_time {
        print_output(&output);
        return Err(format!(
            "{what} did not finish within {timeout:?}: killed it and everything it started"
        ));
    }
    Ok(output)
}

/// Wait for `child` to end, at most until `deadline`: its status, or `None` if it still runs.
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    loop {
        match child.try_wait()? {
            Some(status) => return Ok(Some(status)),
            None if Instant::now() >= deadline => return Ok(None),
            None => std::thread::sleep(POLL_INTERVAL),
        }
    }
}

/// A thread reading one of a child's pipes to its end, and word of when it is done.
type PipeReader = Option<(JoinHandle<std::io::Result<Vec<u8>>>, Receiver<()>)>;

/// Read `pipe` to its end on a thread of its own.
fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> PipeReader {
    let mut pipe = pipe?;
    let (done, finished) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let read = pipe.read_to_end(&mut bytes).map(|_| bytes);
        // The receiver is gone only if the checker stopped waiting: nothing to tell.
        done.send(()).ok();
        read
    });
    Some((reader, finished))
}

/// What a pipe's reader read. The pipe closes when the last process holding it ends, soon
/// after the child itself; a process that escaped the child's group and holds it open
/// must not keep the checker waiting.
fn collect(reader: PipeReader, what: &str) -> Result<Vec<u8>, String> {
    let Some((reader, finished)) = reader else {
        return Ok(Vec::new());
    };
    finished.recv_timeout(KILL_GRACE).map_err(|_| {
        format!("the output of {what} was still open {KILL_GRACE:?} after it ended")
    })?;
    reader
        .join()
        .map_err(|_| format!("the thread reading the output of {what} panicked"))?
        .map_err(|e| format!("read the output of {what}: {e}"))
}

/// Pass a signal that ends the checker (Ctrl-C, a CI job's SIGTERM) on to the `cargo test`
/// it runs, which is in a process group of its own that the terminal's Ctrl-C does not
/// reach; then end the checker by the same signal.
extern "C" fn forward_to_cargo(signal: libc::c_int) {
    let group = CARGO_GROUP.load(Ordering::SeqCst);
    // SAFETY: kill(2), signal(2) and raise(3) are async-signal-safe.
    unsafe {
        if group > 0 {
            libc::kill(-group, signal);
        }
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// Install `forward_to_cargo` for the signals that end a process from outside.
fn forward_signals_to_cargo() -> Result<(), String> {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let handler = forward_to_cargo as extern "C" fn(libc::c_int);
        // SAFETY: the handler does only async-signal-safe things.
        if unsafe { libc::signal(signal, handler as libc::sighandler_t) } == libc::SIG_ERR {
            return Err(format!(
                "install a handler for signal {signal}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Everything that makes an exercise complete, without compiling it.
fn lint(exercise: &Exercise, manifest: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let dir = exercises_dir();
    let starter = dir.join(&exercise.name).join(&exercise.file);
    match std::fs::read_to_string(&starter) {
        Ok(text) => {
            if !text.starts_with("//! # Exercise") {
                problems.push(format!(
                    "{} does not start with its statement (`//! # Exercise ...`)",
                    starter.display()
                ));
            }
            if !text.contains("// TODO:") {
                problems.push(format!(
                    "{} has no `// TODO:` marking where the learner acts",
                    starter.display()
                ));
            }
        }
        Err(e) => problems.push(format!("read starter {}: {e}", starter.display())),
    }
    let solution = dir
        .join("solutions")
        .join(&exercise.name)
        .join(&exercise.file);
    if !solution.is_file() {
        problems.push(format!("no reference solution at {}", solution.display()));
    }
    let test = dir.join(&exercise.name).join("test.rs");
    if !test.is_file() {
        problems.push(format!("no tests at {}", test.display()));
    }
    if !manifest.contains(&format!("name = \"{}\"", exercise.name)) {
        problems.push(format!(
            "exercises/Cargo.toml has no [[test]] named {}",
            exercise.name
        ));
    }
    if exercise.hint.trim().is_empty() {
        problems.push(format!("{} has an empty hint in info.toml", exercise.name));
    }
    problems
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn print_output(output: &Output) {
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
}

/// Learner mode: run the chosen exercises against the starters.
fn learn(info: &Info, only: Option<&str>) -> Result<bool, String> {
    let chosen: Vec<&Exercise> = info
        .exercises
        .iter()
        .filter(|e| only.is_none_or(|name| e.name == name))
        .collect();
    if chosen.is_empty() {
        let names: Vec<&str> = info.exercises.iter().map(|e| e.name.as_str()).collect();
        return Err(format!(
            "no exercise named {}; there are: {}",
            only.unwrap_or(""),
            names.join(", ")
        ));
    }
    let mut all_pass = true;
    for exercise in chosen {
        if exercise.needs_root && !is_root() {
            println!(
                "{}: needs root (its tests call chroot and friends): run `sudo just exercise {}`",
                exercise.name, exercise.name
            );
            all_pass = false;
            continue;
        }
        let output = run_tests(exercise, false)?;
        if output.status.success() {
            println!("{}: pass", exercise.name);
        } else {
            print_output(&output);
            println!(
                "{}: fail — edit exercises/{}/{}\nhint:{}\n",
                exercise.name,
                exercise.name,
                exercise.file,
                indent(&exercise.hint)
            );
            all_pass = false;
        }
    }
    Ok(all_pass)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("\n  {l}")).collect()
}

/// Check mode: every exercise complete, every starter failing, every solution passing.
fn check(info: &Info) -> Result<bool, String> {
    let manifest = std::fs::read_to_string(exercises_dir().join("Cargo.toml"))
        .map_err(|e| format!("read Cargo.toml: {e}"))?;
    let (mut passed, mut failed) = (0, 0);
    for exercise in &info.exercises {
        let mut problems = lint(exercise, &manifest);
        if problems.is_empty() {
            if exercise.needs_root && !is_root() {
                return Err(format!(
                    "{} needs root; check mode runs as root (`just test-all`)",
                    exercise.name
                ));
            }
            let starter = run_tests(exercise, false)?;
            if starter.status.success() {
                print_output(&starter);
                problems.push(
                    "the shipped starter PASSES its tests: the exercise is vacuous".to_string(),
                );
            }
            let solution = run_tests(exercise, true)?;
            if !solution.status.success() {
                print_output(&solution);
                problems.push("the reference solution FAILS its tests".to_string());
            }
        }
        if problems.is_empty() {
            println!("ok   {}: starter fails, solution passes", exercise.name);
            passed += 1;
        } else {
            for problem in problems {
                println!("FAIL {}: {problem}", exercise.name);
            }
            failed += 1;
        }
    }
    println!("exercises: {passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = forward_signals_to_cargo().and_then(|()| load_info());
    let result = result.and_then(|info| match args.first().map(String::as_str) {
        Some("check") => check(&info),
        Some("lint") => {
            let manifest = std::fs::read_to_string(exercises_dir().join("Cargo.toml"))
                .map_err(|e| format!("read Cargo.toml: {e}"))?;
            let problems: Vec<String> = info
                .exercises
                .iter()
                .flat_map(|e| lint(e, &manifest))
                .collect();
            problems.iter().for_each(|p| println!("FAIL {p}"));
            println!(
                "{} exercises linted, {} problems",
                info.exercises.len(),
                problems.len()
            );
            Ok(problems.is_empty())
        }
        Some("--help") | Some("-h") => {
            println!("usage: exercises [NAME] | exercises lint | exercises check");
            Ok(true)
        }
        only => learn(&info, only),
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("exercises: error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_exercise_is_complete() {
        let info = load_info().expect("info.toml parses");
        let manifest =
            std::fs::read_to_string(exercises_dir().join("Cargo.toml")).expect("Cargo.toml");
        assert!(!info.exercises.is_empty());
        for exercise in &info.exercises {
            assert_eq!(lint(exercise, &manifest), Vec::<String>::new());
        }
    }

    #[test]
    fn lint_notices_a_missing_todo_and_solution() {
        let exercise = Exercise {
            name: "nope".into(),
            file: "x.rs".into(),
            needs_root: false,
            hint: String::new(),
        };
        let problems = lint(&exercise, "");
        assert!(
            problems.iter().any(|p| p.contains("read starter")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("no reference solution")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("empty hint")),
            "{problems:?}"
        );
    }

    #[test]
    fn exercise_paths_resolve_from_the_manifest_dir() {
        assert!(exercises_dir().join("info.toml").is_file());
    }

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    /// Whether `pid` is gone, or is a zombie that its new parent has yet to reap.
    fn has_ended(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state follows the command name, which is in parentheses.
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
            Err(_) => true,
        }
    }

    #[test]
    fn a_command_that_ends_in_time_gives_its_status_and_both_outputs() {
        let output = output_within(
            shell("echo out; echo err >&2; exit 3"),
            Duration::from_secs(60),
            "sh",
        )
        .expect("sh runs");
        assert_eq!(output.status.code(), Some(3));
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
    }

    #[test]
    fn a_command_that_writes_more_than_a_pipe_holds_is_not_blocked() {
        let output = output_within(
            shell("head -c 1000000 /dev/zero"),
            Duration::from_secs(60),
            "head",
        )
        .expect("head runs");
        assert!(output.status.success());
        assert_eq!(output.stdout.len(), 1_000_000);
    }

    #[test]
    fn a_command_past_its_deadline_is_killed_with_everything_it_started() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pid_file = dir.path().join("pid");
        // Were the deadline not kept, the script would end by itself after 30 s, in success.
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let timeout = Duration::from_secs(1);
        let started = Instant::now();
        let result = output_within(shell(&script), timeout, "the sleeper");
        let took = started.elapsed();
        assert!(
            took >= timeout && took < Duration::from_secs(20),
            "a command with a deadline of {timeout:?} came back after {took:?}"
        );
        match result {
            Err(message) => assert_eq!(
                message,
                "the sleeper did not finish within 1s: killed it and everything it started"
            ),
            Ok(output) => panic!("expected a timeout, got {output:?}"),
        }
        let pid = std::fs::read_to_string(&pid_file).expect("the script wrote its sleep's pid");
        let pid = pid.trim();
        // Killed, it is reparented and reaped by whoever adopts it: give that a moment.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !has_ended(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            has_ended(pid),
            "the background `sleep 30` ({pid}) still runs"
        );
    }
}
