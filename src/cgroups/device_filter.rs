//! Device rules on cgroup v2: an eBPF program instead of v1's `devices.allow` and
//! `devices.deny` (chapter 11).
//!
//! cgroup v2 has no devices controller. Instead, a program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the cgroup is asked about every device
//! access of its processes (open, mknod) and returns 1 to allow it, 0 to deny it. Its
//! context is three words: the access and the device type (`access << 16 | type`), the
//! major and the minor number.
//!
//! [`program`] turns a v1-style rule list into such a program, evaluated as v1 would:
//! the last rule that matches decides, and an access no rule matches is allowed (a v1
//! cgroup starts allowing what its parent allows). A deny rule matches an access that
//! asks for any of its access bits; an allow rule one that asks for nothing else.
//! [`attach`] loads it and attaches it to a cgroup2 directory (bpf(2) as root), with
//! `BPF_F_ALLOW_MULTI` so that a parent's programs still run too.
//!
//! See [the kernel's cgroup-v2.rst, "Device controller"](https://docs.kernel.org/admin-guide/cgroup-v2.html#device-controller)
//! and [bpf(2)](https://man7.org/linux/man-pages/man2/bpf.2.html).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::settings::DeviceRule;

/// One eBPF instruction, as the kernel's `struct bpf_insn` lays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    /// The opcode.
    pub code: u8,
    /// The destination register (low nibble) and the source register (high nibble).
    pub regs: u8,
    /// A jump's offset, or a memory access's.
    pub off: i16,
    /// The immediate.
    pub imm: i32,
}

const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const MOV_K: u8 = 0xb7; // dst = imm (64-bit)
const MOV_X: u8 = 0xbf; // dst = src (64-bit)
const AND_K: u8 = 0x54; // dst &= imm (32-bit)
const RSH_K: u8 = 0x74; // dst >>= imm (32-bit)
const JEQ_K: u8 = 0x15; // if dst == imm: pc += off
const JNE_K: u8 = 0x55; // if dst != imm: pc += off
const EXIT: u8 = 0x95;

const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The access bits of `access` (`rwm`) as the program sees them: mknod 1, read 2,
/// write 4.
fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |bits, c| {
        bits | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

// ANCHOR: program
/// The program for `rules`: r2 the device type, r3 the access asked for, r4 the major,
/// r5 the minor; then one block per rule, the last rule first, each returning its
/// verdict when it matches and falling through to the next when not.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut insns = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        // Each test jumps past the rest of the block when the rule does not match
        // (`true` marks those jumps until the block's length is known).
        let mut block: Vec<(Insn, bool)> = Vec::new();
        match rule.kind {
            'c' => block.push((insn(JNE_K, 2, 0, 0, BPF_DEVCG_DEV_CHAR), true)),
            'b' => block.push((insn(JNE_K, 2, 0, 0, BPF_DEVCG_DEV_BLOCK), true)),
            _ => {}
        }
        let bits = access_bits(&rule.access);
        if bits != 7 {
            // r6 = the asked-for bits the rule names (deny) or does not name (allow).
            block.push((insn(MOV_X, 6, 3, 0, 0), false));
            if rule.allow {
                block.push((insn(AND_K, 6, 0, 0, !bits & 7), false));
                block.push((insn(JNE_K, 6, 0, 0, 0), true));
            } else {
                block.push((insn(AND_K, 6, 0, 0, bits), false));
                block.push((insn(JEQ_K, 6, 0, 0, 0), true));
            }
        }
        if let Some(major) = rule.major {
            block.push((insn(JNE_K, 4, 0, 0, major as i32), true));
        }
        if let Some(minor) = rule.minor {
            block.push((insn(JNE_K, 5, 0, 0, minor as i32), true));
        }
        block.push((insn(MOV_K, 0, 0, 0, i32::from(rule.allow)), false));
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        let matches_all = block.iter().all(|(_, jumps)| !jumps);
        for (i, (mut instruction, jumps)) in block.into_iter().enumerate() {
            if jumps {
                instruction.off = (len - i - 1) as i16;
            }
            insns.push(instruction);
        }
        if matches_all {
            // Every access matches it (`a *:* rwm`): the earlier rules and the default
            // are never reached, and the verifier refuses code that cannot run.
            return insns;
        }
    }
    // No rule matched: allowed, as in a v1 cgroup before its first rule.
    insns.push(insn(MOV_K, 0, 0, 0, 1));
    insns.push(insn(EXIT, 0, 0, 0, 0));
    insns
}
// ANCHOR_END: program

