//! Classic BPF, the little machine a seccomp filter is written for.
//!
//! The kernel runs the filter on every system call the process makes. Its input is a
//! `struct seccomp_data`, read-only, 64 bytes:
//!
//! | offset | field |
//! |---|---|
//! | 0 | `nr`: the syscall number (32 bits) |
//! | 4 | `arch`: the ABI the call came in through, an `AUDIT_ARCH_*` value |
//! | 8 | `instruction_pointer` (64 bits) |
//! | 16 + 8·i | `args[i]`, i = 0..=5, 64 bits each |
//!
//! The machine has one 32-bit accumulator `A`; a seccomp filter needs only four kinds of
//! instruction: load a 32-bit word of `seccomp_data` into `A`, AND `A` with a constant,
//! jump on a comparison of `A` with a constant (`jeq`, `jgt`, `jge`, `jset`; unsigned), and
//! return a verdict. Jumps only go forward, so every filter ends; a conditional jump skips
//! at most 255 instructions (its offsets are 8 bits), an unconditional `ja` up to 2³²−1.
//! A 64-bit argument is compared as two 32-bit halves, the high half first.
//!
//! See also [seccomp(2)](https://man7.org/linux/man-pages/man2/seccomp.2.html) and the
//! kernel's [seccomp_filter.rst](https://docs.kernel.org/userspace-api/seccomp_filter.html).

use super::Op;

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`, so a
/// `Vec<Insn>` can be handed to seccomp(2) as it is. Serde-able so a launch plan can carry
/// the compiled program.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Insn {
    /// The opcode: instruction class, size, mode or operation, source.
    pub code: u16,
    /// For a conditional jump: how many instructions to skip when the test holds.
    pub jt: u8,
    /// For a conditional jump: how many instructions to skip when it does not.
    pub jf: u8,
    /// The constant operand: an offset, a value to compare with, a verdict.
    pub k: u32,
}

// `install` passes the program to the kernel as `struct sock_filter[]`.
const _: () = {
    assert!(size_of::<Insn>() == size_of::<libc::sock_filter>());
    assert!(align_of::<Insn>() == align_of::<libc::sock_filter>());
    assert!(std::mem::offset_of!(Insn, jt) == std::mem::offset_of!(libc::sock_filter, jt));
    assert!(std::mem::offset_of!(Insn, jf) == std::mem::offset_of!(libc::sock_filter, jf));
    assert!(std::mem::offset_of!(Insn, k) == std::mem::offset_of!(libc::sock_filter, k));
};

/// `BPF_LD | BPF_W | BPF_ABS`: load the 32-bit word at offset `k` of `seccomp_data`.
pub const LD_W_ABS: u16 = 0x20;
/// `BPF_ALU | BPF_AND | BPF_K`: `A &= k`.
pub const ALU_AND_K: u16 = 0x04 | 0x50;
/// `BPF_JMP | BPF_JA`: skip `k` instructions.
pub const JMP_JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`: `A == k`.
pub const JMP_JEQ_K: u16 = 0x05 | 0x10;
/// `BPF_JMP | BPF_JGT | BPF_K`: `A > k`, unsigned.
pub const JMP_JGT_K: u16 = 0x05 | 0x20;
/// `BPF_JMP | BPF_JGE | BPF_K`: `A >= k`, unsigned.
pub const JMP_JGE_K: u16 = 0x05 | 0x30;
/// `BPF_JMP | BPF_JSET | BPF_K`: `A & k != 0`.
pub const JMP_JSET_K: u16 = 0x05 | 0x40;
/// `BPF_RET | BPF_K`: end the filter with verdict `k`.
pub const RET_K: u16 = 0x06;

/// The kernel refuses programs longer than this (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// Offset of `seccomp_data.nr`.
pub const OFFSET_NR: u32 = 0;
/// Offset of `seccomp_data.arch`.
pub const OFFSET_ARCH: u32 = 4;

/// Offsets of the low and the high 32-bit half of `seccomp_data.args[index]`.
pub fn arg_offsets(index: u32) -> (u32, u32) {
    let start = 16 + 8 * index;
    if cfg!(target_endian = "little") {
        (start, start + 4)
    } else {
        (start + 4, start)
    }
}

/// Verdict: kill the whole process, as by an uncatchable SIGSYS (Linux 4.14).
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
/// Verdict: kill the calling thread only (the original `SECCOMP_RET_KILL`).
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
/// Verdict: send a catchable SIGSYS; the low 16 bits go to `si_errno`.
pub const RET_TRAP: u32 = 0x0003_0000;
/// Verdict: do not run the call, return `-errno` (the low 16 bits).
pub const RET_ERRNO: u32 = 0x0005_0000;
/// Verdict: stop for a ptrace tracer, which sees the low 16 bits as the event message.
pub const RET_TRACE: u32 = 0x7ff0_0000;
/// Verdict: run the call and log it (Linux 4.14).
pub const RET_LOG: u32 = 0x7ffc_0000;
/// Verdict: run the call.
pub const RET_ALLOW: u32 = 0x7fff_0000;

