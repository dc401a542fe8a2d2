//! What a holder process is doing: its scheduler state, thread count and CPU share, from
//! successive reads of /proc/PID/stat. Pure: the reads come in as [`ProcStat`]s with the time
//! they were taken.

use std::time::{Duration, Instant};

use super::parse::ProcStat;

/// Two reads of a process closer together than this give no new CPU share (the last one is
/// kept, and the earlier read stays the base): at 100 clock ticks per second a shorter interval
/// would round to steps of more than 5 % of a core.
pub const MIN_CPU_INTERVAL: Duration = Duration::from_millis(200);

/// The CPU-time base of one process: its CPU ticks at a read, and the share computed at the
/// last read at least [`MIN_CPU_INTERVAL`] after the base before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CpuTrack {
    /// /proc/PID/stat starttime at the base read: a different one is another process.
    starttime: u64,
    /// utime + stime at the base read, in clock ticks.
    ticks: u64,
    /// When the base read was taken.
    at: Instant,
    /// Percent of one core over the interval that ended at the base read; `None` after the
    /// first read.
    pub(super) percent: Option<f64>,
}

/// What sockq knows about a process's activity after its latest read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Activity {
    pub(super) state: char,
    pub(super) threads: u32,
    pub(super) cpu: CpuTrack,
}

impl Activity {
    /// /proc/PID/stat starttime of the process read: with the pid, tells one process from a
    /// later one given the same pid.
    pub(super) fn starttime(&self) -> u64 {
        self.cpu.starttime
    }

    /// The activity after a read of /proc/PID/stat (`stat`) taken at `now`, given what the
    /// process's previous read left (`prev`) and the kernel's clock ticks per second
    /// (`clk_tck`, `sysconf(_SC_CLK_TCK)`; `None`: unknown, so no CPU share).
    ///
    /// The CPU share is absent on a first read, when the pid now belongs to a process that
    /// started at another time, and when the CPU time went backwards (never on Linux: the
    /// process's total includes its exited threads). Reads closer together than
    /// [`MIN_CPU_INTERVAL`] keep the previous share and base.
    pub(super) fn next(
        prev: Option<&Activity>,
        stat: &ProcStat,
        now: Instant,
        clk_tck: Option<u64>,
    ) -> Activity {
        let fresh = CpuTrack {
            starttime: stat.starttime,
            ticks: stat.cpu_ticks,
            at: now,
            percent: None,
        };
        let cpu = match prev.map(|p| p.cpu) {
            Some(base) if base.starttime == stat.starttime => {
                let elapsed = now.saturating_duration_since(base.at);
                if elapsed < MIN_CPU_INTERVAL {
                    base
                } else {
                    CpuTrack {
                        percent: cpu_percent(base.ticks, stat.cpu_ticks, elapsed, clk_tck),
                        ..fresh
                    }
                }
            }
            _ => fresh,
        };
        Activity {
            state: stat.state,
            threads: stat.threads,
            cpu,
        }
    }
}

/// Percent of one core: `after - before` clock ticks over `elapsed`; `None` when the ticks went
/// backwards, `clk_tck` is unknown or zero, or `elapsed` is zero.
pub(super) fn cpu_percent(
    before: u64,
    after: u64,
    elapsed: Duration,
    clk_tck: Option<u64>,
) -> Option<f64> {
    let ticks = after.checked_sub(before)?;
    let hz = clk_tck.filter(|&hz| hz > 0)?;
    let secs = elapsed.as_secs_f64();
    (secs > 0.0).then(|| ticks as f64 / hz as f64 / secs * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(state: char, cpu_ticks: u64, starttime: u64) -> ProcStat {
        ProcStat {
            state,
            cpu_ticks,
            threads: 1,
            starttime,
        }
    }

    #[test]
    fn cpu_percent_is_ticks_over_time() {
        let s = Duration::from_secs;
        assert_eq!(cpu_percent(51, 82, s(2), Some(100)), Some(15.5));
        assert_eq!(cpu_percent(0, 100, s(1), Some(100)), Some(100.0));
        // Two busy threads: more than one core.
        assert_eq!(cpu_percent(0, 400, s(2), Some(100)), Some(200.0));
        assert_eq!(cpu_percent(0, 250, s(1), Some(250)), Some(100.0));
        assert_eq!(cpu_percent(7, 7, s(5), Some(100)), Some(0.0));
        assert_eq!(cpu_percent(8, 7, s(1), Some(100)), None);
        assert_eq!(cpu_percent(0, 7, s(1), None), None);
        assert_eq!(cpu_percent(0, 7, s(1), Some(0)), None);
        assert_eq!(cpu_percent(0, 7, Duration::ZERO, Some(100)), None);
    }

    #[test]
    fn first_read_has_no_share_the_next_has() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let first = Activity::next(None, &stat('S', 100, 5000), t0, Some(100));
        assert_eq!((first.state, first.threads), ('S', 1));
        assert_eq!(first.cpu.percent, None);
        // 90 ticks in 1 s at 100 Hz: 90 % of a core.
        let second = Activity::next(Some(&first), &stat('R', 190, 5000), at(1000), Some(100));
        assert_eq!(second.state, 'R');
        assert_eq!(second.cpu.percent, Some(90.0));
        // An idle second: 0 %, not absent.
        let third = Activity::next(Some(&second), &stat('S', 190, 5000), at(2000), Some(100));
        assert_eq!(third.cpu.percent, Some(0.0));
    }

    #[test]
    fn reads_too_close_together_keep_the_last_share_and_base() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let a = Activity::next(None, &stat('R', 0, 1), t0, Some(100));
        let b = Activity::next(Some(&a), &stat('R', 50, 1), at(500), Some(100));
        assert_eq!(b.cpu.percent, Some(100.0));
        // 100 ms later: too short to measure; the 100 % stays, the state is new.
        let c = Activity::next(Some(&b), &stat('S', 55, 1), at(600), Some(100));
        assert_eq!((c.state, c.cpu), ('S', b.cpu));
        // The next read measures from b's base (500 ms), not c's: 30 ticks in 300 ms.
        let d = Activity::next(Some(&c), &stat('S', 80, 1), at(800), Some(100));
        assert_eq!(d.cpu.percent, Some(100.0));
        // The same instant (a caller that passes the same `now`): nothing to divide by.
        let e = Activity::next(Some(&d), &stat('S', 90, 1), at(800), Some(100));
        assert_eq!(e.cpu, d.cpu);
    }

    #[test]
    fn a_reused_pid_starts_over() {
        let t0 = Instant::now();
        let old = Activity::next(None, &stat('R', 10_000, 1), t0, Some(100));
        let old = Activity::next(
            Some(&old),
            &stat('R', 10_100, 1),
            t0 + Duration::from_secs(1),
            Some(100),
        );
        assert_eq!(old.cpu.percent, Some(100.0));
        // Another process with the same pid, started later, with fewer ticks: no share (a
        // difference with the old process's ticks would be meaningless), a new base.
        let new = Activity::next(
            Some(&old),
            &stat('S', 3, 900),
            t0 + Duration::from_secs(2),
            Some(100),
        );
        assert_eq!(new.cpu.percent, None);
        let later = Activity::next(
            Some(&new),
            &stat('S', 53, 900),
            t0 + Duration::from_secs(3),
            Some(100),
        );
        assert_eq!(later.cpu.percent, Some(50.0));
    }
}
