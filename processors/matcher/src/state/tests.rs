use super::*;

#[test]
fn snapshot_chunks_round_trip_and_refuse_garbage() {
    let c = SnapshotChunk {
        group: "g".into(),
        partition: 3,
        input_offset: 41,
        seq: [7, 2, 9],
        state_hash: 0xfeed,
        output_hash: 0x8000_0000_0000_00aa,
        chunk: 1,
        chunks: 2,
        bytes: vec![1, 2, 3],
        dead_letter_end: 12,
    };
    let b = c.encode();
    assert_eq!(SnapshotChunk::decode(&b), Some(c));
    assert_eq!(SnapshotChunk::decode(&b[..b.len() - 1]), None);
    assert_eq!(SnapshotChunk::decode(b"garbage"), None);
}

#[test]
fn the_output_chain_depends_on_every_link_and_its_order() {
    let a = chain(chain(0, 0, 1, b"x"), 1, 1, b"y");
    assert_eq!(a, chain(chain(0, 0, 1, b"x"), 1, 1, b"y"), "deterministic");
    assert_ne!(a, chain(chain(0, 1, 1, b"y"), 0, 1, b"x"), "order matters");
    assert_ne!(a, chain(chain(0, 0, 2, b"x"), 1, 1, b"y"), "seq matters");
    assert_ne!(a, chain(chain(0, 2, 1, b"x"), 1, 1, b"y"), "topic matters");
    assert_ne!(a, chain(chain(0, 0, 1, b"x"), 1, 1, b"z"), "value matters");
}
