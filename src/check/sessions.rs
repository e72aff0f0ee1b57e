//! Sessions a run opens once and shares among its checks (a Matrix user's
//! login, say): the first check that needs one opens it, the others wait for
//! that and reuse it, and the run closes every session when it ends (a
//! logout), within a deadline. A failed open is not kept: the next check
//! tries again. What a session holds (an access token) never leaves memory.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Closes one session (a logout); says why when it could not.
pub type Closer =
    Box<dyn FnOnce(Instant) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send>;

type Slot = Arc<tokio::sync::Mutex<Option<Arc<dyn Any + Send + Sync>>>>;

#[derive(Default)]
pub struct Sessions {
    slots: Mutex<HashMap<String, Slot>>,
    closers: Mutex<Vec<(String, Closer)>>,
}

/// A session and whether this call opened it.
pub struct Shared<T> {
    pub session: Arc<T>,
    pub opened_here: bool,
}

impl Sessions {
    /// The session under `key`: the one open, else what `open` returns (its
    /// closer runs when the run ends). Concurrent callers for one key wait
    /// for the first; a failed open is returned to its caller only.
    pub async fn get_or_open<T, E, F, Fut>(&self, key: &str, open: F) -> Result<Shared<T>, E>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(T, Option<Closer>), E>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(key.to_string()).or_default().clone()
        };
        let mut held = slot.lock().await;
        if let Some(open) = held.as_ref() {
            if let Ok(session) = open.clone().downcast::<T>() {
                return Ok(Shared {
                    session,
                    opened_here: false,
                });
            }
        }
        let (session, closer) = open().await?;
        let session = Arc::new(session);
        *held = Some(session.clone());
        if let Some(closer) = closer {
            self.closers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((key.to_string(), closer));
        }
        Ok(Shared {
            session,
            opened_here: true,
        })
    }

    /// Closes every session at once, each bounded by `within`; returns the
    /// key and the failure of each that could not be closed.
    pub async fn close_all(&self, within: Duration) -> Vec<(String, String)> {
        let closers: Vec<(String, Closer)> =
            std::mem::take(&mut *self.closers.lock().unwrap_or_else(|p| p.into_inner()));
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let deadline = Instant::now() + within;
        let mut closing = tokio::task::JoinSet::new();
        for (key, close) in closers {
            closing.spawn(async move {
                match tokio::time::timeout_at(deadline.into(), close(deadline)).await {
                    Ok(Ok(())) => None,
                    Ok(Err(why)) => Some((key, why)),
                    Err(_) => Some((key, format!("not closed within {}s", within.as_secs_f64()))),
                }
            });
        }
        let mut failed = Vec::new();
        while let Some(done) = closing.join_next().await {
            match done {
                Ok(Some(failure)) => failed.push(failure),
                Ok(None) => {}
                Err(e) => failed.push(("(a session)".into(), format!("its close panicked: {e}"))),
            }
        }
        failed.sort();
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn one_open_serves_every_caller_and_is_closed_at_the_end() {
        let sessions = Arc::new(Sessions::default());
        let opens = Arc::new(AtomicUsize::new(0));
        let closes = Arc::new(AtomicUsize::new(0));
        let mut callers = Vec::new();
        for _ in 0..5 {
            let (sessions, opens, closes) = (sessions.clone(), opens.clone(), closes.clone());
            callers.push(tokio::spawn(async move {
                let shared = sessions
                    .get_or_open("matrix @op", || async move {
                        opens.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let closer: Closer = Box::new(move |_| {
                            Box::pin(async move {
                                closes.fetch_add(1, Ordering::SeqCst);
                                Ok(())
                            })
                        });
                        Ok::<_, String>(("token".to_string(), Some(closer)))
                    })
                    .await
                    .unwrap();
                (shared.session.as_str().to_string(), shared.opened_here)
            }));
        }
        let mut opened_here = 0;
        for caller in callers {
            let (token, here) = caller.await.unwrap();
            assert_eq!(token, "token");
            opened_here += usize::from(here);
        }
        assert_eq!(opens.load(Ordering::SeqCst), 1);
        assert_eq!(opened_here, 1);
        assert!(sessions.close_all(Duration::from_secs(1)).await.is_empty());
        assert_eq!(closes.load(Ordering::SeqCst), 1);
        // Closed sessions are gone: nothing is closed twice.
        assert!(sessions.close_all(Duration::from_secs(1)).await.is_empty());
        assert_eq!(closes.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_open_is_not_kept_and_a_stuck_close_is_reported() {
        let sessions = Sessions::default();
        let first: Result<Shared<String>, String> = sessions
            .get_or_open("k", || async { Err("M_FORBIDDEN".to_string()) })
            .await;
        assert_eq!(first.err().as_deref(), Some("M_FORBIDDEN"));
        let second = sessions
            .get_or_open("k", || async {
                let closer: Closer = Box::new(|_| {
                    Box::pin(async {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Ok(())
                    })
                });
                Ok::<_, String>(("t".to_string(), Some(closer)))
            })
            .await
            .unwrap();
        assert!(second.opened_here);
        let failed = sessions.close_all(Duration::from_millis(100)).await;
        assert_eq!(failed.len(), 1);
        assert!(failed[0].1.contains("not closed within"), "{failed:?}");
    }
}
