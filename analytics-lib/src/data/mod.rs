//! Curated data: loading with validation, and the synthetic generator.

pub mod catalog;
pub mod fixture;
pub mod generate;
pub mod geo;
pub mod loader;
pub mod writer;

pub use loader::{CuratedData, CuratedFrames, load};
pub use writer::write_tables;
