//! Run automation around the repository: the recorded backup (run log, anomaly check, hooks,
//! notifications, retention after the backup, stopping on a signal) and the scheduler's planner
//! (when the next cycle is due). Called in process by the CLI, the daemon and the web console.

pub mod anomaly;
pub mod doctor;
pub mod health;
pub mod hooks;
pub mod interrupt;
pub mod notify;
pub mod planner;
pub mod recorded;
pub mod retention;
pub mod runlog;
pub mod scheduler;
pub mod sizelog;
