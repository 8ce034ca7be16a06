//! Chapter 9: real images. Import (or pull) an OCI image, verify every digest, unpack
//! each layer once into the store, and run the image with its own config: the chapter 8
//! container, on chapter 7's overlay of the image's layers.
//!
//! The book walks through this file: book/src/ch09-images.md.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use nutshell::cli::{
    ContainerArgs, LimitArgs, NamespaceArgs, NetworkArgs, UserArgs, main_with, print_plan,
    shell_line,
};
use nutshell::image::digest::chain_ids;
use nutshell::image::progress::Reporter;
use nutshell::image::registry::RegistryOptions;
use nutshell::image::store::{OciStore, StoredImage};
use nutshell::image::{DEFAULT_IMAGE, ImageStore, Source, archive, demo, distribution, run};
use nutshell::launch::images::CallerUnpacker;
use nutshell::launch::{self, HostFacts};
use nutshell::spec::Program;

/// Chapter 9: run an OCI image. Without flags, the tour: it makes a two-layer image
/// over the default image as an OCI layout (as a registry would hand it over), imports
/// it (every blob and layer verified by digest, each layer unpacked once into the store),
/// shows its digests and chain ids, and runs it with its config's Entrypoint, Cmd, Env,
/// WorkingDir and User. Then try `--import DIR|FILE` (an OCI layout or archive, or a
/// `docker save` archive), `--pull REF`, `--image NAME` (one in the store), `--plan`,
/// `--break-it` (a malicious layer is refused), `-- CMD` (replaces the image's Cmd), and
/// chapter 8's `--network` and `-p`.
#[derive(Parser)]
#[command(name = "ch09-images")]
struct Args {
    #[command(flatten)]
    container: ContainerArgs,
    #[command(flatten)]
    namespaces: NamespaceArgs,
    #[command(flatten)]
    user: UserArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    network: NetworkArgs,
    /// Import this OCI layout, OCI archive or docker archive, then run it
    #[arg(long, value_name = "PATH", conflicts_with_all = ["pull", "image"])]
    import: Option<PathBuf>,
    /// Pull this image from a registry, then run it
    #[arg(long, value_name = "REF", conflicts_with = "image")]
    pull: Option<String>,
    /// Run this image of the store
    #[arg(long, value_name = "NAME")]
    image: Option<String>,
    /// For --pull: verify TLS (false also allows plain HTTP) [default: verify, except
    /// on localhost]
    #[arg(long, value_name = "BOOL")]
    tls_verify: Option<bool>,
    /// Break it: import a layer that plants a symlink to a host path and writes through
    /// it, and see it refused
    #[arg(long, conflicts_with_all = ["import", "pull", "image", "command"])]
    break_it: bool,
    /// The command to run, in place of the image's Cmd
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

const BIN: &str = "ch09-images";

fn main() -> std::process::ExitCode {
    main_with(BIN, || -> anyhow::Result<i32> {
        let args = Args::parse();
        let privileged = nix::unistd::geteuid().is_root();
        args.namespaces.validate()?;
        args.user.validate()?;
        args.limits.validate(privileged)?;
        args.network.network(privileged)?;
        args.container.id()?;
        let facts = HostFacts::detect();
        let store = OciStore::new(&facts.data_dir);
        if args.break_it {
            return break_it(&store, &facts);
        }
        // ANCHOR: get_image
        let unpacker = CallerUnpacker::new(&facts)?;
        let mut progress = Reporter::stderr();
        let image = if let Some(path) = &args.import {
            println!("ch09-images: import {}", path.display());
            let mut images = archive::import(&store, path, None, &unpacker, &mut progress)?;
            images.remove(0)
        } else if let Some(reference) = &args.pull {
            println!("ch09-images: pull {reference}");
            let options = RegistryOptions {
                tls_verify: args.tls_verify,
                ..RegistryOptions::default()
            };
            distribution::pull(&store, reference, &options, &unpacker, &mut progress)?
        } else if let Some(name) = &args.image {
            store.get(name)?
        } else {
            tour_image(&store, &facts, &unpacker, &mut progress)?
        };
        // ANCHOR_END: get_image
        show(&image);
        // ANCHOR: spec
        let mut spec = run::container_spec(&image, &args.command, privileged)?;
        args.namespaces.apply(&mut spec)?;
        args.user.apply(&mut spec)?;
        args.limits.apply(&mut spec, privileged)?;
        args.network.apply(&mut spec, privileged)?;
        // ANCHOR_END: spec
        let id = args.container.id()?;
        let plan = launch::plan(&id, &spec, &facts)?;
        if args.container.plan {
            print_plan(&plan)?;
            return Ok(0);
        }
        if let Program::Args(argv) = &spec.process.program {
            println!(
                "\nrun {} as uid {} in {}:\n$ {}",
                image.name,
                spec.process.user.uid,
                spec.process.cwd.display(),
                shell_line(argv)
            );
        }
        nutshell::init::block_handled_signals().context("block the signals to forward")?;
        let exit = launch::run_to_end(plan, &spec, &facts)?;
        Ok(exit.code())
    })
}

/// The tour's image: made as an OCI layout over the default image, then imported.
fn tour_image(
    store: &OciStore,
    facts: &HostFacts,
    unpacker: &CallerUnpacker,
    progress: &mut Reporter,
) -> anyhow::Result<StoredImage> {
    ImageStore::new(&facts.data_dir).ensure_default(Source::Auto, std::path::Path::new("/"))?;
    let base = store.get(DEFAULT_IMAGE)?;
    let scratch = tempfile::Builder::new()
        .prefix("ch09-layout-")
        .tempdir_in(&facts.data_dir)
        .context("make a scratch directory")?;
    let layout = scratch.path().join("layout");
    let blobs = store.blob_path(&base.manifest_digest);
    let blobs = blobs.parent().context("the store's blob directory")?;
    demo::tour_layout(&layout, &base, blobs).context("make the tour's OCI layout")?;
    println!("ch09-images: made a two-layer OCI layout over the default image; importing it");
    let mut images = archive::import(store, &layout, None, unpacker, progress)?;
    Ok(images.remove(0))
}

// ANCHOR: show
/// The image as the store holds it: its digests, and each layer's three names.
fn show(image: &StoredImage) {
    println!("\nimage {}", image.name);
    println!("  manifest  {}", image.manifest_digest);
    println!("  config    {}", image.config_digest);
    let chains = chain_ids(&image.config.rootfs.diff_ids);
    for (i, layer) in image.manifest.layers.iter().enumerate() {
        println!("  layer {} ({})", i + 1, layer.media_type);
        println!("    blob      {}", layer.digest);
        println!("    diff id   {}", image.config.rootfs.diff_ids[i]);
        println!("    chain id  {}", chains[i]);
        println!("    unpacked  {}", image.layer_dirs[i].display());
    }
}
// ANCHOR_END: show

// ANCHOR: break_it
/// A layer that plants `etc/sneaky -> <host dir>` and writes `etc/sneaky/pwned`.
fn break_it(store: &OciStore, facts: &HostFacts) -> anyhow::Result<i32> {
    let scratch = tempfile::Builder::new()
        .prefix("ch09-break-it-")
        .tempdir_in(&facts.data_dir)
        .context("make a scratch directory")?;
    let target = scratch.path().join("host-dir");
    std::fs::create_dir(&target).context("make the target directory")?;
    let layout = scratch.path().join("layout");
    demo::hostile_layout(&layout, &target).context("make the hostile layout")?;
    println!(
        "ch09-images --break-it: a layer with etc/sneaky -> {}",
        target.display()
    );
    println!("and then etc/sneaky/pwned, a write through that symlink\n");
    let unpacker = CallerUnpacker::new(facts)?;
    let layers = || {
        std::fs::read_dir(facts.data_dir.join("layers"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = layers();
    match archive::import(store, &layout, None, &unpacker, &mut Reporter::stderr()) {
        Ok(_) => {
            println!("imported: the layer was NOT refused");
            Ok(1)
        }
        Err(err) => {
            println!("refused: {}", nutshell::cli::one_line(&err));
            let written = target.join("pwned").exists();
            println!("\n{}/pwned exists: {written}", target.display());
            println!("layers left in the store by it: {}", layers() - before);
            Ok(if written { 1 } else { 0 })
        }
    }
}
// ANCHOR_END: break_it
