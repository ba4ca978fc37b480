//! Runs examples/hello's worker through the library, as another project
//! would: one round trip, then checks the reply.

use std::time::Duration;

use miniworker::{Event, MiniProgram, Project, Runtime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let project = std::env::args().nth(1).unwrap_or_else(|| "../../examples/hello".into());
    let runtime = Runtime::new()?;
    let program = MiniProgram::new(&runtime, Project::open(project)?)?;
    let worker = program.create_worker("workers/request/index.js")?;
    worker.post_json(&serde_json::json!({ "msg": "from outside" }))?;
    loop {
        match worker.recv_timeout(Duration::from_secs(20))? {
            Some(Event::Message(reply)) => {
                let reply = reply.to_json()?;
                assert_eq!(reply, serde_json::json!({ "msg": "hello main", "echo": "from outside" }));
                println!("{reply} (precompiled: {})", runtime.precompiled());
                return Ok(());
            }
            Some(_) => continue,
            None => return Err("no reply".into()),
        }
    }
}
