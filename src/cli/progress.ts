// A live progress line on a terminal during runs: phase, step n/N, elapsed. Log lines clear it
// first and redraw it after, so step output is never garbled. Off under systemd, -q and --json.

export class Progress {
  private text = '';
  private shown = false;
  private started = 0;
  private timer: NodeJS.Timeout | null = null;
  private current: { phase: string; step: string; index: number; total: number } | null = null;

  /** `io.stderr` is read only when the line is drawn: a disabled progress never opens it. */
  constructor(
    private readonly io: { readonly stderr: NodeJS.WritableStream },
    readonly enabled: boolean,
  ) {}

  update(event: { phase: string; step: string; index: number; total: number }): void {
    if (!this.enabled) return;
    if (!this.timer) {
      this.started = Date.now();
      this.timer = setInterval(() => this.render(), 500);
      this.timer.unref();
    }
    this.current = event;
    this.render();
  }

  /** Runs `write` with the line cleared, then draws it again. */
  around(write: () => void): void {
    if (!this.shown) return write();
    this.clear();
    write();
    this.draw();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.clear();
    this.current = null;
  }

  private render(): void {
    if (!this.current) return;
    const { phase, step, index, total } = this.current;
    const elapsed = ((Date.now() - this.started) / 1000).toFixed(0);
    const columns = (this.io.stderr as { columns?: number }).columns || 80;
    this.text = `[${index}/${total}] ${phase}/${step}  ${elapsed}s`.slice(0, columns - 1);
    this.clear();
    this.draw();
  }

  private draw(): void {
    this.io.stderr.write(`\x1b[2m${this.text}\x1b[0m`);
    this.shown = true;
  }

  private clear(): void {
    if (this.shown) this.io.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}
