//! pyramid::levels: (being written)
