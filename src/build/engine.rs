//! Running a Containerfile: stage by stage, step by step, each step's layer from the
//! cache or made anew, and the result added to the store as an ordinary image.
//!
//! ```text
//!  FROM base ──▶ image so far: layers L1..Ln, config
//!  ENV/WORKDIR/USER/CMD/...   the config changes; no layer
//!  RUN cmd ──▶ container: lowers Ln..L1, a fresh upper ──▶ upper packed ──▶ layer Ln+1
//!  COPY src dst ──▶ the files written as a tar directly ──▶ layer Ln+1
//! ```
//!
//! A `RUN` step is a container made by the one pipeline every container goes through
//! (chapter 3's plan and launch): chapter 8's container, on chapter 7's overlay of the
//! image so far, chapter 6's user namespace around it, no network unless asked for.
//! Its upper directory is kept when it ends, and [`pack_upper`] turns it into the next
//! layer. Before any step runs, its cache key is computed ([`cache_key`]); a key seen
//! before names the layer it made, and the step is skipped.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::cache::{BuildCache, CachedLayer, StepInputs, cache_key};
use super::context::Ignore;
use super::copy::{Copy, Sources, context_paths, write_copy_layer};
use super::layer::{EntryMeta, LayerWriter, Owners, pack_upper, remove_mount_stubs};
use super::parse::{Command, Containerfile, CopySpec, Instruction, Located};
use super::stages::StageGraph;
use super::subst::{self, Vars};
use super::tree::LayeredTree;
use crate::image::digest::{Digest, chain_ids};
use crate::image::oci::{self, Descriptor, ImageConfig, Manifest, RunConfig, media};
use crate::image::store::{OciStore, StoreError, StoredImage};
use crate::launch::images::CallerUnpacker;
use crate::launch::{self, ContainerId, HostFacts};
use crate::spec::{self, Program, RootFs, Upper, chapters};

/// The shell that runs shell-form commands unless `SHELL` says otherwise.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The network a `RUN` step gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuildNetwork {
    /// A network namespace of its own with nothing in it (the default).
    #[default]
    None,
    /// Chapter 8's bridge.
    Bridge,
}

/// What to build, and how.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The context directory.
    pub context: PathBuf,
    /// The Containerfile: `None` for `Containerfile`, then `Dockerfile`, in the context.
    pub file: Option<PathBuf>,
    /// The name to give the image.
    pub tag: String,
    /// `--build-arg NAME=VALUE`s.
    pub build_args: BTreeMap<String, String>,
    /// Run every step, cache or not.
    pub no_cache: bool,
    /// The stage to build; the last one if `None`.
    pub target: Option<String>,
    /// The network of `RUN` steps.
    pub network: BuildNetwork,
    /// The time every layer's mtimes are clamped to, and the image's creation time.
    pub epoch: u64,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// No Containerfile.
    #[error("{}: no Containerfile or Dockerfile in the build context (give one with -f)", .0.display())]
    NoFile(PathBuf),
    /// The context is not a directory.
    #[error("{}: the build context is not a directory", .0.display())]
    NoContext(PathBuf),
    /// Reading a file failed.
    #[error("read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The Containerfile does not parse.
    #[error(transparent)]
    Parse(#[from] super::ParseError),
    /// The ignore file does not parse.
    #[error(transparent)]
    Context(#[from] super::context::ContextError),
    /// `--target` names no stage.
    #[error(transparent)]
    Target(#[from] super::stages::UnknownTarget),
    /// A step failed: where, and why.
    #[error("{}:{line}: {instruction}: {reason}", .file.display())]
    Step {
        /// The Containerfile.
        file: PathBuf,
        /// The step's line.
        line: usize,
        /// Its keyword.
        instruction: String,
        /// What went wrong.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One step's outcome, as the build printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The config changed; no layer.
    Config,
    /// Its layer came from the cache.
    Cached,
    /// Its layer was made.
    Built,
}

impl std::fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StepOutcome::Config => "config only",
            StepOutcome::Cached => "CACHED",
            StepOutcome::Built => "ran",
        })
    }
}

/// What a build made.
#[derive(Debug)]
pub struct Built {
    /// The image, in the store under its tag.
    pub image: StoredImage,
    /// Each step run, with its label (`[2/5] RUN ...`) and outcome.
    pub steps: Vec<(String, StepOutcome)>,
}

