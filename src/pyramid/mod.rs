//! pyramid: multi-resolution tiled images, read from sources that are pyramids already or
//! built once into a standard pyramidal tiled BigTIFF.
//!
//! - `tiff_writer`: writes a tiled BigTIFF, tile by tile in any order, IFDs at the end.
//! - `build`: one streaming pass over full-resolution rows into every level, in bounded memory.
//! - `levels`: which stored image serves each level of the canonical geometry.
//! - `from_tiff`: a TIFF's tiled images as a pyramid, and whether it is usable as it is.
//! - `store`: derived pyramids on disk, one per source version, preview first.

pub mod build;
pub mod from_tiff;
pub mod levels;
pub mod store;
pub mod tiff_writer;
