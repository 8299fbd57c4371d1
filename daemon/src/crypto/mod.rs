//! Key material and authenticated encryption.
//!
//! Invariant: all randomness comes from `ring::rand::SystemRandom` and every
//! key type redacts itself in `Debug` and zeroizes on drop.

mod key_ring;
mod master_key;
mod private_file;
mod scrub;
mod seal;
mod subkeys;

pub use key_ring::KeyRing;
pub use master_key::{KeyError, KeySource, create_key_file, read_key_file, resolve_master_key};
pub use private_file::{private_file_options, sync_folder};
pub use scrub::{hmac_sign_wiped, scrub_stack};
pub use seal::{SealContext, SealError, Sealer};
pub use subkeys::{KeyPurpose, MasterKey, Subkey};
