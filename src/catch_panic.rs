//! Turning a panic into an error for one unit of work, so that hostile input or a bug in one
//! message (or one archive reader) never takes the process or other messages down.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The message a panic carried, if it was a string.
pub fn panic_text(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Runs `f`; a panic inside it becomes `Err(text)`. Unwind safety is asserted: callers keep
/// no state that a half-run `f` could leave inconsistent (see their comments).
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_text(p.as_ref()))
}

/// Why a blocking task did not return: its panic's text, or that it was cancelled.
pub fn join_error_text(e: tokio::task::JoinError) -> String {
    if e.is_panic() {
        format!("panic: {}", panic_text(e.into_panic().as_ref()))
    } else {
        "task cancelled".into()
    }
}

/// Polls a future and turns a panic inside it into `Err(text)`, like `futures`'
/// `catch_unwind`. After a panic the future is dropped, never polled again.
pub struct CatchUnwind<F>(pub Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic_text(panic.as_ref()))),
        }
    }
}
