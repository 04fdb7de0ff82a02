//! Start-up shared by the TCP examples: arguments parsed or exit 2, a single-threaded
//! tokio runtime or exit 1.

/// The parsed options, or the usage message on stderr and exit status 2.
pub fn options_or_exit<T>(parsed: Result<T, String>) -> T {
    match parsed {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    }
}

/// A current-thread runtime with I/O and timers, or exit status 1.
pub fn runtime_or_exit() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            std::process::exit(1);
        }
    }
}
