//! pyramid::build: (being written)
