//! pyramid: multi-resolution tiled images, read from sources that are pyramids already or
//! built once into a standard pyramidal tiled BigTIFF.
//!
//! - `tiff_writer`: writes a tiled BigTIFF, tile by tile in any order, IFDs at the end.
//! - `build`: one streaming pass over full-resolution rows into every level, in bounded memory.
//! - `levels`: which stored image serves each level of the canonical geometry.

pub mod build;
pub mod levels;
pub mod tiff_writer;
