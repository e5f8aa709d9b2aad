//! The CPU backend's compact connectivity cache: procedural projections generated
//! once into packed tables, 4 bytes per synapse, instead of at every spike.
//!
//! Each cached projection holds, per presynaptic neuron, a run of `u32` words: one per
//! synapse, sorted by target, with three bit fields (low to high):
//! - the gap from the previous synapse's target (the first one's from 0),
//! - the delay minus the projection's smallest delay (steps),
//! - the weight minus the projection's smallest weight (fixed-point units).
//!
//! The field widths are chosen per projection from the range its weights and delays
//! can take, so every synapse is stored exactly: the same target, fixed-point weight
//! and delay that [`synapse_draw`] and [`for_each_synapse`] give (integer
//! accumulation makes the order of a neuron's synapses irrelevant). A gap too long for
//! its field is bridged by skip words: the weight field's largest value (never a
//! weight) marks one, and its lower bits advance the target without delivering.
//!
//! A projection that draws neither weights nor delays stores each synapse's target
//! alone (4 bytes too), in the order of generation: its delivery loop is then the
//! plain table loop, with nothing to decode.

use rayon::prelude::*;

use crate::model::connectivity::{for_each_synapse, has_random_synapses, synapse_draw};
use crate::model::layout::{ProjParams, RULE_TABLE};
use crate::model::limits::PROC_SPLIT;
use crate::rng::NORMAL_F32_MAX;

/// Bytes of one packed synapse (or skip) word.
pub const WORD_BYTES: usize = std::mem::size_of::<u32>();

/// Fewest bits a projection's target-gap field may have; with fewer, most synapses
/// of a sparse projection would need skip words, and it is left uncached instead.
pub const MIN_GAP_BITS: u32 = 4;

/// Extra room (fixed-point units or steps) around the analytic range of the drawn
/// weights and delays, for the f32 rounding of `mean + sd z`; a value outside the
/// range is still caught when the table is made ([`PackedProjection::build`]).
const DRAW_RANGE_MARGIN: f64 = 2.0;

/// Relative extra room for the same rounding where the values exceed f32's exact
/// integers (2^24): several ulps of f32.
const DRAW_RANGE_MARGIN_REL: f64 = 1.0 / (1u64 << 20) as f64;

/// Presynaptic neurons per unit of parallel work when a table is made: large enough
/// that handing out the work costs little, small enough that the temporary copies
/// of a wave of them stay a few MiB.
const BUILD_CHUNK_PRE: u32 = 64;

/// Chunks of [`BUILD_CHUNK_PRE`] made in parallel before their words are appended to
/// the table (bounds the temporary memory to a few dozen chunks).
const BUILD_WAVE_CHUNKS: usize = 32;

/// Smallest and largest weight (fixed point) and delay (steps) of a projection's
/// synapses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrawRange {
    /// Smallest weight (fixed-point units).
    pub w_min: i32,
    /// Largest weight (fixed-point units).
    pub w_max: i32,
    /// Smallest delay (steps).
    pub d_min: u32,
    /// Largest delay (steps).
    pub d_max: u32,
}

impl DrawRange {
    /// The range [`synapse_draw`] can return for `proj`, from the bound
    /// [`NORMAL_F32_MAX`] on the normal deviates, widened by a margin for rounding;
    /// a weight whose sign differs from the mean's is redrawn (then 0), a delay below
    /// one step likewise (then 1), and delays are capped at `ring_slots - 1`.
    pub fn analytic(proj: &ProjParams, ring_slots: u32) -> DrawRange {
        let margin = |x: f64| DRAW_RANGE_MARGIN + x.abs() * DRAW_RANGE_MARGIN_REL;
        let (w_min, w_max) = if proj.w_sd_fixed > 0.0 {
            let mean = proj.w_mean_fixed as f64;
            let spread = proj.w_sd_fixed as f64 * NORMAL_F32_MAX;
            let lo = (mean - spread + 0.5).floor();
            let hi = (mean + spread + 0.5).floor();
            let (lo, hi) = (lo - margin(lo), hi + margin(hi));
            // Wrong signs are redrawn; 0 is what is left after the last attempt.
            let (lo, hi) = if mean >= 0.0 {
                (lo.max(0.0), hi.max(0.0))
            } else {
                (lo.min(0.0), hi.min(0.0))
            };
            let clamp = |x: f64| x.clamp(i32::MIN as f64, i32::MAX as f64) as i32;
            (clamp(lo), clamp(hi))
        } else {
            (proj.weight_fixed, proj.weight_fixed)
        };
        let (d_min, d_max) = if proj.d_sd_steps > 0.0 {
            let mean = proj.d_mean_steps as f64;
            let spread = proj.d_sd_steps as f64 * NORMAL_F32_MAX;
            let lo = (mean - spread + 0.5).floor();
            let hi = (mean + spread + 0.5).floor();
            let cap = ring_slots.saturating_sub(1).max(1) as f64;
            let lo = (lo - margin(lo)).clamp(1.0, cap);
            let hi = (hi + margin(hi)).clamp(1.0, cap);
            (lo as u32, hi as u32)
        } else {
            (proj.delay_steps, proj.delay_steps)
        };
        DrawRange {
            w_min,
            w_max,
            d_min,
            d_max,
        }
    }

