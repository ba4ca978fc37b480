//! The decoder's shapes: skeleton objects that keep QuickJS's shapes
//! (hidden classes) alive from one message to the next.
//!
//! QuickJS gives an object a new shape for each property added, and reuses
//! an existing shape only while some object still has it. A decoded record
//! passes through one shape per key; once the record is gone (or has been
//! given another key, as an echoing worker does), those shapes are gone too,
//! and the next record of the same keys builds every one of them again. So
//! the decoder walks a trie of the key sequences of the plain objects it
//! decodes ([`Shapes::step`]), and from the second time a sequence is met, a
//! skeleton object with those keys (values `undefined`, never seen by
//! JavaScript) holds its shape. The encoder follows the plain objects it
//! sends the same way, so a record built again for each message, or a
//! received one given a key and sent back, keeps its shapes as well. Key
//! sequences met once cost a trie node only; the trie is bounded and starts
//! again when full.

use javy::quickjs::{self, qjs};
use rustc_hash::FxHashMap;

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
    /// The skeleton (an owned reference), from the node's second visit.
    skeleton: Option<qjs::JSValue>,
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
                let skeleton = self.skeleton(ctx, child)?;
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

    fn entry(&self, node: Node) -> &Entry {
        &self.entries[node.0 as usize]
    }

    /// A new object with `node`'s keys, in order, defined as the decoder
    /// defines them.
    fn skeleton(&self, ctx: *mut qjs::JSContext, node: Node) -> quickjs::Result<qjs::JSValue> {
        let mut keys = Vec::with_capacity(self.entry(node).depth as usize);
        let mut at = node;
        while at != Node::EMPTY {
            let e = self.entry(at);
            keys.push(e.atom);
            at = e.parent;
        }
        // SAFETY: a new object of this context, owned here.
        let obj = unsafe { qjs::JS_NewObject(ctx) };
        // SAFETY: reads the tag of the value just returned.
        if unsafe { qjs::JS_IsException(obj) } {
            return Err(quickjs::Error::Exception);
        }
        for &atom in keys.iter().rev() {
            // SAFETY: defines a data property of the live object with an atom
            // the trie holds; `undefined` needs no reference.
            let r = unsafe {
                qjs::JS_DefinePropertyValue(ctx, obj, atom, qjs::JS_UNDEFINED, qjs::JS_PROP_C_W_E as i32)
            };
            if r < 0 {
                // SAFETY: gives back the object made above.
                unsafe { qjs::JS_FreeValue(ctx, obj) };
                return Err(quickjs::Error::Exception);
            }
        }
        Ok(obj)
    }

    fn clear(&mut self, ctx: *mut qjs::JSContext) {
        self.children.clear();
        // The empty object's entry holds no reference.
        for e in self.entries.drain(..).skip(1) {
            // SAFETY: each reference the trie held, given back once.
            unsafe {
                if let Some(obj) = e.skeleton {
                    qjs::JS_FreeValue(ctx, obj);
                }
                qjs::JS_FreeAtom(ctx, e.atom);
            }
        }
    }
}