/// Run `program` as the kernel would, for a device access: the verdict (`true`:
/// allowed). For tests of the program without loading it.
pub fn run(program: &[Insn], kind: char, major: u32, minor: u32, access: &str) -> bool {
    let device = match kind {
        'b' => BPF_DEVCG_DEV_BLOCK,
        _ => BPF_DEVCG_DEV_CHAR,
    } as u32;
    let ctx = [(access_bits(access) as u32) << 16 | device, major, minor];
    let mut regs = [0u64; 11];
    let mut pc = 0usize;
    while let Some(i) = program.get(pc) {
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        pc += 1;
        match i.code {
            LDX_W => regs[dst] = u64::from(ctx[(i.off / 4) as usize]),
            MOV_K => regs[dst] = i.imm as u64,
            MOV_X => regs[dst] = regs[src],
            AND_K => regs[dst] = (regs[dst] as u32 & i.imm as u32) as u64,
            RSH_K => regs[dst] = ((regs[dst] as u32) >> i.imm) as u64,
            JEQ_K if regs[dst] == i.imm as u64 => pc += i.off as usize,
            JNE_K if regs[dst] != i.imm as u64 => pc += i.off as usize,
            JEQ_K | JNE_K => {}
            EXIT => return regs[0] == 1,
            other => panic!("opcode {other:#x} is not one this module emits"),
        }
    }
    false
}

