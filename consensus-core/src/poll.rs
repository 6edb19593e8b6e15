//! Running futures that complete without waiting, for single-threaded drivers.
//!
//! The deterministic simulator drives the in-memory implementations of the async traits
//! ([`crate::LogStore`], [`crate::StateMachine`]). Those futures never wait on anything, so the
//! simulator polls each one exactly once instead of running an executor.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Polls `future` once and returns its output, or `None` if it was not ready.
pub fn now_or_never<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_future_yields_its_value() {
        assert_eq!(now_or_never(async { 7 }), Some(7));
    }

    #[test]
    fn pending_future_yields_none() {
        assert_eq!(now_or_never(std::future::pending::<u8>()), None);
    }
}
