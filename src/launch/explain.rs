//! What a failed child step's errno most likely means: in one place, keyed by the kind
//! of step, for the host side's error message.

use nix::errno::Errno;

use super::plan::LaunchPlan;
use super::steps::ChildStep;
use crate::mounts::MountOp;
use crate::namespaces::Namespace;

// ANCHOR: explain
/// Why `step` most likely failed with `errno`, and what to do; `None` when the errno
/// says it all.
pub fn explain(step: &ChildStep, errno: Errno, plan: &LaunchPlan) -> Option<String> {
    let text = match (step, errno) {
        (ChildStep::Mount(MountOp::Mount { fstype, .. }), errno) if fstype == "overlay" => {
            let layers = plan.overlay.as_ref()?;
            return Some(crate::overlay::explain_mount_error(
                errno,
                layers,
                plan.mapping.is_some(),
            ));
        }
        (ChildStep::Mount(_), Errno::ELOOP) => {
            "a symlink on the way: nutshell mounts a filesystem only on a real directory inside the root, and makes nodes only in a real directory"
        }
        (ChildStep::Mount(_), Errno::EXDEV) => {
            "the path leads out of the root (through `..` or a link), which is refused"
        }
        (ChildStep::Mount(MountOp::AttachTree { .. }), Errno::EINVAL) => {
            "the kernel refused to attach the idmapped layer: overlayfs accepts idmapped lower layers from Linux 5.19"
        }
        (ChildStep::Mount(_), Errno::EPERM) if plan.mapping.is_some() => {
            "a user namespace may mount only what its owner may: proc needs a PID namespace of its own, sysfs a network namespace"
        }
        (ChildStep::ExecInit, Errno::EACCES | Errno::EPERM) => {
            "the sealed copy of nutshell could not be executed: is vm.memfd_noexec set to 2, or is the binary's filesystem noexec?"
        }
        (ChildStep::BecomeRoot { .. }, Errno::EINVAL | Errno::EPERM) => {
            "the id maps do not map uid and gid 0: the container's root must be mapped"
        }
        (ChildStep::EnterTimeNamespace(_), Errno::ERANGE) => {
            "an offset that large would put a clock past what the kernel can count: use a smaller offset"
        }
        (ChildStep::DropBoundingSet(_) | ChildStep::SetCapabilities(_), Errno::EPERM) => {
            "dropping capabilities needs CAP_SETPCAP, and a set cannot grow: run as root"
        }
        (ChildStep::SetUser { .. }, Errno::EINVAL) => {
            "that uid or gid is not mapped in the container's user namespace"
        }
        (ChildStep::Chdir(_), Errno::ENOENT | Errno::ENOTDIR) => {
            "the working directory does not exist in the container, or lies outside its root"
        }
        (ChildStep::Exec { .. } | ChildStep::FindProgram(_), Errno::ENOENT) => {
            "no such program in the container (looked up in its PATH), or its ELF interpreter is missing from the image"
        }
        (ChildStep::Exec { .. } | ChildStep::FindProgram(_), Errno::EACCES) => {
            "it is a directory, or not executable, or on a noexec mount"
        }
        (ChildStep::Exec { .. }, Errno::ENOEXEC) => "it is not a program this kernel can run",
        (ChildStep::RunHooks { .. }, Errno::ECANCELED) => {
            "a hook exited with a non-zero status or was killed by a signal"
        }
        (ChildStep::RunHooks { .. }, Errno::ETIMEDOUT) => {
            "a hook ran longer than its timeout, and was killed"
        }
        (ChildStep::RunHooks { .. }, Errno::ENOENT) => {
            "no such hook program, as the container's first process sees the filesystem"
        }
        (ChildStep::JoinNamespace { .. }, Errno::EINVAL) => {
            "that file is not a namespace of that kind"
        }
        _ => return None,
    };
    Some(text.to_string())
}
// ANCHOR_END: explain

/// Why clone(2) with CLONE_NEWUSER most likely failed with `errno`, for a normal user
/// when `privileged` is false: the machine's policy, not a bug.
pub fn userns_refused(errno: Errno, privileged: bool, new: &[Namespace]) -> Option<&'static str> {
    if !new.contains(&Namespace::User) {
        return None;
    }
    match errno {
        Errno::ENOSPC => Some(
            "no user namespace may be made: user.max_user_namespaces is 0 or used up (sysctl user.max_user_namespaces)",
        ),
        Errno::EPERM | Errno::EACCES if !privileged => Some(
            "this machine does not let a normal user make user namespaces: see sysctl kernel.unprivileged_userns_clone (Debian's older kernels) or kernel.apparmor_restrict_unprivileged_userns (Ubuntu 23.10+); run as root, or ask for them to be allowed",
        ),
        _ => None,
    }
}
