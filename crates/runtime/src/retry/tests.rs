use std::cell::RefCell;
use std::time::{Duration, Instant};

use super::Retry;
use crate::client_error::ClientError;
use crate::io::Clock;

/// A clock that records the sleeps asked of it.
#[derive(Default)]
struct Sleeps(RefCell<Vec<Duration>>);

impl Clock for Sleeps {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn unix_ms(&self) -> i64 {
        0
    }
    fn sleep(&self, d: Duration) {
        self.0.borrow_mut().push(d);
    }
}

fn policy() -> Retry {
    Retry {
        tries: 4,
        first: Duration::from_millis(100),
        max: Duration::from_millis(250),
    }
}

#[test]
fn delays_double_up_to_the_cap() {
    let r = policy();
    assert_eq!(r.delay(1), Duration::from_millis(100));
    assert_eq!(r.delay(2), Duration::from_millis(200));
    assert_eq!(r.delay(3), Duration::from_millis(250));
    assert_eq!(r.delay(40), Duration::from_millis(250), "no overflow");
}

#[test]
fn transient_errors_are_tried_again_until_success() {
    let clock = Sleeps::default();
    let mut left = 2;
    let got = policy().run(&clock, "w", "commit", || {
        if left > 0 {
            left -= 1;
            Err(ClientError::transient("coordinator", "not available"))
        } else {
            Ok(7)
        }
    });
    assert_eq!(got.unwrap(), 7);
    assert_eq!(
        *clock.0.borrow(),
        vec![Duration::from_millis(100), Duration::from_millis(200)]
    );
}

#[test]
fn a_fatal_error_is_returned_at_once() {
    let clock = Sleeps::default();
    let mut calls = 0;
    let got: Result<(), _> = policy().run(&clock, "w", "commit", || {
        calls += 1;
        Err(ClientError::fatal("authorization", "denied"))
    });
    assert_eq!(got.unwrap_err().kind(), "authorization");
    assert_eq!(calls, 1);
    assert!(clock.0.borrow().is_empty());
}

#[test]
fn tries_are_bounded() {
    let clock = Sleeps::default();
    let mut calls = 0;
    let got: Result<(), _> = policy().run(&clock, "w", "commit", || {
        calls += 1;
        Err(ClientError::transient("timed-out", "timed out"))
    });
    assert_eq!(got.unwrap_err().kind(), "timed-out");
    assert_eq!(calls, 4);
    assert_eq!(clock.0.borrow().len(), 3);
}
