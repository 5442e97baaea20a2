//! Run-time search path for the prebuilt XGBoost library, only with the
//! `models` feature (the only feature that links it).
//!
//! `.cargo/config.toml` sets `XGBOOST_LIB_DIR` to the folder that
//! `scripts/fetch-xgboost.sh` fills; the `xgb` crate links against it, and the
//! rpath set here lets this package's binaries and test binaries find it at run
//! time without `LD_LIBRARY_PATH`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=XGBOOST_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_MODELS").is_none() {
        return;
    }
    let dir = match std::env::var_os("XGBOOST_LIB_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
            match manifest {
                Some(m) => m.join("../third_party/xgboost-cpu/xgboost/lib"),
                None => return,
            }
        }
    };
    let dir = dir.canonicalize().unwrap_or(dir);
    if !dir.join("libxgboost.so").exists() {
        println!(
            "cargo:warning=libxgboost.so not found in {}: run scripts/fetch-xgboost.sh",
            dir.display()
        );
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
}