    /// The exact range of the projection's synapses (every synapse drawn once).
    pub fn observed(proj: &ProjParams, rows: &[u32], ring_slots: u32) -> DrawRange {
        let mut r = DrawRange {
            w_min: i32::MAX,
            w_max: i32::MIN,
            d_min: u32::MAX,
            d_max: 0,
        };
        for pre in 0..proj.pre_size {
            for_each_row_synapse(proj, rows, pre, ring_slots, |_, w, d| {
                r.w_min = r.w_min.min(w);
                r.w_max = r.w_max.max(w);
                r.d_min = r.d_min.min(d);
                r.d_max = r.d_max.max(d);
            });
        }
        if r.w_min > r.w_max {
            // No synapses: any range will do.
            r = DrawRange {
                w_min: proj.weight_fixed,
                w_max: proj.weight_fixed,
                d_min: proj.delay_steps,
                d_max: proj.delay_steps,
            };
        }
        r
    }

    fn contains(&self, w: i32, d: u32) -> bool {
        (self.w_min..=self.w_max).contains(&w) && (self.d_min..=self.d_max).contains(&d)
    }
}

/// Bits needed to write `x` (0 for 0).
fn bits(x: u64) -> u32 {
    u64::BITS - x.leading_zeros()
}

/// How a projection's words are laid out (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WordLayout {
    /// Mask of the target-gap field (bits `0..gap_bits`).
    pub gap_mask: u32,
    /// Position of the delay field.
    pub delay_shift: u32,
    /// Mask of the delay field (after the shift).
    pub delay_mask: u32,
    /// Position of the weight field (the top bits, at least one).
    pub weight_shift: u32,
    /// Weight-field value that marks a skip word (the field's largest value).
    pub skip_field: u32,
    /// Mask of a skip word's target advance (all bits below the weight field).
    pub skip_mask: u32,
    /// Weight of a weight field of 0 (fixed-point units).
    pub w_min: i32,
    /// Delay of a delay field of 0 (steps).
    pub d_min: u32,
}

impl WordLayout {
    /// Field widths for `range`: the weight field holds `w_max - w_min` and one more
    /// value (the skip mark), the delay field `d_max - d_min`, the gap the rest.
    /// `None` if fewer than [`MIN_GAP_BITS`] remain for the gap.
    pub fn for_range(range: &DrawRange) -> Option<WordLayout> {
        let w_span = (range.w_max as i64 - range.w_min as i64).max(0) as u64;
        let weight_bits = bits(w_span + 1);
        let delay_bits = bits(range.d_max.saturating_sub(range.d_min) as u64);
        let gap_bits = 32u32.checked_sub(weight_bits + delay_bits)?;
        if gap_bits < MIN_GAP_BITS {
            return None;
        }
        let weight_shift = gap_bits + delay_bits;
        Some(WordLayout {
            gap_mask: (1 << gap_bits) - 1,
            delay_shift: gap_bits,
            delay_mask: ((1u64 << delay_bits) - 1) as u32,
            weight_shift,
            skip_field: u32::MAX >> weight_shift,
            skip_mask: (1 << weight_shift) - 1,
            w_min: range.w_min,
            d_min: range.d_min,
        })
    }

