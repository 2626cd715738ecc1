//! source::jpeg: JPEG files read row by row through libjpeg (the mozjpeg crate), in bounded
//! memory, with cheap DCT-scaled reduced reads, CMYK and ICC profiles converted to sRGB and EXIF
//! orientation applied.
//!
//! How each kind of file is read:
//! - single-scan sequential (baseline): streamed, a band of scanlines at a time; memory is a
//!   few rows whatever the image size;
//! - progressive (or multi-scan sequential): libjpeg keeps the whole coefficient buffer
//!   (2 bytes per pixel per component), so [`JpegSource::open`] refuses it beyond
//!   `max_decode_bytes`; rows then stream as usual;
//! - EXIF orientation 2..8: rows cannot be turned one at a time, so the (possibly DCT-reduced)
//!   image is decoded whole within `max_decode_bytes`, turned, and served from memory.
//!
//! Every call into libjpeg runs inside [`guarded`]. libjpeg pads a truncated scan with grey and
//! only warns; the error manager here turns that warning into [`Error::Corrupt`], so a
//! truncated file never yields made-up rows. Arithmetic-coded, lossless and hierarchical JPEGs
//! are unsupported (this libjpeg build has no arithmetic decoder).

use std::os::raw::c_int;
use std::panic::resume_unwind;
use std::sync::Arc;

use mozjpeg::decompress::DecompressStarted;
use mozjpeg::{ColorSpace, CompInfoExt, Decompress, Marker};
use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr};

use crate::codec::jpeg::guarded;
use crate::color::{cmyk_to_rgb_naive, describe_profile, ColorTransform, InputModel};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::memory::Reservation;
use crate::raster::{PixelLayout, Raster};
use crate::source::exif::{parse_orientation, Orientation};
use crate::source::fuzzing::{drain, fuzz_limits};
use crate::source::RasterRows;
use crate::source::{Detail, RowReader, SourceFormat, SourceInfo};
use crate::storage::{ByteSource, MemBytes, SeqReader};

/// Markers kept while reading the header: EXIF (APP1), ICC profile chunks (APP2), Adobe (APP14).
const SAVED_MARKERS: &[Marker] = &[Marker::APP(1), Marker::APP(2), Marker::APP(14)];

/// Reductions libjpeg's DCT scaling gives cheaply (scale numerator 8/f over 8).
const REDUCTIONS: [u32; 4] = [8, 4, 2, 1];

/// A JPEG file, its header read and checked.
#[derive(Debug)]
pub struct JpegSource {
    bytes: Arc<dyn ByteSource>,
    limits: Limits,
    header: Header,
    frame: Frame,
}

/// What libjpeg's header read tells, plus the saved markers.
#[derive(Debug)]
struct Header {
    /// Stored (not display) size.
    width: u32,
    height: u32,
    colour: ColorSpace,
    /// Horizontal and vertical sampling factors of each component.
    sampling: Vec<(u8, u8)>,
    /// Bytes of libjpeg's whole-image coefficient buffer, should it need one.
    coefficient_bytes: u64,
    orientation: Orientation,
    icc: Option<Vec<u8>>,
    adobe: bool,
}

/// How the frame is coded, from the SOF and first SOS markers.
#[derive(Debug, Clone, Copy)]
struct Frame {
    coding: &'static str,
    /// Whether libjpeg must buffer every coefficient (progressive, or more than one scan).
    buffered: bool,
}

impl JpegSource {
    /// Reads the header only, and checks the display size against the limits (and, for a
    /// progressive JPEG, the coefficient buffer against `max_decode_bytes`).
    pub fn open(bytes: Arc<dyn ByteSource>, limits: &Limits) -> Result<Self> {
        let frame = read_frame(bytes.as_ref())?;
        let header = guarded("JPEG header", || {
            let dec = Decompress::with_err(error_manager())
                .with_markers(SAVED_MARKERS)
                .from_reader(SeqReader::new(bytes.clone()))?;
            Ok(Header::read(&dec))
        })?;
        let (width, height) = header.orientation.display_size(header.width, header.height);
        limits.check_dimensions(width, height)?;
        header.output()?;
        if frame.buffered {
            limits.check_whole_decode(
                header.coefficient_bytes,
                "a progressive JPEG cannot be streamed",
            )?;
        }
        Ok(JpegSource {
            bytes,
            limits: limits.clone(),
            header,
            frame,
        })
    }

