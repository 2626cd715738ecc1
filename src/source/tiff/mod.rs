//! source::tiff: TIFF and BigTIFF files (tiled or striped, pyramidal through further IFDs or
//! SubIFDs) read chunk by chunk through ranged reads, decoded to 8-bit sRGB, or handed out as
//! stored JPEG bytes for passthrough.
//!
//! Layers: `ifd` parses the container (header, directories, tag values), `image` describes one
//! image from its directory, `decode` turns one chunk's bytes into pixels; this module owns the
//! public API: which image is the primary and which are pyramid levels, locating chunks, and
//! streaming rows. It knows nothing of pyramids beyond image roles, nor of HTTP or rendering.
//!
//! Alpha: unassociated alpha is kept as it is; associated (premultiplied) alpha is divided
//! out, since every raster in the pipeline holds straight alpha.

mod decode;
mod ifd;
mod image;

use std::sync::Arc;

pub use image::{Chunking, Compression, ImageRole, TiffImage};

use crate::color::describe_profile;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::memory::Reservation;
use crate::raster::{Raster, Rect};
use crate::source::fuzzing::{drain, fuzz_limits};
use crate::source::{RowReader, SourceFormat, SourceInfo};
use crate::storage::{ByteSource, MemBytes};
use decode::Stored;
use ifd::{Header, IfdReader};

/// An opened TIFF or BigTIFF file: every image of its main IFD chain and their SubIFDs, in file
/// order. Cheap to clone and shareable across threads.
#[derive(Clone)]
pub struct TiffFile {
    inner: Arc<Inner>,
}

struct Inner {
    source: Arc<dyn ByteSource>,
    header: Header,
    images: Vec<TiffImage>,
    primary: usize,
    limits: Limits,
}

impl std::fmt::Debug for TiffFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let primary = &self.inner.images[self.inner.primary];
        write!(
            f,
            "TiffFile({}, {} images, primary {}×{})",
            self.format().name(),
            self.inner.images.len(),
            primary.width,
            primary.height
        )
    }
}

/// Where one chunk is and how much of it lies inside its image.
struct ChunkAt<'a> {
    image: &'a TiffImage,
    index: usize,
    /// Stored size: full tile, or full-width strip of the rows it holds.
    stored: (u32, u32),
    /// The part inside the image, from the chunk's top-left corner.
    valid: (u32, u32),
}

impl TiffFile {
    /// Parses the header and every directory, describes each image, picks the primary and the
    /// pyramid levels, and checks that the primary is readable and within `limits`.
    pub fn open(bytes: Arc<dyn ByteSource>, limits: &Limits) -> Result<TiffFile> {
        let head_len = bytes.len().min(ifd::HEADER_LEN as u64) as usize;
        let head = bytes
            .read_range(0, head_len)
            .map_err(|e| Error::from_decode_io(e, "TIFF header"))?;
        let header = ifd::parse_header(&head)?;
        let budget = IfdReader::budget_for(bytes.len());
        let reader = IfdReader {
            source: &*bytes,
            order: header.order,
            big: header.big,
            budget: &budget,
        };
        let mut images = ifd::walk(&reader, header.first_ifd)?
            .iter()
            .map(|l| image::parse_image(&reader, &l.ifd, l.main_chain, limits))
            .collect::<Result<Vec<_>>>()?;
        if images.is_empty() {
            return Err(Error::corrupt("TIFF file has no images"));
        }
        let primary = assign_roles(&mut images);
        images[primary].check_readable()?;
        Ok(TiffFile {
            inner: Arc::new(Inner {
                source: bytes,
                header,
                images,
                primary,
                limits: limits.clone(),
            }),
        })
    }

    /// Every image, in file order (SubIFDs right after their parent).
    pub fn images(&self) -> &[TiffImage] {
        &self.inner.images
    }

    /// Index of the full-resolution image.
    pub fn primary(&self) -> usize {
        self.inner.primary
    }

    fn format(&self) -> SourceFormat {
        if self.inner.header.big {
            SourceFormat::BigTiff
        } else {
            SourceFormat::Tiff
        }
    }

