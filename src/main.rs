//! `nutshell`: the runtime the chapters build. For now: `doctor` and the default image.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use nutshell::cli::main_with;
use nutshell::image::{ImageStore, Source};

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
    main_with("nutshell", || {
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
        }
        Ok(0)
    })
}
