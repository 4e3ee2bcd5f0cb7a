// Public API of bootstrap-agent. No side effects at import.

export { Agent, defaultPaths, type AgentOptions, type ModeInfo, type StatusReport, type SettingChange } from './agent.js';
export { loadConfig, parseConfig, type Config, type ProductSpec, type SettingSpec, type HeartbeatSpec } from './config/config.js';
export * from './errors.js';
export { createLogger, silentLogger, type LogFields, type Logger, type LoggerOptions } from './log/log.js';
export { Masker } from './log/mask.js';
export { StateStore, type StateDoc } from './state/state.js';
export { PidLock, type LockOwner } from './lock/pid-lock.js';
export { main } from './cli/cli.js';
export type { StatusCheck, Problem, ProblemKind } from './status/check.js';
export type { VerifyOutcome, VerifyRequest, StepVerdict } from './run/verify.js';
