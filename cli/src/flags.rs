//! The command line's limit and duration flags, checked: a value out of
//! range is bad usage (exit 2 with a message), never a crash. Sizes take a
//! unit (`64MiB`, `512KiB`, `16MB`, `1GiB`, `300B`) and durations one too
//! (`500ms`, `2s`, `1.5m`, `1h`); a bare number keeps each flag's own unit
//! (MiB for `--max-memory`, KiB for `--max-stack`, bytes for the other sizes,
//! seconds for durations).

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

/// Splits `text` into its number and its unit (letters at the end).
fn number_and_unit(text: &str) -> Result<(f64, &str), String> {
    let text = text.trim();
    let at = text
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(at);
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number with an optional unit"))?;
    Ok((value, unit.trim()))
}

/// A size in bytes, shown in the largest unit that divides it (`64MiB`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&show_size(self.0))
    }
}

/// A duration in seconds, shown with its unit (`60s`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Secs(pub f64);

impl std::fmt::Display for Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}s", self.0)
    }
}

/// A duration flag's value, as a [`Secs`].
pub fn parse_secs(text: &str) -> Result<Secs, String> {
    parse_seconds(text).map(Secs)
}

/// A duration in seconds: `500ms`, `2s`, `1.5m`, `1h`, or bare seconds.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let (value, unit) = number_and_unit(text)?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("'{other}' is not a unit of time (ms, s, m, h)")),
    };
    Ok(value * scale)
}

/// A size in bytes, with a bare number in `bare` bytes.
fn parse_size(text: &str, bare: u64) -> Result<u64, String> {
    let (value, unit) = number_and_unit(text)?;
    let scale = match unit {
        "" => bare as f64,
        "B" => 1.0,
        "KiB" | "K" | "k" => 1024.0,
        "MiB" | "M" => (1u64 << 20) as f64,
        "GiB" | "G" => (1u64 << 30) as f64,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => {
            return Err(format!(
                "'{other}' is not a unit of size (B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    let bytes = value * scale;
    if !(bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64) || bytes.fract() != 0.0 {
        return Err(format!("'{text}' is not a whole number of bytes"));
    }
    Ok(bytes as u64)
}

/// A size flag whose bare numbers are bytes.
pub fn parse_bytes(text: &str) -> Result<Size, String> {
    parse_size(text, 1).map(Size)
}

/// A size flag whose bare numbers are KiB.
pub fn parse_kib(text: &str) -> Result<Size, String> {
    parse_size(text, 1 << 10).map(Size)
}

/// A size flag whose bare numbers are MiB.
pub fn parse_mib(text: &str) -> Result<Size, String> {
    parse_size(text, 1 << 20).map(Size)
}

/// `bytes` in the largest unit that divides it (`64MiB`), for defaults.
pub fn show_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// The limits of docs/spec.md section 5, for each context (main thread and worker).
#[derive(clap::Args)]
pub struct LimitFlags {
    /// Linear memory of each context (a breach kills: "memory"); bare numbers are MiB.
    #[arg(long, value_name = "SIZE", value_parser = parse_mib,
          default_value_t = Size(DEFAULTS.memory_bytes() as u64))]
    max_memory: Size,
    /// QuickJS stack of each context, 64KiB-896KiB (deeper recursion throws
    /// RangeError); bare numbers are KiB.
    #[arg(long, value_name = "SIZE", value_parser = parse_kib,
          default_value_t = Size(DEFAULTS.stack_bytes() as u64))]
    max_stack: Size,
    /// Thread CPU time one turn may use (a breach kills: "cpu-time"); bare
    /// numbers are seconds.
    #[arg(long, alias = "cpu-time", value_name = "DURATION", value_parser = parse_secs,
          default_value_t = Secs(DEFAULTS.cpu_time_per_turn().as_secs_f64()))]
    max_cpu_time: Secs,
    /// The largest message (a bigger post throws RangeError); bare numbers are bytes.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes,
          default_value_t = Size(DEFAULTS.message_bytes() as u64))]
    max_message: Size,
    /// Messages queued per direction (a post beyond it throws Error).
    #[arg(long, value_name = "COUNT", default_value_t = DEFAULTS.queue_message_count())]
    max_queue: usize,
    /// Encoded bytes queued per direction (a post beyond it throws Error);
    /// bare numbers are bytes.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes,
          default_value_t = Size(DEFAULTS.queue_byte_count() as u64))]
    max_queue_bytes: Size,
    /// Live timers of each context (setTimeout beyond it throws RangeError).
    #[arg(long, value_name = "COUNT", default_value_t = DEFAULTS.timer_count() as u32)]
    max_timers: u32,
    /// Console output per turn (further lines are dropped and counted);
    /// bare numbers are bytes.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes,
          default_value_t = Size(DEFAULTS.console_bytes_per_turn() as u64))]
    max_console: Size,
}

impl LimitFlags {
    /// The limits the flags ask for.
    pub fn limits(&self) -> Result<Limits, String> {
        let cpu_time = seconds("--max-cpu-time", self.max_cpu_time.0)?;
        if cpu_time.is_zero() {
            return Err("--max-cpu-time takes a positive duration".into());
        }
        if !(1 << 20..4 << 30).contains(&self.max_memory.0) {
            return Err(format!(
                "--max-memory takes 1MiB to 4095MiB, not {}",
                self.max_memory
            ));
        }
        if !(64 << 10..=896 << 10).contains(&self.max_stack.0) {
            return Err(format!(
                "--max-stack takes 64KiB to 896KiB, not {}",
                self.max_stack
            ));
        }
        if self.max_message.0 > u64::from(u32::MAX) {
            return Err("--max-message takes at most 4GiB - 1".into());
        }
        let size = |v: Size| usize::try_from(v.0).unwrap_or(usize::MAX);
        Ok(Limits::default()
            .memory(size(self.max_memory))
            .stack(size(self.max_stack))
            .cpu_time(cpu_time)
            .message_size(size(self.max_message))
            .queue_messages(self.max_queue)
            .queue_bytes(size(self.max_queue_bytes))
            .timers(self.max_timers as usize)
            .console_per_turn(size(self.max_console)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units_and_bare_numbers_keep_the_flags_unit() {
        assert_eq!(parse_mib("64"), Ok(Size(64 << 20)));
        assert_eq!(parse_mib("64MiB"), Ok(Size(64 << 20)));
        assert_eq!(parse_mib("1.5GiB"), Ok(Size(3 << 29)));
        assert_eq!(parse_kib("512"), Ok(Size(512 << 10)));
        assert_eq!(parse_bytes("16MB"), Ok(Size(16_000_000)));
        assert_eq!(parse_bytes("300B"), Ok(Size(300)));
        assert!(parse_bytes("1.5B").is_err());
        assert!(parse_bytes("12 parsecs").is_err());
        assert_eq!(show_size(64 << 20), "64MiB");
        assert_eq!(show_size(1000), "1000B");
    }

    #[test]
    fn durations_take_units_and_bare_numbers_are_seconds() {
        assert_eq!(parse_seconds("2"), Ok(2.0));
        assert_eq!(parse_seconds("500ms"), Ok(0.5));
        assert_eq!(parse_seconds("1.5m"), Ok(90.0));
        assert_eq!(parse_seconds("1e300"), Ok(1e300));
        assert!(parse_seconds("2 fortnights").is_err());
    }
}
