//! Blocking work from async code, the one way: on tokio's blocking pool,
//! with a failure and a panic both logged under one name.

use std::fmt::Display;

/// Runs `f` on a blocking thread. Its value when it worked; `None` (logged
/// as `what` failed, or crashed when it panicked) when it did not.
pub async fn run<T, E>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Option<T>
where
    T: Send + 'static,
    E: Display + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "{what} failed");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "{what} crashed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn values_errors_and_panics() {
        assert_eq!(
            super::run("adding", || Ok::<_, String>(2 + 2)).await,
            Some(4)
        );
        assert_eq!(super::run("failing", || Err::<u8, _>("no")).await, None);
        assert_eq!(
            super::run("panicking", || -> Result<u8, String> { panic!("boom") }).await,
            None
        );
    }
}
