//! render::assemble: the pixels of a rectangle of one stored image, from only the tiles it
//! touches, read one at a time on the calling (render) thread and pasted at once, so a render
//! holds its output and one tile, never every tile it touches.

use crate::error::Result;
use crate::pyramid::levels::StoredLevel;
use crate::raster::{Raster, Rect};

/// Reads `rect` (inside the stored image) from the tiles it touches.
pub fn read_region(stored: &StoredLevel, rect: Rect) -> Result<Raster> {
    let (tw, th) = stored.image.tile_size();
    let cols = rect.x / tw..=((rect.right() - 1) / u64::from(tw)) as u32;
    let rows = rect.y / th..=((rect.bottom() - 1) / u64::from(th)) as u32;
    let coords: Vec<(u32, u32)> = rows
        .flat_map(|r| cols.clone().map(move |c| (c, r)))
        .collect();
    if let [(col, row)] = coords[..] {
        // One tile: crop it, no copy into a second buffer.
        let tile = stored.image.read_tile(col, row)?;
        let tile_rect = stored.tile_rect(col, row);
        return Ok(tile.crop(Rect::new(
            rect.x - tile_rect.x,
            rect.y - tile_rect.y,
            rect.width,
            rect.height,
        )));
    }
    let layout = stored.image.layout();
    let mut out = Raster::filled(rect.width, rect.height, layout, &vec![0; layout.channels()]);
    for (col, row) in coords {
        let tile_rect = stored.tile_rect(col, row);
        let Some(part) = tile_rect.intersect(&rect) else {
            continue;
        };
        let tile = stored.image.read_tile(col, row)?;
        let piece = tile.crop(Rect::new(
            part.x - tile_rect.x,
            part.y - tile_rect.y,
            part.width,
            part.height,
        ));
        out.paste(&piece, part.x - rect.x, part.y - rect.y);
    }
    Ok(out)
}
