//! Renderer tests over in-memory pyramids.

use std::sync::Arc;

use super::*;
use crate::geometry::Geometry;
use crate::memory::MemoryBudget;
use crate::pyramid::levels::tests::{mem_pyramid, MemTiled};
use crate::pyramid::levels::TiledImage;

/// Renders with a budget that never refuses (the budget has tests of its own).
fn draw(pyramid: &Pyramid, req: &TileRequest) -> Result<Rendered> {
    render(pyramid, req, &MemoryBudget::unlimited())
}

fn gradient(width: u32, height: u32, layout: PixelLayout) -> Raster {
    let c = layout.channels();
    let mut data = Vec::with_capacity(width as usize * height as usize * c);
    for y in 0..height {
        for x in 0..width {
            let px = [
                (x / 4) as u8,
                (y / 3) as u8,
                ((x + y) / 8) as u8,
                (255 - x / 8) as u8,
            ];
            match layout {
                PixelLayout::Gray => data.push(px[0]),
                PixelLayout::GrayAlpha => data.extend_from_slice(&[px[0], px[3]]),
                PixelLayout::Rgb => data.extend_from_slice(&px[..3]),
                PixelLayout::Rgba => data.extend_from_slice(&px),
            }
        }
    }
    Raster::from_data(width, height, layout, data).unwrap()
}

fn request(level: u32, region: Rect, out: (u32, u32), format: OutputFormat) -> TileRequest {
    TileRequest {
        level: Level(level),
        region,
        out_size: out,
        canvas: None,
        encode: EncodeOptions {
            format,
            quality: Some(90),
        },
        background: [255, 255, 255],
        transform: Transform::NONE,
    }
}

fn decode_png(bytes: &[u8]) -> Raster {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let layout = match info.color_type {
        png::ColorType::Grayscale => PixelLayout::Gray,
        png::ColorType::GrayscaleAlpha => PixelLayout::GrayAlpha,
        png::ColorType::Rgb => PixelLayout::Rgb,
        _ => PixelLayout::Rgba,
    };
    buf.truncate(info.buffer_size());
    Raster::from_data(info.width, info.height, layout, buf).unwrap()
}