    /// Size in display orientation, layout and the facts `gigatile info` shows.
    pub fn info(&self) -> SourceInfo {
        let h = &self.header;
        let (width, height) = h.orientation.display_size(h.width, h.height);
        let mut details: Vec<Detail> = vec![
            ("coding", self.frame.coding.to_string()),
            ("colour", colour_name(h.colour).to_string()),
        ];
        if h.sampling.len() > 1 {
            details.push(("subsampling", subsampling_name(&h.sampling)));
        }
        if h.orientation != Orientation::Normal {
            details.push(("orientation", h.orientation.exif_value().to_string()));
        }
        SourceInfo {
            format: SourceFormat::Jpeg,
            width,
            height,
            layout: h.output().map_or(PixelLayout::Rgb, |(_, layout)| layout),
            icc: h.icc.as_deref().map(describe_profile),
            details,
        }
    }

    /// The largest reduction f in {1, 2, 4, 8} with f ≤ `denominator`. Every JPEG offers it:
    /// a progressive one still needs its whole coefficient buffer (checked at open), but the
    /// inverse DCT, upsampling and colour conversion shrink with the output.
    pub fn best_reduction(&self, denominator: u32) -> u32 {
        REDUCTIONS
            .into_iter()
            .find(|&f| f <= denominator)
            .unwrap_or(1)
    }

    /// Rows reduced by `factor` (1, 2, 4 or 8) through DCT scaling, in display orientation:
    /// ceil(W/factor) × ceil(H/factor), exactly as libjpeg yields them.
    pub fn rows(&self, factor: u32) -> Result<Box<dyn RowReader>> {
        if !REDUCTIONS.contains(&factor) {
            return Err(Error::out_of_range(format!(
                "JPEG rows reduce by 1, 2, 4 or 8, not {factor}"
            )));
        }
        let rows = self.stream(factor)?;
        let orientation = self.header.orientation;
        if orientation == Orientation::Normal {
            return Ok(Box::new(rows));
        }
        // The stored raster and its turned copy are both alive while turning.
        let bytes =
            2 * u64::from(rows.width) * u64::from(rows.height) * rows.layout.channels() as u64;
        let memory = self.limits.reserve_whole_decode(
            bytes,
            "an EXIF-rotated JPEG must be decoded whole to rotate it",
        )?;
        let stored = read_whole(rows)?;
        Ok(Box::new(RasterRows::reserved(
            orientation.apply(stored),
            memory,
        )))
    }

    /// Starts libjpeg on the stored (not yet turned) image at 1/`factor` size.
    fn stream(&self, factor: u32) -> Result<JpegRows> {
        let (out_space, layout) = self.header.output()?;
        // libjpeg allocates a buffered (progressive) file's coefficients as it starts.
        let coefficients = if self.frame.buffered {
            self.limits.reserve_whole_decode(
                self.header.coefficient_bytes,
                "a progressive JPEG cannot be streamed",
            )?
        } else {
            Reservation::none()
        };
        let convert = self.header.converter(layout);
        let bytes = self.bytes.clone();
        let started = guarded("JPEG decode", move || {
            let mut dec =
                Decompress::with_err(error_manager()).from_reader(SeqReader::new(bytes))?;
            dec.scale((8 / factor) as u8);
            dec.to_colorspace(out_space)
        })?;
        Ok(JpegRows {
            width: started.width() as u32,
            height: started.height() as u32,
            layout,
            next_row: 0,
            decoder: Some(Decoder(started)),
            convert,
            cmyk: Vec::new(),
            _coefficients: coefficients,
        })
    }
}

impl Header {
    fn read<R>(dec: &Decompress<R>) -> Header {
        let mut exif = None;
        let mut icc_chunks = Vec::new();
        let mut adobe = false;
        for marker in dec.markers() {
            match marker.marker {
                Marker::APP(1) => {
                    exif =
                        exif.or_else(|| marker.data.strip_prefix(b"Exif\0\0").map(<[u8]>::to_vec))
                }
                Marker::APP(2) => {
                    if let Some(chunk) = marker.data.strip_prefix(b"ICC_PROFILE\0") {
                        icc_chunks.push(chunk);
                    }
                }
                Marker::APP(14) => adobe |= marker.data.starts_with(b"Adobe"),
                _ => {}
            }
        }
        let components = dec.components();
        Header {
            width: dec.width() as u32,
            height: dec.height() as u32,
            colour: dec.color_space(),
            sampling: components.iter().map(|c| c.sampling()).collect(),
            coefficient_bytes: components
                .iter()
                .map(|c| {
                    let (h, v) = c.sampling();
                    let wide = c.width_in_blocks().next_multiple_of(usize::from(h.max(1)));
                    let high = c.height_in_blocks().next_multiple_of(usize::from(v.max(1)));
                    // One block: 64 coefficients of 2 bytes.
                    (wide as u64) * (high as u64) * 128
                })
                .sum(),
            orientation: exif
                .as_deref()
                .and_then(parse_orientation)
                .unwrap_or(Orientation::Normal),
            icc: assemble_icc(icc_chunks),
            adobe,
        }
    }

