//! The context a benchmark harness runs in: the common prelude only (no
//! worker or main role), no modules, the default limits.

use miniworker_guest::{Context, DEFAULT_MAX_MESSAGE, Hooks, JsError, Level, Limits};

pub fn context(console: fn(Level, &[String])) -> Context {
    let hooks = Hooks {
        console,
        uncaught_error: |e: JsError| eprintln!("uncaught: {} {}", e.message, e.stack),
        resolve_module: |_, request| Err(format!("no modules here: {request}")),
        load_module: |filename| Err(format!("no modules here: {filename}")),
        // The timed objects have no ArrayBuffer of 64 KiB or more.
        post_outside: |payload| eprintln!("an outside payload of {} bytes, not kept here", payload.len()),
    };
    let limits = Limits {
        stack: 512 << 10,
        max_message: DEFAULT_MAX_MESSAGE,
        max_timers: 10_000,
    };
    // A role with nothing of its own (it never listens for messages).
    let role = "(function () { return {}; })";
    let context = Context::new(hooks, role, &[], |_, _| Ok(())).expect("a context");
    context.configure(limits).expect("limits");
    context
}
