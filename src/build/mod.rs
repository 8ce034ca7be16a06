//! Building images from Containerfiles (chapter 10).
//!
//! A build reads a Containerfile (docker's Dockerfile under its tool-neutral name),
//! turns it into instructions, and runs them stage by stage: `FROM` picks a base image,
//! `RUN` runs a command in a container on it and keeps the changes as a layer, `COPY`
//! adds files as a layer, and the rest (`ENV`, `CMD`, `EXPOSE`, ...) edit the image
//! config. This first piece is the pure part: [`parse`](mod@parse) reads the text into
//! [`Instruction`]s, each with its line and its text as written, which the build cache
//! will hash. Variable substitution and execution come later in the chapter.

pub mod cache;
pub mod context;
pub mod layer;
pub mod parse;
pub mod stages;
pub mod subst;
pub mod tree;

pub use parse::{
    Command, Containerfile, CopySpec, Instruction, Located, ParseError, ParseErrorKind, parse,
};
