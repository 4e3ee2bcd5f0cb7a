// Secret values, masked out of every text that leaves the agent: logs, journals, state.json,
// facts, callbacks, the terminal. Text that steps and explorers write is masked where it enters
// the agent (pipeline/output.ts), after it is decoded and before it is cut, so that neither an
// escape (JSON's `\u00e4`) nor a cut (a long line logged in pieces) can let a secret through.

const maskText = '********';
/** Lines of a multi-line secret this long or longer are masked wherever they appear. */
const minSecretLine = 8;

export class Masker {
  private readonly added = new Set<string>();
  /** Every form of every secret (encodedForms). */
  private readonly secrets = new Set<string>();
  // Longest first, so that a secret containing another is masked whole. Plain string splits, not
  // one big RegExp: a secret can be large (V8 refuses huge patterns) and holds any character.
  private ordered: string[] = [];
  // Whether a text holds any secret at all, asked first: most text holds none, and one RegExp
  // test of all forms (a secret has dozens: encodedForms) is much cheaper than an includes() each.
  // In chunks of bounded pattern size; a very long form is looked for with includes().
  private detectors: RegExp[] = [];
  private undetected: string[] = [];
  // Short lines of multi-line secrets (the last line of a PEM key): masked where a line is
  // exactly that (as a substring they would mask ordinary words everywhere).
  private readonly wholeLines = new Set<string>();

  /** Values to mask from now on (secret settings, the callback key). */
  add(values: Iterable<string>): void {
    const before = this.secrets.size;
    for (const v of values) {
      if (v === '' || this.added.has(v)) continue; // added already (each load adds them all)
      this.added.add(v);
      for (const form of encodedForms(v)) this.secrets.add(form);
      // A multi-line secret (a PEM key) reaches logs a line at a time: each line is a secret.
      if (!/[\r\n]/.test(v)) continue;
      for (const line of v.split(/\r?\n/).map((l) => l.trim())) {
        if (line.length >= minSecretLine) this.secrets.add(line);
        else if (line !== '') this.wholeLines.add(line);
      }
    }
    if (this.secrets.size === before) return;
    this.ordered = [...this.secrets].sort((a, b) => b.length - a.length);
    this.buildDetectors();
  }

  mask(text: string): string {
    if (this.holdsSecret(text)) for (const secret of this.ordered) if (text.includes(secret)) text = text.split(secret).join(maskText);
    if (this.wholeLines.size) text = text.split('\n').map((l) => (this.wholeLines.has(l.trim()) ? maskText : l)).join('\n');
    return text;
  }

  private holdsSecret(text: string): boolean {
    return this.detectors.some((d) => d.test(text)) || this.undetected.some((s) => text.includes(s));
  }

  private buildDetectors(): void {
    const maxPattern = 16 * 1024;
    const chunks: string[][] = [[]];
    let size = 0;
    this.undetected = [];
    for (const secret of this.ordered) {
      const literal = secret.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      if (literal.length > maxPattern) {
        this.undetected.push(secret);
        continue;
      }
      if (size + literal.length > maxPattern) chunks.push([]), (size = 0);
      chunks.at(-1)!.push(literal);
      size += literal.length + 1;
    }
    this.detectors = chunks.filter((c) => c.length).map((c) => new RegExp(c.join('|')));
  }

  /** A decoded document (parsed JSON): every string in it masked, keys included. */
  maskDeep(value: unknown): unknown {
    if (typeof value === 'string') return this.mask(value);
    // A number or boolean is text in the document too (an explorer's `{"pin": 734918265}`).
    if (typeof value === 'number' || typeof value === 'boolean') return this.mask(String(value)) === String(value) ? value : maskText;
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
 * A secret as it is written, and as programs commonly spell it when they print it, so that a step
 * or explorer that prints its configuration (as JSON, a URL, a shell trace) is masked too:
 * - JSON inside a string: control characters and quotes escaped; Python's json.dumps also escapes
 *   every non-ASCII character (`\u00e4`), others in upper case; Go escapes `<>&` and U+2028/9
 *   (`\u003c`); PHP escapes `/` as `\/`;
 * - shell: `set -x` and `${v@Q}` quote with `'\''`, `printf %q` backslash-escapes specials;
 * - URLs: percent-encoded as encodeURIComponent, Python's quote (keeps `/`), quote_plus and forms
 *   (space as `+`), in upper and lower hex;
 * - base64 (standard and URL-safe, padded or not) of the secret alone, or with the newline `echo`
 *   adds.
 * Forms equal to another are kept once (a Set): a plain password adds few.
 */
function encodedForms(secret: string): Set<string> {
  const forms = new Set([secret]);
  for (const json of jsonForms(secret)) {
    forms.add(json);
    forms.add(json.replaceAll('/', '\\/'));
  }
  forms.add(secret.replaceAll("'", "'\\''"));
  forms.add(secret.replaceAll("'", `'"'"'`));
  forms.add(printfQ(secret));
  for (const form of percentForms(secret)) forms.add(form);
  for (const text of [secret, `${secret}\n`]) {
    const b64 = Buffer.from(text, 'utf8').toString('base64');
    const urlSafe = b64.replaceAll('+', '-').replaceAll('/', '_');
    for (const b of [b64, urlSafe]) forms.add(b).add(b.replace(/=+$/, ''));
  }
  return forms;
}

/** JSON string contents: as JSON.stringify writes them, with non-ASCII escaped, and as Go does. */
function jsonForms(secret: string): string[] {
  const json = JSON.stringify(secret).slice(1, -1);
  const escape = (text: string, chars: RegExp, upper: boolean) =>
    text.replace(chars, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')[upper ? 'toUpperCase' : 'toLowerCase']()}`);
  const nonAscii = /[^\x20-\x7e]/g;
  const goHtml = /[<>&\u2028\u2029]/g;
  return [true, false].flatMap((upper) => [json, escape(json, nonAscii, upper), escape(json, goHtml, upper), escape(escape(json, goHtml, upper), nonAscii, upper)]);
}

/** Bash's `printf %q` of a printable secret: shell specials backslash-escaped, `#` and `~` at the start. */
function printfQ(secret: string): string {
  return secret.replace(/[ \t\n'"\\|&;()<>!{}*[\]?^$`,]/g, '\\$&').replace(/^[#~]/, '\\$&');
}

/**
 * Percent-encodings: which characters are left as they are (besides letters and digits) differs
 * by encoder, and form encoders write a space as `+`.
 */
function percentForms(secret: string): string[] {
  try {
    encodeURIComponent(secret);
  } catch {
    return []; // a lone surrogate: no URL carries it
  }
  const kept = [
    /[-_.!~*'()]/, // encodeURIComponent
    /[-_.~]/, // RFC 3986 unreserved: Python's quote(safe=''), quote_plus, Go, PHP's rawurlencode
    /[-_.~/]/, // Python's quote (safe='/')
    /[-_.*]/, // URLSearchParams (forms)
    /[-_.]/, // PHP's urlencode
  ];
  const chars = [...secret].map((c) => ({ c, hex: /[A-Za-z0-9]/.test(c) ? '' : encodeURIComponent(c).replace(/^[^%]$/, `%${c.charCodeAt(0).toString(16).toUpperCase()}`) }));
  const forms: string[] = [];
  for (const keep of kept) {
    const upper = chars.map(({ c, hex }) => (hex === '' || keep.test(c) ? c : hex)).join('');
    const lower = upper.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase());
    for (const encoded of [upper, lower]) forms.push(encoded, encoded.replaceAll('%20', '+'));
  }
  return forms;
}
