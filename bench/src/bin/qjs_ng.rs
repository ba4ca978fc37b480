//! Native QuickJS-ng, from the same rquickjs version the guest uses, as a
//! tiny script runner for the compute workloads: `qjs_ng SCRIPT.js`. The
//! script gets `console.log` (one line to stdout) and `performance.now()`.

use rquickjs::{Context, Function, Object, Runtime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: qjs_ng SCRIPT.js")?;
    let source = std::fs::read_to_string(&path)?;
    let runtime = Runtime::new()?;
    let context = Context::full(&runtime)?;
    context.with(|ctx| -> rquickjs::Result<()> {
        let console = Object::new(ctx.clone())?;
        console.set(
            "log",
            Function::new(ctx.clone(), |line: String| println!("{line}"))?,
        )?;
        ctx.globals().set("console", console)?;
        let start = std::time::Instant::now();
        let performance = Object::new(ctx.clone())?;
        performance.set(
            "now",
            Function::new(ctx.clone(), move || start.elapsed().as_secs_f64() * 1e3)?,
        )?;
        ctx.globals().set("performance", performance)?;
        ctx.eval::<(), _>(source)
    })?;
    Ok(())
}
