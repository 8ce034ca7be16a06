//! Chapter 10: building an image. A Containerfile, run step by step: each RUN in a
//! container on the image so far, its overlay upper packed into the next layer; COPY
//! written as a layer directly; everything else an edit of the config. Then the image
//! runs, and a second build finds every step in the cache.
//!
//! The book walks through this file: book/src/ch10-build.md.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use nutshell::build::engine::{BuildNetwork, BuildOptions, Built, StepOutcome, build};
use nutshell::build::layer::describe_layer;
use nutshell::cli::{main_with, parse_build_args, shell_line};
use nutshell::image::run;
use nutshell::image::store::OciStore;
use nutshell::image::{ImageStore, Source};
use nutshell::launch::images::CallerUnpacker;
use nutshell::launch::{self, HostFacts};
use nutshell::spec::Network;

/// Chapter 10: build an image from a Containerfile. Without flags, the tour: it builds
/// examples/webapp (a page and a CGI script for busybox httpd), shows each step's
/// layer entry by entry, runs the image and fetches its page over the container's own
/// loopback, then builds again to show every step CACHED. Then try `--context DIR`
/// (your own), `-f FILE`, `--build-arg NAME=VALUE`, `--target STAGE`, `--no-cache`, and
/// `--break-it` (edit one copied file: the steps before it stay cached, the rest run).
#[derive(Parser)]
#[command(name = "ch10-build")]
struct Args {
    /// The build context [default: examples/webapp]
    #[arg(long, value_name = "DIR")]
    context: Option<PathBuf>,
    /// The Containerfile [default: CONTEXT/Containerfile, then Dockerfile]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// The image's name
    #[arg(
        short = 't',
        long = "tag",
        value_name = "NAME",
        default_value = "webapp"
    )]
    tag: String,
    /// A build argument, NAME=VALUE; repeatable
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    build_args: Vec<String>,
    /// Build this stage and what it needs
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
    /// Run every step, whatever the cache holds
    #[arg(long)]
    no_cache: bool,
    /// Break it: build, change one copied file, build again, and see which steps run
    #[arg(long, conflicts_with_all = ["context", "file", "target"])]
    break_it: bool,
}

const BIN: &str = "ch10-build";

fn main() -> std::process::ExitCode {
    main_with(BIN, || -> anyhow::Result<i32> {
        let args = Args::parse();
        let facts = HostFacts::detect();
        ImageStore::new(&facts.data_dir).ensure_default(Source::Auto, Path::new("/"))?;
        let store = OciStore::new(&facts.data_dir);
        let unpacker = CallerUnpacker::new(&facts)?;
        let webapp = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/webapp");
        let options = BuildOptions {
            context: args.context.clone().unwrap_or(webapp),
            file: args.file.clone(),
            tag: args.tag.clone(),
            build_args: parse_build_args(&args.build_args)?,
            no_cache: args.no_cache,
            target: args.target.clone(),
            network: BuildNetwork::None,
            epoch: nutshell::image::pack::source_date_epoch(),
        };
        if args.break_it {
            return break_it(options, &store, &facts, &unpacker);
        }
        // ANCHOR: tour
        println!("ch10-build: build {}\n", options.context.display());
        let built = build(&options, &store, &facts, &unpacker, &mut std::io::stdout())?;
        show_layers(&built, &store)?;
        if args.context.is_none() {
            serve_and_fetch(&built, &facts)?;
        }
        println!("\nch10-build: the same build again");
        let again = build(&options, &store, &facts, &unpacker, &mut std::io::stdout())?;
        summarize(&again);
        // ANCHOR_END: tour
        Ok(0)
    })
}

