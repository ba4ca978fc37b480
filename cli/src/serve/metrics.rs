//! What `/metrics` reports (docs/spec.md section 9), in the Prometheus text format
//! (OpenMetrics, `prometheus-client`): sessions, capacity and their ratio
//! (the autoscaler's metric), opens by
//! result, ends by reason, kills by reason, messages by direction,
//! back-pressure refusals, CPU seconds, unpackings, and the open latency.
//! Tenant labels are bounded: past [`MAX_TENANT_LABELS`] tenants, the rest
//! share the label `other`.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Distinct tenant label values, at most.
pub const MAX_TENANT_LABELS: usize = 100;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabel {
    pub direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    pub tenant: String,
}

pub struct Metrics {
    registry: Registry,
    pub sessions: Gauge,
    pub capacity: Gauge,
    /// Sessions per capacity: what the HorizontalPodAutoscaler scales on.
    pub utilization: Gauge<f64, AtomicU64>,
    pub draining: Gauge,
    pub tenant_sessions: Family<TenantLabel, Gauge>,
    pub opens: Family<ResultLabel, Counter>,
    pub ends: Family<ReasonLabel, Counter>,
    pub kills: Family<ReasonLabel, Counter>,
    pub messages: Family<DirectionLabel, Counter>,
    pub backpressure_refusals: Counter,
    pub cpu_seconds: Counter<f64, AtomicU64>,
    pub unpacks: Counter,
    pub open_latency: Histogram,
    /// The tenants that have a label of their own.
    labelled: Mutex<Vec<String>>,
}

impl Metrics {
    pub fn new(capacity: u32) -> Metrics {
        let mut registry = Registry::with_prefix("miniworker");
        let m = Metrics {
            sessions: Gauge::default(),
            capacity: Gauge::default(),
            utilization: Gauge::default(),
            draining: Gauge::default(),
            tenant_sessions: Family::default(),
            opens: Family::default(),
            ends: Family::default(),
            kills: Family::default(),
            messages: Family::default(),
            backpressure_refusals: Counter::default(),
            cpu_seconds: Counter::default(),
            unpacks: Counter::default(),
            open_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            labelled: Mutex::new(Vec::new()),
            registry: Registry::default(),
        };
        m.capacity.set(i64::from(capacity));
        registry.register("sessions", "Open sessions", m.sessions.clone());
        registry.register("capacity", "Sessions this host holds at once", m.capacity.clone());
        registry.register(
            "session_utilization",
            "Open sessions per capacity, 0 to 1",
            m.utilization.clone(),
        );
        registry.register("draining", "1 while the host drains", m.draining.clone());
        registry.register(
            "tenant_sessions",
            "Open sessions by tenant",
            m.tenant_sessions.clone(),
        );
        registry.register("opens", "Opens by result", m.opens.clone());
        registry.register("session_ends", "Sessions ended, by exit reason", m.ends.clone());
        registry.register("kills", "Contexts killed, by reason", m.kills.clone());
        registry.register("messages", "Messages by direction", m.messages.clone());
        registry.register(
            "backpressure_refusals",
            "Worker messages refused because the client read too slowly",
            m.backpressure_refusals.clone(),
        );
        registry.register(
            "worker_cpu_seconds",
            "CPU time of ended sessions' workers",
            m.cpu_seconds.clone(),
        );
        registry.register(
            "project_unpacks",
            "Project archives unpacked into the cache",
            m.unpacks.clone(),
        );
        registry.register(
            "open_latency_seconds",
            "From the open frame to opened",
            m.open_latency.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The label of `tenant`: its own, or `other` past the bound.
    pub fn tenant_label(&self, tenant: &str) -> TenantLabel {
        let mut labelled = self.labelled.lock().unwrap_or_else(|p| p.into_inner());
        let known = labelled.iter().any(|t| t == tenant);
        if !known && labelled.len() < MAX_TENANT_LABELS {
            labelled.push(tenant.to_owned());
        }
        TenantLabel {
            tenant: if known || labelled.iter().any(|t| t == tenant) {
                tenant.to_owned()
            } else {
                "other".into()
            },
        }
    }

    pub fn opened(&self, result: &'static str) {
        self.opens.get_or_create(&ResultLabel { result }).inc();
    }

    /// The text of `/metrics`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
