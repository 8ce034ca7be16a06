//! `nutshell`: the runtime the chapters build: `doctor`, `build`, images (the default one,
//! import and save, pull and push, the store's commands), a container from a spec file,
//! runc's commands for OCI bundles (`create`, `start`, `state`, `kill`, `delete` ...),
//! `cleanup` and `clean`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use nutshell::cli::{main_with, print_plan};
use nutshell::image::archive::{self, SaveFormat};
use nutshell::image::distribution;
use nutshell::image::listing::{self, ImageInfo};
use nutshell::image::progress::Reporter;
use nutshell::image::registry::RegistryOptions;
use nutshell::image::store::OciStore;
use nutshell::image::{ImageStore, Source};
use nutshell::launch::images::{CallerUnpacker, container_using, remove_layer_trees};
use nutshell::launch::{self, ContainerId, HostFacts};
use nutshell::spec::ContainerSpec;

/// Containers in a nutshell: a container runtime built one kernel feature at a time.
#[derive(Parser)]
#[command(
    version,
    after_help = "docker's commands: run IMAGE [CMD...], ps, exec, logs, stop, kill, rm, inspect, port and top \
                  (`nutshell run --help`, `nutshell logs --help` ...). run, ps, exec and kill are runc's \
                  above when given a --bundle, a container of `nutshell create`, or runc's global flags."
)]
struct Cli {
    #[command(flatten)]
    global: nutshell::oci::cli::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Say what this machine can do, and which chapters can run here. Run this first.
    Doctor,
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// List the images in the store.
    Images {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Build an image from a Containerfile: each RUN in a container, its changes a layer.
    Build(nutshell::cli::BuildArgs),
    /// Pull an image from a registry (the OCI distribution API).
    Pull {
        /// The image: [REGISTRY/]REPOSITORY[:TAG|@DIGEST], such as localhost:5000/webapp
        reference: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Push an image of the store to a registry.
    Push {
        /// The image in the store.
        name: String,
        /// Where to: REGISTRY/REPOSITORY[:TAG]
        reference: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Give an image another name.
    Tag {
        /// The image.
        source: String,
        /// The new name, NAME[:TAG].
        target: String,
    },
    /// Remove image names; refused while a container runs on the image. The blobs and
    /// layers stay until `nutshell image prune`.
    Rmi {
        /// The images.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Run the container a spec file describes (a ContainerSpec as JSON), in the
    /// foreground, and remove it when it ends.
    RunSpec {
        /// The spec file.
        spec: PathBuf,
        /// The container's name [default: random]
        #[arg(long)]
        name: Option<String>,
        /// Print the launch plan and exit
        #[arg(long)]
        plan: bool,
    },
    #[command(flatten)]
    Runtime(nutshell::oci::cli::RuntimeCommand),
    /// Remove what containers whose nutshell was killed left behind: their processes,
    /// cgroups, directories and state. Running containers are not touched.
    Cleanup,
    /// Remove everything nutshell keeps for you: images, containers' directories and
    /// state (yours only: a normal user's data dir, root's /var/lib/nutshell and
    /// /run/nutshell). Refused while a container runs.
    Clean,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build the default image (offline, from this machine) if it is not built yet.
    Default {
        /// Where its programs come from.
        #[arg(long, value_enum, default_value = "auto")]
        from: Source,
        /// Build it again even if it exists.
        #[arg(long)]
        rebuild: bool,
    },
    /// Print the directory the default image is (or will be) in.
    Path,
    /// Import an OCI layout directory, an OCI archive or a docker archive (docker save).
    Import {
        /// The layout directory or archive file.
        path: PathBuf,
        /// Name the image NAME[:TAG] instead of by the archive's own tags.
        #[arg(long)]
        name: Option<String>,
    },
    /// Write an image as an OCI layout directory, or (for a path ending in .tar) an
    /// archive that podman load, skopeo and docker load read.
    Save {
        /// The image.
        name: String,
        /// The directory or .tar file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Show an image's manifest digest, config and layers, as JSON.
    Inspect {
        /// The image.
        name: String,
    },
    /// List the images (as `nutshell images`).
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove the blobs and layers that no image name reaches and no container uses.
    Prune,
}

/// How to reach a registry.
#[derive(clap::Args)]
struct RegistryArgs {
    /// Verify the registry's TLS certificate; false also allows plain HTTP. Default:
    /// verify, except for a registry on localhost
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    tls_verify: Option<bool>,
    /// A docker-style auth file with credentials [default: $REGISTRY_AUTH_FILE,
    /// $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json]
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
}

impl RegistryArgs {
    fn options(&self) -> RegistryOptions {
        RegistryOptions {
            tls_verify: self.tls_verify,
            auth_file: self.authfile.clone(),
            ..RegistryOptions::default()
        }
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let records = nutshell::containers::record::Records::new(&nutshell::store::data_dir());
    if nutshell::containers::cli::is_docker_style(&args, &records) {
        return docker_main();
    }
    main_with("nutshell", || -> anyhow::Result<i32> {
        let cli = Cli::parse();
        let data_dir: PathBuf = nutshell::store::data_dir();
        match cli.command {
            Command::Runtime(command) => return nutshell::oci::cli::run(&cli.global, &command),
            Command::Doctor => {
                let report = nutshell::doctor::examine(Path::new("/proc"), &data_dir);
                print!("{}", nutshell::doctor::render(&report));
            }
            Command::Image(ImageCommand::Default { from, rebuild }) => {
                let store = ImageStore::new(&data_dir);
                let (image, built) = if rebuild {
                    (store.build_default(from, Path::new("/"), true)?, true)
                } else {
                    store.ensure_default(from, Path::new("/"))?
                };
                let verb = if built { "built" } else { "already built" };
                println!(
                    "default image {verb}: {} ({} programs from {}, {} libraries)",
                    image.rootfs.display(),
                    image.manifest.programs.len(),
                    image.manifest.source,
                    image.manifest.libraries.len()
                );
            }
            Command::Image(ImageCommand::Path) => {
                println!(
                    "{}",
                    ImageStore::new(&data_dir).default_image_dir().display()
                );
            }
            Command::Images { json } | Command::Image(ImageCommand::Ls { json }) => {
                let images = OciStore::new(&data_dir).list()?;
                if json {
                    let infos: Vec<ImageInfo> = images.iter().map(ImageInfo::of).collect();
                    println!("{}", serde_json::to_string_pretty(&infos)?);
                } else {
                    print!("{}", listing::table(&images));
                }
            }
            Command::Image(ImageCommand::Import { path, name }) => {
                let facts = HostFacts::detect();
                let store = OciStore::new(&facts.data_dir);
                let unpacker = CallerUnpacker::new(&facts)?;
                let images = archive::import(
                    &store,
                    &path,
                    name.as_deref(),
                    &unpacker,
                    &mut Reporter::stderr(),
                )?;
                for image in images {
                    println!("imported {} ({})", image.name, image.manifest_digest);
                }
            }
            Command::Image(ImageCommand::Save { name, output }) => {
                let store = OciStore::new(&data_dir);
                let image = store.get(&name)?;
                let format = SaveFormat::for_path(&output);
                archive::save(&store, &image, &output, format)?;
                let kind = match format {
                    SaveFormat::Layout => "an OCI layout",
                    SaveFormat::Archive => "an OCI (and docker) archive",
                };
                println!("saved {} to {} as {kind}", image.name, output.display());
            }
            Command::Image(ImageCommand::Inspect { name }) => {
                let image = OciStore::new(&data_dir).get(&name)?;
                println!("{}", serde_json::to_string_pretty(&ImageInfo::of(&image))?);
            }
            Command::Image(ImageCommand::Prune) => {
                let facts = HostFacts::detect();
                let removed = OciStore::new(&facts.data_dir)
                    .prune(&|layers| container_using(layers, &facts), &|path| {
                        remove_layer_trees(vec![path.to_path_buf()], &facts)
                    })?;
                if removed.is_empty() {
                    println!("nothing to prune");
                }
                for path in removed {
                    println!("removed {}", path.display());
                }
            }
            Command::Build(args) => {
                let options = args.options()?;
                let facts = HostFacts::detect();
                // `FROM default` works on a fresh machine too.
                ImageStore::new(&facts.data_dir).ensure_default(Source::Auto, Path::new("/"))?;
                let store = OciStore::new(&facts.data_dir);
                let unpacker = CallerUnpacker::new(&facts)?;
                nutshell::build::engine::build(
                    &options,
                    &store,
                    &facts,
                    &unpacker,
                    &mut std::io::stdout(),
                )?;
            }
            Command::Pull {
                reference,
                registry,
            } => {
                let facts = HostFacts::detect();
                let store = OciStore::new(&facts.data_dir);
                let unpacker = CallerUnpacker::new(&facts)?;
                let image = distribution::pull(
                    &store,
                    &reference,
                    &registry.options(),
                    &unpacker,
                    &mut Reporter::stderr(),
                )?;
                println!("pulled {} ({})", image.name, image.manifest_digest);
            }
            Command::Push {
                name,
                reference,
                registry,
            } => {
                let store = OciStore::new(&data_dir);
                let digest = distribution::push(
                    &store,
                    &name,
                    &reference,
                    &registry.options(),
                    &mut Reporter::stderr(),
                )?;
                println!("pushed {name} to {reference} ({digest})");
            }
            Command::Tag { source, target } => {
                let image = OciStore::new(&data_dir).tag(&source, &target)?;
                println!("tagged {} ({})", image.name, image.manifest_digest);
            }
            Command::Rmi { names } => {
                let facts = HostFacts::detect();
                let store = OciStore::new(&facts.data_dir);
                for name in names {
                    let image = store.untag(&name, &|layers| container_using(layers, &facts))?;
                    println!("untagged {}", image.name);
                }
            }
            Command::RunSpec { spec, name, plan } => {
                let text = std::fs::read_to_string(&spec)
                    .with_context(|| format!("read {}", spec.display()))?;
                let parsed: ContainerSpec = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a container spec", spec.display()))?;
                let id = match name {
                    Some(name) => ContainerId::parse(&name)?,
                    None => ContainerId::random(),
                };
                let facts = HostFacts::detect();
                let launch_plan = launch::plan(&id, &parsed, &facts)?;
                if plan {
                    print_plan(&launch_plan)?;
                    return Ok(0);
                }
                let exit = launch::run_to_end(launch_plan, &parsed, &facts)?;
                return Ok(exit.code());
            }
            Command::Clean => {
                let facts = HostFacts::detect();
                let removed = launch::remove_everything(&facts)?;
                if removed.is_empty() {
                    println!("nothing to remove in {}", facts.data_dir.display());
                }
                for dir in removed {
                    println!("removed {}", dir.display());
                }
            }
            Command::Cleanup => {
                let facts = HostFacts::detect();
                let removed = launch::sweep_stale(&facts.state_root, &facts)?;
                // Records whose monitor was killed now say so (`ps -a`).
                let records = nutshell::containers::record::Records::new(&facts.data_dir);
                nutshell::containers::commands::all(&records, &facts);
                if removed.is_empty() {
                    println!("nothing to clean up in {}", facts.state_root.display());
                }
                for line in removed {
                    println!("removed {line}");
                }
            }
        }
        Ok(0)
    })
}

/// docker's commands (`run IMAGE`, `ps`, `logs` ...): errors as docker prints them, `Error:
/// ...` on one line, with its exit statuses: 125 when `run` itself fails, 1 otherwise.
fn docker_main() -> std::process::ExitCode {
    use nutshell::containers::cli::{DockerCli, DockerCommand, dispatch};
    main_with("nutshell", || -> anyhow::Result<i32> {
        let cli = DockerCli::parse();
        let is_run = matches!(cli.command, DockerCommand::Run(_));
        let facts = HostFacts::detect();
        match dispatch(cli.command, &facts) {
            Ok(code) => Ok(code),
            Err(err) => {
                eprintln!("Error: {}", nutshell::cli::one_line(&err));
                let launch_status = nutshell::cli::exit_status(&err);
                Ok(match (is_run, launch_status) {
                    (_, status) if status != 1 => i32::from(status),
                    (true, _) => 125,
                    (false, _) => 1,
                })
            }
        }
    })
}
