// The clock for durations and waits within one process: monotonic, in ms, from process.hrtime.
// Not performance.now(): the first use of the `performance` global loads perf_hooks and ten
// internal modules of it, ~0.75 ms of every run (Node 20), for a subtraction.

/** Milliseconds on a monotonic clock: only differences of two readings mean anything. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