    /// What the file is: the primary image's size and layout, and details for `gigatile info`.
    pub fn info(&self) -> SourceInfo {
        let primary = &self.inner.images[self.inner.primary];
        let tiling = match primary.chunking {
            Chunking::Tiles { width, height } => format!("tiles {width}×{height}"),
            Chunking::Strips { rows_per_strip } => format!("strips of {rows_per_strip} rows"),
        };
        let levels: Vec<String> = self
            .levels()
            .map(|i| format!("{}×{}", i.width, i.height))
            .collect();
        let levels = if levels.is_empty() {
            "none".to_string()
        } else {
            levels.join(", ")
        };
        SourceInfo {
            format: self.format(),
            width: primary.width,
            height: primary.height,
            layout: primary.layout,
            icc: primary.icc.as_deref().map(|icc| describe_profile(icc)),
            details: vec![
                ("compression", primary.compression.name()),
                ("tiling", tiling),
                ("levels", levels),
                ("bits per sample", primary.samples.bits.to_string()),
                ("photometric", primary.samples.photometric.name()),
                ("byte order", self.inner.header.order.name().to_string()),
            ],
        }
    }

    /// The reduced-resolution images, in file order.
    fn levels(&self) -> impl Iterator<Item = &TiffImage> {
        self.inner
            .images
            .iter()
            .filter(|i| i.role == ImageRole::Reduced)
    }

    /// Columns and rows of chunks of an image ((0, 0) for an index past the last image).
    pub fn chunk_grid(&self, image: usize) -> (u32, u32) {
        self.inner.images.get(image).map_or((0, 0), TiffImage::grid)
    }

    /// Finds a chunk, checking the image is readable and the chunk inside its grid.
    fn locate(&self, image: usize, col: u32, row: u32) -> Result<ChunkAt<'_>> {
        let img = self.inner.images.get(image).ok_or_else(|| {
            Error::out_of_range(format!("image {image} of {}", self.inner.images.len()))
        })?;
        img.check_readable()?;
        let (cols, rows) = img.grid();
        if col >= cols || row >= rows {
            return Err(Error::out_of_range(format!(
                "chunk ({col}, {row}) outside a grid of {cols}×{rows}"
            )));
        }
        let (cw, ch) = img.chunk_size();
        let valid = (
            (img.width - col * cw).min(cw),
            (img.height - row * ch).min(ch),
        );
        let stored = match img.chunking {
            Chunking::Tiles { .. } => (cw, ch),
            Chunking::Strips { .. } => valid,
        };
        Ok(ChunkAt {
            image: img,
            index: row as usize * cols as usize + col as usize,
            stored,
            valid,
        })
    }

    /// The stored bytes of a chunk; `None` for a sparse (never written) chunk.
    fn read_raw(&self, at: &ChunkAt<'_>, expected: u64) -> Result<Option<Vec<u8>>> {
        let img = at.image;
        let (offset, count) = (img.offsets[at.index], img.byte_counts[at.index]);
        if count == 0 {
            return Ok(None);
        }
        let len = if img.compression == Compression::None {
            count.min(expected)
        } else if count <= expected.saturating_mul(2) + (1 << 20) {
            count
        } else {
            return Err(Error::corrupt(format!(
                "a chunk of {count} bytes where at most {expected} are decoded"
            )));
        };
        ifd::read_at(&*self.inner.source, offset, len, "chunk data").map(Some)
    }

    /// A chunk decoded to 8-bit sRGB in the image's layout, cropped to the image at the right
    /// and bottom edges. For strips, `col` is 0.
    pub fn read_chunk(&self, image: usize, col: u32, row: u32) -> Result<Raster> {
        let at = self.locate(image, col, row)?;
        let img = at.image;
        let row_bytes = img.samples.row_bytes(at.stored.0);
        let expected = row_bytes * u64::from(at.stored.1);
        let Some(raw) = self.read_raw(&at, expected)? else {
            let blank = vec![0; img.layout.channels()];
            return Ok(Raster::filled(at.valid.0, at.valid.1, img.layout, &blank));
        };
        // The decoded chunk and its unpacked pixels are alive together.
        let unpacked = u64::from(at.valid.0) * u64::from(at.valid.1) * img.layout.channels() as u64;
        let _memory = self
            .inner
            .limits
            .reserve(expected + unpacked, "a TIFF chunk decode")?;
        if img.compression == Compression::Jpeg {
            return decode_jpeg_chunk(&at, raw);
        }
        let mut data = decode::decompress(img.compression, raw, expected as usize)?;
        if img.samples.predictor {
            decode::undo_predictor(&mut data, row_bytes as usize, &img.samples, self.order());
        }
        let stored = Stored {
            data: &data,
            row_bytes: row_bytes as usize,
        };
        Ok(decode::unpack(
            &stored,
            &img.samples,
            self.order(),
            at.valid,
            img.layout,
            img.transform.as_ref(),
        ))
    }

    fn order(&self) -> ifd::ByteOrder {
        self.inner.header.order
    }

    /// A chunk's stored JPEG as one self-contained stream a browser shows as it is, or `None`
    /// when it cannot pass through: not JPEG, colour needing conversion (a non-sRGB profile),
    /// a chunk that is sparse or extends past the image (edge tiles, whose stored pixels
    /// differ from [`TiffFile::read_chunk`]'s cropped ones).
    pub fn jpeg_chunk(&self, image: usize, col: u32, row: u32) -> Result<Option<Vec<u8>>> {
        let at = self.locate(image, col, row)?;
        let img = at.image;
        let whole = at.valid == img.chunk_size();
        if img.compression != Compression::Jpeg || img.transform.is_some() || !whole {
            return Ok(None);
        }
        let expected = img.samples.row_bytes(at.stored.0) * u64::from(at.stored.1);
        match self.read_raw(&at, expected)? {
            None => Ok(None),
            Some(raw) => {
                decode::jpeg_stream(img.jpeg_tables.as_deref(), raw, img.samples.photometric)
                    .map(Some)
            }
        }
    }

    /// The image's rows, top to bottom, decoded one row of chunks at a time.
    pub fn rows(&self, image: usize) -> Result<Box<dyn RowReader>> {
        let img = self.inner.images.get(image).ok_or_else(|| {
            Error::out_of_range(format!("image {image} of {}", self.inner.images.len()))
        })?;
        img.check_readable()?;
        Ok(Box::new(TiffRows {
            file: self.clone(),
            image,
            band: None,
            band_pos: 0,
            next_chunk_row: 0,
            band_memory: Reservation::none(),
        }))
    }
}