    /// Appends the word(s) of a synapse `gap` targets after the previous one.
    fn push(&self, words: &mut Vec<u32>, mut gap: u32, w: i32, d: u32) {
        while gap > self.gap_mask {
            let skip = gap.min(self.skip_mask);
            words.push((self.skip_field << self.weight_shift) | skip);
            gap -= skip;
        }
        let w_field = (w as i64 - self.w_min as i64) as u32;
        let d_field = d - self.d_min;
        words.push((w_field << self.weight_shift) | (d_field << self.delay_shift) | gap);
    }
}

/// Calls `f(target, weight, delay)` for every synapse of presynaptic neuron
/// `pre_local` of a procedural projection, in the shader's order (slice by slice).
fn for_each_row_synapse(
    proj: &ProjParams,
    rows: &[u32],
    pre_local: u32,
    ring_slots: u32,
    mut f: impl FnMut(u32, i32, u32),
) {
    for tid in 0..PROC_SPLIT {
        for_each_synapse(proj, rows, pre_local, tid, |t, id| {
            let (w, d) = synapse_draw(proj, pre_local, id, ring_slots);
            f(t, w, d);
        });
    }
}

/// The synapses of presynaptic neurons `pres`, packed with `layout` (or, `plain`,
/// as bare targets) and appended to `words`, with each neuron's word count appended
/// to `lens`. `Err(())` if a weight or delay falls outside `range`.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site, all of them needed"
)]
fn pack_rows(
    proj: &ProjParams,
    table_rows: &[u32],
    pres: std::ops::Range<u32>,
    ring_slots: u32,
    range: &DrawRange,
    layout: &WordLayout,
    plain: bool,
    words: &mut Vec<u32>,
    lens: &mut Vec<u32>,
) -> Result<(), ()> {
    let mut row: Vec<(u32, i32, u32)> = Vec::new();
    for pre in pres {
        row.clear();
        let mut inside = true;
        for_each_row_synapse(proj, table_rows, pre, ring_slots, |t, w, d| {
            inside &= range.contains(w, d);
            row.push((t, w, d));
        });
        if !inside {
            return Err(());
        }
        let before = words.len();
        if plain {
            words.extend(row.iter().map(|s| s.0));
            lens.push((words.len() - before) as u32);
            continue;
        }
        row.sort_unstable_by_key(|s| s.0);
        let mut prev = 0;
        for &(t, w, d) in &row {
            layout.push(words, t - prev, w, d);
            prev = t;
        }
        lens.push((words.len() - before) as u32);
    }
    Ok(())
}

/// One cached projection.
#[derive(Debug, Clone)]
pub struct PackedProjection {
    /// Where each presynaptic neuron's words start in `words` (`pre_size + 1`).
    rows: Vec<u32>,
    /// The packed synapse and skip words (`plain`: the targets).
    words: Vec<u32>,
    layout: WordLayout,
    /// The projection draws neither weights nor delays: every synapse has weight
    /// `layout.w_min` and delay `layout.d_min`, and `words` holds bare targets.
    plain: bool,
}

impl PackedProjection {
    /// The table of procedural projection `proj` with the field widths `range` needs,
    /// made on the current rayon pool. `None` if the range leaves too few gap bits
    /// ([`WordLayout::for_range`]), a weight or delay falls outside `range`, or the
    /// table would exceed 2^32 words.
    pub fn build_with_range(
        proj: &ProjParams,
        table_rows: &[u32],
        ring_slots: u32,
        range: &DrawRange,
        expected_words: usize,
    ) -> Option<PackedProjection> {
        let layout = WordLayout::for_range(range)?;
        let plain = !has_random_synapses(proj);
        let mut words = Vec::with_capacity(expected_words);
        let mut rows = Vec::with_capacity(proj.pre_size as usize + 1);
        rows.push(0u32);
        let chunks: Vec<u32> = (0..proj.pre_size)
            .step_by(BUILD_CHUNK_PRE as usize)
            .collect();
        for wave in chunks.chunks(BUILD_WAVE_CHUNKS) {
            let parts: Vec<Option<(Vec<u32>, Vec<u32>)>> = wave
                .par_iter()
                .map(|&lo| {
                    let hi = (lo + BUILD_CHUNK_PRE).min(proj.pre_size);
                    let (mut w, mut l) = (Vec::new(), Vec::new());
                    pack_rows(
                        proj,
                        table_rows,
                        lo..hi,
                        ring_slots,
                        range,
                        &layout,
                        plain,
                        &mut w,
                        &mut l,
                    )
                    .ok()?;
                    Some((w, l))
                })
                .collect();
            for part in parts {
                let (w, lens) = part?;
                words.extend_from_slice(&w);
                for len in lens {
                    let end = *rows.last()? as u64 + len as u64;
                    rows.push(u32::try_from(end).ok()?);
                }
            }
        }
        words.shrink_to_fit();
        Some(PackedProjection {
            rows,
            words,
            layout,
            plain,
        })
    }

