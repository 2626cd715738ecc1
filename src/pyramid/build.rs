//! pyramid::build: one streaming pass over a source's full-resolution rows into every level of
//! a pyramidal tiled BigTIFF, in memory bounded by one band of tile rows per level.
//!
//! The calling thread reads rows straight into level 0's band and reduces each pair of rows of
//! level k into one row of level k+1 (2×2 box average; an odd last column or row averages what
//! exists). A level's band of [`TILE_SIZE`] rows, once complete, is handed through a rendezvous
//! channel to an encoder thread, which cuts it into tiles, encodes them in parallel on a rayon
//! pool and appends them to the [`TiffWriter`] in whatever order they finish; meanwhile the
//! reader fills the next band. The file appears at `out` only by a rename once it is complete
//! and synced; any error or cancellation removes the temporary file.
//!
//! It owns the streaming, the reduction and the choice of tile encoding per level. It knows
//! nothing of TIFF tags (that is `tiff_writer`) or of source formats (it takes a [`RowReader`]).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::atomic::{Durability, TempFile};
use crate::codec::jpeg;
use crate::error::{Error, Result};
use crate::geometry::{Geometry, Level, TILE_SIZE};
use crate::pyramid::tiff_writer::{deflate_tile, LevelSpec, TiffWriter, TileEncoding};
use crate::raster::{PixelLayout, Raster};
use crate::source::RowReader;

/// How the full-resolution level of a built pyramid is stored (`PYRAMID_BASE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BaseStorage {
    /// JPEG tiles, like every reduced level.
    #[default]
    Jpeg,
    /// Deflate tiles, losslessly; reduced levels stay JPEG.
    Lossless,
}

/// How to build a pyramid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildOptions {
    /// JPEG quality, 1..=100.
    pub quality: u8,
    /// How level 0 is stored.
    pub base: BaseStorage,
    /// Encoder threads (at least one is used).
    pub threads: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            quality: jpeg::DEFAULT_QUALITY,
            base: BaseStorage::Jpeg,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// How far a build has got, in full-resolution rows consumed; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<ProgressCounters>);

#[derive(Debug, Default)]
struct ProgressCounters {
    rows_done: AtomicU64,
    rows_total: AtomicU64,
}

impl Progress {
    /// A progress counter at zero.
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Full-resolution rows consumed so far.
    pub fn rows_done(&self) -> u64 {
        self.0.rows_done.load(Ordering::Relaxed)
    }

    /// Full-resolution rows in all (0 until the build starts).
    pub fn rows_total(&self) -> u64 {
        self.0.rows_total.load(Ordering::Relaxed)
    }

    /// Rows consumed as a fraction of all rows, 0 to 1 (0 before the build starts).
    pub fn fraction(&self) -> f64 {
        match self.rows_total() {
            0 => 0.0,
            total => (self.rows_done() as f64 / total as f64).min(1.0),
        }
    }

    fn start(&self, rows_total: u32) {
        self.0.rows_done.store(0, Ordering::Relaxed);
        self.0
            .rows_total
            .store(u64::from(rows_total), Ordering::Relaxed);
    }

    fn advance(&self, rows: u32) {
        self.0
            .rows_done
            .fetch_add(u64::from(rows), Ordering::Relaxed);
    }
}

/// What a finished build wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildReport {
    pub width: u32,
    pub height: u32,
    /// Levels in the file, K + 1.
    pub levels: u32,
    pub tiles: u64,
    /// Size of the file.
    pub bytes: u64,
}

/// Bytes a build of an image `width` pixels wide holds at most: per level, the band being
/// filled and the one being encoded (levels halve, so all levels together are about twice
/// level 0), plus the writer's buffer and tile table.
pub fn memory_needed(width: u32, layout: PixelLayout) -> u64 {
    let level0_band = u64::from(TILE_SIZE) * u64::from(width) * layout.channels() as u64;
    2 * 2 * level0_band + (4 << 20)
}

