//! Device-memory plan: every buffer a network needs, computed from the scenario alone
//! (before anything is allocated or any table is built), checked against the
//! adapter's limits, with the largest scale of the scenario that would fit.

use super::layout::{DriveParams, PopParams, ProjParams, SlowPop};
use super::limits::{MAX_DELAY_STEPS, SAMPLE_ENTRIES_PER_POP};
use crate::error::{Error, Result};
use crate::scenario::{steps_of, Rule, Scenario, Storage};

/// One device buffer of the plan.
#[derive(Debug, Clone)]
pub struct BufferPlan {
    /// Buffer name (as in the GPU backend).
    pub name: &'static str,
    /// Size in bytes.
    pub bytes: u64,
}

/// All device buffers of a network.
#[derive(Debug, Clone)]
pub struct MemoryPlan {
    /// Buffers.
    pub buffers: Vec<BufferPlan>,
    /// Sum of the buffers.
    pub total_bytes: u64,
    /// Bytes per neuron of the O(N) buffers (state, ring buffers, spike list).
    pub bytes_per_neuron: u64,
    /// Explicit synapses (tables only).
    pub table_synapses: u64,
}

impl MemoryPlan {
    /// The largest single buffer.
    pub fn largest(&self) -> &BufferPlan {
        self.buffers
            .iter()
            .max_by_key(|b| b.bytes)
            .unwrap_or(&self.buffers[0])
    }
}

/// Longest delay in steps (ring slots - 1). A projection with `delay_sd_ms` draws
/// delays up to mean + 5.3 SD (`rng::NORMAL_F32_MAX`, the largest deviate drawn).
pub fn max_delay_steps(s: &Scenario) -> u32 {
    s.projections
        .iter()
        .map(|p| {
            let sd = p.delay_sd_ms.unwrap_or(0.0);
            let drawn = ((p.delay_ms + crate::rng::NORMAL_F32_MAX * sd) / s.dt_ms + 0.5).floor();
            steps_of(p.delay_ms, s.dt_ms)
                .max(drawn.clamp(0.0, u32::MAX as f64) as u32)
                .clamp(1, MAX_DELAY_STEPS)
        })
        .max()
        .unwrap_or(1)
}

/// Plan the buffers for `s` with every population size multiplied by `factor`.
pub fn plan(s: &Scenario, factor: f64, batch_steps: u32) -> MemoryPlan {
    let size = |name: &str| -> f64 {
        s.population_index(name)
            .map(|i| (s.populations[i].size as f64 * factor).round().max(1.0))
            .unwrap_or(0.0)
    };
    let n: f64 = s
        .populations
        .iter()
        .map(|p| (p.size as f64 * factor).round().max(1.0))
        .sum();
    let n = n as u64;
    let slots = max_delay_steps(s) as u64 + 1;
    let mut table_rows = 0u64;
    let mut table_cols = 0u64;
    for p in &s.projections {
        let table = match p.storage {
            Storage::Table => true,
            Storage::Procedural => false,
            Storage::Auto => p.rule == Rule::FixedIndegree,
        };
        let (pre, post) = (size(&p.pre), size(&p.post));
        if !table {
            // A procedural fixed total number keeps its out-degrees as row pointers.
            if p.rule == Rule::FixedTotalNumber {
                table_rows += pre as u64 + 1;
            }
            continue;
        }
        table_rows += pre as u64 + 1;
        let k = p.k.unwrap_or(0) as f64;
        table_cols += match p.rule {
            Rule::FixedProbability => (p.p.unwrap_or(0.0) * pre * post).ceil(),
            Rule::FixedOutdegree => k * pre,
            Rule::FixedIndegree => k * post,
            Rule::FixedTotalNumber => p.n.unwrap_or(0) as f64,
        } as u64;
    }
    let sample_interval = steps_of(s.record.sample_interval_ms, s.dt_ms).max(1) as u64;
    let batch = batch_steps.max(1) as u64;
    let sim_size = SimulationSize {
        neurons: n,
        ring_slots: slots,
        populations: s.populations.len() as u64,
        projections: s.projections.len() as u64,
        drives: s.drives.len() as u64,
        table_synapses: table_cols,
        count_capacity: batch,
        sample_capacity: batch / sample_interval + 2,
        record_entries: record_capacity(s, batch, |p| size(&p.name) as u64),
    };
    let mut buffers = buffers_of(&sim_size);
    buffers.push(BufferPlan {
        name: "table_rows",
        bytes: 4 * table_rows.max(1),
    });
    // The slow signalling state (docs/signalling.md) is allocated only when a
    // population carries it: 8 + 16 bytes per neuron.
    let sig_bytes = if s.signalling.is_some() { 24 } else { 0 };
    if sig_bytes > 0 {
        buffers.push(BufferPlan {
            name: "sig_nrn",
            bytes: 8 * n,
        });
        buffers.push(BufferPlan {
            name: "slow_state",
            bytes: 16 * n,
        });
        buffers.push(BufferPlan {
            name: "slow_pops",
            bytes: SLOW_POP_BYTES * sim_size.populations,
        });
    }
    let total_bytes = buffers.iter().map(|b| b.bytes).sum();
    MemoryPlan {
        buffers,
        total_bytes,
        bytes_per_neuron: BYTES_PER_NEURON_STATE + 12 * slots + sig_bytes,
        table_synapses: table_cols,
    }
}

