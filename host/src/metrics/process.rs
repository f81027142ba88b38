//! The standard `process_*` families (as the Go and Python clients name them), read from
//! `/proc/self` at scrape time. Families whose file cannot be read are left out.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// The fields of `/proc/self/stat` the families use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// User and system CPU time, in clock ticks.
    pub utime: u64,
    pub stime: u64,
    pub threads: u64,
    /// Start time after boot, in clock ticks.
    pub starttime: u64,
    /// Virtual memory size in bytes.
    pub vsize: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat` (the command name, in parentheses, may hold spaces).
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name; field N is at N - 3.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: n(14)?,
        stime: n(15)?,
        threads: n(20)?,
        starttime: n(22)?,
        vsize: n(23)?,
        rss_pages: n(24)?,
    })
}

/// The soft `Max open files` limit from `/proc/<pid>/limits` (`None` if unlimited).
pub fn parse_max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `btime` (boot time, seconds since the epoch) from `/proc/stat`.
pub fn parse_boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf reads a configuration value; it has no preconditions.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|v| *v > 0)
}

/// Reads `/proc/self` on every scrape.
#[derive(Debug)]
pub struct ProcessCollector {
    ticks_per_second: f64,
    page_size: u64,
    boot_time: Option<u64>,
}

impl ProcessCollector {
    pub fn new() -> Self {
        ProcessCollector {
            ticks_per_second: sysconf(libc::_SC_CLK_TCK).unwrap_or(100) as f64,
            page_size: sysconf(libc::_SC_PAGESIZE).unwrap_or(4096),
            boot_time: std::fs::read_to_string("/proc/stat")
                .ok()
                .as_deref()
                .and_then(parse_boot_time),
        }
    }
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

fn gauge<N>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: N,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<N>: EncodeMetric,
{
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, unit, g.metric_type())?)
}

/// Integer gauges render without a fraction.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stat = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .as_deref()
            .and_then(parse_stat);
        if let Some(s) = stat {
            let cpu = ConstCounter::new((s.utime + s.stime) as f64 / self.ticks_per_second);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent in seconds.",
                Some(&Unit::Seconds),
                cpu.metric_type(),
            )?)?;
            gauge(
                &mut encoder,
                "process_resident_memory",
                "Resident memory size in bytes.",
                Some(&Unit::Bytes),
                int(s.rss_pages.saturating_mul(self.page_size)),
            )?;
            gauge(
                &mut encoder,
                "process_virtual_memory",
                "Virtual memory size in bytes.",
                Some(&Unit::Bytes),
                int(s.vsize),
            )?;
            if let Some(boot) = self.boot_time {
                gauge(
                    &mut encoder,
                    "process_start_time",
                    "Start time of the process since unix epoch in seconds.",
                    Some(&Unit::Seconds),
                    boot as f64 + s.starttime as f64 / self.ticks_per_second,
                )?;
            }
            gauge(
                &mut encoder,
                "process_threads",
                "Number of OS threads in the process.",
                None,
                int(s.threads),
            )?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors.",
                None,
                int(fds.count() as u64),
            )?;
        }
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .as_deref()
            .and_then(parse_max_fds);
        if let Some(max) = max_fds {
            gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                None,
                int(max),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_found_after_a_name_with_spaces() {
        let line = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 \
                    250 50 0 0 20 0 7 0 12345 104857600 2560 18446744073709551615 \
                    1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                utime: 250,
                stime: 50,
                threads: 7,
                starttime: 12345,
                vsize: 104_857_600,
                rss_pages: 2560,
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn limits_and_boot_time_are_parsed() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_max_fds(
                "Max open files            unlimited            unlimited            files"
            ),
            None
        );
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn a_scrape_reports_this_process() {
        let out =
            crate::metrics::scrape(|r| r.register_collector(Box::new(ProcessCollector::new())));
        let value = |name: &str| -> f64 {
            out.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing from:\n{out}"))
        };
        assert!(value("process_resident_memory_bytes") > 0.0);
        assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
        assert!(value("process_cpu_seconds_total") >= 0.0);
        assert!(value("process_threads") >= 1.0);
        assert!(
            out.lines()
                .any(|l| l.starts_with("process_threads ") && !l.contains('.')),
            "integer gauges have no fraction:\n{out}"
        );
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(
            start > now - 24.0 * 3600.0 && start <= now + 1.0,
            "{start} vs {now}"
        );
        crate::metrics::assert_lines(
            &out,
            &[
                "# TYPE process_cpu_seconds_total counter",
                "# TYPE process_resident_memory_bytes gauge",
            ],
        );
    }
}
