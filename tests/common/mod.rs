//! Shared test helpers: photo-like synthetic images, PSNR, temporary folders, external tools.
#![allow(dead_code)]

pub mod browser;
pub mod process;
pub mod server;

use gigatile::raster::{PixelLayout, Raster};

/// A deterministic photo-like image: smooth gradients, fine texture, hard edges and noise, so
/// that codecs and resamplers meet what photographs give them (not flat fills).
pub fn photo(width: u32, height: u32, layout: PixelLayout) -> Raster {
    let mut data = Vec::with_capacity(width as usize * height as usize * layout.channels());
    let mut seed: u32 = 0x9E37_79B9;
    for y in 0..height {
        for x in 0..width {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let noise = (seed % 9) as f32 - 4.0;
            let fx = x as f32 / width.max(1) as f32;
            let fy = y as f32 / height.max(1) as f32;
            let wave = ((x as f32 * 0.07).sin() * (y as f32 * 0.05).cos()) * 40.0;
            let disc = {
                let dx = fx - 0.6;
                let dy = fy - 0.4;
                if dx * dx + dy * dy < 0.04 {
                    60.0
                } else {
                    0.0
                }
            };
            let r = (40.0 + 170.0 * fx + wave + disc + noise).clamp(0.0, 255.0) as u8;
            let g = (30.0 + 150.0 * fy - wave * 0.5 + noise).clamp(0.0, 255.0) as u8;
            let b = (200.0 - 120.0 * fx * fy + disc * 0.5 + noise).clamp(0.0, 255.0) as u8;
            let a = (255.0 - 200.0 * fx * fy).clamp(0.0, 255.0) as u8;
            let gray = gigatile::raster::luma([r, g, b]);
            match layout {
                PixelLayout::Gray => data.push(gray),
                PixelLayout::GrayAlpha => data.extend_from_slice(&[gray, a]),
                PixelLayout::Rgb => data.extend_from_slice(&[r, g, b]),
                PixelLayout::Rgba => data.extend_from_slice(&[r, g, b, a]),
            }
        }
    }
    Raster::from_data(width, height, layout, data).unwrap()
}

/// Peak signal-to-noise ratio in dB between two rasters of one size and layout (infinite when
/// identical).
pub fn psnr(a: &Raster, b: &Raster) -> f64 {
    assert_eq!((a.width, a.height), (b.width, b.height), "sizes differ");
    assert_eq!(a.layout, b.layout, "layouts differ");
    let mse = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum::<f64>()
        / a.data.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// Asserts a PSNR of at least `min_db`, printing the figure on failure.
pub fn assert_close(a: &Raster, b: &Raster, min_db: f64, what: &str) {
    let db = psnr(a, b);
    assert!(db >= min_db, "{what}: PSNR {db:.1} dB < {min_db} dB");
}

/// A fresh temporary folder under the target dir, removed at drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "gigatile-test-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, file: &str) -> std::path::PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs an external tool (vips, tiffcp, convert...) and panics with its output if it fails;
/// the tools are installed by `.ci/run`.
pub fn run(cmd: &str, args: &[&str]) {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} could not start ({e}); run .ci/run's install step"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes a raster as an 8-bit PNG (an easy input for external tools).
pub fn write_png(raster: &Raster, path: &std::path::Path) {
    std::fs::write(path, gigatile::codec::png::encode(raster).unwrap()).unwrap();
}

/// The reference for pyramid level `k` of a full-resolution raster.
pub fn reference_level(full: &Raster, k: u32) -> Raster {
    (0..k).fold(full.clone(), |r, _| r.halve())
}

/// Decodes a PNG (8-bit) into a raster.
pub fn decode_png(bytes: &[u8]) -> Raster {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let layout = match info.color_type {
        png::ColorType::Grayscale => PixelLayout::Gray,
        png::ColorType::GrayscaleAlpha => PixelLayout::GrayAlpha,
        png::ColorType::Rgb => PixelLayout::Rgb,
        _ => PixelLayout::Rgba,
    };
    Raster::from_data(info.width, info.height, layout, buf).unwrap()
}

/// An ICC profile with Adobe RGB (1998) primaries and gamma 2.2, for colour conversion tests.
pub fn adobe_rgb_icc() -> Vec<u8> {
    use lcms2::{CIExyY, CIExyYTRIPLE, Profile, ToneCurve};
    let xy = |x, y| CIExyY { x, y, Y: 1.0 };
    let primaries = CIExyYTRIPLE {
        Red: xy(0.64, 0.33),
        Green: xy(0.21, 0.71),
        Blue: xy(0.15, 0.06),
    };
    let gamma = ToneCurve::new(2.2);
    Profile::new_rgb(&xy(0.3127, 0.3290), &primaries, &[&gamma, &gamma, &gamma])
        .unwrap()
        .icc()
        .unwrap()
}