/// Builds the pyramid of `rows` into a BigTIFF at `out`, atomically: `out` exists only once the
/// whole file is written and synced. Checks `cancel` between reads ([`Error::Cancelled`]).
pub fn build_pyramid(
    rows: Box<dyn RowReader>,
    out: &Path,
    options: &BuildOptions,
    progress: &Progress,
    cancel: &AtomicBool,
) -> Result<BuildReport> {
    let (width, height, layout) = (rows.width(), rows.height(), rows.layout());
    if width == 0 || height == 0 {
        return Err(Error::corrupt("the image has no pixels"));
    }
    let geometry = Geometry::new(width, height);
    let specs = level_specs(&geometry, layout, options.base);
    let (temp, file) = TempFile::create(out)?;
    let writer = TiffWriter::create(BufWriter::with_capacity(1 << 20, file), &specs)?;
    progress.start(height);
    let writer = stream_levels(rows, writer, &specs, options, progress, cancel)?;
    let file = writer.finish()?.into_inner().map_err(|e| e.into_error())?;
    let bytes = file.metadata()?.len();
    temp.persist(file, out, Durability::Synced)?;
    Ok(BuildReport {
        width,
        height,
        levels: geometry.level_count(),
        tiles: geometry.total_tiles(),
        bytes,
    })
}

/// One IFD per level: alpha is kept losslessly everywhere; otherwise JPEG, except a lossless
/// base.
fn level_specs(geometry: &Geometry, layout: PixelLayout, base: BaseStorage) -> Vec<LevelSpec> {
    (0..geometry.level_count())
        .map(|k| {
            let (width, height) = geometry.level_size(Level(k));
            let lossless = layout.has_alpha() || (k == 0 && base == BaseStorage::Lossless);
            LevelSpec {
                width,
                height,
                layout,
                encoding: if lossless {
                    TileEncoding::Deflate
                } else {
                    TileEncoding::Jpeg
                },
            }
        })
        .collect()
}

type Writer = TiffWriter<BufWriter<File>>;

/// Runs the reader on this thread and the encoder on another; returns the writer with every
/// tile written, or the first error of either side.
fn stream_levels(
    rows: Box<dyn RowReader>,
    writer: Writer,
    specs: &[LevelSpec],
    options: &BuildOptions,
    progress: &Progress,
    cancel: &AtomicBool,
) -> Result<Writer> {
    let writer = Mutex::new(writer);
    let (band_tx, band_rx) = mpsc::sync_channel::<Band>(0);
    let (spare_tx, spare_rx) = mpsc::channel::<Band>();
    std::thread::scope(|scope| {
        let encoder = scope.spawn(|| encode_bands(band_rx, spare_tx, &writer, specs, options));
        let read = Reader::new(specs, band_tx, spare_rx).run(rows, progress, cancel);
        let encoded = encoder
            .join()
            .unwrap_or_else(|_| Err(Error::Io(std::io::Error::other("tile encoder panicked"))));
        // The encoder's error explains a reader stopped by a closed channel, so it goes first.
        encoded.and(read)
    })?;
    writer
        .into_inner()
        .map_err(|_| Error::Io(std::io::Error::other("tile writer poisoned")))
}

/// A complete band of up to [`TILE_SIZE`] rows of one level, on its way to the encoders.
struct Band {
    level: usize,
    tile_row: u32,
    width: u32,
    rows: u32,
    layout: PixelLayout,
    data: Vec<u8>,
}

/// The encoder thread: encodes each band's tiles in parallel, writes them, returns the buffer.
fn encode_bands(
    bands: Receiver<Band>,
    spares: Sender<Band>,
    writer: &Mutex<Writer>,
    specs: &[LevelSpec],
    options: &BuildOptions,
) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.max(1))
        .thread_name(|i| format!("pyramid-encode-{i}"))
        .build()
        .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    for band in bands {
        let encoding = specs[band.level].encoding;
        pool.install(|| encode_band(&band, encoding, options.quality, writer))?;
        // The reader may have finished already; then the buffer is simply dropped.
        let _ = spares.send(band);
    }
    Ok(())
}

fn encode_band(
    band: &Band,
    encoding: TileEncoding,
    quality: u8,
    writer: &Mutex<Writer>,
) -> Result<()> {
    (0..band.width.div_ceil(TILE_SIZE))
        .into_par_iter()
        .try_for_each(|column| {
            let tile = cut_tile(band, column);
            let bytes = match encoding {
                TileEncoding::Jpeg => jpeg::encode(&tile, quality)?,
                TileEncoding::Deflate => deflate_tile(&tile)?,
            };
            writer
                .lock()
                .map_err(|_| Error::Io(std::io::Error::other("tile writer poisoned")))?
                .write_tile(band.level, column, band.tile_row, &bytes)
        })
}