// ANCHOR: show_layers
/// Each layer of the image the build made, entry by entry, with the step that made it.
fn show_layers(built: &Built, store: &OciStore) -> anyhow::Result<()> {
    let image = &built.image;
    let made_by: Vec<String> = image
        .config
        .history
        .iter()
        .filter(|h| !h.empty_layer)
        .map(|h| h.created_by.clone().unwrap_or_default())
        .collect();
    println!(
        "\nimage {}: {} layers",
        image.name,
        image.manifest.layers.len()
    );
    for (i, layer) in image.manifest.layers.iter().enumerate() {
        let by = made_by.get(i).map_or("(the base image)", |s| s.as_str());
        println!("\nlayer {} {}  {by}", i + 1, layer.digest);
        let blob = std::fs::File::open(store.blob_path(&layer.digest))
            .with_context(|| format!("open layer {}", layer.digest))?;
        let lines = describe_layer(blob).context("read the layer")?;
        for line in lines.iter().take(12) {
            println!("  {line}");
        }
        if lines.len() > 12 {
            println!("  ... {} more entries", lines.len() - 12);
        }
    }
    Ok(())
}
// ANCHOR_END: show_layers

// ANCHOR: serve_and_fetch
/// Run the image as chapter 9 runs one, with a command that starts its httpd and
/// fetches the page and the CGI script over the container's own loopback.
fn serve_and_fetch(built: &Built, facts: &HostFacts) -> anyhow::Result<()> {
    let image = &built.image;
    let fetch = "httpd -p 127.0.0.1:8080 -h /www -u www:www && \
                 wget -qO- http://127.0.0.1:8080/ | grep '<h1>' && \
                 wget -qO- http://127.0.0.1:8080/cgi-bin/hello && cat /www/built.txt";
    let command = ["/bin/sh", "-c", fetch].map(String::from);
    let mut spec = run::container_spec(image, &command, facts.caller.privileged)?;
    spec.network = Some(Network::Loopback);
    println!("\nrun {}:\n$ {}", image.name, shell_line(&command));
    let id = launch::ContainerId::random();
    let plan = launch::plan(&id, &spec, facts)?;
    let exit = launch::run_to_end(plan, &spec, facts)?;
    anyhow::ensure!(
        exit.code() == 0,
        "the image's httpd did not serve: exit {}",
        exit.code()
    );
    Ok(())
}
// ANCHOR_END: serve_and_fetch

/// One line per step: cached or run.
fn summarize(built: &Built) {
    let count = |outcome: StepOutcome| built.steps.iter().filter(|(_, o)| *o == outcome).count();
    println!(
        "\n{} layer steps cached, {} run; the image is the same: {}",
        count(StepOutcome::Cached),
        count(StepOutcome::Built),
        built.image.manifest_digest
    );
}

// ANCHOR: break_it
/// Build a copy of the webapp context, change index.html, build again.
fn break_it(
    mut options: BuildOptions,
    store: &OciStore,
    facts: &HostFacts,
    unpacker: &CallerUnpacker,
) -> anyhow::Result<i32> {
    let scratch = tempfile::Builder::new()
        .prefix("ch10-break-it-")
        .tempdir_in(&facts.data_dir)
        .context("make a scratch directory")?;
    let context = scratch.path().join("webapp");
    copy_dir(&options.context, &context)?;
    options.context = context.clone();
    println!("ch10-build --break-it: build a copy of examples/webapp\n");
    build(&options, store, facts, unpacker, &mut std::io::stdout())?;
    let page = context.join("index.html");
    let text = std::fs::read_to_string(&page).context("read index.html")?;
    std::fs::write(&page, text.replace("Hello", "Hello again")).context("write index.html")?;
    println!("\nch10-build --break-it: index.html changed; build again\n");
    let again = build(&options, store, facts, unpacker, &mut std::io::stdout())?;
    println!();
    for (step, outcome) in &again.steps {
        if *outcome != StepOutcome::Config {
            println!("{step:<24} {outcome}");
        }
    }
    println!(
        "\nThe cache key of each step includes its parent's chain id: once the COPY of\n\
         index.html makes a new layer, every step after it has a new parent and runs."
    );
    Ok(0)
}
// ANCHOR_END: break_it

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("make {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}
