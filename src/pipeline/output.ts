// Text that steps, explorers, environment.d and the reboot command write enters the agent here:
// their output, split into lines for the log (the last 64 KiB kept for the journal), and the
// files they write (changes, the reboot reason), read up to a bound. Secrets are masked here,
// before any cut, so that no secret is ever stored or logged in pieces. Memory stays bounded
// whatever a step prints: a line longer than maxLineChars is logged in pieces.

import { lstatSync } from 'node:fs';
import { readHeadSync } from '../util/files.js';

export const tailBytes = 64 * 1024;
export const maxLineChars = 16 * 1024;

/** What masks secrets in text (log/mask.ts's Masker): text, and where text may be cut. */
export interface TextMasker {
  mask(text: string): string;
  /** The first cut at or after `at` that no secret straddles. */
  safeCut(text: string, at: number): number;
  /** The longest secret: a cut needs this much text after it (less one) to be safe. */
  readonly window: number;
}

/** Feeds text chunks, emits whole lines, masked; `flush` emits the last partial line. */
export class LineSplitter {
  private partial = '';

  constructor(
    private readonly emit: (line: string) => void,
    private readonly masker: TextMasker,
  ) {}

  push(chunk: string): void {
    const text = this.partial + chunk;
    let from = 0;
    for (let nl; (nl = text.indexOf('\n', from)) >= 0; from = nl + 1) this.pieces(text.slice(from, nl).replace(/\r$/, ''), true);
    this.partial = this.pieces(text.slice(from), false);
  }

  flush(): void {
    if (this.partial !== '') this.pieces(this.partial, true);
    this.partial = '';
  }

  /**
   * Emits `line` masked, in pieces of about maxLineChars, each cut where no secret straddles it;
   * returns what waits for more text. A partial line is cut only where enough follows to see a
   * secret that starts before the cut whole: a secret is never logged in two halves.
   */
  private pieces(line: string, whole: boolean): string {
    const hold = whole ? 0 : Math.max(0, this.masker.window - 1);
    let cut = false;
    while (line.length > maxLineChars && line.length >= maxLineChars + hold) {
      const at = this.masker.safeCut(line, maxLineChars);
      this.emit(this.masker.mask(line.slice(0, at)));
      line = line.slice(at);
      cut = true;
    }
    if (!whole) return line;
    if (line !== '' || !cut) this.emit(this.masker.mask(line));
    return '';
  }
}

/** The last `limit` characters of what was appended, in chunks so appends stay cheap. */
export class Tail {
  private chunks: string[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly limit = tailBytes) {}

  append(text: string): void {
    this.chunks.push(text);
    this.size += text.length;
    while (this.size - (this.chunks[0]?.length ?? 0) >= this.limit && this.chunks.length > 1) {
      this.size -= this.chunks.shift()!.length;
      this.truncated = true;
    }
  }

  toString(): string {
    const all = this.chunks.join('');
    if (all.length <= this.limit) return all;
    this.truncated = true;
    return all.slice(all.length - this.limit);
  }
}

/**
 * The first `maxBytes` of a file a step wrote (no symlink followed, no blocking), secrets masked:
 * read far enough past the bound to see a secret that straddles it, and cut after that secret.
 * Throws as readHeadSync does.
 */
export function readStepFile(path: string, maxBytes: number, masker: TextMasker): { text: string; truncated: boolean } {
  const head = readHeadSync(path, maxBytes + 4 * masker.window); // a UTF-16 unit is at most 4 bytes of UTF-8
  const at = charsWithin(head.text, maxBytes);
  if (at === head.text.length && !head.truncated) return { text: masker.mask(head.text), truncated: false };
  return { text: masker.mask(head.text.slice(0, masker.safeCut(head.text, at))), truncated: true };
}

/** How many characters of `text` fit in `bytes` bytes of UTF-8. */
function charsWithin(text: string, bytes: number): number {
  let used = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? 4 : c >= 0xdc00 && c < 0xe000 ? 0 : 3;
    if (used + size > bytes) return i;
    used += size;
  }
  return text.length;
}

/** The changes a file reported: its lines, non-empty, secrets masked; what is past 64 KiB is cut. */
export function readChanges(path: string, masker: TextMasker): { lines: string[]; truncated: boolean } {
  let head: { text: string; truncated: boolean };
  try {
    // Most steps report nothing: one lstat, and the file is opened only when it holds something.
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st || st.size === 0) return { lines: [], truncated: false };
    head = readStepFile(path, tailBytes, masker);
  } catch {
    return { lines: [], truncated: false }; // removed or replaced by the step: nothing we trust
  }
  const lines = head.text.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
  if (head.truncated && !head.text.endsWith('\n')) lines.pop(); // a line cut in two
  return { lines, truncated: head.truncated };
}
