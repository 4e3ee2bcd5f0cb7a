// Secret values, masked out of every text that leaves the agent: logs, journals, state.json,
// facts, callbacks, the terminal. Text that steps and explorers write is masked where it enters
// the agent (pipeline/output.ts), after it is decoded and before it is cut, so that neither an
// escape (JSON's `\u00e4`) nor a cut (a long line logged in pieces) can let a secret through.

export const maskText = '********';
/** Lines of a multi-line secret this long or longer are masked wherever they appear. */
const minSecretLine = 8;

export class Masker {
  private readonly secrets = new Set<string>();
  // Longest first, so that a secret containing another is masked whole. Plain string splits, not
  // one big RegExp: a secret can be large (V8 refuses huge patterns) and holds any character.
  private ordered: string[] = [];
  // Short lines of multi-line secrets (the last line of a PEM key): masked where a line is
  // exactly that (as a substring they would mask ordinary words everywhere).
  private readonly wholeLines = new Set<string>();

  /** Values to mask from now on (secret settings, the callback key). */
  add(values: Iterable<string>): void {
    for (const v of values) {
      if (v === '') continue;
      for (const form of encodedForms(v)) this.secrets.add(form);
      // A multi-line secret (a PEM key) reaches logs a line at a time: each line is a secret.
      if (!/[\r\n]/.test(v)) continue;
      for (const line of v.split(/\r?\n/).map((l) => l.trim())) {
        if (line.length >= minSecretLine) this.secrets.add(line);
        else if (line !== '') this.wholeLines.add(line);
      }
    }
    this.ordered = [...this.secrets].sort((a, b) => b.length - a.length);
  }

  mask(text: string): string {
    for (const secret of this.ordered) if (text.includes(secret)) text = text.split(secret).join(maskText);
    if (this.wholeLines.size) text = text.split('\n').map((l) => (this.wholeLines.has(l.trim()) ? maskText : l)).join('\n');
    return text;
  }

  /** A decoded document (parsed JSON): every string in it masked, keys included. */
  maskDeep(value: unknown): unknown {
    if (typeof value === 'string') return this.mask(value);
    if (Array.isArray(value)) return value.map((v) => this.maskDeep(v));
    if (value === null || typeof value !== 'object') return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [this.mask(k), this.maskDeep(v)]));
  }

  /**
   * The length of the longest secret: text cut at some point must be seen this far past the cut
   * (less one character) to know whether a secret straddles it.
   */
  get window(): number {
    return this.ordered[0]?.length ?? 0;
  }

  /**
   * Where to cut `text` at `at` or just after, so that no secret straddles the cut (moved past the
   * end of any that does). `text` must reach `window - 1` characters past `at`, or be whole.
   */
  safeCut(text: string, at: number): number {
    for (let moved = true; moved; ) {
      moved = false;
      for (const secret of this.ordered) {
        // The first occurrence that starts less than its length before the cut is the one that
        // straddles it, if any does.
        const i = text.indexOf(secret, Math.max(0, at - secret.length + 1));
        if (i >= 0 && i < at) {
          at = i + secret.length;
          moved = true;
        }
      }
    }
    return at;
  }
}

/**
 * A secret as it is written, and as JSON encoders write it inside a string (control characters
 * and quotes escaped; Python's json.dumps also escapes every non-ASCII character, `\u00e4`, and
 * others do so in upper case) and as a URL carries it (percent-encoded): a step or explorer that
 * prints its configuration as JSON, or a URL with the secret in it, is masked too.
 */
function encodedForms(secret: string): Set<string> {
  const json = JSON.stringify(secret).slice(1, -1);
  const ascii = (upper: boolean) => json.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')[upper ? 'toUpperCase' : 'toLowerCase']()}`);
  const forms = new Set([secret, json, ascii(false), ascii(true)]);
  try {
    forms.add(encodeURIComponent(secret));
  } catch {
    // a lone surrogate: no URL carries it
  }
  return forms;
}
