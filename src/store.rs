//! Where nutshell keeps what it writes: one data directory for images.
//!
//! Root uses `/var/lib/nutshell`; a normal user `$XDG_DATA_HOME/nutshell` (by default
//! `~/.local/share/nutshell`); `NUTSHELL_DATA` overrides both, which is how the tests keep
//! every image they build in a temporary directory. Nothing else is written anywhere, and
//! `just clean` removes all of it. Chapter 1 introduces this module for the default image.

use std::ffi::OsString;
use std::path::PathBuf;

/// The environment variable that overrides the data directory.
pub const DATA_ENV: &str = "NUTSHELL_DATA";

/// The data directory for a process with effective uid `euid`, given a way to read
/// environment variables (a parameter, so the rules can be tested without touching the
/// real environment).
pub fn data_dir_for(euid: u32, env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(DATA_ENV) {
        return dir;
    }
    if euid == 0 {
        return PathBuf::from("/var/lib/nutshell");
    }
    if let Some(xdg) = set("XDG_DATA_HOME") {
        return xdg.join("nutshell");
    }
    match set("HOME") {
        Some(home) => home.join(".local/share/nutshell"),
        None => PathBuf::from("/var/lib/nutshell"),
    }
}

/// The data directory of this process.
pub fn data_dir() -> PathBuf {
    data_dir_for(nix::unistd::geteuid().as_raw(), |name| {
        std::env::var_os(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn root_keeps_images_in_var_lib() {
        assert_eq!(
            data_dir_for(0, env(&[("HOME", "/root")])),
            PathBuf::from("/var/lib/nutshell")
        );
    }

    #[test]
    fn a_user_keeps_images_in_xdg_data_home() {
        let vars = [("HOME", "/home/ada"), ("XDG_DATA_HOME", "/home/ada/data")];
        assert_eq!(
            data_dir_for(1000, env(&vars)),
            PathBuf::from("/home/ada/data/nutshell")
        );
    }

    #[test]
    fn a_user_without_xdg_uses_dot_local_share() {
        assert_eq!(
            data_dir_for(1000, env(&[("HOME", "/home/ada")])),
            PathBuf::from("/home/ada/.local/share/nutshell")
        );
    }

    #[test]
    fn nutshell_data_overrides_everything() {
        let vars = [("NUTSHELL_DATA", "/tmp/t1"), ("HOME", "/root")];
        assert_eq!(data_dir_for(0, env(&vars)), PathBuf::from("/tmp/t1"));
    }
}
