//! CPU twin of `shaders/reduce_stats.wgsl`: per-population sums of each neuron's
//! quantised V, g_AMPA, g_GABA and s_NMDA. Integer sums are exact, so the shader's
//! workgroup-then-atomic order gives the same totals.

use super::Buffers;
use crate::model::limits::{STATS_PER_POP, STAT_CLAMP, STAT_SCALES};

/// Round `x * scale` to the nearest integer (ties up), clamped to +-`STAT_CLAMP`.
pub fn quantise(x: f32, scale: f32) -> i32 {
    (x * scale + 0.5).floor().clamp(-STAT_CLAMP, STAT_CLAMP) as i32
}

/// The four quantised samples of neuron `i`.
pub fn neuron_sample(i: usize, b: &Buffers) -> [i32; STATS_PER_POP] {
    [
        quantise(b.v[i], STAT_SCALES[0]),
        quantise(b.g_ampa[i], STAT_SCALES[1]),
        quantise(b.g_gaba[i], STAT_SCALES[2]),
        quantise(b.s_nmda[i], STAT_SCALES[3]),
    ]
}
