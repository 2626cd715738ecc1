//! source::exif: (being written)
