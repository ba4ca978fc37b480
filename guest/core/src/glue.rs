//! The part of each component crate that only differs by its bindings.

/// Expands, inside a component crate, to the glue every role shares: the
/// context cell, the [`Hooks`](crate::Hooks) bound to the `context` import,
/// the `turns` export, and `with_context` for the role's own exports.
///
/// The crate must have run `wit_bindgen::generate!` for a world that imports
/// `types` and `context` and exports `turns`, and declared `struct Component`.
/// `$prelude` is the role's JavaScript, `$functions` the names of its
/// functions the component calls (checked when the context is made),
/// `$install` adds its natives (`fn(&Ctx, &Object) -> quickjs::Result<()>`).
///
/// The one thread-local of a component is its context: a component instance
/// runs one context, on one thread; everything else lives in the context.
#[macro_export]
macro_rules! component_glue {
    ($prelude:expr, $functions:expr, $install:expr) => {
        thread_local! {
            static CONTEXT: ::std::cell::OnceCell<$crate::Context> =
                const { ::std::cell::OnceCell::new() };
        }

        fn to_wit_error(e: $crate::JsError) -> miniworker::sandbox::types::JsError {
            miniworker::sandbox::types::JsError {
                name: e.name,
                message: e.message,
                stack: e.stack,
                filename: e.filename,
                lineno: e.lineno,
            }
        }

        const HOOKS: $crate::Hooks = $crate::Hooks {
            console: |level, args| {
                use miniworker::sandbox::types::LogLevel;
                let level = match level {
                    $crate::Level::Log => LogLevel::Log,
                    $crate::Level::Info => LogLevel::Info,
                    $crate::Level::Warn => LogLevel::Warn,
                    $crate::Level::Error => LogLevel::Error,
                    $crate::Level::Debug => LogLevel::Debug,
                };
                miniworker::sandbox::context::console(level, args);
            },
            uncaught_error: |e| miniworker::sandbox::context::uncaught_error(&to_wit_error(e)),
            resolve_module: miniworker::sandbox::context::resolve_module,
            load_module: miniworker::sandbox::context::load_module,
            post_outside: miniworker::sandbox::context::post_outside,
        };

        /// Runs `f` on the started context; before `start` there is nothing to run.
        fn with_context(
            f: impl FnOnce(&$crate::Context) -> $crate::TurnState,
        ) -> miniworker::sandbox::types::TurnState {
            let state = CONTEXT.with(|cell| cell.get().map(f)).unwrap_or_default();
            miniworker::sandbox::types::TurnState {
                next_timer_ms: state.next_timer_ms,
                listening: state.listening,
            }
        }

        /// The context, created on first use: by `initialize` when a build
        /// step snapshots the component, else by `start`.
        fn context_or_init() -> ::std::result::Result<(), ::std::string::String> {
            if CONTEXT.with(|cell| cell.get().is_some()) {
                return Ok(());
            }
            let cx = $crate::Context::new(HOOKS, $prelude, $functions, $install)?;
            CONTEXT.with(|cell| {
                cell.set(cx)
                    .map_err(|_| ::std::string::String::from("the context was created twice"))
            })
        }

        impl Guest for Component {
            fn initialize() {
                $crate::anchor_image();
                // A failure here surfaces again, as an error, from `start`.
                let _ = context_or_init();
            }
        }

        impl exports::miniworker::sandbox::turns::Guest for Component {
            fn start(
                filename: ::std::string::String,
                source: ::std::string::String,
                limits: miniworker::sandbox::types::ContextLimits,
            ) -> ::std::result::Result<miniworker::sandbox::types::TurnState, ::std::string::String> {
                context_or_init()?;
                let limits = $crate::Limits {
                    stack: limits.stack_bytes as usize,
                    max_message: limits.max_message_bytes as usize,
                    max_timers: limits.max_timers,
                };
                CONTEXT.with(|cell| match cell.get() {
                    Some(cx) => cx.configure(limits),
                    None => Err("the context is missing".into()),
                })?;
                Ok(with_context(|cx| cx.start(&filename, &source)))
            }

            fn run_timer() -> miniworker::sandbox::types::TurnState {
                with_context($crate::Context::run_timer)
            }
        }
    };
}
