//! Batched simulation: independent networks of the same shape side by side in one
//! set of buffers and dispatches (`ketasim sweep` runs a batch per shape).
//!
//! Every random draw is keyed by the network it belongs to, not by the batch: Poisson
//! drives carry their network's key and first neuron (the counter is the neuron's
//! index in its own network), projections carry their network's seed, initial states
//! are drawn per network, and fixed-point scales must agree (they are part of the
//! shape). So each network in a batch evolves bit for bit as it does alone
//! (`tests/sweep_batch.rs`).

use super::limits::{BATCH_BINDING_BYTES, MAX_DRIVES, MAX_POPULATIONS, MAX_PROJECTIONS};
use super::memory;
use super::{Copy, Network, Tables};
use crate::error::{Error, Result};
use crate::model::layout::{ParamsBlock, RULE_TABLE, RULE_TOTAL};

/// What must agree for networks to share a simulation, as a comparable string: time
/// step and span, protocol, drug, recording, fixed-point scales and read-back sizes.
/// Population sizes, weights, rates, seeds and connection rules may differ.
pub fn shape_key(net: &Network) -> String {
    let s = &net.scenario;
    fn json<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap_or_default()
    }
    format!(
        "dt={:?};steps={};segments={:?};bin={};scales={:?};samples={}/{}/{};drug={};pk={};protocol={};record={}/{}/{}/{};signalling={};interventions={}",
        s.dt_ms,
        net.steps,
        net.segments,
        net.rate_bin_steps,
        net.scales,
        net.params.sim.count_capacity,
        net.params.sim.sample_interval,
        net.params.sim.sample_capacity,
        json(&s.drug),
        json(&s.pharmacokinetics),
        json(&s.protocol),
        s.record.rate_bin_ms,
        s.record.sample_interval_ms,
        s.record.baseline_ms,
        s.record.glutamate_window_ms,
        json(&s.signalling),
        json(&s.interventions),
    )
}

/// Whether `nets` fit one simulation: at most [`MAX_POPULATIONS`] populations,
/// [`MAX_PROJECTIONS`] projections and [`MAX_DRIVES`] drives, and no buffer of the
/// joined network beyond [`BATCH_BINDING_BYTES`] (so a batch binds on every adapter;
/// a single network is never split, and may use what its adapter allows).
pub fn fits(nets: &[&Network]) -> bool {
    let sum = |f: fn(&Network) -> u64| nets.iter().map(|n| f(n)).sum::<u64>();
    let n_pop = sum(|n| n.params.sim.n_pop as u64);
    let n_proj = sum(|n| n.params.sim.n_proj as u64);
    let n_drives = sum(|n| n.params.drives.len() as u64);
    if n_pop > MAX_POPULATIONS as u64
        || n_proj > MAX_PROJECTIONS as u64
        || n_drives > MAX_DRIVES as u64
    {
        return false;
    }
    let Some(first) = nets.first() else {
        return true;
    };
    let sim = &first.params.sim;
    let slots = nets
        .iter()
        .map(|n| n.params.sim.ring_slots as u64)
        .max()
        .unwrap_or(1);
    let largest = memory::largest_simulation_buffer(memory::SimulationSize {
        neurons: sum(|n| n.n as u64),
        ring_slots: slots,
        populations: n_pop,
        projections: n_proj,
        drives: n_drives,
        table_synapses: sum(|n| n.tables.cols.len() as u64),
        count_capacity: sim.count_capacity as u64,
        sample_capacity: sim.sample_capacity as u64,
        record_entries: sum(|n| n.params.sim.rec_capacity as u64),
    });
    largest <= BATCH_BINDING_BYTES
}