    /// The colour space libjpeg is asked for and the layout handed out.
    fn output(&self) -> Result<(ColorSpace, PixelLayout)> {
        match self.colour {
            ColorSpace::JCS_GRAYSCALE => Ok((ColorSpace::JCS_GRAYSCALE, PixelLayout::Gray)),
            ColorSpace::JCS_YCbCr | ColorSpace::JCS_RGB => {
                Ok((ColorSpace::JCS_RGB, PixelLayout::Rgb))
            }
            ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => {
                Ok((ColorSpace::JCS_CMYK, PixelLayout::Rgb))
            }
            _ => Err(Error::unsupported(format!(
                "JPEG with {} components in an unknown colour space",
                self.sampling.len()
            ))),
        }
    }

    /// How decoded samples become sRGB.
    fn converter(&self, layout: PixelLayout) -> Convert {
        let icc = self.icc.as_deref();
        if matches!(self.colour, ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK) {
            // Photoshop writes an Adobe marker and inverted CMYK; so does libjpeg for CMYK.
            let inverted = self.adobe;
            let profile =
                icc.and_then(|p| ColorTransform::to_srgb(p, InputModel::Cmyk { inverted }));
            return Convert::Cmyk { profile, inverted };
        }
        match icc.and_then(|p| ColorTransform::to_srgb(p, InputModel::Layout(layout))) {
            Some(profile) => Convert::Profile(profile),
            None => Convert::None,
        }
    }
}

/// Joins APP2 `ICC_PROFILE` chunks (each: sequence number, count, data) in order; `None` when
/// there are none or they do not make one whole profile. Numbering from 1 is the standard;
/// numbering from 0, as the mozjpeg crate's `write_icc_profile` writes, is accepted too.
fn assemble_icc(mut chunks: Vec<&[u8]>) -> Option<Vec<u8>> {
    if chunks.is_empty() || chunks.iter().any(|c| c.len() < 2) {
        return None;
    }
    chunks.sort_by_key(|c| c[0]);
    let (first, count) = (chunks[0][0], chunks[0][1]);
    let complete = first <= 1
        && usize::from(count) == chunks.len()
        && chunks
            .iter()
            .enumerate()
            .all(|(i, c)| usize::from(c[0]) == usize::from(first) + i && c[1] == count);
    complete.then(|| chunks.iter().flat_map(|c| &c[2..]).copied().collect())
}

/// Most markers walked before the first scan (real files have a few dozen).
const MAX_MARKERS: usize = 4096;

/// Walks the markers up to the first SOS to learn how the frame is coded, which the mozjpeg
/// crate does not expose.
fn read_frame(bytes: &dyn ByteSource) -> Result<Frame> {
    let corrupt = || Error::corrupt("JPEG markers are damaged");
    let mut pos = 2u64;
    let mut sof = None;
    for _ in 0..MAX_MARKERS {
        let head = bytes
            .read_range(pos, 4)
            .map_err(|e| Error::from_decode_io(e, "JPEG header"))?;
        if head[0] != 0xFF {
            return Err(corrupt());
        }
        let marker = head[1];
        if marker == 0xFF {
            pos += 1; // fill byte
            continue;
        }
        if matches!(marker, 0x01 | 0xD0..=0xD7) {
            pos += 2;
            continue;
        }
        let len = u64::from(u16::from_be_bytes([head[2], head[3]]));
        let counts = |at: u64| bytes.read_range(pos + at, 1).map(|b| b[0]);
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                sof = Some((marker, counts(9).map_err(|_| corrupt())?));
            }
            0xDA => {
                let (sof, frame_components) = sof.ok_or_else(corrupt)?;
                let scan_components = counts(4).map_err(|_| corrupt())?;
                return frame_kind(sof, scan_components < frame_components);
            }
            _ => {}
        }
        pos += 2 + len;
    }
    Err(corrupt())
}

