//! Media threads: each runs a single-threaded tokio runtime of its own, and each room's task
//! (its delivery service and media, decision 0022) runs on one of them, with its sockets and
//! timers. A datagram, the room that forwards it and the sends that follow stay on one thread,
//! so nothing is handed across threads per packet; the signaling connections, HTTP and the
//! rest stay on the server's shared runtime. A room goes to the thread with the fewest rooms.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use signaling_server::server::RoomTask;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

struct Thread {
    handle: Handle,
    rooms: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
}

/// The media threads; they stop (dropping their rooms' tasks) when this is dropped.
pub struct MediaThreads {
    threads: Vec<Thread>,
}

impl std::fmt::Debug for MediaThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaThreads")
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl MediaThreads {
    /// `n` media threads (at least one).
    pub fn start(n: usize) -> std::io::Result<MediaThreads> {
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("media-{i}"))
                .spawn(move || {
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                })?;
            threads.push(Thread {
                handle,
                rooms: Arc::default(),
                stop: Some(stop),
            });
        }
        Ok(MediaThreads { threads })
    }

    /// The first thread's runtime (where the shared UDP port's readers run).
    pub fn first(&self) -> &Handle {
        &self.threads[0].handle
    }

    pub fn len(&self) -> usize {
        self.threads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// Runs `task` on the thread with the fewest rooms (the first, on a tie).
    pub fn spawn(&self, task: RoomTask) {
        let Some(t) = self
            .threads
            .iter()
            .min_by_key(|t| t.rooms.load(Ordering::Relaxed))
        else {
            return;
        };
        let rooms = t.rooms.clone();
        rooms.fetch_add(1, Ordering::Relaxed);
        t.handle.spawn(async move {
            let _counted = Counted(rooms);
            task.await;
        });
    }

    /// Rooms on each thread now.
    pub fn rooms(&self) -> Vec<usize> {
        self.threads
            .iter()
            .map(|t| t.rooms.load(Ordering::Relaxed))
            .collect()
    }
}

impl Drop for MediaThreads {
    fn drop(&mut self) {
        for t in &mut self.threads {
            if let Some(stop) = t.stop.take() {
                let _ = stop.send(());
            }
        }
    }
}

/// Counts a room on its thread until its task ends (or is dropped with the thread).
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_go_to_the_least_loaded_thread_and_run_there() {
        let threads = MediaThreads::start(2).expect("threads");
        let (tx, rx) = std::sync::mpsc::channel();
        let (release, hold) = tokio::sync::watch::channel(false);
        for _ in 0..4 {
            let tx = tx.clone();
            let mut hold = hold.clone();
            threads.spawn(Box::pin(async move {
                let name = std::thread::current().name().map(str::to_owned);
                tx.send(name).unwrap();
                let _ = hold.wait_for(|&go| go).await;
            }));
        }
        let mut names: Vec<_> = (0..4).map(|_| rx.recv().unwrap().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["media-0", "media-0", "media-1", "media-1"]);
        assert_eq!(threads.rooms(), [2, 2]);
        release.send(true).unwrap();
        for _ in 0..200 {
            if threads.rooms() == [0, 0] {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("ended rooms are no longer counted: {:?}", threads.rooms());
    }
}
