// How many seeded fault trials a suite runs. Every trial kills or stops the agent at a random
// moment: what they test is ours (no step twice, no callback lost, no torn file), not the Node's.
// The first Node in CI runs them all; the other Nodes' batches (scripts/run-tests.mjs sets
// BOOTSTRAP_TEST_TRIALS=quick there) a quarter of them (the same seed, so the first block's trials
// are the first of the full run's): CI's 30 minutes hold three Nodes that way.

/** `n`, or a quarter of it (at least 4) in a quick batch. */
export function trials(n: number): number {
  return process.env['BOOTSTRAP_TEST_TRIALS'] === 'quick' ? Math.max(4, Math.ceil(n / 4)) : n;
}
