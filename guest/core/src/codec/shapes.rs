//! The codec's shapes: skeleton objects that keep QuickJS's shapes (hidden
//! classes) alive from one message to the next, and through them records
//! made and read a whole shape at a time.
//!
//! QuickJS gives an object a new shape for each property added, and reuses
//! an existing shape only while some object still has it. A decoded record
//! passes through one shape per key; once the record is gone (or has been
//! given another key, as an echoing worker does), those shapes are gone too,
//! and the next record of the same keys builds every one of them again. So
//! the decoder walks a trie of the key sequences of the plain objects it
//! decodes ([`Shapes::step`]), and from the second time a sequence is met, a
//! [`Skeleton`] object with those keys (values `undefined`, never seen by
//! JavaScript) holds its shape. The encoder follows the plain objects it
//! sends the same way, so a record built again for each message, or a
//! received one given a key and sent back, keeps its shapes as well. Key
//! sequences met once cost a trie node only; the trie is bounded and starts
//! again when full.
//!
//! A skeleton whose shape is plain (QuickJS patch `JS_PlainPropertyCount`,
//! docs/building.md: data properties only, string keys that are not
//! indexes, so its slots are in the order of its keys) also serves whole
//! records: the decoder makes a record of its keys with one allocation
//! ([`Skeleton::make`], then [`set_slot`]) instead of a definition per key,
//! and the encoder, finding an object's shape among the skeletons'
//! ([`Shapes::of_shape`]), reads its keys from the skeleton and its values
//! by slot ([`slot`]) instead of listing and looking up its properties.

use std::rc::Rc;

use javy::quickjs::{self, qjs};
use rustc_hash::FxHashMap;

use super::raw::Raw;

// The QuickJS patch's functions (guest/patches/, quickjs.c "plain shapes").
unsafe extern "C" {
    fn JS_PlainPropertyCount(ctx: *mut qjs::JSContext, obj: qjs::JSValue) -> std::ffi::c_int;
    fn JS_GetShapeId(obj: qjs::JSValue) -> *const std::ffi::c_void;
    fn JS_NewObjectLike(ctx: *mut qjs::JSContext, like: qjs::JSValue) -> qjs::JSValue;
    fn JS_GetSlot(ctx: *mut qjs::JSContext, obj: qjs::JSValue, i: u32) -> qjs::JSValue;
    fn JS_SetSlot(ctx: *mut qjs::JSContext, obj: qjs::JSValue, i: u32, v: qjs::JSValue) -> std::ffi::c_int;
}

/// The identity of an object's shape (0 for a value that is not an object).
pub(crate) fn shape_of(v: qjs::JSValue) -> usize {
    // SAFETY: reads the shape pointer of a live value, without using it.
    unsafe { JS_GetShapeId(v) as usize }
}

/// The shape of every array that has no property but its length: the
/// context's initial array shape (QuickJS's `array_shape`, held by the
/// context for its life, so its identity never names another shape). An
/// array given any other own property, an index outside its fast part or a
/// changed `length` attribute moves to another shape first: QuickJS never
/// changes a shape that more than one holder shares in place.
pub(crate) fn plain_array_shape(ctx: &quickjs::Ctx<'_>) -> quickjs::Result<usize> {
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: a new array of this context, given back at once.
    let array = Raw::take(raw, unsafe { qjs::JS_NewArray(raw) })?;
    Ok(shape_of(array.v))
}

/// The value in slot `i` of an object of a plain skeleton's shape (checked
/// by the caller with [`shape_of`]; QuickJS answers `undefined` for a slot
/// that is not a data property).
pub(crate) fn slot(ctx: *mut qjs::JSContext, obj: qjs::JSValue, i: u32) -> Raw {
    // SAFETY: reads a slot of a live object, bounds-checked by QuickJS; a
    // new reference, held by the new `Raw`.
    Raw {
        ctx,
        v: unsafe { JS_GetSlot(ctx, obj, i) },
    }
}

