//! source::tiff::image: one image of a TIFF file, described once from its IFD: size, chunk
//! grid, compression, how its samples are stored, its colour profile, and whether gigatile can
//! read it (and if not, why).
//!
//! It turns tags into a plain description and decides nothing about pyramids (roles are given
//! by `mod`) and touches no pixels (that is `decode`).

use std::sync::Arc;

use super::ifd::{tag, Ifd, IfdReader};
use crate::color::{ColorTransform, InputModel};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::raster::PixelLayout;

/// Largest decoded size of one tile or strip; beyond it a chunk is refused rather than decoded.
pub const MAX_CHUNK_BYTES: u64 = 256 << 20;

/// How the image's pixels are cut into independently stored chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunking {
    /// Rectangular tiles; those at the right and bottom edges extend past the image.
    Tiles { width: u32, height: u32 },
    /// Full-width bands of rows; the last may be shorter.
    Strips { rows_per_strip: u32 },
}

/// How each chunk is compressed (tag 259).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Lzw,
    /// Adobe deflate (8) or the old code 32946.
    Deflate,
    PackBits,
    /// New-style JPEG (7), each chunk a JPEG stream, tables shared through JPEGTables.
    Jpeg,
    Zstd,
    /// A code gigatile does not decode.
    Other(u16),
}

impl Compression {
    /// The scheme for a tag 259 value.
    pub const fn from_code(code: u16) -> Compression {
        match code {
            1 => Compression::None,
            5 => Compression::Lzw,
            7 => Compression::Jpeg,
            8 | 32946 => Compression::Deflate,
            32773 => Compression::PackBits,
            50000 => Compression::Zstd,
            other => Compression::Other(other),
        }
    }

    /// A human name for `gigatile info` and error messages.
    pub fn name(&self) -> String {
        match self {
            Compression::None => "none".into(),
            Compression::Lzw => "LZW".into(),
            Compression::Deflate => "deflate".into(),
            Compression::PackBits => "PackBits".into(),
            Compression::Jpeg => "JPEG".into(),
            Compression::Zstd => "zstd".into(),
            Compression::Other(6) => "old-style JPEG (6)".into(),
            Compression::Other(34712) => "JPEG 2000 (34712)".into(),
            Compression::Other(50001) => "WebP (50001)".into(),
            Compression::Other(code) => format!("compression {code}"),
        }
    }
}

/// What an image is for, within its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRole {
    /// The full-resolution image.
    Primary,
    /// A reduced-resolution copy of the primary (a pyramid level).
    Reduced,
    /// Anything else (label, macro, thumbnail, mask): ignored for pyramids.
    Auxiliary,
}

/// Photometric interpretation (tag 262).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Photometric {
    MinIsWhite,
    MinIsBlack,
    Rgb,
    Palette,
    Cmyk,
    YCbCr,
    Other(u16),
}

impl Photometric {
    fn from_code(code: u16) -> Photometric {
        match code {
            0 => Photometric::MinIsWhite,
            1 => Photometric::MinIsBlack,
            2 => Photometric::Rgb,
            3 => Photometric::Palette,
            5 => Photometric::Cmyk,
            6 => Photometric::YCbCr,
            other => Photometric::Other(other),
        }
    }

    /// A human name.
    pub fn name(self) -> String {
        match self {
            Photometric::MinIsWhite => "min-is-white grey".into(),
            Photometric::MinIsBlack => "min-is-black grey".into(),
            Photometric::Rgb => "RGB".into(),
            Photometric::Palette => "palette".into(),
            Photometric::Cmyk => "CMYK".into(),
            Photometric::YCbCr => "YCbCr".into(),
            Photometric::Other(code) => format!("photometric interpretation {code}"),
        }
    }

    /// Colour samples per pixel before extra samples.
    const fn colour_samples(self) -> u16 {
        match self {
            Photometric::MinIsWhite | Photometric::MinIsBlack | Photometric::Palette => 1,
            Photometric::Cmyk => 4,
            _ => 3,
        }
    }
}

