//! `--low-priority`: nice 10 and the idle I/O class, so a scheduled backup yields the CPU and disk
//! to the agent. Set before any thread starts, so every worker thread and child process inherits
//! both (on Linux both are per thread, copied at thread creation and fork).

/// Nice value a low-priority run takes (a process already nicer keeps its own).
pub const NICE: i32 = 10;

/// Lowers this process's CPU and I/O priority; returns what could not be done, one line each.
pub fn lower() -> Vec<String> {
    let mut problems = Vec::new();
    // SAFETY: plain syscalls on the calling process with constant arguments.
    unsafe {
        *libc::__errno_location() = 0;
        let cur = libc::getpriority(libc::PRIO_PROCESS, 0);
        if cur < NICE && libc::setpriority(libc::PRIO_PROCESS, 0, NICE) != 0 {
            problems.push(format!("cannot set nice {NICE}: {}", std::io::Error::last_os_error()));
        }
        if let Err(e) = set_idle_io() {
            problems.push(format!("cannot set the idle I/O class: {e}"));
        }
    }
    problems
}

#[cfg(target_os = "linux")]
unsafe fn set_idle_io() -> std::io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_IDLE: libc::c_long = 3;
    const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
    // SAFETY: ioprio_set takes three integers and touches no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0 as libc::c_long,
            IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
unsafe fn set_idle_io() -> std::io::Result<()> {
    Ok(())
}
