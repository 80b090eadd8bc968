//! The Java client's key partitioner (murmur2), which every producer of the pipeline uses.
//!
//! librdkafka's default (`consistent_random`, CRC32) and the Java client's (murmur2) put the
//! same key in different partitions. A venue with producers in both would split one symbol's
//! book across two partitions, so every producer here is pinned to librdkafka's
//! `murmur2_random` (see [`crate::client`]), which is the Java client's hash for keyed records,
//! and the matcher checks each order's symbol with [`partition_for`].

/// Kafka's `Utils.murmur2`: MurmurHash2, 32 bits, seed `0x9747b28c`.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const SEED: u32 = 0x9747_b28c;
    // Java hashes `int length`; a key is far below 2^31 bytes, and wrapping matches Java's
    // arithmetic should one not be.
    #[allow(clippy::cast_possible_truncation)]
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate().rev() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    i32::from_ne_bytes(h.to_ne_bytes())
}

/// The partition the Java client (and librdkafka's `murmur2_random`) gives `key` among
/// `partitions`: `(murmur2(key) & 0x7fffffff) % partitions`. `partitions` must be positive.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests;
