//! One serving host's shared state (docs/spec.md section 9): its settings, the
//! admission of sessions (host capacity, 1013; per-tenant sessions, memory
//! and opens per second, 1008), readiness with hysteresis (not ready above
//! 90 % of capacity, ready again below 80 %), and the drain phase.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use miniworker::{Limits, Runtime};
use tokio::sync::watch;

use super::auth::Auth;
use super::cache::Cache;
use super::metrics::{Metrics, TenantLabel};

/// WebSocket close codes of a refused or ended session.
pub mod close {
    /// Normal end, after `exit`.
    pub const NORMAL: u16 = 1000;
    /// The host is going away (drained).
    pub const GOING_AWAY: u16 = 1001;
    /// The first frame was not a valid `open`.
    pub const PROTOCOL: u16 = 1002;
    /// A tenant over its caps.
    pub const POLICY: u16 = 1008;
    /// The host is full or draining.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Where the host is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Serving,
    /// SIGTERM: no new sessions; open ones run on.
    Draining,
    /// The drain timeout passed: open sessions end now.
    Expired,
}

/// What sessions may use, once the server is configured.
pub struct Settings {
    pub capacity: usize,
    pub tenant_sessions: Option<usize>,
    /// Bytes.
    pub tenant_memory: Option<u64>,
    pub tenant_opens_per_second: Option<u32>,
    pub ceilings: Limits,
    pub ping_interval: Duration,
    pub open_timeout: Duration,
}

#[derive(Default)]
struct Tenant {
    sessions: usize,
    memory: u64,
    /// Opens in the current one-second window, and its start.
    window: Option<Instant>,
    opens: u32,
}

#[derive(Default)]
struct Admission {
    sessions: usize,
    tenants: HashMap<String, Tenant>,
}

pub struct Host {
    pub settings: Settings,
    pub runtime: Runtime,
    pub auth: Auth,
    pub cache: Cache,
    pub metrics: Metrics,
    admission: Mutex<Admission>,
    ready: AtomicBool,
    phase: watch::Sender<Phase>,
    /// Open sessions, for the end of a drain.
    count: watch::Sender<usize>,
    next_id: AtomicU64,
    id_prefix: String,
}

/// Why an open was refused: the close code and its reason.
#[derive(Debug)]
pub struct Refusal {
    pub code: u16,
    pub reason: String,
    /// The `opens` metric's result label.
    pub result: &'static str,
}

/// A session's place on the host, given back when it drops.
pub struct Slot {
    host: Arc<Host>,
    tenant: String,
    memory: u64,
    label: TenantLabel,
}

impl Host {
    pub fn new(settings: Settings, runtime: Runtime, auth: Auth, cache: Cache) -> Host {
        let metrics = Metrics::new(settings.capacity as u32);
        Host {
            settings,
            runtime,
            auth,
            cache,
            metrics,
            admission: Mutex::new(Admission::default()),
            ready: AtomicBool::new(true),
            phase: watch::Sender::new(Phase::Serving),
            count: watch::Sender::new(0),
            next_id: AtomicU64::new(1),
            id_prefix: format!("{:x}", std::process::id()),
        }
    }

    /// A new session id, unique on this host (the process id, then a count).
    pub fn session_id(&self) -> String {
        format!(
            "{}-{}",
            self.id_prefix,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.send_replace(phase);
        self.metrics.draining.set(i64::from(phase != Phase::Serving));
    }

    /// `/readyz`: serving, and not above 90 % of capacity since it was last
    /// below 80 %.
    pub fn is_ready(&self) -> bool {
        *self.phase.borrow() == Phase::Serving && self.ready.load(Ordering::SeqCst)
    }

    /// Resolves once no session is open.
    pub async fn all_ended(&self) {
        let mut count = self.count.subscribe();
        let _ = count.wait_for(|n| *n == 0).await;
    }

    /// Takes a place for a session of `tenant` whose contexts may use
    /// `memory` bytes, or says why not.
    pub fn admit(self: &Arc<Host>, tenant: &str, memory: u64) -> Result<Slot, Refusal> {
        let refuse = |code, result, reason: String| Refusal { code, reason, result };
        if *self.phase.borrow() != Phase::Serving {
            return Err(refuse(
                close::TRY_AGAIN_LATER,
                "draining",
                "the host is draining".into(),
            ));
        }
        let s = &self.settings;
        let mut a = self.admission.lock().unwrap_or_else(|p| p.into_inner());
        if a.sessions >= s.capacity {
            return Err(refuse(
                close::TRY_AGAIN_LATER,
                "capacity",
                format!("the host is at its capacity of {} sessions", s.capacity),
            ));
        }
        let t = a.tenants.entry(tenant.to_owned()).or_default();
        let now = Instant::now();
        if t.window
            .is_none_or(|start| now.duration_since(start) >= Duration::from_secs(1))
        {
            t.window = Some(now);
            t.opens = 0;
        }
        if let Some(cap) = s.tenant_opens_per_second
            && t.opens >= cap
        {
            return Err(refuse(
                close::POLICY,
                "tenant",
                format!("tenant {tenant} is over {cap} opens per second"),
            ));
        }
        t.opens += 1;
        if let Some(cap) = s.tenant_sessions
            && t.sessions >= cap
        {
            return Err(refuse(
                close::POLICY,
                "tenant",
                format!("tenant {tenant} is at its cap of {cap} sessions"),
            ));
        }
        if let Some(cap) = s.tenant_memory
            && t.memory + memory > cap
        {
            return Err(refuse(
                close::POLICY,
                "tenant",
                format!("tenant {tenant} is at its memory cap of {} MiB", cap >> 20),
            ));
        }
        t.sessions += 1;
        t.memory += memory;
        a.sessions += 1;
        self.sessions_changed(&a);
        let label = self.metrics.tenant_label(tenant);
        self.metrics.tenant_sessions.get_or_create(&label).inc();
        Ok(Slot {
            host: self.clone(),
            tenant: tenant.to_owned(),
            memory,
            label,
        })
    }

    fn sessions_changed(&self, a: &Admission) {
        let (n, cap) = (a.sessions, self.settings.capacity);
        if n * 10 > cap * 9 {
            self.ready.store(false, Ordering::SeqCst);
        } else if n * 10 < cap * 8 {
            self.ready.store(true, Ordering::SeqCst);
        }
        self.metrics.sessions.set(n as i64);
        self.metrics.utilization.set(n as f64 / cap as f64);
        self.count.send_replace(n);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let host = &self.host;
        let mut a = host.admission.lock().unwrap_or_else(|p| p.into_inner());
        a.sessions = a.sessions.saturating_sub(1);
        if let Some(t) = a.tenants.get_mut(&self.tenant) {
            t.sessions = t.sessions.saturating_sub(1);
            t.memory = t.memory.saturating_sub(self.memory);
        }
        host.sessions_changed(&a);
        host.metrics.tenant_sessions.get_or_create(&self.label).dec();
        // Forget idle tenants (their opens-per-second window has passed).
        a.tenants
            .retain(|_, t| t.sessions > 0 || t.window.is_some_and(|w| w.elapsed() < Duration::from_secs(1)));
    }
}
