use super::*;

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(async move { Ok(value) })
}

#[test]
fn candle_periods_hold_a_fixed_number_of_buckets() {
    let day = 86_400_000;
    assert_eq!(candle_period(Interval::S1, 0), 0);
    assert_eq!(candle_period(Interval::S1, day - 1_000), 0);
    assert_eq!(candle_period(Interval::S1, day), 1);
    assert_eq!(candle_period(Interval::M1, 59 * day), 0);
    assert_eq!(candle_period(Interval::M1, 60 * day), 1);
    assert_eq!(candle_period(Interval::H1, 3_599 * day), 0);
    assert_eq!(candle_period(Interval::S1, -1_000), -1);
}

#[test]
fn the_walk_reads_buckets_newest_first_until_it_has_enough() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // 40 days with rows (more than two index pages), 3 rows each, row = day * 10 + i.
    let days: Vec<i32> = (0..40).rev().map(|d| d * 2).collect();
    let mut index_reads = 0;
    let got = rt
        .block_on(newest_first(
            100,
            |newest: i32, page| {
                index_reads += 1;
                ready(
                    days.iter()
                        .copied()
                        .filter(|d| *d <= newest)
                        .take(page)
                        .collect(),
                )
            },
            |day, want| ready((0..3).rev().map(|i| day * 10 + i).take(want).collect()),
        ))
        .unwrap();
    assert_eq!(got.len(), 100);
    assert_eq!(&got[..4], [782, 781, 780, 762]);
    assert!(got.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert_eq!(index_reads, 3);
    // Fewer rows than asked: everything, and the walk stops at the last page.
    let all = rt
        .block_on(newest_first(
            1_000,
            |newest: i32, page| {
                ready(
                    days.iter()
                        .copied()
                        .filter(|d| *d <= newest)
                        .take(page)
                        .collect(),
                )
            },
            |day, want| ready((0..3).rev().map(|i| day * 10 + i).take(want).collect()),
        ))
        .unwrap();
    assert_eq!(all.len(), 120);
    let none: Vec<i32> = rt
        .block_on(newest_first(
            0,
            |_: i32, _| -> BoxFuture<'_, Vec<i32>> { panic!("no read for limit 0") },
            |_, _| ready(Vec::new()),
        ))
        .unwrap();
    assert!(none.is_empty());
}
