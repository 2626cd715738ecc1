//! cli: the subcommands and the settings they share, parsed with clap.

mod convert;
mod demo;
mod info;
mod precache;
mod progress;
mod purge;
mod serve;
mod sign;
mod tile;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use gigatile::limits::Limits;
use gigatile::pyramid::build::{BaseStorage, BuildOptions};

/// gigatile: deep-zoom tiles and fitted images from very large images, on demand.
#[derive(Debug, Parser)]
#[command(version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print what an image is: format, dimensions, levels, tiling, compression, colour profile.
    Info(info::InfoArgs),
    /// Build a pyramidal tiled BigTIFF (256×256 JPEG tiles) from any supported image.
    Convert(convert::ConvertArgs),
    /// Render one 256×256 tile (LEVEL 0 = full resolution; X, Y count tiles from the top left).
    Tile(tile::TileArgs),
    /// Serve the images of a folder: deep-zoom tiles, metadata, uploads (see --help).
    Serve(serve::ServeArgs),
    /// Drop derived data (built pyramids, cached tiles) of one image or all; it is rebuilt on
    /// demand. Source files are never touched.
    Purge(purge::PurgeArgs),
    /// Make fitted images ahead of time, into the cache or a folder for a mirror (with its
    /// manifest).
    Precache(precache::PrecacheArgs),
    /// Render a procedural demo image as a pyramid and serve it.
    Demo(demo::DemoArgs),
    /// Print an image's signed URL prefix and example URLs (needs URL_SIGNING_KEYS, as serve).
    Sign(sign::SignArgs),
}

/// Limits on sources, checked from their headers before decoding.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Most pixels (width × height) a source may have.
    #[arg(long, env = "MAX_SOURCE_PIXELS", default_value_t = Limits::default().max_pixels)]
    max_source_pixels: u64,
    /// Longest side, in pixels, a source may have.
    #[arg(long, env = "MAX_SOURCE_DIMENSION", default_value_t = Limits::default().max_dimension)]
    max_source_dimension: u32,
    /// Most bytes a source that cannot be streamed (progressive JPEG, interlaced PNG, WebP,
    /// rotated JPEG) may take when decoded whole.
    #[arg(long, env = "MAX_DECODE_BYTES", default_value_t = Limits::default().max_decode_bytes)]
    max_decode_bytes: u64,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_pixels: self.max_source_pixels,
            max_dimension: self.max_source_dimension,
            max_decode_bytes: self.max_decode_bytes,
            // A command does one job at a time; the server's MEMORY_LIMIT is for sharing.
            budget: gigatile::memory::MemoryBudget::unlimited(),
        }
    }
}

/// How the full-resolution level of a built pyramid is stored.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Base {
    /// JPEG, like every other level.
    Jpeg,
    /// Lossless (deflate), so a lossless source can be served losslessly at full resolution.
    Lossless,
}

/// Settings of pyramid builds.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// JPEG quality of built pyramid tiles (1-100).
    #[arg(long, env = "JPEG_QUALITY", default_value_t = 85, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// How the full-resolution level is stored.
    #[arg(long, env = "PYRAMID_BASE", value_enum, default_value_t = Base::Jpeg)]
    base: Base,
    /// Encoder threads (default: one per core).
    #[arg(long, env = "RENDER_THREADS")]
    threads: Option<usize>,
}

impl BuildArgs {
    fn options(&self) -> BuildOptions {
        let defaults = BuildOptions::default();
        BuildOptions {
            quality: self.quality,
            base: match self.base {
                Base::Jpeg => BaseStorage::Jpeg,
                Base::Lossless => BaseStorage::Lossless,
            },
            threads: self.threads.unwrap_or(defaults.threads).max(1),
        }
    }
}

/// Where derived pyramids are kept for commands that need one.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Folder of built pyramids (default: a `gigatile` folder in the user's cache).
    #[arg(long, env = "PYRAMID_DIR")]
    pyramid_dir: Option<PathBuf>,
}

impl StoreArgs {
    fn dir(&self) -> PathBuf {
        self.pyramid_dir.clone().unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_else(std::env::temp_dir)
                .join("gigatile/pyramids")
        })
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Info(args) => info::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Tile(args) => tile::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Purge(args) => purge::run(&args),
        Command::Precache(args) => precache::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Sign(args) => sign::run(&args),
    }
}