    /// The table of procedural projection `proj` (`expected_words`: capacity to
    /// reserve): with the analytic range of its draws, or, should a draw fall outside
    /// it, with the exact range found by drawing every synapse once more. `None` if
    /// the projection cannot be packed ([`PackedProjection::build_with_range`]).
    pub fn build(
        proj: &ProjParams,
        table_rows: &[u32],
        ring_slots: u32,
        expected_words: usize,
    ) -> Option<PackedProjection> {
        PackedProjection::build_with_range(
            proj,
            table_rows,
            ring_slots,
            &DrawRange::analytic(proj, ring_slots),
            expected_words,
        )
        .or_else(|| {
            let exact = DrawRange::observed(proj, table_rows, ring_slots);
            PackedProjection::build_with_range(proj, table_rows, ring_slots, &exact, expected_words)
        })
    }

    /// Memory held (bytes).
    pub fn bytes(&self) -> usize {
        WORD_BYTES * (self.rows.capacity() + self.words.capacity())
    }

    /// Synapse and skip words stored.
    pub fn words(&self) -> usize {
        self.words.len()
    }

    /// The layout of the words.
    pub fn layout(&self) -> &WordLayout {
        &self.layout
    }

    /// Calls `f(target, weight, delay_field)` for every synapse of presynaptic
    /// neuron `pre_local`, in table order (by target); the delay is `d_min` plus
    /// the field. Skip words only advance the target.
    #[inline(always)]
    fn decode(&self, pre_local: u32, mut f: impl FnMut(u32, i32, u32)) {
        let l = self.layout;
        let (start, end) = (
            self.rows[pre_local as usize] as usize,
            self.rows[pre_local as usize + 1] as usize,
        );
        if self.plain {
            for &target in &self.words[start..end] {
                f(target, l.w_min, 0);
            }
            return;
        }
        let mut target = 0u32;
        for &word in &self.words[start..end] {
            let w_field = word >> l.weight_shift;
            if w_field == l.skip_field {
                target += word & l.skip_mask;
                continue;
            }
            target += word & l.gap_mask;
            f(
                target,
                l.w_min.wrapping_add(w_field as i32),
                (word >> l.delay_shift) & l.delay_mask,
            );
        }
    }

    /// Calls `deliver(ring_index, weight)` for every synapse of presynaptic neuron
    /// `pre_local`: `ring_index` is the entry of its target in the ring-buffer slot of
    /// its arrival (`(prop_step + delay) % ring_slots`, rows of `n_total`, the
    /// projection's targets from `post_offset`), as the table and procedural paths
    /// of `propagate` compute it.
    #[inline(always)]
    pub fn for_each_arrival(
        &self,
        pre_local: u32,
        prop_step: u32,
        ring_slots: u32,
        n_total: u32,
        post_offset: u32,
        mut deliver: impl FnMut(usize, i32),
    ) {
        let (n_total, post) = (n_total as usize, post_offset as usize);
        if self.plain {
            // One weight and one delay: the table loop.
            let (l, pre) = (self.layout, pre_local as usize);
            let slot = ((prop_step + l.d_min) % ring_slots) as usize;
            let base = slot * n_total + post;
            for &target in &self.words[self.rows[pre] as usize..self.rows[pre + 1] as usize] {
                deliver(base + target as usize, l.w_min);
            }
            return;
        }
        // Slot of delay `d_min`; plus the delay field it stays below 2 ring_slots
        // (delays are below ring_slots), so one subtraction wraps it.
        let slot0 = prop_step % ring_slots + self.layout.d_min;
        self.decode(pre_local, |target, w, d_field| {
            let mut slot = slot0 + d_field;
            if slot >= ring_slots {
                slot -= ring_slots;
            }
            deliver(slot as usize * n_total + post + target as usize, w);
        });
    }

