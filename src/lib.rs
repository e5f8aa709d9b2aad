//! ketasim: conductance-based spiking networks on the GPU (wgpu + WGSL) with an exact
//! CPU twin, built to answer whether ketamine raises or lowers glutamate.
//!
//! Layers: [`scenario`] (TOML input, validated) -> [`model`] (the compiled network:
//! constants, initial state, connectivity) -> a [`backend::Backend`] ([`cpu`] or
//! [`gpu`]) advanced by [`run`] in batches, with small read-backs only.

pub mod backend;
pub mod bench;
pub mod clamp;
pub mod cpu;
pub mod dose_response;
pub mod error;
pub mod figures;
pub mod gpu;
pub mod model;
pub mod pk;
pub mod protocol;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod signalling;
pub mod stats;
pub mod stream;
pub mod sweep;

pub use error::{Error, Result};
