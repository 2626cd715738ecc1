//! source::fuzzing: what every reader's `fuzz_one` entry point shares: tight limits, and
//! reading all rows.

use crate::error::Result;
use crate::limits::Limits;
use crate::source::RowReader;

/// Reads every row of a reader and throws them away (fuzzing).
pub(crate) fn drain(mut rows: Box<dyn RowReader>) -> Result<()> {
    let stride = rows.width() as usize * rows.layout().channels();
    let mut band = vec![0; stride * 16];
    while rows.read_rows(&mut band)? > 0 {}
    Ok(())
}

/// The tight limits every `fuzz_one` opens with: 4096 px a side, 64 MiB decoded whole.
pub(crate) fn fuzz_limits() -> Limits {
    Limits {
        budget: crate::memory::MemoryBudget::unlimited(),
        max_pixels: 4096 * 4096,
        max_dimension: 4096,
        max_decode_bytes: 64 << 20,
    }
}