/// Puts `v` in slot `i` of a record made by [`Skeleton::make`].
pub(crate) fn set_slot(obj: &Raw, i: u32, v: Raw) -> quickjs::Result<()> {
    // SAFETY: QuickJS takes the reference to `v` whatever the outcome, and
    // bounds-checks the slot.
    if unsafe { JS_SetSlot(obj.ctx, obj.v, i, v.into_raw()) } < 0 {
        // SAFETY: throws in the context the record belongs to.
        unsafe { qjs::JS_ThrowInternalError(obj.ctx, c"a record's slot".as_ptr()) };
        return Err(quickjs::Error::Exception);
    }
    Ok(())
}

/// An object holding a key sequence's shape, never seen by JavaScript.
pub(crate) struct Skeleton {
    rt: *mut qjs::JSRuntime,
    obj: qjs::JSValue,
    /// Its keys in order; the shape holds a reference to each.
    keys: Box<[qjs::JSAtom]>,
    /// Its shape is plain: records are made and read by slot.
    plain: bool,
    /// Its shape's identity ([`shape_of`]); the skeleton is never changed,
    /// so neither is its shape.
    shape: usize,
}

impl Skeleton {
    pub(crate) fn keys(&self) -> &[qjs::JSAtom] {
        &self.keys
    }

    pub(crate) fn shape(&self) -> usize {
        self.shape
    }

    /// A new object of this plain skeleton's shape, its values `undefined`.
    pub(crate) fn make(&self, ctx: *mut qjs::JSContext) -> quickjs::Result<Raw> {
        // SAFETY: a new object of the context the skeleton belongs to.
        Raw::take(ctx, unsafe { JS_NewObjectLike(ctx, self.obj) })
    }
}

impl Drop for Skeleton {
    fn drop(&mut self) {
        // SAFETY: the one reference this skeleton holds, given back once
        // (through the runtime, which outlives the context's state).
        unsafe { qjs::JS_FreeValueRT(self.rt, self.obj) }
    }
}

/// A node of the trie: the keys of an object so far.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Node(u32);

impl Node {
    /// An object with no key yet.
    pub(crate) const EMPTY: Node = Node(0);
}

/// Nodes kept at most (then the trie starts again), and the most keys an
/// object is followed for (a skeleton of n keys costs n definitions once).
/// A skeleton of n keys holds about 100 + 40n bytes of QuickJS memory
/// beyond the shape it keeps: at most about 1 MiB per context, and a few
/// KiB for the handful of record shapes a mini-program sends.
const NODES: usize = 1024;
const DEPTH: u32 = 32;

struct Entry {
    parent: Node,
    /// The last key, with a reference held (none for the empty object).
    atom: qjs::JSAtom,
    depth: u32,
    /// The skeleton, from the node's second visit.
    skeleton: Option<Rc<Skeleton>>,
    /// The child stepped to last, and its key: records of one shape take
    /// the same steps message after message, without a hash lookup.
    last: Option<(qjs::JSAtom, Node)>,
}

/// The trie of one context; its atoms and skeletons live as long as the
/// context (or until the trie starts again).
#[derive(Default)]
pub(crate) struct Shapes {
    children: FxHashMap<(Node, qjs::JSAtom), Node>,
    /// Every node, at its number ([`Node::EMPTY`] first, once made).
    entries: Vec<Entry>,
    /// The plain skeletons, by the identity of their shape.
    plain: FxHashMap<usize, Rc<Skeleton>>,
}

impl Shapes {
    /// Makes room for a message: a full trie starts again.
    pub(crate) fn make_room(&mut self, ctx: *mut qjs::JSContext) {
        if self.entries.len() >= NODES {
            self.clear(ctx);
        }
        if self.entries.is_empty() {
            self.entries.push(Entry {
                parent: Node::EMPTY,
                atom: qjs::JS_ATOM_NULL,
                depth: 0,
                skeleton: None,
                last: None,
            });
        }
    }

