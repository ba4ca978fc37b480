//! Any bytes given to the host's decoder give a message or an error, never a
//! panic; a decoded message re-encodes to bytes that decode to the same bytes
//! again (the format has one canonical encoding per decoded message).
#![no_main]

use libfuzzer_sys::fuzz_target;
use miniworker_codec::Message;

const LIMIT: usize = 1 << 24;

fuzz_target!(|bytes: &[u8]| {
    let Ok(message) = Message::decode(bytes) else { return };
    let _ = message.to_json();
    let once = message.encode(LIMIT).expect("a decoded message fits the limit it came in");
    let again = Message::decode(&once).expect("our own encoding decodes");
    assert_eq!(again.encode(LIMIT).expect("re-encodes"), once);
});