/// What an extra sample after the colour samples holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpha {
    None,
    /// Unassociated (ExtraSamples 2), or unspecified (0) and taken as such.
    Straight,
    /// Associated (ExtraSamples 1): colour is premultiplied and gets divided back.
    Premultiplied,
}

/// How the samples of one pixel are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Samples {
    pub bits: u16,
    pub per_pixel: u16,
    pub photometric: Photometric,
    pub alpha: Alpha,
    /// Horizontal differencing (Predictor 2).
    pub predictor: bool,
    /// Palette images: 8-bit RGB triples, one per index.
    pub palette: Option<Vec<u8>>,
}

impl Samples {
    /// Bytes of one stored row of `width` pixels.
    pub fn row_bytes(&self, width: u32) -> u64 {
        (u64::from(width) * u64::from(self.per_pixel) * u64::from(self.bits)).div_ceil(8)
    }
}

/// One image (IFD) of a TIFF file.
#[derive(Debug)]
pub struct TiffImage {
    pub width: u32,
    pub height: u32,
    /// Layout of decoded pixels.
    pub layout: PixelLayout,
    pub chunking: Chunking,
    pub compression: Compression,
    pub role: ImageRole,
    /// The embedded ICC profile, if any.
    pub icc: Option<Arc<Vec<u8>>>,
    pub(super) samples: Samples,
    pub(super) offsets: Vec<u64>,
    pub(super) byte_counts: Vec<u64>,
    pub(super) jpeg_tables: Option<Vec<u8>>,
    /// Conversion of decoded samples to sRGB, when the profile is not sRGB.
    pub(super) transform: Option<ColorTransform>,
    /// Why the image cannot be read, if it cannot.
    pub(super) unreadable: Option<Error>,
    pub(super) main_chain: bool,
    /// NewSubfileType bit 0 (or SubfileType 2): marked as a reduced-resolution copy.
    pub(super) marked_reduced: bool,
    /// A transparency mask, or a label or macro image by its description.
    pub(super) marked_auxiliary: bool,
}

impl TiffImage {
    /// Stored size of one chunk (edge tiles included; the last strip may hold fewer rows).
    pub fn chunk_size(&self) -> (u32, u32) {
        match self.chunking {
            Chunking::Tiles { width, height } => (width, height),
            Chunking::Strips { rows_per_strip } => (self.width, rows_per_strip.min(self.height)),
        }
    }

    /// Columns and rows of chunks.
    pub fn grid(&self) -> (u32, u32) {
        let (w, h) = self.chunk_size();
        (self.width.div_ceil(w), self.height.div_ceil(h))
    }

    /// Why the image cannot be read, as a fresh error.
    pub(super) fn check_readable(&self) -> Result<()> {
        match &self.unreadable {
            None => Ok(()),
            Some(Error::Unsupported(m)) => Err(Error::unsupported(m.clone())),
            Some(Error::TooLarge(m)) => Err(Error::too_large(m.clone())),
            Some(other) => Err(Error::corrupt(other.to_string())),
        }
    }
}

fn to_u32(value: u64, what: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::corrupt(format!("{what} {value} is out of range")))
}

fn to_u16(value: u64, what: &str) -> Result<u16> {
    u16::try_from(value).map_err(|_| Error::corrupt(format!("{what} {value} is out of range")))
}

