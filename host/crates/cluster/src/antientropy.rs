//! Digest-first anti-entropy: hosts are hashed into `2^bits` buckets of fingerprints, so
//! an idle exchange moves one bucket vector, and an exchange with `d` differing hosts
//! moves only those buckets' host fingerprints and then only those hosts' records.
//!
//! ```text
//! A -> B  Digest   (members hash, bucket fingerprints)
//! B -> A  Hosts    (differing buckets, B's host fingerprints there, B's members if hashes differ)
//! A -> B  Records  (A's records for differing hosts, hosts A wants, A's members)
//! B -> A  RecordsReply (B's records for the wanted hosts)
//! ```

use sidecar_catalog::Fingerprint;
use std::collections::{HashMap, HashSet};

/// About four hosts per bucket, at most 4,096 buckets (32 KB of digest at 10k+ hosts).
pub fn bucket_bits_for(hosts: usize) -> u8 {
    let per = hosts.div_ceil(4).max(1);
    (usize::BITS - (per - 1).leading_zeros()).min(12) as u8
}

pub fn bucket_of(host: &str, bits: u8) -> u32 {
    if bits == 0 {
        return 0;
    }
    (xxhash_rust::xxh3::xxh3_64(host.as_bytes()) >> (64 - u32::from(bits))) as u32
}

fn host_contribution(host: &str, fp: &Fingerprint) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(host.as_bytes());
    h.update(&[0]);
    h.update(&fp.count.to_le_bytes());
    h.update(&fp.hash.to_le_bytes());
    h.digest()
}

/// Bucket fingerprints of a catalog's per-host fingerprints.
pub fn buckets(fps: &[(String, Fingerprint)], bits: u8) -> Vec<u64> {
    let mut out = vec![0u64; 1usize << bits];
    for (host, fp) in fps {
        out[bucket_of(host, bits) as usize] ^= host_contribution(host, fp);
    }
    out
}

pub fn differing(mine: &[u64], theirs: &[u64]) -> Vec<u32> {
    mine.iter()
        .zip(theirs)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i as u32)
        .collect()
}

/// Host fingerprints that fall into the given buckets.
pub fn hosts_in(
    fps: Vec<(String, Fingerprint)>,
    bits: u8,
    buckets: &[u32],
) -> Vec<(String, Fingerprint)> {
    let set: HashSet<u32> = buckets.iter().copied().collect();
    fps.into_iter()
        .filter(|(h, _)| set.contains(&bucket_of(h, bits)))
        .collect()
}

/// Given both sides' fingerprints inside the differing buckets: hosts whose records we
/// send (we have them and they differ) and hosts whose records we want.
pub fn plan(
    mine: &[(String, Fingerprint)],
    theirs: &[(String, Fingerprint)],
) -> (Vec<String>, Vec<String>) {
    let theirs_map: HashMap<&str, &Fingerprint> =
        theirs.iter().map(|(h, f)| (h.as_str(), f)).collect();
    let mine_map: HashMap<&str, &Fingerprint> = mine.iter().map(|(h, f)| (h.as_str(), f)).collect();
    let send = mine
        .iter()
        .filter(|(h, f)| theirs_map.get(h.as_str()) != Some(&f))
        .map(|(h, _)| h.clone())
        .collect();
    let want = theirs
        .iter()
        .filter(|(h, f)| mine_map.get(h.as_str()) != Some(&f))
        .map(|(h, _)| h.clone())
        .collect();
    (send, want)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(count: u32, hash: u64) -> Fingerprint {
        Fingerprint { count, hash }
    }

    #[test]
    fn only_differing_hosts_are_planned() {
        assert_eq!(bucket_bits_for(0), 0);
        assert_eq!(bucket_bits_for(4), 0);
        assert_eq!(bucket_bits_for(100), 5);
        assert_eq!(bucket_bits_for(1_000_000), 12);
        let a: Vec<(String, Fingerprint)> =
            (0..100).map(|i| (format!("h{i}"), fp(10, i))).collect();
        let mut b = a.clone();
        b[7].1 = fp(10, 999);
        b.remove(50);
        b.push(("new".into(), fp(1, 1)));
        let bits = bucket_bits_for(100);
        let diff = differing(&buckets(&a, bits), &buckets(&b, bits));
        assert!(!diff.is_empty() && diff.len() <= 3);
        let mine = hosts_in(a.clone(), bits, &diff);
        let theirs = hosts_in(b.clone(), bits, &diff);
        assert!(mine.len() < 20, "only a few buckets move");
        let (send, want) = plan(&mine, &theirs);
        let mut send = send;
        send.sort();
        let mut want = want;
        want.sort();
        assert_eq!(send, vec!["h50".to_string(), "h7".to_string()]);
        assert_eq!(want, vec!["h7".to_string(), "new".to_string()]);
        assert!(differing(&buckets(&a, bits), &buckets(&a, bits)).is_empty());
    }
}
