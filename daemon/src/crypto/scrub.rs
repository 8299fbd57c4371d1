//! Wiping the stack below the caller after secret bytes went through a
//! hash there.
//!
//! Invariant: a hash of fewer bytes than a block (a 50-character token, a
//! recovery code, a config text's last block) leaves them in the hash
//! context's block buffer on the stack, where they stay until that stack
//! depth is used again — which on an idle worker thread may be never. Each
//! function here that hashes a secret calls [`scrub_stack`] before it
//! returns: its frame takes the place of the hash's frames and is zeroed
//! with volatile writes the optimiser cannot drop.

/// Bytes of stack zeroed: well above what ring's HMAC-SHA256 uses.
const SCRUBBED_BYTES: usize = 16 * 1024;

/// Zeroes [`SCRUBBED_BYTES`] of stack below the caller's frame.
#[inline(never)]
pub fn scrub_stack() {
    let mut area = [0u8; SCRUBBED_BYTES];
    zeroize::Zeroize::zeroize(&mut area[..]);
    std::hint::black_box(&area);
}

/// `bytes` authenticated with `key` (HMAC), the stack wiped afterwards.
#[must_use]
pub fn hmac_sign_wiped(key: &ring::hmac::Key, bytes: &[u8]) -> ring::hmac::Tag {
    let tag = sign_inner(key, bytes);
    scrub_stack();
    tag
}

#[inline(never)]
fn sign_inner(key: &ring::hmac::Key, bytes: &[u8]) -> ring::hmac::Tag {
    ring::hmac::sign(key, bytes)
}