/// Names a frame's coding from its SOF marker; refuses what libjpeg here cannot decode.
fn frame_kind(sof: u8, multi_scan: bool) -> Result<Frame> {
    let (coding, progressive) = match sof {
        0xC0 => ("baseline", false),
        0xC1 => ("extended sequential", false),
        0xC2 => ("progressive", true),
        0xC9 | 0xCA => return Err(Error::unsupported("arithmetic-coded JPEG")),
        0xC3 | 0xCB => return Err(Error::unsupported("lossless JPEG")),
        _ => return Err(Error::unsupported("hierarchical JPEG")),
    };
    Ok(Frame {
        coding,
        buffered: progressive || multi_scan,
    })
}

fn colour_name(colour: ColorSpace) -> &'static str {
    match colour {
        ColorSpace::JCS_GRAYSCALE => "gray",
        ColorSpace::JCS_YCbCr => "YCbCr",
        ColorSpace::JCS_RGB => "RGB",
        ColorSpace::JCS_CMYK => "CMYK",
        ColorSpace::JCS_YCCK => "YCCK",
        _ => "unknown",
    }
}

/// `4:2:0` and friends from the luma and chroma sampling factors, else the factors themselves.
fn subsampling_name(sampling: &[(u8, u8)]) -> String {
    let chroma_same = sampling[1..].iter().all(|&s| s == (1, 1));
    let name = match sampling[0] {
        (1, 1) if chroma_same => Some("4:4:4"),
        (2, 1) if chroma_same => Some("4:2:2"),
        (2, 2) if chroma_same => Some("4:2:0"),
        (1, 2) if chroma_same => Some("4:4:0"),
        (4, 1) if chroma_same => Some("4:1:1"),
        _ => None,
    };
    name.map(str::to_string).unwrap_or_else(|| {
        let factors: Vec<String> = sampling.iter().map(|(h, v)| format!("{h}x{v}")).collect();
        factors.join(",")
    })
}

/// How decoded samples are turned into sRGB.
enum Convert {
    None,
    Profile(ColorTransform),
    Cmyk {
        profile: Option<ColorTransform>,
        inverted: bool,
    },
}

/// A started libjpeg decompressor.
struct Decoder(DecompressStarted<SeqReader>);

// SAFETY: a libjpeg decompress object has no thread affinity: it only needs to be used by one
// thread at a time, which `&mut self` on the reader guarantees. Its source (`SeqReader`) is
// `Send`, and the mozjpeg crate already moves these objects by value.
unsafe impl Send for Decoder {}

/// Rows streamed out of libjpeg, converted to sRGB.
struct JpegRows {
    width: u32,
    height: u32,
    layout: PixelLayout,
    next_row: u32,
    /// `None` once libjpeg has failed: after an unwind it must not be called again.
    decoder: Option<Decoder>,
    convert: Convert,
    /// Decoded CMYK samples of one band, before conversion.
    cmyk: Vec<u8>,
    /// A buffered file's coefficients in the memory budget; declared after the decoder, so
    /// given back only once libjpeg has freed them.
    _coefficients: Reservation,
}

impl RowReader for JpegRows {
    fn width(&self) -> u32 {
        self.width
    }

    fn height(&self) -> u32 {
        self.height
    }

    fn layout(&self) -> PixelLayout {
        self.layout
    }

    fn read_rows(&mut self, buf: &mut [u8]) -> Result<u32> {
        let stride = self.width as usize * self.layout.channels();
        let rows = (buf.len() / stride).min((self.height - self.next_row) as usize);
        if rows == 0 {
            return Ok(0);
        }
        let Some(Decoder(dec)) = self.decoder.as_mut() else {
            return Err(Error::corrupt("JPEG rows asked for after a decode error"));
        };
        let out = &mut buf[..rows * stride];
        let read = match &self.convert {
            Convert::Cmyk { profile, inverted } => {
                self.cmyk.resize(rows * self.width as usize * 4, 0);
                let cmyk = &mut self.cmyk;
                guarded("JPEG decode", || dec.read_scanlines_into(cmyk).map(drop)).map(|()| {
                    match profile {
                        Some(profile) => profile.apply_cmyk(cmyk, out),
                        None => cmyk_to_rgb_naive(cmyk, out, *inverted),
                    }
                })
            }
            convert => {
                guarded("JPEG decode", || dec.read_scanlines_into(out).map(drop)).map(|()| {
                    if let Convert::Profile(profile) = convert {
                        profile.apply(out);
                    }
                })
            }
        };
        if read.is_err() {
            self.decoder = None;
        }
        read?;
        self.next_row += rows as u32;
        Ok(rows as u32)
    }
}