/// Decodes a JPEG chunk and crops it to the part inside the image.
fn decode_jpeg_chunk(at: &ChunkAt<'_>, raw: Vec<u8>) -> Result<Raster> {
    let img = at.image;
    let stream = decode::jpeg_stream(img.jpeg_tables.as_deref(), raw, img.samples.photometric)?;
    // libjpeg allocates what the frame header claims: check it against the chunk first.
    let (w, h) = at.valid;
    match decode::jpeg_frame_size(&stream) {
        Some((fw, fh)) if fw >= w && fh >= h && fw <= at.stored.0 && fh <= at.stored.1 => {}
        other => {
            return Err(Error::corrupt(format!(
                "JPEG chunk has frame size {other:?} where {}×{} is stored",
                at.stored.0, at.stored.1
            )))
        }
    }
    let mut raster = crate::codec::jpeg::decode(&stream)?;
    if raster.layout != img.layout || raster.width < w || raster.height < h {
        return Err(Error::corrupt(format!(
            "JPEG chunk decodes to {}×{} {} where {w}×{h} {} is expected",
            raster.width,
            raster.height,
            raster.layout.name(),
            img.layout.name()
        )));
    }
    raster = raster.crop(Rect::new(0, 0, w, h));
    if let Some(t) = &img.transform {
        t.apply(&mut raster.data);
    }
    Ok(raster)
}

