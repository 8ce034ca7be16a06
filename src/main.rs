//! `nutshell`: the runtime the chapters build. For now: `doctor`, the default image, a
//! container from a spec file, `cleanup` and `clean`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use nutshell::cli::{main_with, print_plan};
use nutshell::image::{ImageStore, Source};
use nutshell::launch::{self, ContainerId, HostFacts};
use nutshell::spec::ContainerSpec;

/// Containers in a nutshell: a container runtime built one kernel feature at a time.
#[derive(Parser)]
#[command(version)]
struct Cli {
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
}

fn main() -> std::process::ExitCode {
    main_with("nutshell", || -> anyhow::Result<i32> {
        let cli = Cli::parse();
        let data_dir: PathBuf = nutshell::store::data_dir();
        match cli.command {
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