fn max_diff(a: &Raster, b: &Raster) -> u8 {
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn a_whole_stored_jpeg_tile_passes_through() {
    let p = mem_pyramid(gradient(1000, 700, PixelLayout::Rgb), 256, true);
    let req = request(
        0,
        Rect::new(256, 256, 256, 256),
        (256, 256),
        OutputFormat::Jpeg,
    );
    let out = draw(&p, &req).unwrap();
    assert!(out.passthrough);
    let stored = p.find_level(Level(0)).unwrap().image.read_jpeg_tile(1, 1);
    assert_eq!(out.bytes, stored.unwrap().unwrap());
}

#[test]
fn edge_tiles_and_other_formats_are_rendered() {
    let p = mem_pyramid(gradient(1000, 700, PixelLayout::Rgb), 256, true);
    let edge = request(
        0,
        Rect::new(768, 512, 232, 188),
        (232, 188),
        OutputFormat::Jpeg,
    );
    assert!(!draw(&p, &edge).unwrap().passthrough);
    let png = request(0, Rect::new(0, 0, 256, 256), (256, 256), OutputFormat::Png);
    assert!(!draw(&p, &png).unwrap().passthrough);
}

#[test]
fn a_region_across_tiles_at_full_size_is_exact() {
    let base = gradient(1000, 700, PixelLayout::Rgb);
    let p = mem_pyramid(base.clone(), 256, false);
    let region = Rect::new(200, 230, 300, 100);
    let req = request(0, region, (300, 100), OutputFormat::Png);
    let out = decode_png(&draw(&p, &req).unwrap().bytes);
    assert_eq!(out, base.crop(region));
}

#[test]
fn a_coarse_level_is_made_from_a_finer_one_when_missing() {
    let base = gradient(1000, 700, PixelLayout::Rgb);
    let full = mem_pyramid(base.clone(), 256, false);
    let only_base = Pyramid::new(
        Geometry::new(1000, 700),
        vec![full.find_level(Level(0)).unwrap().image.clone()],
    );
    let region = Rect::new(0, 0, 250, 175);
    let req = request(2, region, (250, 175), OutputFormat::Png);
    let from_base = decode_png(&draw(&only_base, &req).unwrap().bytes);
    let stored = full
        .find_level(Level(2))
        .unwrap()
        .image
        .read_tile(0, 0)
        .unwrap();
    assert!(max_diff(&from_base, &stored.crop(region)) <= 3);
}

#[test]
fn scaling_a_region_keeps_its_content() {
    let base = gradient(1000, 700, PixelLayout::Rgb);
    let p = mem_pyramid(base.clone(), 256, false);
    // 400×400 at level 0 scaled to 100×100: served from level 2 (4× smaller).
    let req = request(
        0,
        Rect::new(400, 200, 400, 400),
        (100, 100),
        OutputFormat::Png,
    );
    let out = decode_png(&draw(&p, &req).unwrap().bytes);
    let level2 = p
        .find_level(Level(2))
        .unwrap()
        .image
        .read_tile(0, 0)
        .unwrap();
    assert!(max_diff(&out, &level2.crop(Rect::new(100, 50, 100, 100))) <= 3);
}

#[test]
fn canvas_padding_is_transparent_in_png_and_background_in_jpeg() {
    let p = mem_pyramid(gradient(300, 200, PixelLayout::Rgb), 256, false);
    let mut req = request(1, Rect::new(0, 0, 150, 100), (150, 100), OutputFormat::Png);
    req.canvas = Some((256, 256));
    let png = decode_png(&draw(&p, &req).unwrap().bytes);
    assert_eq!(
        (png.width, png.height, png.layout),
        (256, 256, PixelLayout::Rgba)
    );
    assert_eq!(&png.row(255)[..4], &[255, 255, 255, 0]);
    assert_eq!(png.row(0)[3], 255);
    req.encode.format = OutputFormat::Jpeg;
    req.background = [0, 0, 0];
    let jpeg = crate::codec::jpeg::decode(&draw(&p, &req).unwrap().bytes).unwrap();
    assert_eq!((jpeg.width, jpeg.height), (256, 256));
    assert!(jpeg.row(255).iter().all(|&v| v < 8));
}

#[test]
fn alpha_is_kept_in_png_and_flattened_in_jpeg() {
    let p = mem_pyramid(gradient(300, 200, PixelLayout::Rgba), 256, false);
    let req = request(1, Rect::new(0, 0, 150, 100), (150, 100), OutputFormat::Png);
    let png = decode_png(&draw(&p, &req).unwrap().bytes);
    assert_eq!(png.layout, PixelLayout::Rgba);
    let jpeg = request(1, Rect::new(0, 0, 150, 100), (150, 100), OutputFormat::Jpeg);
    let decoded = crate::codec::jpeg::decode(&draw(&p, &jpeg).unwrap().bytes).unwrap();
    assert_eq!(decoded.layout, PixelLayout::Rgb);
}

#[test]
fn webp_output_decodes() {
    let p = mem_pyramid(gradient(300, 200, PixelLayout::Gray), 256, false);
    let req = request(0, Rect::new(0, 0, 256, 200), (256, 200), OutputFormat::Webp);
    let out = crate::codec::webp::decode(&draw(&p, &req).unwrap().bytes).unwrap();
    assert_eq!((out.width, out.height), (256, 200));
}

#[test]
fn requests_outside_the_picture_are_refused() {
    let p = mem_pyramid(gradient(300, 200, PixelLayout::Rgb), 256, false);
    let outside = request(0, Rect::new(200, 0, 101, 10), (10, 10), OutputFormat::Png);
    assert!(matches!(draw(&p, &outside), Err(Error::OutOfRange(_))));
    let empty = request(0, Rect::new(0, 0, 10, 10), (0, 10), OutputFormat::Png);
    assert!(matches!(draw(&p, &empty), Err(Error::OutOfRange(_))));
    let huge = request(0, Rect::new(0, 0, 10, 10), (20000, 10), OutputFormat::Png);
    assert!(matches!(draw(&p, &huge), Err(Error::TooLarge(_))));
}

#[test]
fn upscaling_beyond_full_resolution_works() {
    let tiled: Arc<dyn TiledImage> = Arc::new(MemTiled {
        raster: gradient(100, 100, PixelLayout::Rgb),
        tile: (64, 64),
        jpeg_tiles: false,
    });
    let p = Pyramid::new(Geometry::new(100, 100), vec![tiled]);
    let req = request(0, Rect::new(10, 10, 50, 50), (200, 200), OutputFormat::Png);
    let out = decode_png(&draw(&p, &req).unwrap().bytes);
    assert_eq!((out.width, out.height), (200, 200));
}
