// Unused: the timer measurement runs on the main thread.
