//! CPU accounting, latency percentiles and the output lines.

use std::time::Duration;

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

/// User and system CPU time of this process (all its threads), from getrusage.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    pub user: f64,
    pub sys: f64,
}

impl Cpu {
    pub fn now() -> Cpu {
        // SAFETY: getrusage only writes the struct we pass.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Cpu { user: tv(ru.ru_utime), sys: tv(ru.ru_stime) }
    }

    pub fn total(&self) -> f64 {
        self.user + self.sys
    }

    pub fn since(&self, earlier: Cpu) -> Cpu {
        Cpu { user: self.user - earlier.user, sys: self.sys - earlier.sys }
    }
}

/// The start of a span of the run over which this process's CPU time is measured.
#[derive(Clone, Copy, Debug)]
pub struct SpanStart {
    at: std::time::Instant,
    cpu: Cpu,
}

/// This process's CPU time over a span of wall-clock time: what `cpu_seconds` and
/// `wall_seconds` in every RESULT line report.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    pub cpu: Cpu,
    pub wall: f64,
}

impl SpanStart {
    pub fn now() -> SpanStart {
        SpanStart { at: std::time::Instant::now(), cpu: Cpu::now() }
    }

    pub fn end(&self) -> Span {
        Span { cpu: Cpu::now().since(self.cpu), wall: self.at.elapsed().as_secs_f64() }
    }
}

impl Span {
    /// CPU seconds per wall second: 1.0 is one core kept busy.
    pub fn share(&self) -> f64 {
        if self.wall > 0.0 {
            self.cpu.total() / self.wall
        } else {
            f64::NAN
        }
    }

    /// For summary lines: `loadgen CPU 0.52 s over 5.00 s = 10% of a core`.
    pub fn describe(&self) -> String {
        format!(
            "loadgen CPU {:.2} s (user {:.2} + sys {:.2}) over {:.2} s = {:.0}% of a core",
            self.cpu.total(),
            self.cpu.user,
            self.cpu.sys,
            self.wall,
            100.0 * self.share()
        )
    }
}

/// Raises this process's open-file soft limit to its hard limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 0;
        }
        if rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        }
        rl.rlim_cur as u64
    }
}

/// Latency samples in nanoseconds.
#[derive(Default)]
pub struct Latencies {
    samples: Vec<u64>,
}

#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub count: usize,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Latencies {
    pub fn with_capacity(n: usize) -> Latencies {
        Latencies { samples: Vec::with_capacity(n) }
    }

    #[inline]
    pub fn push(&mut self, d: Duration) {
        self.samples.push(d.as_nanos() as u64);
    }

    pub fn extend(&mut self, other: Latencies) {
        if self.samples.is_empty() {
            self.samples = other.samples;
        } else {
            self.samples.extend_from_slice(&other.samples);
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn summary(mut self) -> Summary {
        let n = self.samples.len();
        if n == 0 {
            return Summary {
                count: 0,
                mean_us: 0.0,
                p50_us: 0.0,
                p90_us: 0.0,
                p99_us: 0.0,
                p999_us: 0.0,
                max_us: 0.0,
            };
        }
        self.samples.sort_unstable();
        let at = |q: f64| {
            // Nearest-rank percentile.
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            self.samples[rank - 1] as f64 / 1000.0
        };
        let sum: u128 = self.samples.iter().map(|&s| s as u128).sum();
        Summary {
            count: n,
            mean_us: sum as f64 / n as f64 / 1000.0,
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: self.samples[n - 1] as f64 / 1000.0,
        }
    }
}

/// A figure in a RESULT line: rounded to three decimals, `null` when not finite (a rate
/// over an empty span, say).
#[derive(Clone, Copy, Debug)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f64((self.0 * 1000.0).round() / 1000.0)
        } else {
            s.serialize_none()
        }
    }
}

/// A latency summary as RESULT fields: `{prefix}samples`, `{prefix}mean_us`,
/// `{prefix}p50_us` ... `{prefix}max_us`, flattened into a mode's report.
pub struct LatencyFields {
    prefix: &'static str,
    summary: Summary,
}

