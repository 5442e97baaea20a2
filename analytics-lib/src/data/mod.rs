//! Curated data: loading with validation, the synthetic generator, and
//! importers of public datasets.

pub mod catalog;
pub mod fixture;
pub mod generate;
pub mod geo;
pub mod import;
pub mod keys;
pub mod loader;
pub mod writer;

pub use loader::{CuratedData, CuratedFrames, load};
pub use writer::write_tables;
