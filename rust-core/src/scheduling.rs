//! How the core's worker threads share CPUs with the consumer's thread.
//!
//! Every send from the consumer wakes a worker. Under the default policy a freshly woken
//! worker preempts the consumer at once when both share a core, so a busy consumer is
//! switched out once per message (measured: 80,000 involuntary switches in 6 s of echo,
//! with the Python consumer pinned to one core with the workers). SCHED_BATCH tells the
//! kernel a worker's wake-up is not urgent: it runs when the consumer blocks or its time
//! slice ends and then finds many connections' work waiting, so the work is batched.
//! On a machine with a free core the worker is still placed there immediately.

/// Puts the calling thread under SCHED_BATCH (Linux); elsewhere, or if refused, the
/// thread keeps its policy, which is only slower.
pub(crate) fn yield_to_consumer_on_wakeup() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    }
}