/// Describes the image of one IFD. Structural faults (a missing size, chunk offsets that do not
/// match the grid) are errors; features gigatile does not read, and limits, are recorded in
/// `unreadable` so that a file's other images stay usable.
pub fn parse_image(
    reader: &IfdReader<'_>,
    ifd: &Ifd,
    main_chain: bool,
    limits: &Limits,
) -> Result<TiffImage> {
    let width = to_u32(reader.get_first(ifd, tag::IMAGE_WIDTH)?, "ImageWidth")?;
    let height = to_u32(reader.get_first(ifd, tag::IMAGE_LENGTH)?, "ImageLength")?;
    if width == 0 || height == 0 {
        return Err(Error::corrupt(format!("image of {width}×{height} pixels")));
    }
    let compression = Compression::from_code(to_u16(
        reader.first_or(ifd, tag::COMPRESSION, 1)?,
        "Compression",
    )?);
    let samples = parse_samples(reader, ifd)?;
    let layout = output_layout(&samples);
    let chunking = parse_chunking(reader, ifd, height)?;
    let (offsets, byte_counts) = parse_chunk_table(reader, ifd, &chunking)?;
    let icc = reader.find_bytes(ifd, tag::ICC_PROFILE)?.map(Arc::new);
    let transform = icc
        .as_deref()
        .and_then(|icc| ColorTransform::to_srgb(icc, input_model(&samples, layout)));
    let subfile = reader.first_or(ifd, tag::NEW_SUBFILE_TYPE, 0)?;
    let old_subfile = reader.first_or(ifd, tag::SUBFILE_TYPE, 1)?;
    let mut image = TiffImage {
        width,
        height,
        layout,
        chunking,
        compression,
        role: ImageRole::Auxiliary,
        icc,
        jpeg_tables: reader.find_bytes(ifd, tag::JPEG_TABLES)?,
        transform,
        unreadable: None,
        main_chain,
        marked_reduced: subfile & 1 != 0 || old_subfile == 2,
        marked_auxiliary: subfile & 4 != 0 || is_label_or_macro(reader, ifd),
        samples,
        offsets,
        byte_counts,
    };
    let declared = Declared {
        planar: reader.first_or(ifd, tag::PLANAR_CONFIGURATION, 1)?,
        sample_format: reader.first_or(ifd, tag::SAMPLE_FORMAT, 1)?,
        ink_set: reader.first_or(ifd, tag::INK_SET, 1)?,
        predictor: reader.first_or(ifd, tag::PREDICTOR, 1)?,
        mixed_bits: mixed_bits(reader, ifd)?,
    };
    image.unreadable = limits
        .check_dimensions(width, height)
        .and_then(|()| check_supported(&image, &declared))
        .err();
    Ok(image)
}

/// Whether the ImageDescription names a whole-slide label or macro image (Aperio style).
fn is_label_or_macro(reader: &IfdReader<'_>, ifd: &Ifd) -> bool {
    let Ok(Some(text)) = reader.find_bytes(ifd, tag::IMAGE_DESCRIPTION) else {
        return false;
    };
    let text = String::from_utf8_lossy(&text[..text.len().min(256)]).to_ascii_lowercase();
    text.starts_with("label") || text.starts_with("macro") || text.contains("\nlabel ")
}

fn parse_samples(reader: &IfdReader<'_>, ifd: &Ifd) -> Result<Samples> {
    let per_pixel = to_u16(
        reader.first_or(ifd, tag::SAMPLES_PER_PIXEL, 1)?,
        "SamplesPerPixel",
    )?;
    let bits = to_u16(
        reader.first_or(ifd, tag::BITS_PER_SAMPLE, 1)?,
        "BitsPerSample",
    )?;
    let photometric = match reader.find_unsigned(ifd, tag::PHOTOMETRIC)? {
        Some(v) => Photometric::from_code(to_u16(*v.first().unwrap_or(&1), "Photometric")?),
        // Not allowed by the spec, but old writers omit it: guess from the sample count.
        None if per_pixel >= 3 => Photometric::Rgb,
        None => Photometric::MinIsBlack,
    };
    let extra = reader.first_or(ifd, tag::EXTRA_SAMPLES, 0)?;
    let alpha = match photometric {
        Photometric::Palette | Photometric::Cmyk => Alpha::None,
        _ if per_pixel <= photometric.colour_samples() => Alpha::None,
        _ if extra == 1 => Alpha::Premultiplied,
        _ => Alpha::Straight,
    };
    let palette = if photometric == Photometric::Palette && bits == 8 {
        reader
            .find_unsigned(ifd, tag::COLOR_MAP)?
            .map(|map| parse_palette(&map))
            .transpose()?
    } else {
        None
    };
    Ok(Samples {
        bits,
        per_pixel,
        photometric,
        alpha,
        predictor: reader.first_or(ifd, tag::PREDICTOR, 1)? == 2,
        palette,
    })
}