/// The verdict part of a return value (`SECCOMP_RET_ACTION_FULL`).
const RET_ACTION_FULL: u32 = 0xffff_0000;

/// A return value as a reader would say it: `ALLOW`, `ERRNO(1)`, `KILL_PROCESS`.
pub fn describe_return(value: u32) -> String {
    let data = value & 0xffff;
    match value & RET_ACTION_FULL {
        RET_KILL_PROCESS => "KILL_PROCESS".to_owned(),
        RET_KILL_THREAD => "KILL_THREAD".to_owned(),
        RET_TRAP => format!("TRAP({data})"),
        RET_ERRNO => format!("ERRNO({data})"),
        RET_TRACE => format!("TRACE({data})"),
        RET_LOG => "LOG".to_owned(),
        RET_ALLOW => "ALLOW".to_owned(),
        other => format!("{other:#010x}"),
    }
}

impl Insn {
    /// `ld [offset]`: load a 32-bit word of `seccomp_data` into `A`.
    pub fn load(offset: u32) -> Insn {
        Insn::stmt(LD_W_ABS, offset)
    }

    /// `and #mask`.
    pub fn and(mask: u32) -> Insn {
        Insn::stmt(ALU_AND_K, mask)
    }

    /// `ret #value`.
    pub fn ret(value: u32) -> Insn {
        Insn::stmt(RET_K, value)
    }

    /// `ja +skip`: the only jump that reaches further than 255 instructions.
    pub fn ja(skip: u32) -> Insn {
        Insn::stmt(JMP_JA, skip)
    }

    /// A conditional jump: compare `A` with `k`, skip `jt` instructions if the test holds,
    /// `jf` if not.
    pub fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
        Insn { code, jt, jf, k }
    }

    fn stmt(code: u16, k: u32) -> Insn {
        Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    fn is_conditional_jump(&self) -> bool {
        matches!(self.code, JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K | JMP_JSET_K)
    }
}

/// Which side of a conditional jump leaves a [`Block`].
#[derive(Debug, Clone, Copy)]
pub enum Exit {
    /// The jump leaves the block when its test holds.
    WhenTrue,
    /// The jump leaves the block when its test fails.
    WhenFalse,
}

/// A run of instructions whose failing jumps all land just after the block: one rule's
/// tests for one syscall, ending in the rule's `ret`. The exits are patched in
/// [`Block::finish`], once the block's length is known.
#[derive(Debug, Default)]
pub struct Block {
    insns: Vec<Insn>,
    exits: Vec<(usize, Exit)>,
}

impl Block {
    /// An empty block.
    pub fn new() -> Block {
        Block::default()
    }

    /// Append an instruction that does not leave the block.
    pub fn push(&mut self, insn: Insn) {
        self.insns.push(insn);
    }

    /// Append a conditional jump on `A` `code` `k` that leaves the block on the `exit`
    /// side and goes to the next instruction on the other.
    pub fn jump_or_exit(&mut self, code: u16, k: u32, exit: Exit) {
        self.exits.push((self.insns.len(), exit));
        self.push(Insn::jump(code, k, 0, 0));
    }

    /// The block's instructions, or `None` if an exit would have to skip more than 255.
    pub fn finish(mut self) -> Option<Vec<Insn>> {
        let len = self.insns.len();
        for (at, exit) in self.exits {
            let skip = u8::try_from(len - at - 1).ok()?;
            match exit {
                Exit::WhenTrue => self.insns[at].jt = skip,
                Exit::WhenFalse => self.insns[at].jf = skip,
            }
        }
        Some(self.insns)
    }
}

