//! The exercise checker.
//!
//! - `exercises [NAME]` (`just exercises`, `just exercise NAME`): run the tests of every
//!   exercise, or one, against the learner's starter file; print pass, or fail with the
//!   hint from info.toml.
//! - `exercises lint`: check that every exercise is complete — a statement at the top of
//!   the starter, at least one `// TODO:`, a test target, a reference solution, a hint.
//! - `exercises check` (CI): lint, then prove every shipped starter FAILS its tests and
//!   every reference solution PASSES them, so no exercise can be passed by doing nothing.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Output};

use serde::Deserialize;

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
    command
        .output()
        .map_err(|e| format!("run cargo test for {}: {e}", exercise.name))
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
    let result = load_info().and_then(|info| match args.first().map(String::as_str) {
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
}
