//! pyramid::tiff_writer: (being written)
