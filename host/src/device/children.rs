//! The QEMU processes we start, none of which may outlive us.
//!
//! A [`Child`] of `std` keeps running when its parent ends: dropped, killed by a signal, or on
//! `exit`. Each QEMU is therefore a [`Guarded`] child: dropping it (also while a panic unwinds)
//! kills and reaps it, and the first one installs a watcher for the signals that end a process
//! (SIGINT, SIGTERM, SIGHUP) which kills and reaps every QEMU still running, then ends the
//! process as the signal would have (same signal, same exit status for the shell).
//!
//! SIGKILL, which no process can catch, is covered by each child's [`DeathWatch`]: a shell
//! that kills the child once this process is gone. Every way that ends a child here ends its
//! watch first, so that the watch never outlives it (nor kills a process id reused since).

use std::io;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::death_watch::DeathWatch;

/// The children alive now. The watcher holds this lock from the signal to the end of the
/// process, so no child can be started meanwhile; [`Guarded::spawn`] holds it from the spawn to
/// the registration, so no child is missed.
static LIVE: Mutex<Vec<Arc<Mutex<Watched>>>> = Mutex::new(Vec::new());

/// A child process that is killed when dropped or when a signal ends this process.
pub struct Guarded {
    child: Arc<Mutex<Watched>>,
}

/// A child and its death watch.
struct Watched {
    child: Child,
    watch: DeathWatch,
}

impl Watched {
    /// Kills the child (if still running) and waits for it; its watch ends first.
    fn end(&mut self) -> io::Result<ExitStatus> {
        self.watch.dismiss();
        // An error here means it has exited already; `wait` tells.
        self.child.kill().ok();
        self.child.wait()
    }
}

/// The pipes of a [`Guarded`] child, taken at the start.
pub struct Pipes {
    /// Its standard output, if piped.
    pub stdout: Option<ChildStdout>,
    /// Its standard error, if piped.
    pub stderr: Option<ChildStderr>,
}

impl Guarded {
    /// Spawns `command` under guard.
    pub fn spawn(command: &mut Command) -> io::Result<(Self, Pipes)> {
        watch_signals()?;
        let mut live = lock(&LIVE);
        let mut child = command.spawn()?;
        let watch = match DeathWatch::start(child.id()) {
            Ok(watch) => watch,
            Err(e) => {
                child.kill().ok();
                child.wait().ok();
                return Err(e);
            }
        };
        let pipes = Pipes {
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
        };
        let child = Arc::new(Mutex::new(Watched { child, watch }));
        live.push(Arc::clone(&child));
        Ok((Self { child }, pipes))
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        lock(&self.child).child.id()
    }

    /// Its exit status, if it has exited (and then its watch is over: its process id is
    /// free for reuse).
    pub fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        let mut watched = lock(&self.child);
        let status = watched.child.try_wait()?;
        if status.is_some() {
            watched.watch.dismiss();
        }
        Ok(status)
    }

    /// Kills it (if still running) and waits for it.
    pub fn kill(&self) -> io::Result<ExitStatus> {
        lock(&self.child).end()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill().ok();
        lock(&LIVE).retain(|c| !Arc::ptr_eq(c, &self.child));
    }
}

/// A lock that survives a panic elsewhere: a child's handle stays valid.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the signal watcher, once per process.
fn watch_signals() -> io::Result<()> {
    static WATCHER: OnceLock<Result<(), String>> = OnceLock::new();
    WATCHER
        .get_or_init(|| {
            let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(|e| e.to_string())?;
            std::thread::Builder::new()
                .name("qemu-reaper".into())
                .spawn(move || {
                    if let Some(signal) = signals.forever().next() {
                        let live = lock(&LIVE);
                        for child in live.iter() {
                            lock(child).end().ok();
                        }
                        // The default action ends the process; `live` stays locked until then.
                        signal_hook::low_level::emulate_default_handler(signal).ok();
                        std::process::exit(128 + signal);
                    }
                })
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| io::Error::other(format!("cannot watch for signals: {e}")))
}