/// Whether BitsPerSample differs between samples.
fn mixed_bits(reader: &IfdReader<'_>, ifd: &Ifd) -> Result<bool> {
    let bits = reader
        .find_unsigned(ifd, tag::BITS_PER_SAMPLE)?
        .unwrap_or_default();
    Ok(bits.windows(2).any(|pair| pair[0] != pair[1]))
}

/// A ColorMap of 3 × 256 16-bit values (all reds, then greens, then blues) as RGB triples.
fn parse_palette(map: &[u64]) -> Result<Vec<u8>> {
    if map.len() != 3 * 256 {
        return Err(Error::corrupt(format!(
            "ColorMap has {} values where an 8-bit palette needs 768",
            map.len()
        )));
    }
    let mut rgb = vec![0u8; 768];
    for (i, triple) in rgb.chunks_exact_mut(3).enumerate() {
        for (c, v) in triple.iter_mut().enumerate() {
            *v = (map[c * 256 + i] >> 8) as u8;
        }
    }
    Ok(rgb)
}

fn output_layout(samples: &Samples) -> PixelLayout {
    let base = match samples.photometric {
        Photometric::MinIsWhite | Photometric::MinIsBlack => PixelLayout::Gray,
        _ => PixelLayout::Rgb,
    };
    if samples.alpha == Alpha::None {
        base
    } else {
        base.with_alpha()
    }
}

fn input_model(samples: &Samples, layout: PixelLayout) -> InputModel {
    if samples.photometric == Photometric::Cmyk {
        InputModel::Cmyk { inverted: false }
    } else {
        InputModel::Layout(layout)
    }
}

fn parse_chunking(reader: &IfdReader<'_>, ifd: &Ifd, height: u32) -> Result<Chunking> {
    let chunking = match reader.find_unsigned(ifd, tag::TILE_WIDTH)? {
        Some(_) => Chunking::Tiles {
            width: to_u32(reader.get_first(ifd, tag::TILE_WIDTH)?, "TileWidth")?,
            height: to_u32(reader.get_first(ifd, tag::TILE_LENGTH)?, "TileLength")?,
        },
        None => Chunking::Strips {
            rows_per_strip: reader
                .first_or(ifd, tag::ROWS_PER_STRIP, u64::from(u32::MAX))?
                .min(u64::from(height)) as u32,
        },
    };
    match chunking {
        Chunking::Tiles { width, height } if width == 0 || height == 0 => {
            Err(Error::corrupt("tiles of zero size"))
        }
        Chunking::Strips { rows_per_strip: 0 } => Err(Error::corrupt("RowsPerStrip is 0")),
        _ => Ok(chunking),
    }
}

/// Chunk offsets and byte counts, checked to cover the grid.
fn parse_chunk_table(
    reader: &IfdReader<'_>,
    ifd: &Ifd,
    chunking: &Chunking,
) -> Result<(Vec<u64>, Vec<u64>)> {
    let (offsets_tag, counts_tag) = match chunking {
        Chunking::Tiles { .. } => (tag::TILE_OFFSETS, tag::TILE_BYTE_COUNTS),
        Chunking::Strips { .. } => (tag::STRIP_OFFSETS, tag::STRIP_BYTE_COUNTS),
    };
    let offsets = reader
        .find_unsigned(ifd, offsets_tag)?
        .ok_or_else(|| Error::corrupt("chunk offsets are missing"))?;
    let counts = reader
        .find_unsigned(ifd, counts_tag)?
        .ok_or_else(|| Error::corrupt("chunk byte counts are missing"))?;
    if counts.len() != offsets.len() {
        return Err(Error::corrupt(format!(
            "{} chunk offsets but {} byte counts",
            offsets.len(),
            counts.len()
        )));
    }
    Ok((offsets, counts))
}

