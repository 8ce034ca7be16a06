//! Building images from Containerfiles (chapter 10).
//!
//! A build reads a Containerfile (docker's Dockerfile under its tool-neutral name) and
//! runs it stage by stage: `FROM` picks a base image, `RUN` runs a command in a
//! container on the image so far and keeps its overlay upper as a layer, `COPY` and
//! `ADD` write files as a layer, and the rest (`ENV`, `CMD`, `EXPOSE`, ...) edit the
//! image config. The result is an ordinary image in chapter 9's store.
//!
//! | module | what it does |
//! |---|---|
//! | [`parse`](mod@parse) | the text into [`Instruction`]s, each with its line and text |
//! | [`subst`] | `$VAR` and `${VAR:-default}` in arguments, docker's rules |
//! | [`stages`] | the stage graph, and what a `--target` needs |
//! | [`context`] | the build context, its ignore file, source globs, content hashes |
//! | [`tree`] | the image so far as its overlay shows it, without a mount |
//! | [`layer`] | an overlay upper as an OCI layer; layer tars written reproducibly |
//! | [`copy`] | `COPY` and `ADD` as a layer, by docker's rules |
//! | [`cache`] | each step's cache key, and the layers keys made |
//! | [`engine`] | the build itself: steps, `RUN` containers, the image exported |

pub mod cache;
pub mod context;
pub mod copy;
pub mod engine;
pub mod layer;
pub mod parse;
pub mod stages;
pub mod subst;
pub mod tree;

pub use engine::{BuildError, BuildNetwork, BuildOptions, Built, build};
pub use parse::{
    Command, Containerfile, CopySpec, Instruction, Located, ParseError, ParseErrorKind, parse,
};
