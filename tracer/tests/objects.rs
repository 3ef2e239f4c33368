//! The embedded kernel objects against the names and layouts the CLI uses,
//! with no kernel and no root: every map, program and load-time global that
//! `tracer-common` names must be in both objects, with the sizes the CLI
//! reads and writes, and each object must hold nothing that list leaves out.
//! A rename on one side only fails here, not at load time on a user's host.

use std::{collections::BTreeSet, mem::size_of};

use object::{Object as _, ObjectSection as _, ObjectSymbol as _, SymbolKind};
use tracer::probe::embedded_objects;
use tracer_common::{
    bounds::{EXITED_RING_BYTES, MAX_CPUS, MAX_PROCS, MAX_TASK_TIMES, MAX_TASKS, MAX_TGIDS, MAX_TID_TIMES, MAX_TIDS},
    class::NUM_CLASSES,
    filter::CgroupFilter,
    hist::Histogram,
    metric::NUM_METRICS,
    names::{global, map, prog},
    tracepoint::TracepointLayout,
    values::{CpuState, ProcCounts, TaskTimes},
};

/// Maps that the objects hold besides tracer's own: aya-log's buffer and the
/// sections of globals.
fn is_support_map(name: &str) -> bool {
    name.starts_with("AYA_LOG") || name.starts_with('.')
}

fn parse(name: &str, bytes: &[u8]) -> aya_obj::Object {
    aya_obj::Object::parse(bytes).unwrap_or_else(|e| panic!("{name}: not a BPF object aya can parse: {e}"))
}

#[test]
fn every_named_program_is_in_both_objects_and_nothing_else() {
    for (name, bytes) in embedded_objects() {
        let obj = parse(name, bytes);
        let found: BTreeSet<&str> = obj.programs.keys().map(String::as_str).collect();
        let named: BTreeSet<&str> = prog::ALL.iter().copied().collect();
        assert_eq!(
            found, named,
            "{name}: programs in the object vs tracer_common::names::prog::ALL"
        );
    }
}

#[test]
fn every_named_map_is_in_both_objects_and_nothing_else() {
    for (name, bytes) in embedded_objects() {
        let obj = parse(name, bytes);
        let found: BTreeSet<&str> = obj
            .maps
            .keys()
            .map(String::as_str)
            .filter(|m| !is_support_map(m))
            .collect();
        let named: BTreeSet<&str> = map::ALL.iter().copied().collect();
        assert_eq!(
            found, named,
            "{name}: maps in the object vs tracer_common::names::map::ALL"
        );
    }
}

/// (map, key size, value size, capacity): what the CLI reads, writes and
/// documents. `None`: set by the kernel or the CLI at load time.
fn expected_maps(object: &str) -> Vec<(&'static str, u32, u32, Option<u32>)> {
    let lru = object == "tracer-lru";
    let s = |n: usize| n as u32;
    vec![
        (map::CPU, 4, s(size_of::<CpuState>()), Some(1)),
        (
            map::HISTS,
            4,
            s(size_of::<Histogram>()),
            Some(s(NUM_METRICS * NUM_CLASSES)),
        ),
        (map::TID_TIMES, 4, s(size_of::<TaskTimes>()), Some(MAX_TID_TIMES)),
        (
            map::TASK_TIMES,
            4,
            s(size_of::<TaskTimes>()),
            lru.then_some(MAX_TASK_TIMES),
        ),
        (map::TGIDS, 4, 1, Some(MAX_TGIDS)),
        (map::TIDS, 4, 1, Some(MAX_TIDS)),
        (map::CPUS, 4, 1, Some(MAX_CPUS)),
        (map::PROCS, 4, s(size_of::<ProcCounts>()), Some(MAX_PROCS)),
        (map::COMMS, 4, 16, Some(MAX_PROCS)),
        (map::EXITED, 0, 0, Some(EXITED_RING_BYTES)),
        (map::TASKS, 4, 4, Some(MAX_TASKS)),
    ]
}

#[test]
fn maps_have_the_layouts_and_bounds_the_cli_expects() {
    for (name, bytes) in embedded_objects() {
        let obj = parse(name, bytes);
        for (map_name, key, value, capacity) in expected_maps(name) {
            let m = obj
                .maps
                .get(map_name)
                .unwrap_or_else(|| panic!("{name}: no map {map_name}"));
            assert_eq!(
                (m.key_size(), m.value_size()),
                (key, value),
                "{name}: {map_name} key and value sizes"
            );
            if let Some(capacity) = capacity {
                assert_eq!(m.max_entries(), capacity, "{name}: {map_name} capacity");
            }
        }
    }
}

/// The size of each load-time global as the CLI writes it.
fn global_size(name: &str) -> usize {
    match name {
        global::FILTER_COMM_NAME => 16,
        global::FILTER_CGROUP_SPEC => size_of::<CgroupFilter>(),
        global::TP_LAYOUT => size_of::<TracepointLayout>(),
        global::PER_PROCESS | global::FOLLOW_CHILDREN => 1,
        _ => size_of::<u32>(),
    }
}

#[test]
fn every_named_global_is_in_rodata_with_its_size_and_nothing_else() {
    for (name, bytes) in embedded_objects() {
        let elf = object::File::parse(bytes).unwrap_or_else(|e| panic!("{name}: not an ELF file: {e}"));
        let rodata: BTreeSet<_> = elf
            .sections()
            .filter(|s| s.name().is_ok_and(|n| n.starts_with(".rodata")))
            .map(|s| s.index().0)
            .collect();
        let globals: Vec<(String, u64)> = elf
            .symbols()
            .filter(|s| {
                s.kind() == SymbolKind::Data
                    && s.is_global()
                    && s.section_index().is_some_and(|i| rodata.contains(&i.0))
            })
            .filter_map(|s| Some((s.name().ok()?.to_owned(), s.size())))
            .filter(|(n, _)| !n.starts_with("AYA_LOG"))
            .collect();
        let found: BTreeSet<&str> = globals.iter().map(|(n, _)| n.as_str()).collect();
        let named: BTreeSet<&str> = global::ALL.iter().copied().collect();
        assert_eq!(
            found, named,
            "{name}: globals in .rodata vs tracer_common::names::global::ALL"
        );
        for (global_name, size) in &globals {
            assert_eq!(
                *size as usize,
                global_size(global_name),
                "{name}: size of {global_name}"
            );
        }
    }
}
