//! Stopping a run from outside: the signal that asked it to stop, held in an atomic the caller owns
//! (signal handlers from `signal-hook` store to it; nothing global), and where the run is, which
//! decides what the stop means: before anything is stored the run ends at once, while the engine
//! writes it is asked to wind down keeping what it finished, after the snapshot it finishes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::progress::Progress;

/// Where a run is, for what a stop means.
#[derive(Clone, Default)]
pub enum Phase {
    /// Nothing stored yet (or nothing a stop can lose, like prune): a stop ends the run at once.
    #[default]
    Preparing,
    /// The engine is writing: a stop asks it to finish what it holds and return `Interrupted`.
    Writing(Arc<Progress>),
    /// The snapshot is saved (or the backup failed): the run finishes and reports.
    After,
}

/// A run's stop request and phase, shared by the run, its signal handlers and its watcher.
/// Clones share one state.
#[derive(Clone, Default)]
pub struct Interrupt {
    /// The signal that asked for the stop (0: none).
    signal: Arc<AtomicUsize>,
    /// Set by the first signal when a second one should end the process at once.
    seen: Arc<AtomicBool>,
    phase: Arc<Mutex<Phase>>,
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Catches `signals`: each stores its number for [`Interrupt::signal`] instead of ending the
    /// process. With `second_kills`, a second one takes the signal's default action (the process
    /// ends at once), as a second Ctrl-C should.
    pub fn catch(&self, signals: &[i32], second_kills: bool) -> std::io::Result<()> {
        for &sig in signals {
            if second_kills {
                // Registered first, so it looks at the flag before the first signal sets it.
                signal_hook::flag::register_conditional_default(sig, self.seen.clone())?;
                signal_hook::flag::register(sig, self.seen.clone())?;
            }
            signal_hook::flag::register_usize(sig, self.signal.clone(), sig as usize)?;
        }
        Ok(())
    }

    /// Asks the run to stop as if `sig` had arrived (a caller without signals: the web console).
    pub fn request(&self, sig: i32) {
        self.signal.store(sig as usize, Ordering::SeqCst);
    }

    /// The signal that asked the run to stop, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s as i32),
        }
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase;
    }

    /// A new run starts: a stop ends it at once until it writes.
    pub fn preparing(&self) {
        self.set(Phase::Preparing);
    }

    /// The engine is about to write: a stop from now on asks it to wind down (at once when one
    /// already came).
    pub fn writing(&self, progress: &Arc<Progress>) {
        self.set(Phase::Writing(progress.clone()));
        if self.signal().is_some() {
            progress.stop.store(true, Ordering::SeqCst);
        }
    }

    /// The engine returned: the run finishes whatever comes.
    pub fn written(&self) {
        self.set(Phase::After);
    }

    /// Watches for a stop while the returned guard lives: in [`Phase::Preparing`] it calls
    /// `stop_now` with the signal (which is expected to end the process: the run may be blocked
    /// in a hook or a password command); while writing it asks the engine to stop.
    pub fn watch(&self, stop_now: impl FnOnce(i32) + Send + 'static) -> Watch {
        let done = Arc::new(AtomicBool::new(false));
        let (me, until) = (self.clone(), done.clone());
        std::thread::spawn(move || {
            let mut stop_now = Some(stop_now);
            while !until.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(25));
                let Some(sig) = me.signal() else { continue };
                let phase = me.phase.lock().unwrap_or_else(|e| e.into_inner()).clone();
                match phase {
                    Phase::Preparing => {
                        if let Some(f) = stop_now.take() {
                            f(sig);
                        }
                        return;
                    }
                    Phase::Writing(p) => p.stop.store(true, Ordering::SeqCst),
                    Phase::After => {}
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Watch { done }
    }
}

/// Ends the watcher of [`Interrupt::watch`] when dropped.
pub struct Watch {
    done: Arc<AtomicBool>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

/// A signal's name for messages.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGKILL => "SIGKILL",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_while_writing_asks_the_engine_to_stop_and_before_it_stops_at_once() {
        let i = Interrupt::new();
        let progress = Arc::new(Progress::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let w = i.watch(move |sig| tx.send(sig).unwrap());
        i.writing(&progress);
        i.request(libc::SIGTERM);
        let t = std::time::Instant::now();
        while !progress.stop.load(Ordering::SeqCst) {
            assert!(t.elapsed() < Duration::from_secs(5), "the engine was not asked to stop");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(rx.try_recv().is_err(), "a stop while writing does not end the run at once");
        drop(w);

        // Already stopped when the engine starts writing: asked at once.
        let p2 = Arc::new(Progress::default());
        i.writing(&p2);
        assert!(p2.stop.load(Ordering::SeqCst));

        let j = Interrupt::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let _w = j.watch(move |sig| tx.send(sig).unwrap());
        j.request(libc::SIGINT);
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), libc::SIGINT);
        assert_eq!(signal_name(j.signal().unwrap()), "SIGINT");
    }

    #[test]
    fn a_caught_signal_is_stored_not_fatal() {
        let i = Interrupt::new();
        i.catch(&[libc::SIGUSR2], false).unwrap();
        assert_eq!(i.signal(), None);
        // SAFETY: raising a signal this process has a handler for.
        unsafe { libc::raise(libc::SIGUSR2) };
        assert_eq!(i.signal(), Some(libc::SIGUSR2));
    }
}
