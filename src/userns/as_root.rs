//! Running a function as the container's root, after the container is gone: how a
//! rootless user cleans up files its container gave to its subordinate ids.

use std::path::Path;

use super::UsernsError;
use super::apply::{become_root_step, write_id_maps};
use super::plan::MappingPlan;
use crate::namespaces::Namespace;
use crate::process::{self, Child, Exit, Isolation, ParentStep, Step};

// ANCHOR: run_as_mapped_root
/// Run `body` in a child that is root of a new user namespace with `plan`'s maps, and
/// return how it ended.
///
/// A rootless container may chown files to ids its user has only through
/// /etc/subuid (container uid 1000 is host uid 200999, say). Outside, its user is not
/// their owner and may not even enter their directories; inside a namespace with the
/// same maps it is their owner's root, with CAP_DAC_OVERRIDE over them. So whatever
/// reads or removes what the container left runs there.
pub fn run_as_mapped_root(
    plan: &MappingPlan,
    body: impl FnOnce() -> i32,
) -> Result<Exit, UsernsError> {
    let child = spawn_mapped(plan, Vec::new(), vec![become_root_step(plan)], body)?;
    Ok(child.wait()?)
}
// ANCHOR_END: run_as_mapped_root

/// Clone a child into a new user namespace alone and have the parent write `plan`'s
/// maps for it, then run `more` parent steps; the child then runs `steps` and `body`.
pub(super) fn spawn_mapped<'a>(
    plan: &'a MappingPlan,
    more: Vec<ParentStep<'a>>,
    steps: Vec<Step<'a>>,
    body: impl FnOnce() -> i32,
) -> Result<Child, UsernsError> {
    let isolation = Isolation {
        namespaces: vec![Namespace::User],
        time_offsets: None,
    };
    let mut parent_steps = vec![ParentStep::new("write uid_map and gid_map", |pid| {
        write_id_maps(pid, plan, Path::new("/proc"))
    })];
    parent_steps.extend(more);
    Ok(process::spawn_fn_after(
        &isolation,
        parent_steps,
        steps,
        body,
    )?)
}
