// Step output: split into lines for the log, keep the last 64 KiB for the journal. Memory stays
// bounded whatever a step prints: a line longer than maxLineBytes is logged in pieces.

export const tailBytes = 64 * 1024;
const maxLineChars = 16 * 1024;

/** Feeds text chunks, emits whole lines; `flush` emits the last partial line. */
export class LineSplitter {
  private partial = '';

  constructor(private readonly emit: (line: string) => void) {}

  push(chunk: string): void {
    let text = this.partial + chunk;
    let nl: number;
    while ((nl = text.indexOf('\n')) >= 0) {
      this.emit(text.slice(0, nl).replace(/\r$/, ''));
      text = text.slice(nl + 1);
    }
    while (text.length > maxLineChars) {
      this.emit(text.slice(0, maxLineChars));
      text = text.slice(maxLineChars);
    }
    this.partial = text;
  }

  flush(): void {
    if (this.partial !== '') this.emit(this.partial);
    this.partial = '';
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
