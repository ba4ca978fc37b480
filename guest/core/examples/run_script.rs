//! Runs one script (read from stdin) in a guest context, for measuring the
//! interpreter inside WebAssembly without the host protocol: the bench runs
//! it with epoch interruption on and off (`guest_command --no-epochs`).
//! `console.log` lines go to stdout.

use std::io::Read;

use miniworker_guest::{Context, DEFAULT_MAX_MESSAGE, Hooks, JsError, Level, Limits};

fn main() {
    let mut source = String::new();
    if std::io::stdin().read_to_string(&mut source).is_err() {
        eprintln!("cannot read the script from stdin");
        std::process::exit(2);
    }
    let hooks = Hooks {
        console: |_: Level, text: &str| println!("{text}"),
        uncaught_error: |e: JsError| eprintln!("uncaught: {} {}", e.message, e.stack),
        resolve_module: |_, request| Err(format!("no modules here: {request}")),
        load_module: |filename| Err(format!("no modules here: {filename}")),
    };
    let limits = Limits {
        stack: 512 << 10,
        max_message: DEFAULT_MAX_MESSAGE,
        max_timers: 10_000,
    };
    let context = Context::new(hooks, "(function () { return {}; })", |_, _| Ok(())).expect("context");
    context.configure(limits).expect("limits");
    context.start("/script.js", &source);
}
