//! storage: where source bytes come from, as ranged reads by offset.
//!
//! Decoders never open files: they read through [`ByteSource`], so an object store can back
//! them later without touching a decoder. [`SeqReader`] adapts a source to the `Read`,
//! `BufRead` and `Seek` traits that streaming decoders (libjpeg, png) want.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

/// Random-access, read-only bytes of one stored object.
pub trait ByteSource: Send + Sync + fmt::Debug {
    /// The object's length in bytes.
    fn len(&self) -> u64;

    /// Whether the object is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` from `offset`; reading past the end is an `UnexpectedEof` error.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Reads `len` bytes from `offset` into a new buffer.
    fn read_range(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|end| end > self.len()) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "range beyond the end of the data",
            ));
        }
        let mut buf = vec![0; len];
        self.read_exact_at(offset, &mut buf)?;
        Ok(buf)
    }
}

/// A file on the local filesystem, read with positioned reads (no shared cursor, so one open
/// file serves any number of threads).
pub struct LocalFile {
    file: File,
    len: u64,
}

impl fmt::Debug for LocalFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalFile({} bytes)", self.len)
    }
}

impl LocalFile {
    /// Opens a file for reading.
    pub fn open(path: impl AsRef<Path>) -> io::Result<LocalFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(LocalFile { file, len })
    }

    /// Opens a file as a shared byte source.
    pub fn open_shared(path: impl AsRef<Path>) -> io::Result<Arc<dyn ByteSource>> {
        Ok(Arc::new(LocalFile::open(path)?))
    }
}

impl ByteSource for LocalFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset)
    }
}

/// Bytes held in memory (tests, small uploads, fuzzing).
pub struct MemBytes(pub Vec<u8>);

impl fmt::Debug for MemBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemBytes({} bytes)", self.0.len())
    }
}

impl MemBytes {
    /// Wraps a buffer as a shared byte source.
    pub fn shared(bytes: Vec<u8>) -> Arc<dyn ByteSource> {
        Arc::new(MemBytes(bytes))
    }
}

impl ByteSource for MemBytes {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).ok().filter(|&s| s <= self.0.len());
        match start.and_then(|s| self.0.get(s..s.checked_add(buf.len())?)) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read beyond the end of the data",
            )),
        }
    }
}

/// A sequential, buffered reader over a byte source, for decoders that stream.
pub struct SeqReader {
    source: Arc<dyn ByteSource>,
    pos: u64,
    buf: Vec<u8>,
    buf_start: usize,
    buf_end: usize,
}

impl SeqReader {
    const BUF_SIZE: usize = 256 * 1024;

    /// A reader positioned at the start of `source`.
    pub fn new(source: Arc<dyn ByteSource>) -> SeqReader {
        SeqReader {
            source,
            pos: 0,
            buf: vec![0; Self::BUF_SIZE],
            buf_start: 0,
            buf_end: 0,
        }
    }
}

impl Read for SeqReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for SeqReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.buf_start == self.buf_end {
            let remaining = self.source.len().saturating_sub(self.pos);
            let n = remaining.min(self.buf.len() as u64) as usize;
            self.source.read_exact_at(self.pos, &mut self.buf[..n])?;
            self.buf_start = 0;
            self.buf_end = n;
        }
        Ok(&self.buf[self.buf_start..self.buf_end])
    }

    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.buf_end - self.buf_start);
        self.buf_start += amt;
        self.pos += amt as u64;
    }
}

impl Seek for SeqReader {
    fn seek(&mut self, target: SeekFrom) -> io::Result<u64> {
        let len = self.source.len() as i128;
        let new = match target {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => len + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if new < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start",
            ));
        }
        let new = new as u64;
        // Keep the buffer when the target lies inside it.
        let buffered_from = self.pos - self.buf_start as u64;
        if new >= buffered_from && new <= self.pos + (self.buf_end - self.buf_start) as u64 {
            self.buf_start = (new - buffered_from) as usize;
        } else {
            self.buf_start = 0;
            self.buf_end = 0;
        }
        self.pos = new;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_bytes_refuses_reads_past_end() {
        let src = MemBytes(vec![1, 2, 3]);
        assert_eq!(src.read_range(1, 2).unwrap(), vec![2, 3]);
        assert!(src.read_range(2, 2).is_err());
        assert!(src.read_range(u64::MAX, 1).is_err());
    }

    #[test]
    fn seq_reader_reads_and_seeks() {
        let data: Vec<u8> = (0..=255u8).cycle().take(600_000).collect();
        let mut r = SeqReader::new(MemBytes::shared(data.clone()));
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        r.seek(SeekFrom::Start(300_001)).unwrap();
        let mut b = [0u8; 3];
        r.read_exact(&mut b).unwrap();
        assert_eq!(&b, &data[300_001..300_004]);
        r.seek(SeekFrom::Current(-2)).unwrap();
        r.read_exact(&mut b).unwrap();
        assert_eq!(&b, &data[300_002..300_005]);
    }
}
