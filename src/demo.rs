//! demo: a procedurally rendered scene of any size, as rows, so a newcomer sees deep zoom
//! without having a large image at hand.
//!
//! The scene is the Mandelbrot set with smooth colouring: detail at every zoom level, which
//! makes the point of a tile pyramid. Rows are computed band by band, in parallel, and never
//! held whole, so a multi-gigapixel demo costs time, not memory.

use rayon::prelude::*;

use crate::error::Result;
use crate::raster::PixelLayout;
use crate::source::RowReader;

/// The demo scene as a row source.
#[derive(Debug, Clone)]
pub struct DemoScene {
    width: u32,
    height: u32,
    next_row: u32,
}

/// The part of the complex plane shown: centre and width.
const CENTRE: (f64, f64) = (-0.75, 0.0);
const SPAN_X: f64 = 3.2;
const MAX_ITERATIONS: u32 = 256;

impl DemoScene {
    /// A scene of `width`×`height` pixels.
    pub fn new(width: u32, height: u32) -> DemoScene {
        DemoScene {
            width,
            height,
            next_row: 0,
        }
    }

    fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let scale = SPAN_X / f64::from(self.width);
        let cr = CENTRE.0 + (f64::from(x) - f64::from(self.width) / 2.0) * scale;
        let ci = CENTRE.1 + (f64::from(y) - f64::from(self.height) / 2.0) * scale;
        // Skip the main cardioid and the period-2 bulb, where most interior points lie.
        let q = (cr - 0.25) * (cr - 0.25) + ci * ci;
        if q * (q + (cr - 0.25)) <= 0.25 * ci * ci || (cr + 1.0) * (cr + 1.0) + ci * ci <= 0.0625 {
            return [8, 10, 24];
        }
        let (mut zr, mut zi) = (0.0f64, 0.0f64);
        for n in 0..MAX_ITERATIONS {
            let (zr2, zi2) = (zr * zr, zi * zi);
            if zr2 + zi2 > 256.0 {
                let smooth =
                    f64::from(n) + 1.0 - ((zr2 + zi2).ln() / 2.0).ln() / std::f64::consts::LN_2;
                return palette(smooth * 0.035);
            }
            zi = 2.0 * zr * zi + ci;
            zr = zr2 - zi2 + cr;
        }
        [8, 10, 24]
    }
}

/// A cosine palette: deep blue through gold to white.
fn palette(t: f64) -> [u8; 3] {
    let channel = |phase: f64| {
        let v = 0.5 + 0.5 * (std::f64::consts::TAU * (t + phase)).cos();
        (v * 255.0) as u8
    };
    [channel(0.0), channel(0.1), channel(0.2)]
}

impl RowReader for DemoScene {
    fn width(&self) -> u32 {
        self.width
    }

    fn height(&self) -> u32 {
        self.height
    }

    fn layout(&self) -> PixelLayout {
        PixelLayout::Rgb
    }

    fn read_rows(&mut self, buf: &mut [u8]) -> Result<u32> {
        let stride = self.width as usize * 3;
        let rows = ((buf.len() / stride) as u32).min(self.height - self.next_row);
        let first = self.next_row;
        buf[..rows as usize * stride]
            .par_chunks_mut(stride)
            .enumerate()
            .for_each(|(i, row)| {
                for (x, px) in row.chunks_exact_mut(3).enumerate() {
                    px.copy_from_slice(&self.pixel(x as u32, first + i as u32));
                }
            });
        self.next_row += rows;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_every_row_once_and_has_detail() {
        let mut scene = DemoScene::new(64, 48);
        let mut buf = vec![0; 64 * 3 * 20];
        let mut total = 0;
        let mut colours = std::collections::HashSet::new();
        loop {
            let n = scene.read_rows(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            colours.extend(buf[..n as usize * 64 * 3].chunks(3).map(|p| p.to_vec()));
        }
        assert_eq!(total, 48);
        assert!(colours.len() > 50, "only {} colours", colours.len());
    }
}
