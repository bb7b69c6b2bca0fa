//! A pool key's name and state: data the errors, the observers and the key pools share.

use serde::Serialize;

use crate::secret::ApiKey;

/// A key's name in health, stats, logs and errors: its position in the pool and a
/// fingerprint. Shown as `key#0 (fp 1a2b3c4d)`.
///
/// The fingerprint is 8 hex digits (the high 32 bits) of the 64-bit FNV-1a hash of the key.
/// It exists to tell keys apart (which key of a pool a log line is about, whether two
/// deployments use the same key) and cannot be turned back into the key; it is no
/// substitute for keeping the key secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct KeyLabel {
    /// The key's position in its pool, from 0.
    pub index: usize,
    /// 8 lowercase hex digits of the key's hash.
    pub fingerprint: String,
}

impl KeyLabel {
    /// The label of `key` at position `index`.
    pub(crate) fn new(index: usize, key: &ApiKey) -> Self {
        KeyLabel {
            index,
            fingerprint: fingerprint(key),
        }
    }
}

impl std::fmt::Display for KeyLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key#{} (fp {})", self.index, self.fingerprint)
    }
}

/// The high 32 bits of the key's 64-bit FNV-1a hash, as 8 hex digits.
pub(crate) fn fingerprint(key: &ApiKey) -> String {
    let hash = key
        .expose()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{:08x}", hash >> 32)
}

/// Whether a key can be used now, and if not, why and for how long.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyState {
    /// Usable.
    Ready,
    /// Throttled by the vendor (429): back in `for_ms` milliseconds.
    Resting {
        /// Milliseconds until the key is usable again (rounded up).
        for_ms: u64,
    },
    /// Its quota ran out: back in `for_ms` milliseconds (the vendor's reset time, else the
    /// pool's [`park_exhausted_for`](crate::KeyPool::park_exhausted_for)).
    Parked {
        /// Milliseconds until the key is usable again (rounded up).
        for_ms: u64,
    },
    /// Refused by the vendor (401, 403): not used again until the relay is rebuilt or
    /// reloaded.
    Invalid,
}
