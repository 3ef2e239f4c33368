//! Parsers of flag values: durations, sizes, CPU lists, metric lists,
//! labels, listen addresses.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use crate::{export::label::Label, snapshot::metrics::MetricSet};

pub(super) fn parse_size(s: &str) -> Result<usize, String> {
    let size = crate::cli::size::parse(s).map_err(|e| e.to_string())?;
    if size > 1 << 30 {
        return Err(format!("`{s}` is more than the 1 GiB limit for a working set"));
    }
    Ok(size)
}

/// A ring size of `tracer bench --sweep`: 2 to 1024 tasks.
pub(super) fn parse_ring(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (2..=1024).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a ring size (2 to 1024 tasks)")),
    }
}

/// CPU numbers from `--cpu`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

pub(super) fn parse_cpus(s: &str) -> Result<CpuList, String> {
    crate::probe::filter::parse_cpu_list(s)
        .map(CpuList)
        .map_err(|e| e.to_string())
}

pub(super) fn parse_metrics(s: &str) -> Result<MetricSet, String> {
    MetricSet::parse(s).map_err(|e| e.to_string())
}

pub(super) fn parse_label(s: &str) -> Result<Label, String> {
    crate::export::label::parse(s).map_err(|e| e.to_string())
}

/// `HOST:PORT` (`[::1]:PORT` for IPv6), or a bare `PORT` on loopback.
pub(super) fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    s.parse().map_err(|_| {
        format!("`{s}` is not an address to listen on: give HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464) or a port")
    })
}

pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::cli::duration::parse(s).map_err(|e| e.to_string())
}