impl Summary {
    pub fn fields(&self, prefix: &'static str) -> LatencyFields {
        LatencyFields { prefix, summary: *self }
    }
}

impl Serialize for LatencyFields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (p, l) = (self.prefix, &self.summary);
        let mut map = s.serialize_map(Some(7))?;
        map.serialize_entry(&format!("{p}samples"), &l.count)?;
        for (name, v) in [
            ("mean_us", l.mean_us),
            ("p50_us", l.p50_us),
            ("p90_us", l.p90_us),
            ("p99_us", l.p99_us),
            ("p999_us", l.p999_us),
            ("max_us", l.max_us),
        ] {
            map.serialize_entry(&format!("{p}{name}"), &Num(v))?;
        }
        map.end()
    }
}

/// `cpu_seconds`, `wall_seconds` and `cpu_share` of the span a mode measures (its
/// measured window, or the whole run where it has none).
impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Span", 3)?;
        st.serialize_field("cpu_seconds", &Num(self.cpu.total()))?;
        st.serialize_field("wall_seconds", &Num(self.wall))?;
        st.serialize_field("cpu_share", &Num(self.share()))?;
        st.end()
    }
}

/// This process's CPU time and the wall time of the whole run, as RESULT fields.
#[derive(Serialize)]
pub struct RunFields {
    cpu_user_s: Num,
    cpu_sys_s: Num,
    cpu_s: Num,
    wall_s: Num,
}

impl RunFields {
    pub fn new(cpu: Cpu, wall: f64) -> RunFields {
        RunFields {
            cpu_user_s: Num(cpu.user),
            cpu_sys_s: Num(cpu.sys),
            cpu_s: Num(cpu.total()),
            wall_s: Num(wall),
        }
    }
}

/// Prints a progress line (`PHASE name key=value ...`) and flushes it at once, so that
/// a driver script reading stdout can act on it (sample the server, for instance).
pub fn phase(name: &str, detail: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if detail.is_empty() {
        let _ = writeln!(out, "PHASE {name}");
    } else {
        let _ = writeln!(out, "PHASE {name} {detail}");
    }
    let _ = out.flush();
}

pub fn fmt_us(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} us")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_have_three_decimals_and_null_for_no_value() {
        let json = |x: f64| serde_json::to_string(&Num(x)).unwrap();
        assert_eq!(json(1.23456), "1.235");
        assert_eq!(json(42.0), "42.0");
        assert_eq!(json(f64::NAN), "null");
        assert_eq!(json(f64::INFINITY), "null");
    }

    #[test]
    fn report_fields_flatten_with_their_names() {
        #[derive(Serialize)]
        struct Report {
            mode: &'static str,
            #[serde(flatten)]
            latency: LatencyFields,
            #[serde(flatten)]
            handshake: LatencyFields,
            #[serde(flatten)]
            span: Span,
            #[serde(flatten)]
            run: RunFields,
            ok: bool,
        }
        let mut lat = Latencies::default();
        lat.push(Duration::from_micros(5));
        let lat = lat.summary();
        let cpu = Cpu { user: 0.25, sys: 0.5 };
        let report = Report {
            mode: "test",
            latency: lat.fields(""),
            handshake: Latencies::default().summary().fields("handshake_"),
            span: Span { cpu, wall: 2.0 },
            run: RunFields::new(cpu, 3.0),
            ok: true,
        };
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            concat!(
                r#"{"mode":"test","samples":1,"mean_us":5.0,"p50_us":5.0,"p90_us":5.0,"p99_us":5.0,"#,
                r#""p999_us":5.0,"max_us":5.0,"handshake_samples":0,"handshake_mean_us":0.0,"#,
                r#""handshake_p50_us":0.0,"handshake_p90_us":0.0,"handshake_p99_us":0.0,"#,
                r#""handshake_p999_us":0.0,"handshake_max_us":0.0,"cpu_seconds":0.75,"wall_seconds":2.0,"#,
                r#""cpu_share":0.375,"cpu_user_s":0.25,"cpu_sys_s":0.5,"cpu_s":0.75,"wall_s":3.0,"ok":true}"#
            )
        );
    }
}
