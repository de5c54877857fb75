//! What the benchmarks share: clawback's default chunk sizes (for the ceiling, which builds without
//! the engine, so it cannot ask it), the deterministic inputs the micro-benchmarks measure (noise
//! and agent-like text), and throughput in MB/s as every report prints it.

use std::time::Duration;

/// clawback's default chunk sizes (`ChunkParams::default()`; a test keeps them equal).
pub const DEFAULT_CHUNK_MIN: usize = 32 * 1024;
pub const DEFAULT_CHUNK_AVG: usize = 128 * 1024;
pub const DEFAULT_CHUNK_MAX: usize = 512 * 1024;

/// `n` bytes of xorshift noise: incompressible, and the same on every run.
pub fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9e3779b97f4a7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `n` bytes of words from agent transcripts in a noise-driven order: compresses as text does.
pub fn text(n: usize) -> Vec<u8> {
    let words = ["agent", "memory", "session", "the", "user", "asked", "tool", "call", "{\"role\":", "assistant", "\n"];
    let r = noise(n);
    let mut out = Vec::with_capacity(n + 16);
    let mut i = 0;
    while out.len() < n {
        out.extend_from_slice(words[r[i % n] as usize % words.len()].as_bytes());
        out.push(b' ');
        i += 1;
    }
    out.truncate(n);
    out
}

/// Megabytes (10^6 bytes) per second; infinite for no time at all.
pub fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    if d.is_zero() {
        return f64::INFINITY;
    }
    bytes as f64 / 1e6 / d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "engine")]
    #[test]
    fn the_default_chunk_sizes_are_the_engines() {
        let d = clawback_engine::format::chunker::ChunkParams::default();
        assert_eq!(
            (DEFAULT_CHUNK_MIN, DEFAULT_CHUNK_AVG, DEFAULT_CHUNK_MAX),
            (d.min as usize, d.avg as usize, d.max as usize)
        );
    }

    #[test]
    fn inputs_are_deterministic_and_compress_as_labelled() {
        assert_eq!(noise(4096), noise(4096));
        let (n, t) = (noise(1 << 16), text(1 << 16));
        assert_eq!((n.len(), t.len()), (1 << 16, 1 << 16));
        let z = |d: &[u8]| zstd::bulk::compress(d, 3).unwrap().len();
        assert!(z(&n) > n.len() * 99 / 100, "noise does not compress");
        assert!(z(&t) < t.len() / 2, "text does");
    }

    #[test]
    fn throughput_in_megabytes() {
        assert_eq!(mb_per_s(3_000_000, Duration::from_secs(2)), 1.5);
        assert!(mb_per_s(1, Duration::ZERO).is_infinite());
    }
}