/// Reads every row of a streamed JPEG into one raster.
fn read_whole(mut rows: JpegRows) -> Result<Raster> {
    let mut data = vec![0; rows.width as usize * rows.height as usize * rows.layout.channels()];
    let mut filled = 0;
    let stride = rows.width as usize * rows.layout.channels();
    while filled < data.len() {
        let n = rows.read_rows(&mut data[filled..])?;
        if n == 0 {
            return Err(Error::corrupt("JPEG ended before its last row"));
        }
        filled += n as usize * stride;
    }
    Raster::from_data(rows.width, rows.height, rows.layout, data)
}

/// libjpeg's standard error manager, with errors and the truncation warning unwinding (into
/// [`guarded`]) and every other warning silenced, as the mozjpeg crate does.
fn error_manager() -> jpeg_error_mgr {
    // SAFETY: `jpeg_std_error` initialises every field of the (zeroed, plain C) struct.
    let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(unwind_on_error);
    err.emit_message = Some(unwind_on_truncation);
    err
}

/// The C type of `format_message`, which writes into its buffer (the binding declares the
/// buffer `&[u8; 80]`).
type FormatMessage = unsafe extern "C-unwind" fn(&mut jpeg_common_struct, &mut [u8; 80]);

/// libjpeg's message for the current error code.
fn message(cinfo: &mut jpeg_common_struct) -> String {
    // SAFETY: libjpeg passes a valid `cinfo` whose `err` is our manager.
    let Some(format) = (unsafe { (*cinfo.err).format_message }) else {
        return "libjpeg error".to_string();
    };
    // SAFETY: both signatures pass two pointers; C writes at most JMSG_LENGTH_MAX (80) bytes.
    let format: FormatMessage = unsafe { std::mem::transmute(format) };
    let mut buffer = [0u8; 80];
    unsafe { format(cinfo, &mut buffer) };
    let text = buffer.split(|&c| c == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

extern "C-unwind" fn unwind_on_error(cinfo: &mut jpeg_common_struct) {
    resume_unwind(Box::new(message(cinfo)));
}

extern "C-unwind" fn unwind_on_truncation(cinfo: &mut jpeg_common_struct, level: c_int) {
    // SAFETY: as in `message`.
    let code = unsafe { (*cinfo.err).msg_code };
    if level < 0 && code == mozjpeg_sys::JWRN_JPEG_EOF as c_int {
        resume_unwind(Box::new("truncated data".to_string()));
    }
}

/// Reads a JPEG from memory with tight limits, all rows at full and 1/8 size, ignoring errors:
/// the body of the fuzz tests.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    let Ok(source) = JpegSource::open(MemBytes::shared(data.to_vec()), &fuzz_limits()) else {
        return;
    };
    let _ = source.info();
    for factor in [1, 8] {
        if let Ok(rows) = source.rows(factor) {
            let _ = drain(rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icc_chunks_join_in_order() {
        let a: &[u8] = &[2, 2, b'c', b'd'];
        let b: &[u8] = &[1, 2, b'a', b'b'];
        assert_eq!(assemble_icc(vec![a, b]).unwrap(), b"abcd");
        let zero: &[u8] = &[0, 2, b'a', b'b'];
        let one: &[u8] = &[1, 2, b'c', b'd'];
        assert_eq!(assemble_icc(vec![one, zero]).unwrap(), b"abcd");
        assert_eq!(assemble_icc(vec![zero, a]), None);
        assert_eq!(assemble_icc(vec![a]), None);
        assert_eq!(assemble_icc(vec![&[1]]), None);
        assert_eq!(assemble_icc(vec![]), None);
    }

    #[test]
    fn subsampling_names() {
        assert_eq!(subsampling_name(&[(2, 2), (1, 1), (1, 1)]), "4:2:0");
        assert_eq!(subsampling_name(&[(1, 1), (1, 1), (1, 1)]), "4:4:4");
        assert_eq!(subsampling_name(&[(2, 2), (2, 1), (1, 1)]), "2x2,2x1,1x1");
    }

    #[test]
    fn reductions() {
        let bytes = MemBytes::shared(
            crate::codec::jpeg::encode(&Raster::filled(17, 9, PixelLayout::Rgb, &[10, 20, 30]), 80)
                .unwrap(),
        );
        let source = JpegSource::open(bytes, &Limits::default()).unwrap();
        assert_eq!(
            [1, 2, 3, 4, 7, 8, 100].map(|d| source.best_reduction(d)),
            [1, 2, 2, 4, 4, 8, 8]
        );
        assert!(matches!(source.rows(3), Err(Error::OutOfRange(_))));
    }
}
