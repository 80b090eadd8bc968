//! Unit tests of the murmur2 partitioner.

use super::*;

#[test]
fn murmur2_matches_the_java_client() {
    // The cases of Kafka's own UtilsTest.testMurmur2.
    for (key, want) in [
        (&b"21"[..], -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        (b"abc", 479_470_107),
    ] {
        assert_eq!(murmur2(key), want, "{}", String::from_utf8_lossy(key));
    }
}

#[test]
fn partitions_are_positive_and_in_range() {
    for key in [&b"BTC-USD"[..], b"ETH-USD", b"SOL-USD", b"", b"foobar"] {
        let p = partition_for(key, 6);
        assert!((0..6).contains(&p), "{p}");
    }
    // -790332482 & 0x7fffffff = 1357151166; % 6 = 0.
    assert_eq!(partition_for(b"foobar", 6), 1_357_151_166 % 6);
}