    /// The synapses of presynaptic neuron `pre_local` decoded: (target, weight,
    /// delay), sorted by target (for tests and checks).
    pub fn row(&self, pre_local: u32) -> Vec<(u32, i32, u32)> {
        let mut out = Vec::new();
        let d_min = self.layout.d_min;
        self.decode(pre_local, |t, w, d_field| out.push((t, w, d_min + d_field)));
        out
    }
}

/// The cached projections of a network, by projection index (`None`: regenerated
/// at every spike, or a table of the network itself).
#[derive(Debug, Clone, Default)]
pub struct SynapseCache {
    projs: Vec<Option<PackedProjection>>,
}

impl SynapseCache {
    /// Cache the procedural projections of `projs` in order while their estimated
    /// size fits `budget_bytes` (`synapses`: the expected synapse count of each;
    /// projections that do not fit are skipped, later smaller ones may still fit).
    pub fn build(
        budget_bytes: usize,
        projs: &[ProjParams],
        table_rows: &[u32],
        synapses: &[f64],
        ring_slots: u32,
    ) -> SynapseCache {
        let mut budget = budget_bytes;
        let mut out = Vec::with_capacity(projs.len());
        for (pr, &n_syn) in projs.iter().zip(synapses) {
            let words = (n_syn * EXPECTED_WORDS_PER_SYNAPSE).ceil() as usize;
            let need = WORD_BYTES * (words + pr.pre_size as usize + 1);
            if pr.rule == RULE_TABLE || need > budget {
                out.push(None);
                continue;
            }
            let packed = PackedProjection::build(pr, table_rows, ring_slots, words);
            if let Some(p) = &packed {
                budget = budget.saturating_sub(p.bytes());
            }
            out.push(packed);
        }
        SynapseCache { projs: out }
    }

    /// Projection `pj`'s table, if cached.
    #[inline]
    pub fn get(&self, pj: usize) -> Option<&PackedProjection> {
        self.projs.get(pj).and_then(Option::as_ref)
    }

    /// Memory held (bytes).
    pub fn bytes(&self) -> usize {
        self.projs
            .iter()
            .flatten()
            .map(PackedProjection::bytes)
            .sum()
    }
}

