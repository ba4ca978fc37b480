//! ArrayBuffers of 64 KiB and more ([`OUTSIDE_MIN`]), which travel beside a
//! message's bytes (`ARRAY_BUFFER_OUT`, docs/codec.md) so that neither
//! guest copies them: the sender hands the host each payload where QuickJS
//! holds it (`context.post-outside`), and the receiver's ArrayBuffer keeps
//! the allocation the host wrote the payload into (our QuickJS patch's
//! `JS_NewArrayBufferAdopted`).
//!
//! A payload read in place is read after the rest of the message, so the
//! sender copies the payloads it holds before anything that may run
//! JavaScript (a getter, an array element that is not in the array's fast
//! part, a helper that reads properties): what is sent is what the buffer
//! held when the encoder met it, as in HTML's structured clone.

use javy::quickjs::{self, Ctx, Object, qjs};
use miniworker_codec::OUTSIDE_MIN;

use super::raw::{Raw, fast_array_count};

unsafe extern "C" {
    fn JS_NewArrayBufferAdopted(ctx: *mut qjs::JSContext, buf: *mut u8, len: qjs::size_t) -> qjs::JSValue;
}

/// Whether an ArrayBuffer of `len` bytes travels outside the message.
pub(crate) fn goes_outside(len: usize) -> bool {
    len >= OUTSIDE_MIN
}

/// Whether reading element `index` of `obj` may run JavaScript: anything
/// but an index inside an array's fast part.
pub(crate) fn read_may_run_js(obj: &Object<'_>, index: u32) -> bool {
    index >= fast_array_count(obj.as_raw())
}

/// One payload of the message being encoded.
enum Payload<'js> {
    /// Read where QuickJS holds it, when the message is sent: its buffer
    /// (kept alive), and where its bytes were when the encoder met it.
    InPlace(Object<'js>, *const u8, usize),
    /// Copied before JavaScript could run.
    Copied(Vec<u8>),
}

/// The outside payloads of the message being encoded, in order.
#[derive(Default)]
pub(crate) struct Pending<'js> {
    payloads: Vec<Payload<'js>>,
    /// Payloads from here on are still read in place.
    in_place_from: usize,
}

impl<'js> Pending<'js> {
    /// Adds the payload of `buffer`, `len` bytes at `ptr` (QuickJS's).
    pub(crate) fn push(&mut self, buffer: &Object<'js>, ptr: *const u8, len: usize) {
        self.payloads.push(Payload::InPlace(buffer.clone(), ptr, len));
    }

    /// Whether the message has no outside payload (most have none).
    pub(crate) fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    /// Whether a payload is still read in place (then [`Pending::settle`]
    /// must run before JavaScript may).
    #[inline]
    pub(crate) fn unsettled(&self) -> bool {
        self.in_place_from < self.payloads.len()
    }

    /// Copies the payloads still read in place: call before anything that
    /// may run JavaScript, which could change or detach their buffers.
    #[inline]
    pub(crate) fn settle(&mut self) {
        if self.unsettled() {
            self.copy_in_place();
        }
    }

    #[cold]
    fn copy_in_place(&mut self) {
        for p in &mut self.payloads[self.in_place_from..] {
            if let Payload::InPlace(_, ptr, len) = *p {
                // SAFETY: no JavaScript ran since the buffer was met, and
                // the buffer is kept alive: its `len` bytes are at `ptr`.
                *p = Payload::Copied(unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec());
            }
        }
        self.in_place_from = self.payloads.len();
    }

    /// Hands each payload to `f`, in order.
    pub(crate) fn each(&self, ctx: &Ctx<'js>, mut f: impl FnMut(&[u8])) -> quickjs::Result<()> {
        for p in &self.payloads {
            match p {
                Payload::Copied(bytes) => f(bytes),
                Payload::InPlace(buffer, ptr, len) => {
                    let mut size: qjs::size_t = 0;
                    // SAFETY: `buffer` is a live ArrayBuffer.
                    let now =
                        unsafe { qjs::JS_GetArrayBuffer(ctx.as_raw().as_ptr(), &mut size, buffer.as_raw()) };
                    if now.cast_const() != *ptr || size as usize != *len {
                        // Not reachable: nothing ran since it was met.
                        return Err(quickjs::Exception::throw_internal(
                            ctx,
                            "an ArrayBuffer moved while its message was being sent",
                        ));
                    }
                    // SAFETY: checked just now: QuickJS holds `len` bytes at `ptr`.
                    f(unsafe { std::slice::from_raw_parts(*ptr, *len) });
                }
            }
        }
        Ok(())
    }
}

/// Hands the outside payloads of a message being decoded over to the new
/// ArrayBuffers: the allocations the host wrote them into.
pub(crate) struct Adopter {
    /// Each payload's allocation and length, taken before the payloads are
    /// lent to the token reader (QuickJS writes through these once it owns
    /// them).
    at: Vec<(*mut u8, usize)>,
    /// Payloads below this belong to ArrayBuffers now.
    adopted: usize,
}

impl Adopter {
    pub(crate) fn new(payloads: &mut [Vec<u8>]) -> Adopter {
        Adopter {
            at: payloads.iter_mut().map(|p| (p.as_mut_ptr(), p.len())).collect(),
            adopted: 0,
        }
    }

    /// Payloads that ArrayBuffers own so far: the token reader hands them
    /// out in order, each once, so this is also the next one's index.
    pub(crate) fn adopted(&self) -> usize {
        self.adopted
    }

    /// A new ArrayBuffer owning the next payload.
    pub(crate) fn adopt_next(&mut self, ctx: &Ctx<'_>) -> quickjs::Result<Raw> {
        let Some(&(at, len)) = self.at.get(self.adopted) else {
            return Err(quickjs::Exception::throw_internal(ctx, "no outside payload left"));
        };
        let raw = ctx.as_raw().as_ptr();
        // SAFETY: `at` holds `len` bytes of an allocation the C library's
        // malloc made (wit-bindgen's `cabi_realloc`, through Rust's system
        // allocator: no crate of the guest sets a global allocator), which
        // the new ArrayBuffer takes over; on failure it was not taken.
        let v = unsafe { JS_NewArrayBufferAdopted(raw, at, len as qjs::size_t) };
        let v = Raw::take(raw, v)?;
        self.adopted += 1;
        Ok(v)
    }

    /// Gives up the payloads, except the allocations ArrayBuffers own now.
    pub(crate) fn release(self, mut payloads: Vec<Vec<u8>>) {
        for taken in payloads.drain(..self.adopted.min(payloads.len())) {
            std::mem::forget(taken);
        }
    }
}
