//! Run automation around the repository: the run log, the anomaly check, hooks, notifications and the
//! scheduler's planner (when the next cycle is due).

pub mod anomaly;
pub mod hooks;
pub mod notify;
pub mod planner;
pub mod runlog;