/// Picks the primary image (the first of the main chain not marked reduced or auxiliary) and
/// marks as reduced the images that look like smaller copies of it; returns the primary's
/// index.
fn assign_roles(images: &mut [TiffImage]) -> usize {
    let primary = images
        .iter()
        .position(|i| i.main_chain && !i.marked_reduced && !i.marked_auxiliary)
        .unwrap_or(0);
    let (pw, ph) = (images[primary].width, images[primary].height);
    let (p_layout, p_tiled) = (
        images[primary].layout,
        matches!(images[primary].chunking, Chunking::Tiles { .. }),
    );
    for (i, image) in images.iter_mut().enumerate() {
        let tiled = matches!(image.chunking, Chunking::Tiles { .. });
        let smaller =
            image.width <= pw && image.height <= ph && (image.width, image.height) != (pw, ph);
        // w/pw ≈ h/ph, allowing each side a pixel or two of rounding.
        let cross =
            i128::from(image.width) * i128::from(ph) - i128::from(image.height) * i128::from(pw);
        let same_aspect = cross.unsigned_abs() <= 2 * (u128::from(pw) + u128::from(ph));
        let level = smaller
            && same_aspect
            && image.layout == p_layout
            && image.unreadable.is_none()
            && !image.marked_auxiliary
            && (image.marked_reduced || tiled == p_tiled);
        image.role = if i == primary {
            ImageRole::Primary
        } else if level {
            ImageRole::Reduced
        } else {
            ImageRole::Auxiliary
        };
    }
    primary
}

/// Rows of one image, decoded a row of chunks (a band) at a time.
struct TiffRows {
    file: TiffFile,
    image: usize,
    band: Option<Raster>,
    /// The band's bytes in the memory budget.
    band_memory: Reservation,
    /// Rows of the band already handed out.
    band_pos: u32,
    next_chunk_row: u32,
}

impl TiffRows {
    fn image(&self) -> &TiffImage {
        &self.file.inner.images[self.image]
    }

    /// Decodes the next row of chunks into one band as wide as the image.
    fn load_band(&mut self) -> Result<Raster> {
        let (cols, _) = self.file.chunk_grid(self.image);
        let row = self.next_chunk_row;
        let first = self.file.read_chunk(self.image, 0, row)?;
        if cols == 1 {
            return Ok(first);
        }
        let img = self.image();
        let (cw, _) = img.chunk_size();
        let fill = vec![0; img.layout.channels()];
        let mut band = Raster::filled(img.width, first.height, img.layout, &fill);
        band.paste(&first, 0, 0);
        for col in 1..cols {
            let chunk = self.file.read_chunk(self.image, col, row)?;
            band.paste(&chunk, col * cw, 0);
        }
        Ok(band)
    }
}

impl RowReader for TiffRows {
    fn width(&self) -> u32 {
        self.image().width
    }

    fn height(&self) -> u32 {
        self.image().height
    }

    fn layout(&self) -> crate::raster::PixelLayout {
        self.image().layout
    }

    fn read_rows(&mut self, buf: &mut [u8]) -> Result<u32> {
        let stride = self.width() as usize * self.layout().channels();
        let (_, chunk_rows) = self.file.chunk_grid(self.image);
        let capacity = buf.len() / stride.max(1);
        let mut written = 0;
        while written < capacity {
            let exhausted = self.band.as_ref().is_none_or(|b| self.band_pos >= b.height);
            if exhausted {
                if self.next_chunk_row >= chunk_rows {
                    break;
                }
                self.band = None;
                self.band_memory = Reservation::none();
                let img = self.image();
                let band_bytes = u64::from(img.width)
                    * u64::from(img.chunk_size().1)
                    * img.layout.channels() as u64;
                self.band_memory = self.file.inner.limits.reserve(band_bytes, "a TIFF band")?;
                self.band = Some(self.load_band()?);
                self.band_pos = 0;
                self.next_chunk_row += 1;
            }
            let Some(band) = &self.band else { break };
            let n = (capacity - written).min((band.height - self.band_pos) as usize);
            let from = self.band_pos as usize * stride;
            buf[written * stride..(written + n) * stride]
                .copy_from_slice(&band.data[from..from + n * stride]);
            written += n;
            self.band_pos += n as u32;
        }
        Ok(written as u32)
    }
}

/// Fuzzing entry point: opens `data` with tight limits and reads every chunk of every image and
/// the rows of the primary, ignoring errors. It must never panic, hang or exhaust memory.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    let Ok(file) = TiffFile::open(MemBytes::shared(data.to_vec()), &fuzz_limits()) else {
        return;
    };
    for image in 0..file.images().len() {
        let (cols, rows) = file.chunk_grid(image);
        for row in 0..rows {
            for col in 0..cols {
                let _ = file.read_chunk(image, col, row);
                let _ = file.jpeg_chunk(image, col, row);
            }
        }
    }
    if let Ok(rows) = file.rows(file.primary()) {
        let _ = drain(rows);
    }
}
