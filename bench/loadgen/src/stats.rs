//! CPU accounting, latency percentiles and the output lines.

use std::fmt::Write as _;
use std::time::Duration;

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

/// A flat JSON object built by hand (numbers, strings and booleans only).
pub struct Json {
    out: String,
}

impl Json {
    pub fn new(mode: &str) -> Json {
        let mut j = Json { out: String::from("{") };
        j.str("mode", mode);
        j
    }

    fn key(&mut self, k: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        let _ = write!(self.out, "\"{k}\":");
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        self.out.push('"');
        for c in v.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.out, "\\u{:04x}", c as u32);
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
        self
    }

    pub fn int(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        let _ = write!(self.out, "{v}");
        self
    }

    pub fn num(&mut self, k: &str, v: f64) -> &mut Self {
        self.key(k);
        if v.is_finite() {
            let _ = write!(self.out, "{}", (v * 1000.0).round() / 1000.0);
        } else {
            self.out.push_str("null");
        }
        self
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.out.push_str(if v { "true" } else { "false" });
        self
    }

    pub fn latency(&mut self, prefix: &str, s: &Summary) -> &mut Self {
        self.int(&format!("{prefix}samples"), s.count as u64);
        self.num(&format!("{prefix}mean_us"), s.mean_us);
        self.num(&format!("{prefix}p50_us"), s.p50_us);
        self.num(&format!("{prefix}p90_us"), s.p90_us);
        self.num(&format!("{prefix}p99_us"), s.p99_us);
        self.num(&format!("{prefix}p999_us"), s.p999_us);
        self.num(&format!("{prefix}max_us"), s.max_us);
        self
    }

    pub fn cpu(&mut self, cpu: Cpu, wall: f64) -> &mut Self {
        self.num("cpu_user_s", cpu.user);
        self.num("cpu_sys_s", cpu.sys);
        self.num("cpu_s", cpu.total());
        self.num("wall_s", wall);
        self
    }

    /// `cpu_seconds`, `wall_seconds` and `cpu_share` of the span a mode measures (its
    /// measured window, or the whole run where it has none).
    pub fn span(&mut self, span: &Span) -> &mut Self {
        self.num("cpu_seconds", span.cpu.total());
        self.num("wall_seconds", span.wall);
        self.num("cpu_share", span.share());
        self
    }

    pub fn finish(&mut self) -> String {
        let mut s = std::mem::take(&mut self.out);
        s.push('}');
        s
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