/// Feed `items` (each with its network, all of one shape; built lazily by the
/// iterator) to `run` in consecutive batches that each fit one simulation, one item
/// per batch with `batch` false. At most one batch of networks is held at a time.
pub fn for_each_batch<T, E: From<Error>>(
    items: impl IntoIterator<Item = std::result::Result<(T, Network), E>>,
    batch: bool,
    mut run: impl FnMut(Vec<(T, Network)>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let mut cur: Vec<(T, Network)> = Vec::new();
    for item in items {
        let (t, net) = item?;
        let fits_cur = batch && {
            let mut probe: Vec<&Network> = cur.iter().map(|(_, n)| n).collect();
            probe.push(&net);
            fits(&probe)
        };
        if !cur.is_empty() && !fits_cur {
            run(std::mem::take(&mut cur))?;
        }
        cur.push((t, net));
    }
    if !cur.is_empty() {
        run(cur)?;
    }
    Ok(())
}

/// One simulation of a batch: the network itself if it is alone, else the merge.
pub fn join(nets: Vec<Network>) -> Result<Network> {
    if nets.len() == 1 {
        nets.into_iter()
            .next()
            .ok_or_else(|| Error::Internal("join: empty batch".into()))
    } else {
        Network::merge(nets)
    }
}

impl Network {
    /// Join independent networks of the same [`shape_key`] into one simulation. Copy
    /// `k`'s populations are renamed `NAME#k` and follow copy `k - 1`'s.
    pub fn merge(nets: Vec<Network>) -> Result<Network> {
        let internal = |m: String| Error::Internal(format!("Network::merge: {m}"));
        let Some(first) = nets.first() else {
            return Err(internal("no networks".into()));
        };
        let key0 = shape_key(first);
        for (k, n) in nets.iter().enumerate() {
            if shape_key(n) != key0 {
                return Err(internal(format!(
                    "network {k} differs in shape from network 0"
                )));
            }
            if n.copies.len() != 1 {
                return Err(internal(format!("network {k} is already a batch")));
            }
        }
        if !fits(&nets.iter().collect::<Vec<_>>()) {
            return Err(Error::Capacity(format!(
                "{} networks exceed one simulation's {MAX_POPULATIONS} populations, {MAX_PROJECTIONS} projections, {MAX_DRIVES} drives or {} MiB per buffer",
                nets.len(),
                BATCH_BINDING_BYTES >> 20
            )));
        }
        let mut params = ParamsBlock {
            sim: first.params.sim,
            pops: Vec::new(),
            projs: Vec::new(),
            drives: Vec::new(),
        };
        let mut scenario = first.scenario.clone();
        scenario.populations.clear();
        scenario.projections.clear();
        scenario.drives.clear();
        scenario.record.spikes.clear();
        let (mut n_off, mut pop_off, mut proj_off, mut drive_off) = (0u32, 0usize, 0usize, 0u32);
        let mut tables = Tables::default();
        let mut projections = Vec::new();
        let mut pop_names = Vec::new();
        let mut copies = Vec::new();
        let mut ring_slots = 0;
        let mut rec_capacity = 0u32;
        for (k, net) in nets.iter().enumerate() {
            let np = net.params.sim.n_pop as usize;
            let nj = net.params.sim.n_proj as usize;
            for p in 0..np {
                let mut pp = net.params.pops[p];
                pp.offset += n_off;
                pp.drive_start += drive_off;
                pp.proj_first += proj_off as u32;
                params.pops.push(pp);
            }
            let nd = net.params.drives.len() as u32;
            for d in 0..nd as usize {
                let mut dp = net.params.drives[d];
                dp.neuron_base += n_off;
                params.drives.push(dp);
            }
            let (rows0, cols0) = (tables.rows.len() as u32, tables.cols.len() as u32);
            for j in 0..nj {
                let mut pr = net.params.projs[j];
                pr.pre_offset += n_off;
                pr.post_offset += n_off;
                if pr.rule == RULE_TABLE || pr.rule == RULE_TOTAL {
                    pr.table_base += rows0;
                }
                params.projs.push(pr);
            }
            // Wrapping: a fixed-total-number projection's row pointers only keep its
            // out-degrees as their differences (connectivity::out_degree).
            tables
                .rows
                .extend(net.tables.rows.iter().map(|r| r.wrapping_add(cols0)));
            tables.cols.extend_from_slice(&net.tables.cols);
            let rename = |name: &str| format!("{name}#{k}");
            for p in &net.scenario.populations {
                let mut p = p.clone();
                p.name = rename(&p.name);
                scenario.populations.push(p);
            }
            for pr in &net.scenario.projections {
                let mut pr = pr.clone();
                pr.pre = rename(&pr.pre);
                pr.post = rename(&pr.post);
                scenario.projections.push(pr);
            }
            for d in &net.scenario.drives {
                let mut d = d.clone();
                d.population = rename(&d.population);
                scenario.drives.push(d);
            }
            scenario
                .record
                .spikes
                .extend(net.scenario.record.spikes.iter().map(|n| rename(n)));
            pop_names.extend(net.pop_names.iter().map(|n| rename(n)));
            if let (Some(all), Some(own)) = (&mut scenario.signalling, &net.scenario.signalling) {
                if k == 0 {
                    all.populations.clear();
                }
                all.populations
                    .extend(own.populations.iter().map(|n| rename(n)));
            }
            projections.extend(net.projections.iter().map(|i| {
                let mut i = i.clone();
                i.label = format!("#{k}: {}", i.label);
                i
            }));
            copies.push(Copy {
                seed: net.copies[0].seed,
                first_neuron: n_off,
                neurons: net.n,
                first_pop: pop_off,
                pops: np,
            });
            ring_slots = ring_slots.max(net.params.sim.ring_slots);
            rec_capacity = rec_capacity.saturating_add(net.params.sim.rec_capacity);
            n_off += net.n;
            pop_off += np;
            proj_off += nj;
            drive_off += nd;
        }
        params.sim.n_total = n_off;
        params.sim.n_pop = pop_off as u32;
        params.sim.n_proj = proj_off as u32;
        params.sim.ring_slots = ring_slots;
        // Fused steps must respect every network's shortest delay and refractory period.
        params.sim.fuse_steps = nets
            .iter()
            .map(|n| n.params.sim.fuse_steps)
            .min()
            .unwrap_or(1);
        params.sim.rec_capacity = rec_capacity;
        params.sim.spike_groups = nets
            .iter()
            .map(|n| n.params.sim.spike_groups)
            .max()
            .unwrap_or(1);
        Ok(Network {
            scenario,
            params,
            pop_names,
            n: n_off,
            steps: first.steps,
            scales: first.scales,
            tables,
            projections,
            poisson_recips: first.poisson_recips,
            rate_bin_steps: first.rate_bin_steps,
            pk: first.pk.clone(),
            segments: first.segments.clone(),
            copies,
            // The same for every network of a batch: interventions, protocol and
            // segments are part of the shape key.
            intervention_at: first.intervention_at,
        })
    }
}
