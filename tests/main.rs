//! Integration tests: one binary, a module per area. Fixture projects live
//! under `tests/fixtures/`, one real mini-program folder each.

mod common;

mod cli;
mod codec;
mod component;
mod embedding;
mod imports;
mod limits;
mod lossless;
mod messaging;
mod modules;
mod project;
mod release;
mod serve;
mod stdio;
mod tasks;
mod types;
