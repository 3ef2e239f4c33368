//! What the kernel lists of BPF objects: every loaded program with its
//! run-time statistics (for the overhead benchmark, which measures the
//! peers' programs like tracer's), and the kernel memory of the maps this
//! process holds (`--self-stats`).

use std::{collections::HashMap, fs};

use serde_json::{Value, json};

/// The kernel's program listing now, with the switch count read right after
/// it, as one JSON object:
/// `{"ctxt":N,"programs":[{"id":N,"name":"...","runs":N,"run_ns":N}]}`.
pub fn programs() -> Value {
    let programs: Vec<Value> = aya::programs::loaded_programs()
        // A program can go away between its id and its info: skip it.
        .filter_map(Result::ok)
        .map(|info| {
            json!({
                "id": info.id(),
                "name": info.name_as_str().unwrap_or("?"),
                "runs": info.run_count(),
                "run_ns": info.run_time().as_nanos() as u64,
            })
        })
        .collect();
    let ctxt = super::procstat::context_switches().ok();
    json!({"ctxt": ctxt, "programs": programs})
}

/// One map's kernel memory, as the kernel charges it (`memlock` in the
/// map's fdinfo: entries, per-CPU copies and page rounding included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapMemory {
    pub name: String,
    pub bytes: u64,
}

/// Each BPF map this process holds a descriptor of, largest first (a map
/// held twice counts once).
pub fn own_maps() -> Vec<MapMemory> {
    let names: HashMap<u32, String> = aya::maps::loaded_maps()
        .filter_map(Result::ok)
        .map(|m| (m.id(), m.name_as_str().unwrap_or("?").to_owned()))
        .collect();
    let mut by_id: HashMap<u32, u64> = HashMap::new();
    for entry in fs::read_dir("/proc/self/fdinfo").into_iter().flatten().flatten() {
        if let Some((id, bytes)) = fs::read_to_string(entry.path()).ok().as_deref().and_then(parse_fdinfo) {
            by_id.insert(id, bytes);
        }
    }
    let mut maps: Vec<MapMemory> = by_id
        .into_iter()
        .map(|(id, bytes)| MapMemory {
            name: names.get(&id).cloned().unwrap_or_else(|| format!("map {id}")),
            bytes,
        })
        .collect();
    maps.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    maps
}

/// (map id, memlock) of a map descriptor's fdinfo; `None` for other files.
fn parse_fdinfo(text: &str) -> Option<(u32, u64)> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((u32::try_from(field("map_id:")?).ok()?, field("memlock:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_map_descriptors_only() {
        let map = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\nmap_type:\t2\nkey_size:\t4\n\
                   value_size:\t7944\nmax_entries:\t32\nmap_flags:\t0x400\nmap_extra:\t0x0\n\
                   memlock:\t262144\nmap_id:\t42\nfrozen:\t0\n";
        assert_eq!(parse_fdinfo(map), Some((42, 262144)));
        let prog = "pos:\t0\nflags:\t02000002\nprog_type:\t26\nprog_jited:\t1\nmemlock:\t4096\nprog_id:\t7\n";
        assert_eq!(parse_fdinfo(prog), None);
        assert_eq!(parse_fdinfo("pos:\t0\nflags:\t02\n"), None);
    }
}