/// The full [`TILE_SIZE`]² tile at `column` of a band, edges padded by repeating the last
/// column and row.
fn cut_tile(band: &Band, column: u32) -> Raster {
    let channels = band.layout.channels();
    let tile = TILE_SIZE as usize;
    let x0 = (column * TILE_SIZE) as usize;
    let width = tile.min(band.width as usize - x0);
    let stride = band.width as usize * channels;
    let mut data = Vec::with_capacity(tile * tile * channels);
    for y in 0..tile {
        let src_row = y.min(band.rows as usize - 1);
        let start = src_row * stride + x0 * channels;
        let row = &band.data[start..start + width * channels];
        data.extend_from_slice(row);
        let last = &row[(width - 1) * channels..];
        for _ in width..tile {
            data.extend_from_slice(last);
        }
    }
    Raster {
        width: TILE_SIZE,
        height: TILE_SIZE,
        layout: band.layout,
        data,
    }
}

/// Rows read from the source per call: even, and a divisor of [`TILE_SIZE`].
const READ_ROWS: u32 = 16;

/// The reader side: one band being filled per level.
struct Reader {
    levels: Vec<LevelBand>,
    bands: SyncSender<Band>,
    spares: Receiver<Band>,
    /// At most one buffer per level given back by the encoder, ready for reuse.
    spare: Vec<Option<Vec<u8>>>,
}

/// The band being filled at one level.
struct LevelBand {
    width: u32,
    height: u32,
    layout: PixelLayout,
    tile_row: u32,
    /// Rows in the current band.
    rows: u32,
    /// Rows of this level received so far, in all bands.
    received: u32,
    data: Vec<u8>,
}

impl LevelBand {
    fn new(spec: &LevelSpec) -> LevelBand {
        let mut band = LevelBand {
            width: spec.width,
            height: spec.height,
            layout: spec.layout,
            tile_row: 0,
            rows: 0,
            received: 0,
            data: Vec::new(),
        };
        band.data = vec![0; band.capacity_bytes()];
        band
    }

    fn stride(&self) -> usize {
        self.width as usize * self.layout.channels()
    }

    fn capacity_bytes(&self) -> usize {
        self.stride() * TILE_SIZE.min(self.height) as usize
    }

    fn is_complete(&self) -> bool {
        self.received == self.height
    }

    fn is_band_full(&self) -> bool {
        self.rows == TILE_SIZE || self.is_complete()
    }

    fn row(&self, index: u32) -> &[u8] {
        let stride = self.stride();
        &self.data[index as usize * stride..(index as usize + 1) * stride]
    }

    fn row_mut(&mut self, index: u32) -> &mut [u8] {
        let stride = self.stride();
        &mut self.data[index as usize * stride..(index as usize + 1) * stride]
    }
}

impl Reader {
    fn new(specs: &[LevelSpec], bands: SyncSender<Band>, spares: Receiver<Band>) -> Reader {
        Reader {
            levels: specs.iter().map(LevelBand::new).collect(),
            bands,
            spares,
            spare: vec![None; specs.len()],
        }
    }

    /// Reads every row, cascading it through the levels; consumes the reader so the band
    /// channel closes when it returns.
    fn run(
        mut self,
        mut rows: Box<dyn RowReader>,
        progress: &Progress,
        cancel: &AtomicBool,
    ) -> Result<()> {
        while !self.levels[0].is_complete() {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let read = self.read_chunk(rows.as_mut())?;
            progress.advance(read);
            for _ in 0..read {
                self.row_added(0)?;
            }
        }
        Ok(())
    }

    /// Reads the next rows of level 0 straight into its band (without counting them yet).
    fn read_chunk(&mut self, rows: &mut dyn RowReader) -> Result<u32> {
        let base = &mut self.levels[0];
        let wanted = READ_ROWS
            .min(TILE_SIZE - base.rows)
            .min(base.height - base.received);
        let stride = base.stride();
        let start = base.rows as usize * stride;
        let buf = &mut base.data[start..start + wanted as usize * stride];
        let read = rows.read_rows(buf)?;
        if read == 0 || read > wanted {
            return Err(Error::corrupt(format!(
                "the source gave {read} rows at row {} of {}, asked for {wanted}",
                base.received, base.height
            )));
        }
        Ok(read)
    }

    /// Counts the row just placed at the end of level `k`'s band: completes a row of the next
    /// level when it closes a pair (or is the last row), and ships the band once it is full.
    fn row_added(&mut self, k: usize) -> Result<()> {
        self.levels[k].rows += 1;
        self.levels[k].received += 1;
        let level = &self.levels[k];
        let closes_pair = level.rows % 2 == 0 || level.is_complete();
        if k + 1 < self.levels.len() && closes_pair {
            let (lower, upper) = self.levels.split_at_mut(k + 1);
            let (from, to) = (&lower[k], &mut upper[0]);
            let bottom = from.rows - 1;
            let top = if from.rows % 2 == 0 {
                bottom - 1
            } else {
                bottom
            };
            let next = to.rows;
            let channels = from.layout.channels();
            reduce_rows(from.row(top), from.row(bottom), to.row_mut(next), channels);
            self.row_added(k + 1)?;
        }
        if self.levels[k].is_band_full() {
            self.ship_band(k)?;
        }
        Ok(())
    }