/// Sizes that set a simulation's buffers (one network, or a batch of them).
#[derive(Debug, Clone, Copy)]
pub struct SimulationSize {
    /// Neurons.
    pub neurons: u64,
    /// Ring-buffer slots (longest delay in steps + 1).
    pub ring_slots: u64,
    /// Populations.
    pub populations: u64,
    /// Projections.
    pub projections: u64,
    /// Poisson drives.
    pub drives: u64,
    /// Explicit (table) synapses.
    pub table_synapses: u64,
    /// Steps per read-back batch.
    pub count_capacity: u64,
    /// Sample slots per read-back batch.
    pub sample_capacity: u64,
    /// Spike-record entries per read-back batch.
    pub record_entries: u64,
}

/// Spike-record entries a batch of `batch_steps` steps can need:
/// `record.max_spikes_per_batch`, but never more than the recorded neurons can emit
/// (`size_of` gives a population's size): a neuron spikes at most once per
/// refractory period plus one step, so at most `ceil(batch_steps / (ref_steps + 1))`
/// times in a batch. A batch of many small networks thus does not add up their full
/// allowances, and no spike is dropped that would not have been dropped alone.
pub fn record_capacity(
    s: &Scenario,
    batch_steps: u64,
    size_of: impl Fn(&crate::scenario::Population) -> u64,
) -> u64 {
    let possible: u64 = s
        .populations
        .iter()
        .filter(|p| s.record.spikes.contains(&p.name))
        .map(|p| {
            let ref_steps = steps_of(p.neuron.t_ref_ms, s.dt_ms) as u64;
            size_of(p).saturating_mul(batch_steps.div_ceil(ref_steps + 1))
        })
        .sum();
    (s.record.max_spikes_per_batch.max(1) as u64).min(possible.max(1))
}

/// Bytes of one population's, projection's and drive's parameters (`layout.rs`).
const POP_PARAMS_BYTES: u64 = std::mem::size_of::<PopParams>() as u64;
const PROJ_PARAMS_BYTES: u64 = std::mem::size_of::<ProjParams>() as u64;
const DRIVE_PARAMS_BYTES: u64 = std::mem::size_of::<DriveParams>() as u64;
const SLOW_POP_BYTES: u64 = std::mem::size_of::<SlowPop>() as u64;

/// The buffers whose size follows from [`SimulationSize`] alone (all but the table
/// rows and the signalling state).
fn buffers_of(z: &SimulationSize) -> Vec<BufferPlan> {
    let n = z.neurons;
    let slots = z.ring_slots;
    let n_pop = z.populations;
    let batch = z.count_capacity;
    let buffers = vec![
        BufferPlan {
            name: "pops",
            bytes: POP_PARAMS_BYTES * n_pop.max(1),
        },
        BufferPlan {
            name: "projs",
            bytes: PROJ_PARAMS_BYTES * z.projections.max(1),
        },
        BufferPlan {
            name: "drives",
            bytes: DRIVE_PARAMS_BYTES * z.drives.max(1),
        },
        BufferPlan {
            name: "v",
            bytes: 4 * n,
        },
        BufferPlan {
            name: "refrac",
            bytes: 4 * n,
        },
        BufferPlan {
            name: "g_ampa",
            bytes: 4 * n,
        },
        BufferPlan {
            name: "g_gaba",
            bytes: 4 * n,
        },
        BufferPlan {
            name: "x_nmda",
            bytes: 4 * n,
        },
        BufferPlan {
            name: "nmda_pool0",
            bytes: 16 * n,
        },
        BufferPlan {
            name: "nmda_pool1",
            bytes: 16 * n,
        },
        BufferPlan {
            name: "glu_r",
            bytes: 4 * n,
        },
        BufferPlan {
            name: "isi",
            bytes: 16 * n,
        },
        BufferPlan {
            name: "ring_ampa",
            bytes: 4 * n * slots,
        },
        BufferPlan {
            name: "ring_gaba",
            bytes: 4 * n * slots,
        },
        BufferPlan {
            name: "ring_nmda",
            bytes: 4 * n * slots,
        },
        BufferPlan {
            name: "spikes",
            bytes: 8 * n,
        },
        BufferPlan {
            name: "table_cols",
            bytes: 4 * z.table_synapses.max(1),
        },
        BufferPlan {
            name: "pop_counts",
            bytes: 4 * crate::model::limits::pop_counts_words(batch, n_pop),
        },
        BufferPlan {
            name: "samples",
            bytes: 8 * SAMPLE_ENTRIES_PER_POP as u64 * n_pop * z.sample_capacity,
        },
        BufferPlan {
            name: "glu_release",
            bytes: 8 * batch * n_pop,
        },
        BufferPlan {
            name: "glu_trace",
            bytes: 4 * batch * n_pop,
        },
        BufferPlan {
            name: "spike_record",
            bytes: 8 * z.record_entries.max(1),
        },
    ];
    buffers
}

