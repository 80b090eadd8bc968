use super::*;
use tradestream_engine::{Command, Engine, EventKind, InstrumentSpec, Instruments, RejectReason};

fn instruments() -> Instruments {
    Instruments::new(&[
        InstrumentSpec {
            symbol: "BTC-USD".into(),
            tick_size: "0.01".parse().unwrap(),
            lot_size: "0.001".parse().unwrap(),
            min_qty: None,
            max_qty: None,
            min_price: None,
            max_price: None,
        },
        InstrumentSpec {
            symbol: "ETH-USD".into(),
            tick_size: "0.05".parse().unwrap(),
            lot_size: "1".parse().unwrap(),
            min_qty: None,
            max_qty: None,
            min_price: None,
            max_price: None,
        },
    ])
    .unwrap()
}

#[test]
fn flow_is_deterministic_and_mostly_valid_and_trades() {
    let inst = instruments();
    let cfg = FlowConfig::default();
    let a: Vec<_> = {
        let mut f = OrderFlow::new(inst.iter(), &cfg);
        (0..5_000).map(|_| f.next_line()).collect()
    };
    let mut f = OrderFlow::new(inst.iter(), &cfg);
    let b: Vec<_> = (0..5_000).map(|_| f.next_line()).collect();
    assert_eq!(a, b);
    let mut engine: Engine = Engine::new(inst.clone());
    let mut events = Vec::new();
    for (line, _, bad) in &a {
        assert!(!bad);
        let cmd = tradestream_codec::json::decode_command(line.as_bytes(), 0);
        assert!(!matches!(cmd, Command::Invalid(_)), "{line}");
        engine.apply(&cmd, &mut events);
    }
    let count = |f: fn(&EventKind) -> bool| events.iter().filter(|e| f(&e.kind)).count();
    assert!(count(|k| matches!(k, EventKind::Trade { .. })) > 200);
    assert!(count(|k| matches!(k, EventKind::Cancelled { .. })) > 200);
    assert!(count(|k| matches!(k, EventKind::Replaced { .. })) > 200);
    let not_owner = count(|k| {
        matches!(
            k,
            EventKind::Rejected {
                reason: RejectReason::NotOwner,
                ..
            }
        )
    });
    assert_eq!(not_owner, 0, "cancels and replaces are sent by the owner");
    let rejected = count(|k| matches!(k, EventKind::Rejected { .. }));
    assert!(
        rejected < 2_000,
        "{rejected} rejections: the flow should be mostly valid"
    );
}

#[test]
fn clock_stamps_follow_the_clock_never_go_back_and_leave_the_flow_as_it_was() {
    let inst = instruments();
    let ts = |line: &str| tradestream_codec::json::decode_command(line.as_bytes(), 0).ts();
    let mut plain = OrderFlow::new(inst.iter(), &FlowConfig::default());
    let mut stamped = OrderFlow::new(inst.iter(), &FlowConfig::default());
    let now = 1_800_000_000_000;
    let clock = [now, now, now + 5, now + 3, now + 100];
    let want = [now, now, now + 5, now + 5, now + 100];
    for (i, (clock, want)) in clock.into_iter().zip(want).enumerate() {
        let (a, ka, _) = plain.next_line();
        let (b, kb, _) = stamped.next_line_at(clock);
        assert_eq!(ts(&b), want, "{i}");
        assert_eq!(ka, kb);
        assert_eq!(
            a.replace(&ts(&a).to_string(), ""),
            b.replace(&want.to_string(), "")
        );
    }
}

#[test]
fn poison_share_is_about_as_asked() {
    let inst = instruments();
    let mut f = OrderFlow::new(
        inst.iter(),
        &FlowConfig {
            poison_per_mille: 10,
            ..FlowConfig::default()
        },
    );
    let bad = (0..20_000).filter(|_| f.next_line().2).count();
    assert!((100..400).contains(&bad), "{bad}");
}
