//! hyper's runtime seam on smol's crates: where hyper's background futures
//! run ([`Spawner`]), how it sleeps (async-io's `Timer`), and how it reads and
//! writes a futures-io stream. Nothing here names an executor: the caller's
//! spawn function runs the futures, so any executor that drives async-io
//! (smol's, async-std's) will do.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use smol::io::{AsyncRead, AsyncWrite};
pub use windlass_async::JoinHandle;

/// A background future windlass-smol asks to have run to completion (a
/// connection's driver).
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How windlass-smol starts background futures: the caller's executor. The
/// library never calls `smol::spawn` or `block_on`, so it runs under any
/// executor that polls what it is given.
///
/// ```no_run
/// use std::sync::Arc;
/// use windlass_smol::Spawner;
///
/// // smol: an executor the program runs (or `|f| smol::spawn(f).detach()`).
/// let executor = Arc::new(smol::Executor::new());
/// let on_smol = Spawner::from(executor.clone());
/// // Any other executor, async-std's for one:
/// // let on_async_std = Spawner::new(|f| { async_std::task::spawn(f); });
/// ```
#[derive(Clone)]
pub struct Spawner(Arc<dyn Fn(BoxFuture) + Send + Sync>);

impl Spawner {
    /// A spawner that hands each future to `spawn`, which must run it to
    /// completion (detached: windlass-smol never joins it).
    pub fn new(spawn: impl Fn(BoxFuture) + Send + Sync + 'static) -> Self {
        Self(Arc::new(spawn))
    }

    /// Runs `future` in the background.
    pub fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        (self.0)(Box::pin(future));
    }

    /// Runs `future` in the background and hands back a [`JoinHandle`] to
    /// await its output or abort it (dropping the handle detaches it).
    pub fn spawn_with_handle<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        windlass_async::runtime::spawn_with_handle(self, future)
    }
}

/// Spawns onto a smol executor (which the program must run).
impl From<Arc<smol::Executor<'static>>> for Spawner {
    fn from(executor: Arc<smol::Executor<'static>>) -> Self {
        Self::new(move |future| executor.spawn(future).detach())
    }
}

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawner").finish_non_exhaustive()
    }
}

impl<F: Future<Output = ()> + Send + 'static> hyper::rt::Executor<F> for Spawner {
    fn execute(&self, future: F) {
        self.spawn(future);
    }
}

/// hyper's timer (HTTP/2 keep-alive pings) over async-io.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SmolTimer;

impl hyper::rt::Timer for SmolTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(SmolSleep(smol::Timer::after(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(SmolSleep(smol::Timer::at(deadline)))
    }
}

struct SmolSleep(smol::Timer);

impl Future for SmolSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(drop)
    }
}

impl hyper::rt::Sleep for SmolSleep {}

/// A futures-io stream as hyper's `Read` and `Write`.
///
/// Reads go through a small buffer of our own and are copied into hyper's:
/// filling hyper's uninitialised buffer directly needs `unsafe`, and one copy
/// next to TLS decryption costs nothing measurable.
pub(crate) struct Io<T> {
    stream: T,
    scratch: Box<[u8]>,
}

const SCRATCH: usize = 16 * 1024;

impl<T> Io<T> {
    pub(crate) fn new(stream: T) -> Self {
        Self {
            stream,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
        }
    }
}

impl<T: AsyncRead + Unpin> hyper::rt::Read for Io<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let len = buf.remaining().min(this.scratch.len());
        let read =
            std::task::ready!(Pin::new(&mut this.stream).poll_read(cx, &mut this.scratch[..len]))?;
        buf.put_slice(&this.scratch[..read]);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for Io<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_close(cx)
    }
}

/// `future`, or `None` once `after` has passed.
pub(crate) async fn timeout<T>(after: Duration, future: impl Future<Output = T>) -> Option<T> {
    smol::future::or(async { Some(future.await) }, async {
        smol::Timer::after(after).await;
        None
    })
    .await
}