/// Append to `block` the test "argument `index` `op` `value`" on its full 64 bits: the
/// block falls through when the test holds and exits when it fails. `MaskedEqual` is
/// `(arg & value) == value_two`, as the OCI spec and libseccomp have it.
///
/// The high halves decide unless they are equal; only then do the low halves count.
pub fn compare(block: &mut Block, index: u32, op: Op, value: u64, value_two: u64) {
    let (lo_at, hi_at) = arg_offsets(index);
    let (hi, lo) = split(value);
    block.push(Insn::load(hi_at));
    match op {
        Op::Equal => {
            block.jump_or_exit(JMP_JEQ_K, hi, Exit::WhenFalse);
            block.push(Insn::load(lo_at));
            block.jump_or_exit(JMP_JEQ_K, lo, Exit::WhenFalse);
        }
        Op::NotEqual => {
            // High halves differ: the test holds, skip the low-half check.
            block.push(Insn::jump(JMP_JEQ_K, hi, 0, 2));
            block.push(Insn::load(lo_at));
            block.jump_or_exit(JMP_JEQ_K, lo, Exit::WhenTrue);
        }
        Op::GreaterThan | Op::GreaterOrEqual => {
            // High half above: holds (skip the next three). Below: fails. Equal: low half.
            block.push(Insn::jump(JMP_JGT_K, hi, 3, 0));
            block.jump_or_exit(JMP_JEQ_K, hi, Exit::WhenFalse);
            block.push(Insn::load(lo_at));
            let code = if op == Op::GreaterThan {
                JMP_JGT_K
            } else {
                JMP_JGE_K
            };
            block.jump_or_exit(code, lo, Exit::WhenFalse);
        }
        Op::LessThan | Op::LessOrEqual => {
            // High half above: fails. Below: holds (skip the next two). Equal: low half.
            block.jump_or_exit(JMP_JGT_K, hi, Exit::WhenTrue);
            block.push(Insn::jump(JMP_JEQ_K, hi, 0, 2));
            block.push(Insn::load(lo_at));
            let code = if op == Op::LessThan {
                JMP_JGE_K
            } else {
                JMP_JGT_K
            };
            block.jump_or_exit(code, lo, Exit::WhenTrue);
        }
        Op::MaskedEqual => {
            let (want_hi, want_lo) = split(value_two);
            block.push(Insn::and(hi));
            block.jump_or_exit(JMP_JEQ_K, want_hi, Exit::WhenFalse);
            block.push(Insn::load(lo_at));
            block.push(Insn::and(lo));
            block.jump_or_exit(JMP_JEQ_K, want_lo, Exit::WhenFalse);
        }
    }
}

/// `(high, low)` 32-bit halves.
fn split(value: u64) -> (u32, u32) {
    ((value >> 32) as u32, value as u32)
}

/// Why a program would not load: what the kernel's checker (`sk_chk_filter` and
/// `seccomp_check_filter`) would refuse, checked before we ask it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The instruction at fault.
    pub index: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Check that every jump lands inside the program, every load reads an aligned word of
/// `seccomp_data`, only the instructions above are used, and the program ends in a `ret`
/// (with forward-only jumps, that means every path returns).
pub fn verify(program: &[Insn]) -> Result<(), Malformed> {
    let bad = |index, reason| Err(Malformed { index, reason });
    if program.last().is_none_or(|last| last.code != RET_K) {
        return bad(
            program.len().saturating_sub(1),
            "the program does not end in ret",
        );
    }
    for (index, insn) in program.iter().enumerate() {
        let remaining = program.len() - index - 1;
        match insn.code {
            LD_W_ABS if insn.k >= 64 || !insn.k.is_multiple_of(4) => {
                return bad(index, "loads outside seccomp_data or unaligned");
            }
            JMP_JA if insn.k as usize >= remaining => return bad(index, "ja jumps past the end"),
            _ if insn.is_conditional_jump() && usize::from(insn.jt.max(insn.jf)) >= remaining => {
                return bad(index, "a conditional jump lands past the end");
            }
            LD_W_ABS | ALU_AND_K | JMP_JA | RET_K => {}
            _ if insn.is_conditional_jump() => {}
            _ => return bad(index, "an instruction seccomp filters do not use"),
        }
    }
    Ok(())
}

/// A classic BPF interpreter for the instructions above, so tests can run a filter on a
/// made-up `seccomp_data` without installing it.
#[cfg(test)]
pub mod interpret {
    use super::*;

    /// The filter's input, as the kernel fills it for one call.
    #[derive(Debug, Clone, Copy)]
    pub struct SeccompData {
        /// The syscall number.
        pub nr: u32,
        /// The `AUDIT_ARCH_*` of the calling ABI.
        pub arch: u32,
        /// The six arguments.
        pub args: [u64; 6],
    }

    impl SeccompData {
        fn word(&self, offset: u32) -> u32 {
            let mut bytes = [0u8; 64];
            bytes[0..4].copy_from_slice(&self.nr.to_ne_bytes());
            bytes[4..8].copy_from_slice(&self.arch.to_ne_bytes());
            for (i, arg) in self.args.iter().enumerate() {
                bytes[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
            }
            let at = offset as usize;
            u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
        }
    }