/// Tag values that only decide whether the image is readable.
struct Declared {
    planar: u64,
    sample_format: u64,
    ink_set: u64,
    predictor: u64,
    mixed_bits: bool,
}

/// Whether gigatile reads this image; the error names what it does not read.
fn check_supported(image: &TiffImage, declared: &Declared) -> Result<()> {
    let s = &image.samples;
    let unsupported = |what: String| Err(Error::unsupported(what));
    if declared.planar == 2 && s.per_pixel > 1 {
        return unsupported("PlanarConfiguration 2 (separate planes)".into());
    }
    if declared.mixed_bits {
        return unsupported("samples of different bit depths".into());
    }
    match declared.predictor {
        1 | 2 => {}
        3 => return unsupported("floating-point predictor (Predictor 3)".into()),
        other => return unsupported(format!("Predictor {other}")),
    }
    match declared.sample_format {
        1 => {}
        2 => return unsupported("signed integer samples (SampleFormat 2)".into()),
        3 => return unsupported("floating-point samples (SampleFormat 3)".into()),
        other => return unsupported(format!("SampleFormat {other}")),
    }
    if let Compression::Other(_) = image.compression {
        return unsupported(format!("{} compression", image.compression.name()));
    }
    check_photometric(image, declared.ink_set)?;
    let (cols, rows) = image.grid();
    if (image.offsets.len() as u64) < u64::from(cols) * u64::from(rows) {
        return Err(Error::corrupt(format!(
            "{} chunk offsets for a grid of {cols}×{rows}",
            image.offsets.len()
        )));
    }
    let (w, h) = image.chunk_size();
    let bytes = s.row_bytes(w).saturating_mul(u64::from(h));
    if bytes > MAX_CHUNK_BYTES {
        return Err(Error::too_large(format!(
            "one {w}×{h} chunk decodes to {} MiB, beyond {} MiB",
            bytes >> 20,
            MAX_CHUNK_BYTES >> 20
        )));
    }
    Ok(())
}

/// Checks the combination of photometric interpretation, sample count, bit depth and
/// compression.
fn check_photometric(image: &TiffImage, ink_set: u64) -> Result<()> {
    let s = &image.samples;
    let what = s.photometric.name();
    let unsupported = |why: String| Err(Error::unsupported(why));
    if s.per_pixel < s.photometric.colour_samples() {
        return Err(Error::corrupt(format!(
            "{what} image with {} samples per pixel",
            s.per_pixel
        )));
    }
    let grey = matches!(
        s.photometric,
        Photometric::MinIsBlack | Photometric::MinIsWhite
    );
    match s.photometric {
        Photometric::Other(_) => return unsupported(what),
        Photometric::YCbCr if image.compression != Compression::Jpeg => {
            return unsupported("YCbCr photometric without JPEG compression".into())
        }
        Photometric::Cmyk if ink_set != 1 || s.bits != 8 => {
            return unsupported(format!("CMYK other than 8-bit inks (InkSet {ink_set})"))
        }
        Photometric::Palette if s.palette.is_none() => {
            return unsupported(format!("{}-bit palette", s.bits))
        }
        _ => {}
    }
    match s.bits {
        8 | 16 => {}
        1 if grey && s.per_pixel == 1 && !s.predictor => {}
        other => return unsupported(format!("{other} bits per sample ({what})")),
    }
    if image.compression == Compression::Jpeg {
        let plain = s.per_pixel == s.photometric.colour_samples();
        let jpeg_model = matches!(
            s.photometric,
            Photometric::MinIsBlack | Photometric::Rgb | Photometric::YCbCr
        );
        if s.bits != 8 || !plain || !jpeg_model {
            return unsupported(format!(
                "JPEG-compressed {what} with {} samples of {} bits",
                s.per_pixel, s.bits
            ));
        }
    }
    Ok(())
}