/// A stage's image so far.
#[derive(Debug, Clone)]
struct Working {
    /// Its layers, bottom first: the blob and its diff id.
    layers: Vec<(Descriptor, Digest)>,
    /// Their unpacked directories, bottom first.
    dirs: Vec<PathBuf>,
    /// Its config.
    config: ImageConfig,
    /// The `ARG`s declared in this stage, with their values.
    args: BTreeMap<String, Option<String>>,
    /// The shell of shell-form commands.
    shell: Vec<String>,
    /// Whether the Cmd is the base image's (an `ENTRYPOINT` then clears it).
    cmd_from_base: bool,
}

impl Working {
    fn chain_id(&self) -> Option<Digest> {
        let diff_ids: Vec<Digest> = self.layers.iter().map(|(_, d)| d.clone()).collect();
        chain_ids(&diff_ids).pop()
    }

    fn run(&mut self) -> &mut RunConfig {
        self.config.config.get_or_insert_with(RunConfig::default)
    }

    fn env(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }

    /// The value of `name` for substitution: ENV first, then ARG.
    fn var(&self, name: &str) -> Option<String> {
        self.env()
            .iter()
            .rev()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
            .or_else(|| self.args.get(name).cloned().flatten())
    }

    fn arg_values(&self) -> BTreeMap<String, String> {
        self.args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect()
    }

    /// What a `RUN` starts with, for the cache key.
    fn run_config(&self) -> String {
        let run = self.config.config.clone().unwrap_or_default();
        serde_json::json!({
            "env": run.env, "user": run.user, "workdir": run.working_dir, "shell": self.shell,
        })
        .to_string()
    }
}

impl Vars for Working {
    fn var(&self, name: &str) -> Option<String> {
        Working::var(self, name)
    }
}

/// The Containerfile a build reads: `file`, or `Containerfile`, then `Dockerfile`.
pub fn find_file(context: &Path, file: Option<&Path>) -> Result<PathBuf, BuildError> {
    if let Some(file) = file {
        return Ok(file.to_path_buf());
    }
    ["Containerfile", "Dockerfile"]
        .iter()
        .map(|name| context.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| BuildError::NoFile(context.to_path_buf()))
}

/// A build in progress.
struct Builder<'a> {
    options: &'a BuildOptions,
    file: PathBuf,
    escape: char,
    store: &'a OciStore,
    facts: &'a HostFacts,
    unpacker: &'a CallerUnpacker,
    cache: BuildCache,
    ignore: Ignore,
    out: &'a mut dyn Write,
    /// The stages built so far, by index.
    done: BTreeMap<usize, Working>,
    /// `--build-arg`s some ARG used.
    consumed: std::collections::BTreeSet<String>,
    steps: Vec<(String, StepOutcome)>,
    step_number: usize,
}

// ANCHOR: build
/// Build `options` into the store, printing each step on `out` as BuildKit's plain
/// progress does.
pub fn build(
    options: &BuildOptions,
    store: &OciStore,
    facts: &HostFacts,
    unpacker: &CallerUnpacker,
    out: &mut dyn Write,
) -> Result<Built, BuildError> {
    if !options.context.is_dir() {
        return Err(BuildError::NoContext(options.context.clone()));
    }
    let file = find_file(&options.context, options.file.as_deref())?;
    let text = std::fs::read_to_string(&file).map_err(|source| BuildError::Read {
        path: file.clone(),
        source,
    })?;
    let containerfile: Containerfile = super::parse(&text, &file)?;
    let graph = StageGraph::new(&containerfile);
    let needed = graph.needed(options.target.as_deref())?;
    let mut builder = Builder {
        options,
        file,
        escape: containerfile.escape,
        store,
        facts,
        unpacker,
        cache: BuildCache::new(&facts.data_dir),
        ignore: Ignore::load(&options.context)?,
        out,
        done: BTreeMap::new(),
        consumed: Default::default(),
        steps: Vec::new(),
        step_number: 0,
    };
    let globals = builder.global_args(&graph)?;
    for &index in &needed {
        let working = builder.stage(&graph, index, &globals)?;
        builder.done.insert(index, working);
    }
    let unused: Vec<&String> = options
        .build_args
        .keys()
        .filter(|k| !builder.consumed.contains(*k))
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        eprintln!(
            "warning: build arguments not used by any ARG: {}",
            names.join(", ")
        );
    }
    let last = *needed.last().unwrap_or(&0);
    let working = builder.done.remove(&last).unwrap_or_else(empty_image);
    let image = builder.export(working)?;
    Ok(Built {
        image,
        steps: builder.steps,
    })
}
// ANCHOR_END: build

