//! The main-thread component: the `main` world (`app.js` with `App`, `getApp`
//! and `wx`) over the shared guest library.

use miniworker_guest::quickjs::{Ctx, Function, Object, Result};
use miniworker_guest::{codec, native, throw_error};

wit_bindgen::generate!({ world: "main", path: "../../wit" });

use exports::miniworker::sandbox::main_events::{self, WorkerEvent};
use miniworker::sandbox::main_host;

struct Component;
export!(Component);

miniworker_guest::component_glue!(
    miniworker_guest::MAIN_PRELUDE,
    &["deliverMessage", "deliverError", "deliverKill", "callApp"],
    install_natives
);

/// The natives `js/main.js` builds `wx` and the `Worker` objects on.
fn install_natives<'js>(ctx: &Ctx<'js>, natives: &Object<'js>) -> Result<()> {
    natives.set(
        "createWorker",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, path: String| -> Result<u32> {
            main_host::create_worker(&path).map_err(|e| throw_error(&ctx, &format!("createWorker: {e}")))
        })?,
    )?;
    natives.set(
        "postToWorker",
        native::function(ctx, c"postToWorker", 2, post_to_worker)?,
    )?;
    natives.set(
        "terminateWorker",
        Function::new(ctx.clone(), main_host::terminate_worker)?,
    )?;
    natives.set(
        "unhandledWorkerError",
        Function::new(ctx.clone(), |id: u32, d: Object<'js>| -> Result<()> {
            let error = miniworker::sandbox::types::JsError {
                name: d.get("name").unwrap_or_default(),
                message: d.get("message")?,
                stack: d.get("stack")?,
                filename: d.get("filename")?,
                lineno: d.get("lineno")?,
            };
            main_host::unhandled_worker_error(id, &error);
            Ok(())
        })?,
    )?;
    Ok(())
}

miniworker_guest::native_fn!(
    /// `postToWorker(id, message)`: encodes the message and queues it for
    /// the worker (a native QuickJS calls directly: the message path).
    fn post_to_worker(ctx, args) {
        let id = args.u32(0)?;
        codec::encode(ctx, args.value(1), miniworker_guest::max_message(ctx), |data| {
            main_host::post_to_worker(id, data).map_err(|e| throw_error(ctx, &e))
        })
    }
);

/// The name JavaScript sees for a kill reason (`onProcessKilled`'s `reason`).
fn reason_name(reason: main_events::KillReason) -> &'static str {
    use main_events::KillReason as R;
    match reason {
        R::Memory => "memory",
        R::CpuTime => "cpu-time",
        R::Stack => "stack",
        R::Test => "test",
        R::Crash => "crash",
    }
}

impl main_events::Guest for Component {
    fn deliver_worker_event(id: u32, event: WorkerEvent) -> miniworker::sandbox::types::TurnState {
        with_context(|cx| {
            cx.turn(|ctx, _, role| match event {
                WorkerEvent::Error(e) => {
                    let o = Object::new(ctx.clone())?;
                    o.set("name", e.name)?;
                    o.set("message", e.message)?;
                    o.set("stack", e.stack)?;
                    o.set("filename", e.filename)?;
                    o.set("lineno", e.lineno)?;
                    role.get::<_, Function>("deliverError")?.call((id, o))
                }
                WorkerEvent::Killed(k) => {
                    role.get::<_, Function>("deliverKill")?
                        .call((id, reason_name(k.reason), k.message))
                }
            })
        })
    }

    fn deliver_worker_messages(
        id: u32,
        batch: Vec<miniworker::sandbox::types::Message>,
    ) -> miniworker::sandbox::types::TurnState {
        with_context(|cx| {
            cx.turns(
                batch,
                miniworker::sandbox::context::begin_turn,
                "deliverMessage",
                |ctx, deliver, data| {
                    let data = codec::decode(ctx, &data.bytes, data.outside.unwrap_or_default())?;
                    native::call_with(ctx, deliver, &[native::number(id), data.as_raw()])
                },
            )
        })
    }

    fn call_app_hook(hook: main_events::AppHook) -> miniworker::sandbox::types::TurnState {
        let name = match hook {
            main_events::AppHook::OnLaunch => "onLaunch",
            main_events::AppHook::OnShow => "onShow",
        };
        with_context(|cx| cx.turn(|_, _, role| role.get::<_, Function>("callApp")?.call((name,))))
    }
}