    /// Hands level `k`'s band to the encoder, then starts the next one, in the buffer the
    /// encoder has just given back when there is one (so a level has at most two bands alive).
    fn ship_band(&mut self, k: usize) -> Result<()> {
        let level = &mut self.levels[k];
        let band = Band {
            level: k,
            tile_row: level.tile_row,
            width: level.width,
            rows: level.rows,
            layout: level.layout,
            data: std::mem::take(&mut level.data),
        };
        level.tile_row += 1;
        level.rows = 0;
        // A closed channel means the encoder failed; its own error is reported instead.
        self.bands.send(band).map_err(|_| Error::Cancelled)?;
        self.levels[k].data = self.take_spare(k);
        Ok(())
    }

    /// A buffer for level `k`'s next band: one the encoder gave back, or a new one. None is
    /// needed once the level is complete.
    fn take_spare(&mut self, k: usize) -> Vec<u8> {
        let level = &self.levels[k];
        if level.is_complete() {
            return Vec::new();
        }
        let capacity = level.capacity_bytes();
        for band in self.spares.try_iter() {
            self.spare[band.level].get_or_insert(band.data);
        }
        self.spare[k].take().unwrap_or_else(|| vec![0; capacity])
    }
}

/// One row of the next level from two rows (the same row twice for an odd last row): 2×2 box
/// averages, rounded; an odd last column averages its two samples.
fn reduce_rows(top: &[u8], bottom: &[u8], out: &mut [u8], channels: usize) {
    match channels {
        1 => reduce_rows_n::<1>(top, bottom, out),
        2 => reduce_rows_n::<2>(top, bottom, out),
        3 => reduce_rows_n::<3>(top, bottom, out),
        _ => reduce_rows_n::<4>(top, bottom, out),
    }
}

fn reduce_rows_n<const C: usize>(top: &[u8], bottom: &[u8], out: &mut [u8]) {
    let pairs = top.chunks_exact(2 * C).zip(bottom.chunks_exact(2 * C));
    let mut out_pixels = out.chunks_exact_mut(C);
    for ((t, b), o) in pairs.zip(&mut out_pixels) {
        for c in 0..C {
            let sum = u16::from(t[c]) + u16::from(t[c + C]) + u16::from(b[c]) + u16::from(b[c + C]);
            o[c] = ((sum + 2) >> 2) as u8;
        }
    }
    let odd = top.len() / C % 2 == 1;
    if let (true, Some(o)) = (odd, out_pixels.next()) {
        let t = &top[top.len() - C..];
        let b = &bottom[bottom.len() - C..];
        for c in 0..C {
            o[c] = ((u16::from(t[c]) + u16::from(b[c]) + 1) >> 1) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_averages_what_exists() {
        let top = [0, 10, 20, 30, 41];
        let bottom = [4, 14, 24, 34, 45];
        let mut out = [0; 3];
        reduce_rows(&top, &bottom, &mut out, 1);
        assert_eq!(out, [7, 27, 43]);
        let mut single = [0; 3];
        reduce_rows(&top, &top, &mut single, 1);
        assert_eq!(single, [5, 25, 41]);
    }

    #[test]
    fn reduce_keeps_channels_apart() {
        let top = [0, 100, 2, 100, 9, 9];
        let mut out = [0; 4];
        reduce_rows(&top, &top, &mut out, 2);
        assert_eq!(out, [1, 100, 9, 9]);
    }

    #[test]
    fn specs_keep_alpha_lossless() {
        let geometry = Geometry::new(600, 300);
        let rgba = level_specs(&geometry, PixelLayout::Rgba, BaseStorage::Jpeg);
        assert!(rgba.iter().all(|s| s.encoding == TileEncoding::Deflate));
        let rgb = level_specs(&geometry, PixelLayout::Rgb, BaseStorage::Lossless);
        assert_eq!(rgb.len(), 3);
        assert_eq!(rgb[0].encoding, TileEncoding::Deflate);
        assert_eq!(rgb[1].encoding, TileEncoding::Jpeg);
        assert_eq!((rgb[2].width, rgb[2].height), (150, 75));
    }
}
