//! Nothing: this package exists to be fetched (Cargo.toml).
