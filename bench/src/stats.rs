//! Summary statistics of samples (nearest-rank quantiles).

use serde_json::{Value, json};

/// Median, p90, p99 and minimum of a sample.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub n: usize,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub min: f64,
}

impl Stats {
    pub fn of(mut samples: Vec<f64>) -> Stats {
        if samples.is_empty() {
            return Stats::default();
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
        Stats {
            n: samples.len(),
            median: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            min: samples[0],
        }
    }

    /// From a `{ n, median, p90, p99, min }` object a peer printed.
    pub fn from_json(v: &Value) -> Stats {
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        Stats {
            n: v["n"].as_u64().unwrap_or(1) as usize,
            median: f("median"),
            p90: f("p90"),
            p99: f("p99"),
            min: f("min"),
        }
    }

    pub fn to_json(self) -> Value {
        json!({ "n": self.n, "median": self.median, "p90": self.p90, "p99": self.p99, "min": self.min })
    }
}