/// Words expected per synapse when a table's size is estimated: one, and a few
/// percent of skip words for sparse projections (the microcircuit's: 0.3%).
pub const EXPECTED_WORDS_PER_SYNAPSE: f64 = 1.02;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layout::RULE_OUTDEGREE;

    /// A fixed out-degree projection with the microcircuit's excitatory draws
    /// (87.81 pA at 2048 LSB/pA, SD 10%; delay 1.5 ms, SD 50%, at 0.1 ms).
    fn proj(post_size: u32, k: u32) -> ProjParams {
        let mut p: ProjParams = bytemuck::Zeroable::zeroed();
        p.rule = RULE_OUTDEGREE;
        p.pre_size = 50;
        p.post_size = post_size;
        p.k = k;
        p.weight_fixed = 179_835;
        p.w_mean_fixed = 179_835.0;
        p.w_sd_fixed = 17_983.5;
        p.delay_steps = 15;
        p.d_mean_steps = 15.0;
        p.d_sd_steps = 7.5;
        p.stream = crate::rng::STREAM_CONN | (7 * PROC_SPLIT);
        p.seed_lo = 7;
        p
    }

    /// The sorted synapses of `pre` as `synapse_draw` gives them.
    fn drawn(p: &ProjParams, pre: u32, ring_slots: u32) -> Vec<(u32, i32, u32)> {
        let mut v = Vec::new();
        for_each_row_synapse(p, &[], pre, ring_slots, |t, w, d| v.push((t, w, d)));
        v.sort_unstable();
        v
    }

    #[test]
    fn packed_rows_are_the_drawn_synapses() {
        // Dense (short gaps) and sparse (long gaps: skip words) projections, and
        // one that draws nothing (bare targets).
        for (post_size, k, draws) in [(2000, 300, true), (60_000, 5, true), (2000, 300, false)] {
            let p = if draws {
                proj(post_size, k)
            } else {
                fixed(proj(post_size, k))
            };
            let packed = PackedProjection::build(&p, &[], 64, 0).expect("packable");
            for pre in 0..p.pre_size {
                let mut row = packed.row(pre);
                row.sort_unstable();
                assert_eq!(
                    row,
                    drawn(&p, pre, 64),
                    "pre {pre} of post_size {post_size}"
                );
            }
        }
    }

    /// `p` without per-synapse draws.
    fn fixed(mut p: ProjParams) -> ProjParams {
        p.w_sd_fixed = 0.0;
        p.d_sd_steps = 0.0;
        p
    }

    #[test]
    fn arrivals_wrap_the_ring_as_propagate_does() {
        for p in [proj(60_000, 5), fixed(proj(60_000, 5))] {
            arrivals_wrap(&p);
        }
    }

    fn arrivals_wrap(p: &ProjParams) {
        let packed = PackedProjection::build(p, &[], 64, 0).expect("packable");
        let (slots, n_total, post) = (64u32, 70_000u32, 1000u32);
        for prop_step in [0u32, 50, 63, 1000] {
            for pre in 0..p.pre_size {
                let mut got = Vec::new();
                packed.for_each_arrival(pre, prop_step, slots, n_total, post, |i, w| {
                    got.push((i, w))
                });
                let mut want: Vec<(usize, i32)> = drawn(p, pre, slots)
                    .iter()
                    .map(|&(t, w, d)| {
                        let slot = (prop_step + d) % slots;
                        ((slot * n_total + post + t) as usize, w)
                    })
                    .collect();
                got.sort_unstable();
                want.sort_unstable();
                assert_eq!(got, want, "pre {pre} at step {prop_step}");
            }
        }
    }

    #[test]
    fn sparse_rows_use_skip_words() {
        let p = proj(60_000, 5);
        let packed = PackedProjection::build(&p, &[], 64, 0).expect("packable");
        let gap_max = packed.layout().gap_mask as usize;
        assert!(gap_max < 60_000 / 5, "gaps would all fit: {gap_max}");
        assert!(packed.words() > (p.pre_size * p.k) as usize);
    }

    #[test]
    fn analytic_range_contains_the_draws() {
        let p = proj(2000, 300);
        let (a, o) = (
            DrawRange::analytic(&p, 64),
            DrawRange::observed(&p, &[], 64),
        );
        assert!(a.w_min <= o.w_min && a.w_max >= o.w_max, "{a:?} {o:?}");
        assert!(a.d_min <= o.d_min && a.d_max >= o.d_max, "{a:?} {o:?}");
    }

    #[test]
    fn a_draw_outside_the_range_is_refused_and_the_exact_range_used() {
        let p = proj(2000, 300);
        let exact = DrawRange::observed(&p, &[], 64);
        let narrow = DrawRange {
            w_max: exact.w_max - 1,
            ..exact
        };
        assert!(PackedProjection::build_with_range(&p, &[], 64, &narrow, 0).is_none());
        let narrow = DrawRange {
            d_min: exact.d_min + 1,
            ..exact
        };
        assert!(PackedProjection::build_with_range(&p, &[], 64, &narrow, 0).is_none());
        let packed = PackedProjection::build_with_range(&p, &[], 64, &exact, 0).expect("exact");
        assert_eq!(packed.layout().w_min, exact.w_min);
    }

    #[test]
    fn too_wide_a_range_is_not_packed() {
        let wide = DrawRange {
            w_min: i32::MIN,
            w_max: i32::MAX,
            d_min: 1,
            d_max: 1,
        };
        assert!(WordLayout::for_range(&wide).is_none());
        let fits = DrawRange {
            w_min: -100,
            w_max: 100,
            d_min: 1,
            d_max: 56,
        };
        let l = WordLayout::for_range(&fits).expect("fits");
        // 201 weights + the skip mark: 8 bits; 55 delays: 6 bits; 18 gap bits.
        assert_eq!((l.weight_shift, l.delay_shift), (24, 18));
        assert_eq!(l.skip_field, 255);
    }
}
