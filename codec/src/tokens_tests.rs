//! Tests of the token reader (`tokens.rs`).

use super::*;
use crate::{OUTSIDE_MIN, Parts, ViewKind, Writer};

fn bytes(build: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::new(usize::MAX);
    build(&mut w);
    w.finish()
}

#[test]
fn a_sparse_array_is_checked_in_constant_memory() {
    let msg = bytes(|w| {
        w.tag(tag::ARRAY).unwrap();
        w.varint(1_000_000).unwrap();
        for _ in 0..1_000_000 {
            w.tag(tag::HOLE).unwrap();
        }
    });
    assert_eq!(validate(&msg), Ok(1));
}

#[test]
fn structural_rules_are_enforced() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (bytes(|w| w.tag(tag::HOLE).unwrap()), "unknown tag"),
        (
            bytes(|w| {
                w.tag(tag::REF).unwrap();
                w.varint(0).unwrap();
            }),
            "reference to an object not seen yet",
        ),
        (
            bytes(|w| {
                w.tag(tag::MAP).unwrap();
                w.tag(tag::NULL).unwrap();
                w.tag(tag::END).unwrap();
            }),
            "a Map key without a value",
        ),
        (
            bytes(|w| {
                w.tag(tag::OBJECT).unwrap();
                w.tag(tag::NULL).unwrap();
            }),
            "expected a string",
        ),
        (
            bytes(|w| {
                w.tag(tag::VIEW).unwrap();
                w.bytes(&[ViewKind::Int32 as u8]).unwrap();
                w.varint(0).unwrap();
                w.varint(2).unwrap();
                w.tag(tag::ARRAY_BUFFER).unwrap();
                w.varint(4).unwrap();
                w.bytes(&[0; 4]).unwrap();
            }),
            "a view out of its buffer's bounds",
        ),
        (
            bytes(|w| {
                w.tag(tag::ARRAY).unwrap();
                w.varint(2).unwrap();
                w.tag(tag::OBJECT).unwrap();
                w.tag(tag::END).unwrap();
                w.tag(tag::VIEW).unwrap();
                w.bytes(&[ViewKind::Uint8 as u8]).unwrap();
                w.varint(0).unwrap();
                w.varint(0).unwrap();
                w.tag(tag::REF).unwrap();
                w.varint(1).unwrap();
            }),
            "a view's buffer must be an ArrayBuffer",
        ),
        (
            bytes(|w| {
                w.tag(tag::NULL).unwrap();
                w.tag(tag::NULL).unwrap();
            }),
            "trailing bytes",
        ),
        (
            bytes(|w| {
                w.tag(tag::ARRAY_PROPS).unwrap();
                w.varint(0).unwrap();
                w.string("length").unwrap();
                w.number(5.0).unwrap();
                w.tag(tag::END).unwrap();
            }),
            "an array property named by an index or length",
        ),
        (
            bytes(|w| {
                w.tag(tag::ARRAY_PROPS).unwrap();
                w.varint(1).unwrap();
                w.tag(tag::HOLE).unwrap();
                w.string("0").unwrap();
                w.number(5.0).unwrap();
                w.tag(tag::END).unwrap();
            }),
            "an array property named by an index or length",
        ),
        (
            bytes(|w| {
                w.tag(tag::ARRAY_PROPS).unwrap();
                w.varint(0).unwrap();
                w.string("x").unwrap();
                w.tag(tag::HOLE).unwrap();
                w.tag(tag::END).unwrap();
            }),
            "unknown tag",
        ),
        (
            bytes(|w| {
                w.tag(tag::ERROR_PROPS).unwrap();
                w.string("Error").unwrap();
                w.string("").unwrap();
                w.tag(tag::UNDEFINED).unwrap();
            }),
            "unexpected end",
        ),
    ];
    for (msg, what) in cases {
        assert_eq!(validate(&msg).map_err(|e| e.what), Err(what), "{msg:?}");
    }
}

#[test]
fn keys_that_are_not_indexes_may_follow_an_array() {
    let msg = bytes(|w| {
        w.tag(tag::ARRAY_PROPS).unwrap();
        w.varint(1).unwrap();
        w.number(7.0).unwrap();
        for k in ["01", "-1", "4294967295", "1.5", "index"] {
            w.string(k).unwrap();
            w.tag(tag::NULL).unwrap();
        }
        w.tag(tag::END).unwrap();
    });
    assert_eq!(validate(&msg), Ok(1));
}

