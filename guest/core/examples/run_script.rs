//! Runs one script (read from stdin) in a guest context, for measuring the
//! interpreter inside WebAssembly without the host protocol: the bench runs
//! it with epoch interruption on and off (`guest_command --no-epochs`).
//! `console.log` lines go to stdout.

use std::io::Read;

use miniworker_guest::Level;

mod harness;

fn main() {
    let mut source = String::new();
    if std::io::stdin().read_to_string(&mut source).is_err() {
        eprintln!("cannot read the script from stdin");
        std::process::exit(2);
    }
    let context = harness::context(|_: Level, args: &[String]| println!("{}", args.join(" ")));
    context.start("/script.js", &source);
}