fn empty_image() -> Working {
    let platform = oci::Platform::host();
    Working {
        layers: Vec::new(),
        dirs: Vec::new(),
        config: ImageConfig {
            created: None,
            architecture: platform.architecture,
            os: platform.os,
            config: Some(RunConfig::default()),
            rootfs: oci::RootFsConfig {
                kind: "layers".to_string(),
                diff_ids: Vec::new(),
            },
            history: Vec::new(),
        },
        args: BTreeMap::new(),
        shell: DEFAULT_SHELL.map(String::from).to_vec(),
        cmd_from_base: false,
    }
}

impl Builder<'_> {
    fn fail(&self, step: &Located, reason: impl std::fmt::Display) -> BuildError {
        BuildError::Step {
            file: self.file.clone(),
            line: step.line,
            instruction: keyword(step),
            reason: reason.to_string(),
        }
    }

    fn say(&mut self, line: impl std::fmt::Display) {
        // The build's progress is best effort: a closed stdout must not fail it.
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    fn global_args(
        &mut self,
        graph: &StageGraph,
    ) -> Result<BTreeMap<String, Option<String>>, BuildError> {
        let mut globals: BTreeMap<String, Option<String>> = BTreeMap::new();
        for step in &graph.global_args {
            if let Instruction::Arg { name, default } = &step.instruction {
                let value = match self.options.build_args.get(name) {
                    Some(v) => {
                        self.consumed.insert(name.clone());
                        Some(v.clone())
                    }
                    None => default
                        .as_deref()
                        .map(|d| subst::expand(d, '\\', &globals))
                        .transpose()
                        .map_err(|e| self.fail(step, e))?,
                };
                globals.insert(name.clone(), value);
            }
        }
        Ok(globals)
    }

    /// Build stage `index` of `graph`.
    fn stage(
        &mut self,
        graph: &StageGraph,
        index: usize,
        globals: &BTreeMap<String, Option<String>>,
    ) -> Result<Working, BuildError> {
        let stage = &graph.stages[index];
        let total = stage.steps.len() + 1;
        let label = |i: usize| {
            if graph.stages.len() > 1 {
                format!("[{} {i}/{total}]", stage.label())
            } else {
                format!("[{i}/{total}]")
            }
        };
        let base = subst::expand_quoted(&stage.base, self.escape, globals)
            .map_err(|e| self.fail(&stage.from, e))?;
        let started = Instant::now();
        self.begin(&format!("{} FROM {base}", label(1)));
        let mut working = self.base(&stage.from, &base, graph, index)?;
        self.end(started, StepOutcome::Config, &label(1), "FROM");
        for (i, step) in stage.steps.iter().enumerate() {
            let label = label(i + 2);
            let started = Instant::now();
            self.begin(&format!("{label} {}", step.text));
            let outcome = self.step(&mut working, step, globals, graph, index)?;
            if outcome == StepOutcome::Config
                && !matches!(step.instruction, Instruction::Arg { .. })
            {
                // Docker records every instruction in the history; these made no layer.
                working.config.history.push(oci::History {
                    created: Some(crate::image::pack::rfc3339(self.options.epoch)),
                    created_by: Some(format!("{} # nutshell build", step.text)),
                    empty_layer: true,
                    ..Default::default()
                });
            }
            self.end(started, outcome, &label, &keyword(step));
        }
        Ok(working)
    }

    fn begin(&mut self, what: &str) {
        self.step_number += 1;
        let n = self.step_number;
        self.say(format!("#{n} {what}"));
    }

    fn end(&mut self, started: Instant, outcome: StepOutcome, label: &str, keyword: &str) {
        let n = self.step_number;
        match outcome {
            StepOutcome::Cached => self.say(format!("#{n} CACHED")),
            _ => self.say(format!("#{n} DONE {:.1}s", started.elapsed().as_secs_f64())),
        }
        self.steps.push((format!("{label} {keyword}"), outcome));
    }

    /// The stage's starting point: `scratch`, an earlier stage, or an image in the store.
    fn base(
        &mut self,
        from: &Located,
        base: &str,
        graph: &StageGraph,
        index: usize,
    ) -> Result<Working, BuildError> {
        if base == "scratch" {
            return Ok(empty_image());
        }
        if let Some(stage) = graph.find(base, index) {
            let mut working = self
                .done
                .get(&stage)
                .cloned()
                .ok_or_else(|| self.fail(from, format!("stage {base} was not built")))?;
            working.args.clear();
            working.cmd_from_base = true;
            return Ok(working);
        }
        let image = self.store.open(base)?.ok_or_else(|| {
            self.fail(
                from,
                format!("image {base} is not in the store (nutshell build does not pull: `nutshell pull {base}`, or `nutshell images` to see what there is)"),
            )
        })?;
        Ok(from_image(&image))
    }

    // ANCHOR: step
    /// Carry out one instruction on `working`.
    fn step(
        &mut self,
        working: &mut Working,
        step: &Located,
        globals: &BTreeMap<String, Option<String>>,
        graph: &StageGraph,
        index: usize,
    ) -> Result<StepOutcome, BuildError> {
        let escape = self.escape;
        let word = |w: &Working, s: &str| {
            subst::expand_quoted(s, escape, w).map_err(|e| self.fail(step, e))
        };
        let value =
            |w: &Working, s: &str| subst::expand(s, '\\', w).map_err(|e| self.fail(step, e));
        match &step.instruction {
            // The stage graph starts a stage at each FROM, so none is ever a step.
            Instruction::From { .. } => Err(self.fail(step, "FROM inside a stage")),
            Instruction::Arg { name, default } => {
                let value = match self.options.build_args.get(name) {
                    Some(v) => {
                        self.consumed.insert(name.clone());
                        Some(v.clone())
                    }
                    None => match default {
                        Some(d) => Some(value(working, d)?),
                        // `ARG NAME` alone inside a stage takes the global's value.
                        None => globals.get(name).cloned().flatten(),
                    },
                };
                working.args.insert(name.clone(), value);
                Ok(StepOutcome::Config)
            }
            Instruction::Env(pairs) => {
                for (name, raw) in pairs {
                    let v = value(working, raw)?;
                    let env = working.run().env.get_or_insert_with(Vec::new);
                    env.retain(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) != name);
                    env.push(format!("{name}={v}"));
                }
                Ok(StepOutcome::Config)
            }
            Instruction::Label(pairs) => {
                for (name, raw) in pairs {
                    let (k, v) = (value(working, name)?, value(working, raw)?);
                    working
                        .run()
                        .labels
                        .get_or_insert_with(BTreeMap::new)
                        .insert(k, v);
                }
                Ok(StepOutcome::Config)
            }
            Instruction::User(user) => {
                let user = word(working, user)?;
                working.run().user = Some(user);
                Ok(StepOutcome::Config)
            }
            Instruction::Expose(ports) => {
                for port in ports {
                    let port = word(working, port)?;
                    let (number, proto) = port.split_once('/').unwrap_or((&port, "tcp"));
                    let key = format!("{number}/{}", proto.to_ascii_lowercase());
                    working
                        .run()
                        .exposed_ports
                        .get_or_insert_with(BTreeMap::new)
                        .insert(key, serde_json::json!({}));
                }
                Ok(StepOutcome::Config)
            }
            Instruction::StopSignal(signal) => {
                let signal = word(working, signal)?;
                working.run().stop_signal = Some(signal);
                Ok(StepOutcome::Config)
            }
            Instruction::Volume(paths) => {
                for path in paths {
                    let path = word(working, path)?;
                    working
                        .run()
                        .volumes
                        .get_or_insert_with(BTreeMap::new)
                        .insert(path, serde_json::json!({}));
                }
                Ok(StepOutcome::Config)
            }
            Instruction::Shell(shell) => {
                working.shell = shell.clone();
                Ok(StepOutcome::Config)
            }
            Instruction::Cmd(command) => {
                let argv = self.argv(working, command);
                working.run().cmd = Some(argv);
                working.cmd_from_base = false;
                Ok(StepOutcome::Config)
            }
            Instruction::Entrypoint(command) => {
                let argv = self.argv(working, command);
                working.run().entrypoint = Some(argv);
                // Docker: an ENTRYPOINT resets a Cmd that came from the base image.
                if working.cmd_from_base {
                    working.run().cmd = None;
                }
                Ok(StepOutcome::Config)
            }
            Instruction::Workdir(dir) => {
                let dir = word(working, dir)?;
                let current = working
                    .run()
                    .working_dir
                    .clone()
                    .unwrap_or_else(|| "/".into());
                let dir = normalize(&Path::new(&current).join(dir));
                working.run().working_dir = Some(dir.clone());
                let tree = LayeredTree::new(&working.dirs);
                let resolved = tree
                    .resolve(Path::new(&dir), true)
                    .map_err(|e| self.fail(step, e))?;
                if tree
                    .lookup(&resolved)
                    .map_err(|e| self.fail(step, e))?
                    .is_some()
                {
                    return Ok(StepOutcome::Config);
                }
                // A missing working directory is made, as docker makes it, in a layer.
                self.layer_step(working, step, None, |this, w, out| {
                    this.mkdir_layer(w, &resolved, out)
                })
            }
            Instruction::Run(command) => {
                let argv = self.argv(working, command);
                self.layer_step(working, step, None, |this, w, out| {
                    this.run_layer(w, &argv, out)
                })
            }
            Instruction::Copy(spec) | Instruction::Add(spec) => {
                let add = matches!(step.instruction, Instruction::Add(_));
                self.copy_step(working, step, spec, add, graph, index)
            }
        }
    }
    // ANCHOR_END: step

    /// A command's argv: exec form as it is, shell form through the stage's shell.
    fn argv(&self, working: &Working, command: &Command) -> Vec<String> {
        match command {
            Command::Exec(argv) => argv.clone(),
            Command::Shell(text) => {
                let mut argv = working.shell.clone();
                argv.push(text.clone());
                argv
            }
        }
    }

    // ANCHOR: layer_step
    /// A step that makes a layer: from the cache if its key is there (and `--no-cache`
    /// is not given), else by `make`, which writes the layer's tar; then the layer is
    /// unpacked into the store (once) and put on top of `working`.
    fn layer_step(
        &mut self,
        working: &mut Working,
        step: &Located,
        sources: Option<String>,
        make: impl FnOnce(&mut Self, &Working, &mut dyn Write) -> Result<(), String>,
    ) -> Result<StepOutcome, BuildError> {
        let parent = working.chain_id();
        let args = working.arg_values();
        let run_config = working.run_config();
        let key = cache_key(&StepInputs {
            parent: parent.as_ref(),
            run_config: &run_config,
            text: &step.text,
            args: &args,
            sources: sources.as_deref(),
        });
        let cached = (!self.options.no_cache)
            .then(|| self.cache.get(&key, |d| self.store.blob_path(d).is_file()))
            .flatten();
        let (outcome, entry) = match cached {
            Some(entry) => (StepOutcome::Cached, entry),
            None => {
                let mut failure = None;
                let layer = self.store.put_stream(media::OCI_LAYER, |out| {
                    make(self, working, out).map_err(|reason| {
                        failure = Some(reason.clone());
                        io::Error::other(reason)
                    })
                });
                let layer = match (layer, failure) {
                    (_, Some(reason)) => return Err(self.fail(step, reason)),
                    (Err(e), None) => return Err(self.fail(step, e)),
                    (Ok(layer), None) => layer,
                };
                let entry = CachedLayer {
                    diff_id: layer.digest.clone(),
                    layer,
                };
                self.cache
                    .put(&key, &entry)
                    .map_err(|e| self.fail(step, format!("write the build cache: {e}")))?;
                (StepOutcome::Built, entry)
            }
        };
        let mut diff_ids: Vec<Digest> = working.layers.iter().map(|(_, d)| d.clone()).collect();
        diff_ids.push(entry.diff_id.clone());
        let chain = chain_ids(&diff_ids)
            .pop()
            .unwrap_or_else(|| entry.diff_id.clone());
        let dir = self
            .store
            .ensure_layer(&entry.layer, &entry.diff_id, &chain, self.unpacker)?;
        working.layers.push((entry.layer, entry.diff_id));
        working.dirs.push(dir);
        working.config.history.push(oci::History {
            created: Some(crate::image::pack::rfc3339(self.options.epoch)),
            created_by: Some(format!("{} # nutshell build", step.text)),
            ..Default::default()
        });
        Ok(outcome)
    }
    // ANCHOR_END: layer_step

    /// How the files of `working`'s layer directories name their owners.
    fn tree_owners(&self) -> Owners<'_> {
        match self.unpacker.maps() {
            Some(maps) => Owners::Mapped(maps),
            None => Owners::AsTheyAre,
        }
    }

    fn copy_step(
        &mut self,
        working: &mut Working,
        step: &Located,
        spec: &CopySpec,
        add: bool,
        graph: &StageGraph,
        index: usize,
    ) -> Result<StepOutcome, BuildError> {
        let escape = self.escape;
        let word =
            |s: &str| subst::expand_quoted(s, escape, &*working).map_err(|e| self.fail(step, e));
        let sources: Vec<String> = spec
            .sources
            .iter()
            .map(|s| word(s))
            .collect::<Result<_, _>>()?;
        if let Some(url) = sources
            .iter()
            .find(|s| s.starts_with("http://") || s.starts_with("https://"))
        {
            return Err(self.fail(step, super::copy::CopyError::Url(url.clone())));
        }
        let mut dest = word(&spec.dest)?;
        if !dest.starts_with('/') {
            let workdir = working
                .config
                .config
                .as_ref()
                .and_then(|c| c.working_dir.clone())
                .unwrap_or_else(|| "/".into());
            let trailing = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
            dest = normalize(&Path::new(&workdir).join(&dest));
            if trailing && !dest.ends_with('/') {
                dest.push('/');
            }
        }
        let tree = LayeredTree::new(&working.dirs);
        let owner = match &spec.chown {
            None => None,
            Some(chown) => {
                let chown = word(chown)?;
                let user = crate::image::run::resolve_user_in(&tree, "being built", &chown)
                    .map_err(|e| self.fail(step, e))?;
                Some((user.uid, user.gid))
            }
        };
        let mode = match &spec.chmod {
            None => None,
            Some(chmod) => Some(
                u32::from_str_radix(&word(chmod)?, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        self.fail(
                            step,
                            format!("--chmod={chmod}: want an octal mode like 0644"),
                        )
                    })?,
            ),
        };
        // Where the files come from, and what the cache key says about them.
        let from = match &spec.from {
            None => None,
            Some(from) => {
                let from = word(from)?;
                let source = match graph.find(&from, index) {
                    Some(stage) => self
                        .done
                        .get(&stage)
                        .cloned()
                        .ok_or_else(|| self.fail(step, format!("stage {from} was not built")))?,
                    None => from_image(&self.store.open(&from)?.ok_or_else(|| {
                        self.fail(
                            step,
                            format!("--from={from}: no such stage, and no such image in the store"),
                        )
                    })?),
                };
                Some((from, source))
            }
        };
        let copy = Copy {
            instruction: if add { "ADD" } else { "COPY" },
            sources: &sources,
            dest,
            owner,
            mode,
            unpack_archives: add,
        };
        let digest_of_sources = match &from {
            None => {
                let paths = context_paths(&self.options.context, &self.ignore, &sources)
                    .map_err(|e| self.fail(step, e))?;
                super::context::hash_sources(&self.options.context, &paths)
                    .map_err(|e| self.fail(step, e))?
            }
            Some((name, source)) => format!(
                "from {name} {}",
                source
                    .chain_id()
                    .map_or("scratch".to_string(), |c| c.to_string())
            ),
        };
        let inputs = format!(
            "{digest_of_sources} dest={} owner={owner:?} mode={mode:?}",
            copy.dest
        );
        self.layer_step(working, step, Some(inputs), |this, w, out| {
            let image = LayeredTree::new(&w.dirs);
            let from_tree = from.as_ref().map(|(_, s)| LayeredTree::new(&s.dirs));
            let sources = match (&from, &from_tree) {
                (Some((name, _)), Some(tree)) => Sources::Tree { name, tree },
                _ => Sources::Context {
                    dir: &this.options.context,
                    ignore: &this.ignore,
                },
            };
            write_copy_layer(
                &copy,
                &sources,
                &image,
                this.tree_owners(),
                out,
                this.options.epoch,
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
        })
    }

    /// A layer holding directory `path` and those above it that `working` lacks.
    fn mkdir_layer(
        &self,
        working: &Working,
        path: &Path,
        out: &mut dyn Write,
    ) -> Result<(), String> {
        let tree = LayeredTree::new(&working.dirs);
        let mut layer = LayerWriter::new(out, self.options.epoch);
        let mut ancestors: Vec<&Path> = path
            .ancestors()
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        ancestors.reverse();
        for dir in ancestors {
            let meta = match tree.lookup(dir).map_err(|e| e.to_string())? {
                Some(found) if found.meta.is_dir() => {
                    let (uid, gid) = self
                        .tree_owners()
                        .inside(dir, &found.meta)
                        .map_err(|e| e.to_string())?;
                    EntryMeta::of(&found.meta, uid, gid)
                }
                Some(_) => return Err(format!("/{} exists and is not a directory", dir.display())),
                None => EntryMeta {
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    mtime: self.options.epoch as i64,
                },
            };
            layer.dir(dir, &meta).map_err(|e| e.to_string())?;
        }
        layer.finish().map(|_| ()).map_err(|e| e.to_string())
    }

    // ANCHOR: run_layer
    /// Run `argv` in a container on `working` and write its upper as a layer onto `out`.
    fn run_layer(
        &mut self,
        working: &Working,
        argv: &[String],
        out: &mut dyn Write,
    ) -> Result<(), String> {
        if working.dirs.is_empty() {
            return Err("the image is empty (FROM scratch): there is nothing to run".to_string());
        }
        let lowers: Vec<PathBuf> = working.dirs.iter().rev().cloned().collect();
        let privileged = self.facts.caller.privileged;
        let mut spec = chapters::for_chapter(8, &lowers[0], Program::Args(argv.to_vec()));
        spec.root.fs = RootFs::Overlay {
            lowers,
            // Kept when the container is removed: it is the step's result.
            upper: Upper::Managed { keep: true },
            idmap: privileged,
        };
        match self.options.network {
            // Its own network namespace with only `lo` up, as `--network none` gives;
            // for a normal user, whose nutshell cannot enter the namespace to set `lo`
            // up, the namespace as the kernel makes it.
            BuildNetwork::None if privileged => spec.network = Some(spec::Network::Loopback),
            BuildNetwork::None => spec.network = None,
            BuildNetwork::Bridge if !privileged => {
                return Err(
                    "--network bridge needs root; a normal user's RUN steps get no network"
                        .to_string(),
                );
            }
            BuildNetwork::Bridge => {}
        }
        // The environment: the image's, and the build arguments in effect.
        let mut env = working.env();
        if !env.iter().any(|kv| kv.starts_with("PATH=")) {
            env.insert(0, format!("PATH={}", spec::CONTAINER_PATH));
        }
        for (name, value) in working.arg_values() {
            if !env
                .iter()
                .any(|kv| kv.split_once('=').is_some_and(|(k, _)| k == name))
            {
                env.push(format!("{name}={value}"));
            }
        }
        spec.process.env = env;
        let run = working.config.config.clone().unwrap_or_default();
        if let Some(dir) = run.working_dir.filter(|d| !d.is_empty()) {
            spec.process.cwd = PathBuf::from(dir);
        }
        if let Some(user) = run.user.filter(|u| !u.is_empty()) {
            let tree = LayeredTree::new(&working.dirs);
            spec.process.user = crate::image::run::resolve_user_in(&tree, "being built", &user)
                .map_err(|e| e.to_string())?;
        }
        let id = ContainerId::random();
        let plan = launch::plan(&id, &spec, self.facts).map_err(|e| e.to_string())?;
        let upper = plan.overlay.as_ref().and_then(|o| o.upper.clone());
        let container_dir = plan.owned.container_dir.clone();
        let maps = plan.mapping.as_ref().map(|m| m.maps.clone());
        // The kept upper goes with its container directory, whatever happens below.
        let _cleanup = RemoveOnDrop {
            dir: container_dir,
            facts: self.facts,
        };
        let _ = self.out.flush();
        let exit = launch::run_to_end(plan, &spec, self.facts).map_err(|e| e.to_string())?;
        if exit.code() != 0 {
            return Err(format!(
                "{} exited with status {}",
                crate::cli::shell_line(argv),
                exit.code()
            ));
        }
        let upper = upper.ok_or("the container had no upper directory")?;
        let stubs: Vec<PathBuf> = crate::net::name_file_binds(Path::new("/"))
            .into_iter()
            .map(|(_, target)| target)
            .collect();
        remove_mount_stubs(&upper, &stubs, &LayeredTree::new(&working.dirs))
            .map_err(|e| e.to_string())?;
        match &maps {
            // A normal user with subordinate ids: the upper holds files of ids it may
            // not read, so the namespace's root packs it.
            Some(maps) if !privileged && maps.uid_count() > 1 => {
                self.pack_as_mapped_root(maps, &upper, out)
            }
            Some(maps) => pack_upper(&upper, out, self.options.epoch, Owners::Mapped(maps))
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => pack_upper(&upper, out, self.options.epoch, Owners::AsTheyAre)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }
    // ANCHOR_END: run_layer

    /// Pack `upper` in a user namespace with `maps`, as its root, then copy the tar to
    /// `out`.
    fn pack_as_mapped_root(
        &self,
        maps: &crate::userns::IdMaps,
        upper: &Path,
        out: &mut dyn Write,
    ) -> Result<(), String> {
        let scratch = self.store.scratch_dir();
        std::fs::create_dir_all(&scratch)
            .map_err(|e| format!("make {}: {e}", scratch.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("pack-")
            .tempdir_in(&scratch)
            .map_err(|e| format!("make a scratch directory in {}: {e}", scratch.display()))?;
        let output = dir.path().join("layer.tar");
        let builtin = crate::workloads::Builtin::PackUpper {
            upper: upper.to_path_buf(),
            output: output.clone(),
            epoch: self.options.epoch,
        };
        let exit =
            launch::run_as_mapped_root(maps, builtin, self.facts).map_err(|e| e.to_string())?;
        if exit.code() != 0 {
            return Err(format!("the packing helper {exit} (its error is above)"));
        }
        let mut tar =
            std::fs::File::open(&output).map_err(|e| format!("open {}: {e}", output.display()))?;
        io::copy(&mut tar, out).map_err(|e| format!("copy {}: {e}", output.display()))?;
        Ok(())
    }

    // ANCHOR: export
    /// Write `working`'s config and manifest and name the image.
    fn export(&mut self, mut working: Working) -> Result<StoredImage, BuildError> {
        self.step_number += 1;
        let n = self.step_number;
        self.say(format!("#{n} exporting to image"));
        let created = crate::image::pack::rfc3339(self.options.epoch);
        working.config.created = Some(created);
        working.config.rootfs.diff_ids = working.layers.iter().map(|(_, d)| d.clone()).collect();
        let config = serde_json::to_vec(&working.config).map_err(|e| StoreError::Io {
            operation: "encode the config of",
            path: self.file.clone(),
            source: io::Error::other(e),
        })?;
        let config = self.store.put_bytes(media::OCI_CONFIG, &config)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            config: config.clone(),
            layers: working.layers.iter().map(|(l, _)| l.clone()).collect(),
            annotations: BTreeMap::new(),
        };
        let manifest = serde_json::to_vec(&manifest).map_err(|e| StoreError::Io {
            operation: "encode the manifest of",
            path: self.file.clone(),
            source: io::Error::other(e),
        })?;
        let image = self
            .store
            .add_local(&self.options.tag, &manifest, self.unpacker)?;
        self.say(format!("#{n} writing config {}", config.digest));
        self.say(format!("#{n} writing manifest {}", image.manifest_digest));
        self.say(format!("#{n} naming to {}", image.name));
        self.say(format!("#{n} DONE"));
        Ok(image)
    }
    // ANCHOR_END: export
}

/// The stage that starts from `image`.
fn from_image(image: &StoredImage) -> Working {
    let mut working = empty_image();
    working.layers = image
        .manifest
        .layers
        .iter()
        .cloned()
        .zip(image.config.rootfs.diff_ids.iter().cloned())
        .collect();
    working.dirs = image.layer_dirs.clone();
    working.config = image.config.clone();
    working.cmd_from_base = true;
    working
}

/// Removes a RUN container's directory (its kept upper) when dropped.
struct RemoveOnDrop<'a> {
    dir: Option<PathBuf>,
    facts: &'a HostFacts,
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take()
            && dir.exists()
            && let Err(e) = crate::launch::images::remove_layer_trees(vec![dir.clone()], self.facts)
        {
            eprintln!("warning: remove {}: {e}", dir.display());
        }
    }
}

/// `path` with `.` and `..` resolved lexically, as an absolute path string.
fn normalize(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

fn keyword(step: &Located) -> String {
    step.text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdirs_normalize() {
        assert_eq!(normalize(Path::new("/app/./x/../y")), "/app/y");
        assert_eq!(normalize(Path::new("/")), "/");
        assert_eq!(normalize(Path::new("/../..")), "/");
    }

    #[test]
    fn env_wins_over_args_in_substitution() {
        let mut working = empty_image();
        working.args.insert("V".into(), Some("arg".into()));
        assert_eq!(working.var("V").as_deref(), Some("arg"));
        working.run().env = Some(vec!["V=env".into()]);
        assert_eq!(working.var("V").as_deref(), Some("env"));
        assert_eq!(working.var("VV"), None);
    }
}
