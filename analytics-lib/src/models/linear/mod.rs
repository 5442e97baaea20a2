//! Ordinary least squares: the normal equations (one parallel pass) with a
//! QR fallback (linfa-linear), and a guard against collinear features.

mod algorithm;
mod gram;
mod hyperparams;

pub use algorithm::LinearModel;
pub use hyperparams::LinearParams;
