//! The message codec (docs/spec.md section 4): every type through a real worker and
//! back, refusals at the sender, the size limit, deep nesting, and the host's
//! decoded form.

use miniworker::{Event, Item, Message, Node, ViewKind};

use crate::common::{next_event, next_message, program, run_fixture_with, stderr, stdout};

#[test]
fn every_cloneable_type_round_trips_through_a_worker() {
    // A 1,000,000-deep array is about 60 MiB of QuickJS objects before the
    // encoder's bookkeeping: more than the default 64 MiB cap allows.
    let out = run_fixture_with("clone-types", &["--max-memory", "512"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let failed: Vec<&&str> = lines.iter().filter(|l| !l.starts_with("[main] ok ")).collect();
    assert!(failed.is_empty(), "{text}");
    // 35 round trips, 8 refusals, two size limits, the transfer list, the
    // deep array, two structuredClones, AggregateError.
    assert_eq!(lines.len(), 50, "{text}");
    for expected in [
        "[main] ok proxy (DataCloneError: a Proxy could not be cloned)",
        "[main] ok size limit (RangeError)",
        "[main] ok identity and cycles",
        "[main] ok arraybuffer and views sharing it",
        "[main] ok a received ArrayBuffer is an ordinary one",
        "[main] ok many distinct keys, second time",
        "[main] ok records of many shapes, third time",
        "[main] ok short strings, third time",
        "[main] ok records made whole, first time",
        "[main] ok records made whole, third time",
        "[main] ok lone surrogate key",
        "[main] ok deep array (depth 1000000)",
        "[main] ok structuredClone in app.js",
        "[main] ok AggregateError message and errors",
        "[main] ok array properties",
        "[main] ok AggregateError errors",
        "[main] ok large buffers beside the message",
        "[main] ok a received large ArrayBuffer is an ordinary one",
        "[main] ok a large buffer written by a later getter",
        "[main] ok a large buffer detached by a later getter",
        "[main] ok a large buffer written by a later array element",
        "[main] ok size limit of large buffers (RangeError)",
        "[main] ok structuredClone of a large buffer",
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in {text}");
    }
}

#[test]
fn the_host_decodes_worker_messages_into_rust_values() {
    let program = program("basic");
    let worker = program.create_worker("workers/rich.js").unwrap();
    let Event::Message(m) = next_event(&worker) else {
        panic!("expected a message")
    };
    let m = m.decode().unwrap();
    let Item::Ref(root) = m.root else {
        panic!("root {:?}", m.root)
    };
    let Node::Object(props) = &m.nodes[root] else {
        panic!("{:?}", m.nodes[root])
    };
    let get = |k: &str| {
        props
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let node = |item: Item| match item {
        Item::Ref(i) => m.nodes[i].clone(),
        other => panic!("expected a node, got {other:?}"),
    };
    assert_eq!(node(get("date")), Node::Date(0.0));
    assert_eq!(
        get("big"),
        Item::BigInt {
            negative: true,
            magnitude: vec![0, 0, 0, 0, 0, 0, 0, 0, 1]
        }
    );
    let Node::Map(entries) = node(get("map")) else {
        panic!()
    };
    let Node::Set(values) = node(get("set")) else {
        panic!()
    };
    assert_eq!(entries[0].0, Item::String("k".into()));
    assert_eq!(entries[0].1, values[0], "shared identity is kept");
    let Node::View {
        kind,
        buffer,
        offset,
        length,
    } = node(get("u16"))
    else {
        panic!()
    };
    assert_eq!((kind, offset, length), (ViewKind::Uint16, 2, 1));
    assert_eq!(m.nodes[buffer], Node::ArrayBuffer(vec![1, 2, 3, 4]));
    let cyclic = get("cyclic");
    let Node::Object(cprops) = node(cyclic.clone()) else {
        panic!()
    };
    assert_eq!(
        cprops[1],
        ("self".to_string(), cyclic),
        "the cycle points at itself"
    );
    assert!(matches!(get("nan"), Item::Number(n) if n.is_nan()));
    assert_eq!(get("und"), Item::Undefined);
    let Node::Error { name, message, .. } = node(get("err")) else {
        panic!()
    };
    assert_eq!((name.as_str(), message.as_str()), ("RangeError", "r"));
    // A cycle cannot become JSON; the rest of the API still sees the value.
    assert_eq!(m.to_json(), Err(miniworker::JsonError::Cycle));
}

#[test]
fn host_messages_reach_the_worker_with_json_types() {
    let program = program("basic");
    let worker = program.create_worker("workers/echo.js").unwrap();
    let _ready = next_event(&worker);
    let message = Message {
        root: Item::Ref(0),
        nodes: vec![
            Node::Object(vec![
                (
                    "big".into(),
                    Item::BigInt {
                        negative: false,
                        magnitude: vec![42],
                    },
                ),
                ("when".into(), Item::Ref(1)),
            ]),
            Node::Date(86_400_000.0),
        ],
    };
    worker.post_message(&message).unwrap();
    let Event::Message(reply) = next_event(&worker) else {
        panic!()
    };
    assert_eq!(
        reply.to_json().unwrap(),
        serde_json::json!({ "big": "42", "when": "1970-01-02T00:00:00.000Z", "echo": true, "count": 1 })
    );
}

#[test]
fn host_records_with_a_repeated_key_or_a_reference_to_themselves_decode_the_same_each_time() {
    // Three times each: the guest's decoder makes records of a key sequence
    // seen twice a whole shape at a time (guest codec/shapes.rs), so the
    // first, second and third messages take different paths.
    let program = program("basic");
    let worker = program.create_worker("workers/echo.js").unwrap();
    let _ready = next_event(&worker);
    let int = |n: f64| Item::Number(n);
    let repeated = Message {
        root: Item::Ref(0),
        nodes: vec![Node::Object(vec![
            ("a".into(), int(1.0)),
            ("a".into(), int(2.0)),
            ("b".into(), int(3.0)),
        ])],
    };
    let cyclic = Message {
        root: Item::Ref(0),
        nodes: vec![
            Node::Object(vec![("name".into(), Item::Ref(1)), ("self".into(), Item::Ref(0))]),
            Node::Object(vec![("up".into(), Item::Ref(0))]),
        ],
    };
    for count in 1..=3 {
        worker.post_message(&repeated).unwrap();
        let Event::Message(reply) = next_event(&worker) else {
            panic!()
        };
        // The last value of a repeated key wins, as in an object literal.
        assert_eq!(
            reply.to_json().unwrap(),
            serde_json::json!({ "a": 2, "b": 3, "echo": true, "count": 2 * count - 1 })
        );
        worker.post_message(&cyclic).unwrap();
        let Event::Message(reply) = next_event(&worker) else {
            panic!()
        };
        let m = reply.decode().unwrap();
        let Item::Ref(root) = m.root else {
            panic!("root {:?}", m.root)
        };
        let Node::Object(props) = &m.nodes[root] else {
            panic!("{:?}", m.nodes[root])
        };
        let keys: Vec<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["name", "self", "echo", "count"], "message {count}");
        assert_eq!(props[1].1, Item::Ref(root));
        let Item::Ref(inner) = props[0].1 else {
            panic!("{:?}", props[0])
        };
        assert_eq!(m.nodes[inner], Node::Object(vec![("up".into(), Item::Ref(root))]));
    }
}

#[test]
fn the_size_limit_holds_in_the_worker_and_on_the_host() {
    let program = program("basic");
    let worker = program.create_worker("workers/sizes.js").unwrap();
    // The worker refuses to send 17 MiB, and can still send 15.
    worker.post_json(&serde_json::json!(17)).unwrap();
    assert_eq!(
        next_message(&worker),
        "RangeError: postMessage: the message is larger than the limit of 16777216 bytes"
    );
    worker.post_json(&serde_json::json!(15)).unwrap();
    let reply = next_message(&worker);
    assert_eq!(reply.as_str().map(str::len), Some((15 << 20) - 16));
    // The host refuses to send 17 MiB; nothing reaches the worker.
    let big = Message::primitive(Item::String("x".repeat(17 << 20)));
    match worker.post_message(&big) {
        Err(miniworker::Error::Message(miniworker::MessageError::TooLarge { limit })) => {
            assert_eq!(limit, 16 << 20)
        }
        other => panic!("expected a size error, got {other:?}"),
    }
    worker.post_json(&serde_json::json!(17)).unwrap();
    assert!(next_message(&worker).as_str().unwrap().starts_with("RangeError"));
}

#[test]
fn a_getter_resizing_an_array_buffer_mid_clone_is_a_data_clone_error_not_a_kill() {
    let out = crate::common::run_fixture("resize");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "[main] app.js: DataCloneError\n[main] structuredClone: DataCloneError\n[main] worker: DataCloneError\n"
    );
}

#[test]
fn a_large_buffer_comes_back_beside_the_message_and_decodes_the_same() {
    // The host writes a 64 KiB buffer inline; the echo worker sends it back
    // as an outside payload (docs/codec.md, ARRAY_BUFFER_OUT).
    let program = program("basic");
    let worker = program.create_worker("workers/echo.js").unwrap();
    let _ready = next_event(&worker);
    let bytes: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let message = Message {
        root: Item::Ref(0),
        nodes: vec![
            Node::Object(vec![
                ("view".into(), Item::Ref(1)),
                ("again".into(), Item::Ref(2)),
            ]),
            Node::View {
                kind: ViewKind::Uint8,
                buffer: 2,
                offset: 16,
                length: 32,
            },
            Node::ArrayBuffer(bytes.clone()),
        ],
    };
    worker.post_message(&message).unwrap();
    let Event::Message(reply) = next_event(&worker) else {
        panic!()
    };
    assert_eq!(
        reply.parts().outside,
        std::slice::from_ref(&bytes),
        "the payload came beside the bytes"
    );
    assert!(
        reply.parts().bytes.len() < 100,
        "{} bytes",
        reply.parts().bytes.len()
    );
    assert_eq!(reply.len(), reply.parts().bytes.len() + bytes.len());
    let m = reply.decode().unwrap();
    let Item::Ref(root) = m.root else {
        panic!("root {:?}", m.root)
    };
    let Node::Object(props) = &m.nodes[root] else {
        panic!("{:?}", m.nodes[root])
    };
    let (Item::Ref(view), Item::Ref(again)) = (&props[0].1, &props[1].1) else {
        panic!("{props:?}")
    };
    let Node::View {
        kind,
        buffer,
        offset,
        length,
    } = m.nodes[*view]
    else {
        panic!("{:?}", m.nodes[*view])
    };
    assert_eq!((kind, offset, length, buffer), (ViewKind::Uint8, 16, 32, *again));
    assert_eq!(m.nodes[buffer], Node::ArrayBuffer(bytes.clone()));
    // The JSON text reads the payload too: a typed array as index keys.
    let json = reply.to_json().unwrap();
    assert_eq!(json["view"]["0"], serde_json::json!(16));
    assert_eq!(json["view"]["31"], serde_json::json!(47));
}
