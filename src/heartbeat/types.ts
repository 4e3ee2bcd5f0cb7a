export interface CheckVerdict {
  healthy: boolean;
  detail: string;
}

export interface CheckResult extends CheckVerdict {
  name: string;
  type: string;
  latency_ms: number;
}

export interface Checkup {
  healthy: boolean;
  started_at: string;
  finished_at: string;
  results: CheckResult[];
}
