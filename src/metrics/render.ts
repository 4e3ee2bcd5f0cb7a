// The Prometheus text exposition format (version 0.0.4), what node_exporter's textfile collector
// parses: HELP and TYPE once per family, then its samples; no timestamps (the collector refuses
// them). Families sorted by name and samples by labels, so the same state gives the same bytes.

export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

export interface Family {
  /** `bootstrap_…`; a constant of this folder, never text from outside. */
  name: string;
  help: string;
  type: 'gauge';
  samples: Sample[];
}

/** Label values come from state.json and the config: bounded, so a hand-edited file cannot bloat a scrape. */
const maxLabelChars = 200;

export function renderFamilies(families: Family[]): string {
  const lines: string[] = [];
  for (const f of [...families].sort((a, b) => compare(a.name, b.name))) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    const samples = f.samples.map((s) => `${f.name}${renderLabels(s.labels)} ${formatValue(s.value)}`);
    lines.push(...samples.sort(compare));
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

function renderLabels(labels: Record<string, string> | undefined): string {
  const names = Object.keys(labels ?? {}).sort(compare);
  if (names.length === 0) return '';
  return `{${names.map((n) => `${n}="${escapeLabelValue(labels![n]!)}"`).join(',')}}`;
}

/** A label value's escapes: backslash, double quote and line feed (the format knows no others). */
export function escapeLabelValue(value: string): string {
  const bounded = value.length > maxLabelChars ? `${value.slice(0, maxLabelChars)}…` : value;
  return bounded.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes backslash and line feed only. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Go's ParseFloat reads what JavaScript prints, but for the non-finite values' spellings. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Code-unit order: the same in every locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