/// Why the program could not be loaded or attached.
#[derive(Debug, thiserror::Error)]
pub enum DeviceFilterError {
    /// bpf(2) refused.
    #[error("{what} the device filter for {}: {source}{}", cgroup.display(), log.as_ref().map(|l| format!(" (the verifier: {l})")).unwrap_or_default())]
    Bpf {
        /// Load or attach.
        what: &'static str,
        /// The cgroup directory.
        cgroup: std::path::PathBuf,
        /// The errno.
        #[source]
        source: std::io::Error,
        /// The verifier's first line, if it said something.
        log: Option<String>,
    },
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// bpf(2) with an attribute block of 128 bytes, zero past what `fill` writes.
fn bpf(command: libc::c_long, fill: impl FnOnce(&mut [u8; 128])) -> std::io::Result<i32> {
    let mut attr = [0u8; 128];
    fill(&mut attr);
    // SAFETY: bpf(2) reads `attr`, 128 bytes that live through the call, and the
    // pointers written into it point to memory that does too.
    let result = unsafe { libc::syscall(libc::SYS_bpf, command, attr.as_mut_ptr(), attr.len()) };
    if result < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(result as i32)
}

fn put_u32(attr: &mut [u8; 128], at: usize, value: u32) {
    attr[at..at + 4].copy_from_slice(&value.to_ne_bytes());
}

fn put_u64(attr: &mut [u8; 128], at: usize, value: u64) {
    attr[at..at + 8].copy_from_slice(&value.to_ne_bytes());
}

// ANCHOR: attach
/// Load the program for `rules` and attach it to the cgroup2 directory `cgroup`. The
/// attachment lives as long as the cgroup; the program's fd is closed here.
pub fn attach(cgroup: &Path, rules: &[DeviceRule]) -> Result<(), DeviceFilterError> {
    let failed = |what, source, log| DeviceFilterError::Bpf {
        what,
        cgroup: cgroup.to_path_buf(),
        source,
        log,
    };
    let insns = program(rules);
    let license = c"GPL";
    // union bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level,
    // log_size, log_buf. Loaded without the verifier's log first: with one, a log
    // longer than its buffer fails the load (ENOSPC). Only a refused program is loaded
    // again, with a log, for the error to say why.
    let load = |log: Option<&mut Vec<u8>>| {
        bpf(BPF_PROG_LOAD, |attr| {
            put_u32(attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE);
            put_u32(attr, 4, insns.len() as u32);
            put_u64(attr, 8, insns.as_ptr() as u64);
            put_u64(attr, 16, license.as_ptr() as u64);
            if let Some(log) = log {
                put_u32(attr, 24, 1);
                put_u32(attr, 28, log.len() as u32);
                put_u64(attr, 32, log.as_mut_ptr() as u64);
            }
        })
    };
    let prog = load(None).map_err(|e| {
        let mut log = vec![0u8; 1 << 20];
        let _ = load(Some(&mut log));
        let text = String::from_utf8_lossy(&log);
        let last = text
            .trim_end_matches('\0')
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(str::to_string);
        failed("load", e, last)
    })?;
    // SAFETY: bpf(2) returned a new fd, owned by nothing else.
    let prog = unsafe { OwnedFd::from_raw_fd(prog) };
    let dir = std::fs::File::open(cgroup).map_err(|e| failed("open the cgroup for", e, None))?;
    // union bpf_attr for BPF_PROG_ATTACH: target_fd, attach_bpf_fd, attach_type,
    // attach_flags.
    bpf(BPF_PROG_ATTACH, |attr| {
        put_u32(attr, 0, dir.as_raw_fd() as u32);
        put_u32(attr, 4, prog.as_raw_fd() as u32);
        put_u32(attr, 8, BPF_CGROUP_DEVICE);
        put_u32(attr, 12, BPF_F_ALLOW_MULTI);
    })
    .map_err(|e| failed("attach", e, None))?;
    Ok(())
}
// ANCHOR_END: attach

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: char,
        major: Option<u64>,
        minor: Option<u64>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.to_string(),
        }
    }

    #[test]
    fn the_last_matching_rule_decides_as_on_v1() {
        // podman's and containerd's shape: deny everything, then allow some.
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'c', Some(1), Some(5), "r"),
            rule(true, 'c', Some(136), None, "rw"),
        ];
        let p = program(&rules);
        assert!(run(&p, 'c', 1, 3, "rw"), "/dev/null");
        assert!(run(&p, 'c', 1, 3, "m"), "mknod of /dev/null");
        assert!(run(&p, 'c', 1, 5, "r"), "reading /dev/zero");
        assert!(!run(&p, 'c', 1, 5, "rw"), "writing /dev/zero asks for more");
        assert!(run(&p, 'c', 136, 7, "rw"), "any pty");
        assert!(!run(&p, 'c', 136, 7, "m"), "but no mknod of one");
        assert!(!run(&p, 'b', 8, 0, "r"), "a disk");
        assert!(!run(&p, 'c', 1, 1, "r"), "/dev/mem");
    }

    #[test]
    fn a_deny_rule_matches_any_access_it_names() {
        let rules = [rule(false, 'c', Some(1), Some(3), "w")];
        let p = program(&rules);
        assert!(!run(&p, 'c', 1, 3, "rw"), "asks for write, among others");
        assert!(run(&p, 'c', 1, 3, "r"));
        assert!(run(&p, 'b', 1, 3, "w"), "another type");
        assert!(run(&p, 'c', 4, 0, "w"), "no rule: allowed, as on v1");
    }

    #[test]
    fn an_empty_list_allows_everything() {
        let p = program(&[]);
        assert!(run(&p, 'b', 8, 0, "rwm"));
    }
}
