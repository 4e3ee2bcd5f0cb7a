// The run lifecycle: one run of the pipeline (provision, refresh, mode, upgrade, server.resume)
// from its request to its record, entered through performRun (perform.ts), and what a run
// leaves to the next (a pause for a reboot, a dead run's takeover). It talks to the agent only
// through RunContext (context.ts); nothing here imports agent.ts.

export { performRun } from './perform.js';
export { validateMode } from './request.js';
export { successOf } from '../state/state.js';
export { compareVersions } from '../versions.js';
export type { RunContext } from './context.js';
export type { DryRunReport, RunAction, RunOutcome, RunRequest } from './types.js';
