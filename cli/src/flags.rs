//! The command line's limit and duration flags, checked: a value out of
//! range is bad usage (exit 2 with a message), never a crash.

use std::time::Duration;

use miniworker::Limits;

/// The library's defaults, which the flags' defaults show.
static DEFAULTS: std::sync::LazyLock<Limits> = std::sync::LazyLock::new(Limits::default);

/// A number of seconds as a duration; a value that is not a finite,
/// non-negative number, or too large to count from now on this platform
/// (`Instant` + it overflows), is refused.
pub fn seconds(flag: &str, value: f64) -> Result<Duration, String> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!(
            "{flag} takes a non-negative number of seconds, not {value}"
        ));
    }
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| std::time::Instant::now().checked_add(*d).is_some())
        .ok_or_else(|| format!("{flag} {value} is too large a duration"))
}

/// The limits of SPEC section 5, for each context (main thread and worker).
#[derive(clap::Args)]
pub struct LimitFlags {
    /// Linear memory of each context, in MiB (a breach kills: "memory").
    #[arg(long, value_name = "MIB", default_value_t = (DEFAULTS.memory_bytes() >> 20) as u32,
          value_parser = clap::value_parser!(u32).range(1..=4095))]
    max_memory: u32,
    /// QuickJS stack of each context, in KiB (deeper recursion throws RangeError).
    #[arg(long, value_name = "KIB", default_value_t = (DEFAULTS.stack_bytes() >> 10) as u32,
          value_parser = clap::value_parser!(u32).range(64..=896))]
    max_stack: u32,
    /// Thread CPU time one turn may use, in seconds (a breach kills: "cpu-time").
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULTS.cpu_time_per_turn().as_secs_f64())]
    cpu_time: f64,
    /// The largest message, in bytes (a bigger post throws RangeError).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULTS.message_bytes() as u32)]
    max_message: u32,
    /// Messages queued per direction (a post beyond it throws Error).
    #[arg(long, value_name = "COUNT", default_value_t = DEFAULTS.queue_message_count())]
    max_queue: usize,
    /// Encoded bytes queued per direction (a post beyond it throws Error).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULTS.queue_byte_count())]
    max_queue_bytes: usize,
    /// Live timers of each context (setTimeout beyond it throws RangeError).
    #[arg(long, value_name = "COUNT", default_value_t = DEFAULTS.timer_count() as u32)]
    max_timers: u32,
    /// Console output per turn, in bytes (further lines are dropped and counted).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULTS.console_bytes_per_turn())]
    max_console: usize,
}

impl LimitFlags {
    /// The limits the flags ask for.
    pub fn limits(&self) -> Result<Limits, String> {
        let cpu_time = seconds("--cpu-time", self.cpu_time)?;
        if cpu_time.is_zero() {
            return Err("--cpu-time takes a positive number of seconds".into());
        }
        Ok(Limits::default()
            .memory((self.max_memory as usize) << 20)
            .stack((self.max_stack as usize) << 10)
            .cpu_time(cpu_time)
            .message_size(self.max_message as usize)
            .queue_messages(self.max_queue)
            .queue_bytes(self.max_queue_bytes)
            .timers(self.max_timers as usize)
            .console_per_turn(self.max_console))
    }
}