#[test]
fn a_value_can_be_read_again_from_its_offset() {
    // [{a: 1}, ref 1]
    let msg = bytes(|w| {
        w.tag(tag::ARRAY).unwrap();
        w.varint(2).unwrap();
        w.tag(tag::OBJECT).unwrap();
        w.string("a").unwrap();
        w.number(1.0).unwrap();
        w.tag(tag::END).unwrap();
        w.tag(tag::REF).unwrap();
        w.varint(1).unwrap();
    });
    let mut whole = Tokens::new(&msg).unwrap();
    assert_eq!(whole.next().unwrap(), Some(Token::Array(2)));
    let object_at = whole.offset();
    let again: Vec<Token<'_>> = {
        let mut t = Tokens::value_at((&msg).into(), object_at, 1).unwrap();
        std::iter::from_fn(|| t.next().unwrap()).collect()
    };
    assert_eq!(
        again,
        [
            Token::Object,
            Token::Key(Str::Utf8("a")),
            Token::Number(1.0),
            Token::End
        ]
    );
    let rest: Vec<Token<'_>> = std::iter::from_fn(|| whole.next().unwrap()).collect();
    assert_eq!(rest[..4], again[..]);
    assert_eq!(rest[4..], [Token::Ref(1), Token::End]);
}

/// `[Uint8Array over outside payload 0 (from byte 2, 3 elements), outside
/// payload 1, the view's buffer again]` and its payloads.
fn outside_message() -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut w = Writer::new(usize::MAX);
    w.tag(tag::ARRAY).unwrap();
    w.varint(3).unwrap();
    w.tag(tag::VIEW).unwrap();
    w.tag(ViewKind::Uint8 as u8).unwrap();
    w.varint(2).unwrap();
    w.varint(3).unwrap();
    assert_eq!(w.array_buffer_outside(OUTSIDE_MIN), Ok(0));
    assert_eq!(w.array_buffer_outside(OUTSIDE_MIN + 1), Ok(1));
    w.tag(tag::REF).unwrap();
    w.varint(2).unwrap();
    (w.finish(), vec![vec![1; OUTSIDE_MIN], vec![2; OUTSIDE_MIN + 1]])
}

#[test]
fn outside_payloads_are_read_in_order_and_each_once() {
    let (msg, outside) = outside_message();
    let parts = Parts {
        bytes: &msg,
        outside: &outside,
    };
    let mut t = Tokens::new(parts).unwrap();
    assert_eq!(t.next().unwrap(), Some(Token::Array(3)));
    let Some(Token::View {
        buffer: ViewBuffer::Inline(b),
        offset: 2,
        length: 3,
        ..
    }) = t.next().unwrap()
    else {
        panic!("a view over an outside payload")
    };
    assert_eq!((b.as_ptr(), t.outside_taken()), (outside[0].as_ptr(), 1));
    assert_eq!(t.next().unwrap(), Some(Token::ArrayBuffer(&outside[1])));
    assert_eq!(t.outside_taken(), 2);
    assert_eq!(t.next().unwrap(), Some(Token::Ref(2)));
    assert_eq!(validate(parts), Ok(4));
    assert_eq!(parts.len(), msg.len() + 2 * OUTSIDE_MIN + 1);
}

#[test]
fn outside_payloads_must_match_the_message() {
    let (msg, outside) = outside_message();
    let small = vec![outside[0].clone(), vec![2; OUTSIDE_MIN - 1]];
    let extra = vec![outside[0].clone(), outside[1].clone(), outside[1].clone()];
    let cases: [(&[Vec<u8>], &str); 4] = [
        (&[], "an outside payload the message does not have"),
        (&outside[..1], "an outside payload the message does not have"),
        (&small, "an outside payload under 64 KiB"),
        (&extra, "an outside payload the message does not use"),
    ];
    for (outside, what) in cases {
        let parts = Parts { bytes: &msg, outside };
        assert_eq!(validate(parts).map_err(|e| e.what), Err(what));
    }
    // Payload 1 named first.
    let mut w = Writer::new(usize::MAX);
    w.tag(tag::ARRAY_BUFFER_OUT).unwrap();
    w.varint(1).unwrap();
    let swapped = w.finish();
    let parts = Parts {
        bytes: &swapped,
        outside: &outside,
    };
    assert_eq!(
        validate(parts).map_err(|e| e.what),
        Err("outside payloads out of order")
    );
}

#[test]
fn outside_payloads_count_toward_the_limit() {
    let mut w = Writer::new(OUTSIDE_MIN + 8);
    w.array_buffer_outside(OUTSIDE_MIN).unwrap();
    assert_eq!(
        w.string("0123456789"),
        Err(crate::TooLarge {
            limit: OUTSIDE_MIN + 8
        })
    );
    assert_eq!(
        Writer::new(OUTSIDE_MIN).array_buffer_outside(OUTSIDE_MIN),
        Err(crate::TooLarge { limit: OUTSIDE_MIN })
    );
}
