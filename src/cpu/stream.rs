//! Twin of `shaders/stream.wgsl` (STREAM's Copy): `dst[i] = src[i]` for 16-byte
//! elements, on all of the backend's threads.

use rayon::prelude::*;

/// One 16-byte element, as the shader's `vec4<u32>`.
pub type Element = [u32; 4];

/// Elements a thread copies at a time (1 MiB).
const CHUNK: usize = 1 << 16;

/// `dst[i] = src[i]` for every element (`dst` and `src` of the same length).
pub fn copy(src: &[Element], dst: &mut [Element]) {
    dst.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .for_each(|(d, s)| d.copy_from_slice(s));
}
