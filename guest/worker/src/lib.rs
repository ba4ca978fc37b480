//! The worker component: the `worker` world over the shared guest library.
//! It imports nothing but `context` and `worker-host`, so worker code cannot
//! reach `wx`, files, or another context.

use miniworker_guest::quickjs::{Ctx, Function, Object, Result};
use miniworker_guest::{codec, native, throw_error};

wit_bindgen::generate!({ world: "worker", path: "../../wit" });

use miniworker::sandbox::worker_host;

struct Component;
export!(Component);

miniworker_guest::component_glue!(
    miniworker_guest::WORKER_PRELUDE,
    &["deliverMessage"],
    install_natives
);

/// The natives `js/worker.js` builds the `worker` global on.
fn install_natives<'js>(ctx: &Ctx<'js>, natives: &Object<'js>) -> Result<()> {
    natives.set(
        "postMessage",
        native::function(ctx, c"postMessage", 1, post_message)?,
    )?;
    natives.set("testKill", Function::new(ctx.clone(), worker_host::test_kill)?)?;
    Ok(())
}

miniworker_guest::native_fn!(
    /// `postMessage(message)`: encodes the message and queues it for the
    /// main thread (a native QuickJS calls directly: the message path).
    fn post_message(ctx, args) {
        codec::encode(ctx, args.value(0), miniworker_guest::max_message(ctx), |data| {
            worker_host::post_message(data).map_err(|e| throw_error(ctx, &e))
        })
    }
);

impl exports::miniworker::sandbox::worker_events::Guest for Component {
    fn deliver_messages(
        batch: Vec<miniworker::sandbox::types::Message>,
    ) -> miniworker::sandbox::types::TurnState {
        with_context(|cx| {
            cx.turns(
                batch,
                miniworker::sandbox::context::begin_turn,
                "deliverMessage",
                |ctx, deliver, data| {
                    let message = codec::decode(ctx, &data.bytes, data.outside.unwrap_or_default())?;
                    native::call_with(ctx, deliver, &[message.as_raw()])
                },
            )
        })
    }
}