/// The largest buffer of a simulation of size `z` (besides the table rows), for
/// deciding how many networks a batch can hold.
pub fn largest_simulation_buffer(z: SimulationSize) -> u64 {
    buffers_of(&z).iter().map(|b| b.bytes).max().unwrap_or(0)
}

/// Device bytes per neuron besides the ring buffers: V, refractory count, g_AMPA,
/// g_GABA, x_NMDA (5 x 4), two NMDA pools (2 x 16), the releasable glutamate fraction
/// (4), ISI accumulators (16) and the spike-list entry (neuron and step, 8).
pub const BYTES_PER_NEURON_STATE: u64 = 4 * 5 + 2 * 16 + 4 + 16 + 8;

/// Device limits that bound a network.
#[derive(Debug, Clone, Copy)]
pub struct DeviceLimits {
    /// Largest storage-buffer binding (bytes).
    pub max_binding: u64,
    /// Largest buffer (bytes).
    pub max_buffer: u64,
    /// Device memory the run may use (bytes), if known.
    pub memory_budget: Option<u64>,
}

fn fits(p: &MemoryPlan, lim: &DeviceLimits) -> bool {
    let binding = lim.max_binding.min(lim.max_buffer);
    p.buffers.iter().all(|b| b.bytes <= binding)
        && lim.memory_budget.is_none_or(|m| p.total_bytes <= m)
}

/// Check the plan against the limits; on failure say what is needed, the limit, and
/// the largest size of this scenario (all populations scaled alike) that fits.
pub fn check(s: &Scenario, batch_steps: u32, lim: &DeviceLimits) -> Result<MemoryPlan> {
    let p = plan(s, 1.0, batch_steps);
    if fits(&p, lim) {
        return Ok(p);
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if fits(&plan(s, mid, batch_steps), lim) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let largest_n: u64 = s
        .populations
        .iter()
        .map(|q| (q.size as f64 * lo).floor() as u64)
        .sum();
    let big = p.largest();
    let binding = lim.max_binding.min(lim.max_buffer);
    let what = if big.bytes > binding {
        format!(
            "buffer `{}` needs {:.1} MiB but the adapter binds at most {:.1} MiB",
            big.name,
            big.bytes as f64 / MIB,
            binding as f64 / MIB
        )
    } else {
        format!(
            "the network needs {:.1} MiB of device memory but {:.1} MiB are available",
            p.total_bytes as f64 / MIB,
            lim.memory_budget.unwrap_or(0) as f64 / MIB
        )
    };
    Err(Error::Capacity(format!(
        "{what} ({} neurons, {} bytes per neuron, {} ring slots). The largest size of this scenario that fits is about {largest_n} neurons (all populations scaled by {:.4}); shorten the longest delay, shrink the populations or use a device with larger limits",
        s.neuron_count(),
        p.bytes_per_neuron,
        max_delay_steps(s) + 1,
        lo
    )))
}

const MIB: f64 = 1024.0 * 1024.0;

/// What one neuron's update touches, as means over a network's neurons.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeuronTraffic {
    /// NMDA receptor pools (16 bytes each).
    pub pools_per_neuron: f64,
    /// 4-byte state words: V, refractory count, the two synaptic variables, and
    /// x_NMDA for a conductance-based neuron (5; 4 for a current-based one).
    pub state_words_per_neuron: f64,
    /// 4-byte ring-buffer entries read and cleared every step: one per channel that
    /// can receive input (2 or 3).
    pub ring_entries_per_neuron: f64,
}

/// Device bytes one neuron update moves per step: reads and writes of the state
/// words (4 x 2 each) and of each NMDA pool (16 x 2), once per chunk of `fuse_steps`
/// fused steps (the state stays in registers within a chunk; 1 without fusion, as on
/// the CPU backend); the read and clear of the ring-buffer entries (4 x 2 each) every
/// step; plus the sample reduction's reads of V, g_AMPA, g_GABA and the pools every
/// `sample_interval` steps. Spike-dependent traffic is counted per event.
pub fn bytes_per_neuron_step(
    sample_interval_steps: u32,
    traffic: &NeuronTraffic,
    fuse_steps: u32,
) -> f64 {
    let pools = traffic.pools_per_neuron;
    (8.0 * traffic.state_words_per_neuron + 32.0 * pools) / fuse_steps.max(1) as f64
        + 8.0 * traffic.ring_entries_per_neuron
        + (12.0 + 16.0 * pools) / sample_interval_steps.max(1) as f64
}

/// Device bytes per synaptic event: one 4-byte atomic read-modify-write of a ring
/// entry (procedural rules read no synapse memory; tables add a 4-byte index).
pub const BYTES_PER_SYNAPTIC_EVENT: f64 = 8.0;