    /// The verdict `program` returns for `data`; panics on what the kernel would refuse.
    pub fn run(program: &[Insn], data: &SeccompData) -> u32 {
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let insn = program[pc];
            pc += 1;
            let taken = |holds: bool| usize::from(if holds { insn.jt } else { insn.jf });
            match insn.code {
                LD_W_ABS => {
                    assert!(
                        insn.k < 64 && insn.k.is_multiple_of(4),
                        "bad load at {}",
                        pc - 1
                    );
                    a = data.word(insn.k);
                }
                ALU_AND_K => a &= insn.k,
                JMP_JA => pc += insn.k as usize,
                JMP_JEQ_K => pc += taken(a == insn.k),
                JMP_JGT_K => pc += taken(a > insn.k),
                JMP_JGE_K => pc += taken(a >= insn.k),
                JMP_JSET_K => pc += taken(a & insn.k != 0),
                RET_K => return insn.k,
                code => panic!("opcode {code:#x} at {}", pc - 1),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::interpret::{SeccompData, run};
    use super::*;

    fn data_with_arg0(arg: u64) -> SeccompData {
        SeccompData {
            nr: 0,
            arch: 0,
            args: [arg, 0, 0, 0, 0, 0],
        }
    }

    /// Whether the compiled comparison holds, by running it inside a tiny program.
    fn compiled_holds(op: Op, value: u64, value_two: u64, arg: u64) -> bool {
        let mut block = Block::new();
        compare(&mut block, 0, op, value, value_two);
        block.push(Insn::ret(1));
        let mut program = block.finish().expect("short block");
        program.push(Insn::ret(0));
        verify(&program).expect("valid program");
        run(&program, &data_with_arg0(arg)) == 1
    }

    fn reference(op: Op, value: u64, value_two: u64, arg: u64) -> bool {
        match op {
            Op::NotEqual => arg != value,
            Op::LessThan => arg < value,
            Op::LessOrEqual => arg <= value,
            Op::Equal => arg == value,
            Op::GreaterOrEqual => arg >= value,
            Op::GreaterThan => arg > value,
            Op::MaskedEqual => arg & value == value_two,
        }
    }

    const OPS: [Op; 7] = [
        Op::NotEqual,
        Op::LessThan,
        Op::LessOrEqual,
        Op::Equal,
        Op::GreaterOrEqual,
        Op::GreaterThan,
        Op::MaskedEqual,
    ];

    #[test]
    fn every_op_agrees_with_64_bit_unsigned_arithmetic() {
        // High halves equal and different, low halves around the value, the extremes.
        let values = [
            0,
            5,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0005,
            0x1_0000_0004,
            0x2_0000_0000,
            0xffff_ffff_0000_0005,
            u64::MAX,
        ];
        for op in OPS {
            for value in values {
                for arg in values.iter().flat_map(|&v| [v, v.wrapping_add(1)]) {
                    let two = value & 0x3_0000_0005;
                    assert_eq!(
                        compiled_holds(op, value, two, arg),
                        reference(op, value, two, arg),
                        "{op:?} value {value:#x} (two {two:#x}) arg {arg:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn equal_compares_the_high_half_too() {
        assert!(compiled_holds(Op::Equal, 5, 0, 5));
        assert!(!compiled_holds(Op::Equal, 5, 0, 0x1_0000_0005));
        assert!(compiled_holds(Op::GreaterThan, 5, 0, 0x1_0000_0004));
        assert!(compiled_holds(Op::LessThan, 0x1_0000_0005, 0, 6));
    }

    #[test]
    fn block_exits_land_after_the_block_and_refuse_to_reach_past_255() {
        let mut block = Block::new();
        block.jump_or_exit(JMP_JEQ_K, 7, Exit::WhenFalse);
        block.push(Insn::ret(RET_ALLOW));
        assert_eq!(
            block.finish(),
            Some(vec![Insn::jump(JMP_JEQ_K, 7, 0, 1), Insn::ret(RET_ALLOW)])
        );
        let mut long = Block::new();
        long.jump_or_exit(JMP_JEQ_K, 7, Exit::WhenTrue);
        for _ in 0..256 {
            long.push(Insn::and(1));
        }
        assert_eq!(long.finish(), None);
    }

    #[test]
    fn verify_refuses_what_the_kernel_would() {
        let ok = [Insn::load(OFFSET_NR), Insn::ret(RET_ALLOW)];
        assert_eq!(verify(&ok), Ok(()));
        let cases: [(&[Insn], usize); 5] = [
            (&[], 0),
            (&[Insn::load(OFFSET_NR)], 0),
            (&[Insn::jump(JMP_JEQ_K, 0, 1, 0), Insn::ret(0)], 0),
            (&[Insn::ja(1), Insn::ret(0)], 0),
            (&[Insn::load(2), Insn::ret(0)], 0),
        ];
        for (program, index) in cases {
            assert_eq!(
                verify(program).map_err(|m| m.index),
                Err(index),
                "{program:?}"
            );
        }
    }

    #[test]
    fn returns_read_as_the_kernel_names_them() {
        assert_eq!(describe_return(RET_ERRNO | 38), "ERRNO(38)");
        assert_eq!(describe_return(RET_ALLOW), "ALLOW");
        assert_eq!(describe_return(RET_KILL_PROCESS), "KILL_PROCESS");
    }
}