    /// The node of `node`'s keys followed by `atom`, its skeleton made on
    /// its second visit; `None` when the object is not followed (too many
    /// keys, or the trie is full). An error is QuickJS's (out of memory),
    /// pending in `ctx`. Call [`Shapes::make_room`] first in each message.
    pub(crate) fn step(
        &mut self,
        ctx: *mut qjs::JSContext,
        node: Node,
        atom: qjs::JSAtom,
    ) -> quickjs::Result<Option<Node>> {
        let Some(from) = self.entries.get(node.0 as usize) else {
            return Ok(None);
        };
        let known = match from.last {
            Some((key, child)) if key == atom => Some(child),
            _ => self.children.get(&(node, atom)).copied(),
        };
        if let Some(child) = known {
            self.entries[node.0 as usize].last = Some((atom, child));
            if self.entries[child.0 as usize].skeleton.is_none() {
                let skeleton = Rc::new(self.skeleton(ctx, child)?);
                if skeleton.plain {
                    self.plain.insert(skeleton.shape(), skeleton.clone());
                }
                self.entries[child.0 as usize].skeleton = Some(skeleton);
            }
            return Ok(Some(child));
        }
        let depth = from.depth + 1;
        if depth > DEPTH || self.entries.len() >= NODES {
            return Ok(None);
        }
        let child = Node(self.entries.len() as u32);
        self.entries.push(Entry {
            parent: node,
            // SAFETY: the trie takes its own reference to a live atom.
            atom: unsafe { qjs::JS_DupAtom(ctx, atom) },
            depth,
            skeleton: None,
            last: None,
        });
        self.children.insert((node, atom), child);
        self.entries[node.0 as usize].last = Some((atom, child));
        Ok(Some(child))
    }

    /// Walks the keys of an object, in order, from the empty object.
    pub(crate) fn follow(
        &mut self,
        ctx: *mut qjs::JSContext,
        atoms: impl Iterator<Item = qjs::JSAtom>,
    ) -> quickjs::Result<()> {
        let mut node = Node::EMPTY;
        for atom in atoms {
            match self.step(ctx, node, atom)? {
                Some(next) => node = next,
                None => break,
            }
        }
        Ok(())
    }

    /// The plain skeleton of `node`'s keys, if it has one.
    pub(crate) fn plain(&self, node: Node) -> Option<Rc<Skeleton>> {
        let skeleton = self.entries.get(node.0 as usize)?.skeleton.as_ref()?;
        skeleton.plain.then(|| skeleton.clone())
    }

    /// The plain skeleton whose shape is `shape` ([`shape_of`]), if any: an
    /// object of that shape has its keys, in its slots.
    pub(crate) fn of_shape(&self, shape: usize) -> Option<Rc<Skeleton>> {
        self.plain.get(&shape).cloned()
    }

    fn entry(&self, node: Node) -> &Entry {
        &self.entries[node.0 as usize]
    }

    /// A new object with `node`'s keys, in order, defined as the decoder
    /// defines them.
    fn skeleton(&self, ctx: *mut qjs::JSContext, node: Node) -> quickjs::Result<Skeleton> {
        let mut keys = Vec::with_capacity(self.entry(node).depth as usize);
        let mut at = node;
        while at != Node::EMPTY {
            let e = self.entry(at);
            keys.push(e.atom);
            at = e.parent;
        }
        keys.reverse();
        // SAFETY: a new object of this context; the skeleton owns it.
        let obj = Raw::take(ctx, unsafe { qjs::JS_NewObject(ctx) })?;
        for &atom in &keys {
            // SAFETY: defines a data property of the live object with an atom
            // the trie holds; `undefined` needs no reference.
            let r = unsafe {
                qjs::JS_DefinePropertyValue(ctx, obj.v, atom, qjs::JS_UNDEFINED, qjs::JS_PROP_C_W_E as i32)
            };
            if r < 0 {
                return Err(quickjs::Error::Exception);
            }
        }
        // A sequence that repeats a key (a malformed message) has fewer
        // properties than keys: not plain.
        // SAFETY: inspects the shape of the live object.
        let plain = unsafe { JS_PlainPropertyCount(ctx, obj.v) } == keys.len() as std::ffi::c_int;
        Ok(Skeleton {
            // SAFETY: the runtime of a live context.
            rt: unsafe { qjs::JS_GetRuntime(ctx) },
            shape: shape_of(obj.v),
            obj: obj.into_raw(),
            keys: keys.into(),
            plain,
        })
    }

    fn clear(&mut self, ctx: *mut qjs::JSContext) {
        self.children.clear();
        self.plain.clear();
        // The empty object's entry holds no reference. A skeleton is given
        // back when its last holder (an encoding under way) lets it go.
        for e in self.entries.drain(..).skip(1) {
            // SAFETY: each reference the trie held, given back once.
            unsafe { qjs::JS_FreeAtom(ctx, e.atom) };
        }
    }
}
