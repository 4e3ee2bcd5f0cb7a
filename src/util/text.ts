// What a control character is, said once: labels, disable reasons, unit paths, a tree's VERSION
// line and error messages agree on it. C0, DEL and C1 (U+0080–U+009F: some terminals take U+009B
// for ESC [), and U+2028/U+2029, which end a line for JavaScript and many log readers.

const control = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;
const controls = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;
/** The same, less newline and tab: for output made of lines (step output, a journal). */
const controlsInLines = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/g;

/** True when `text` holds a control character: it is not one plain line. */
export function hasControls(text: string): boolean {
  return control.test(text);
}

/** `text` without its control characters. */
export function dropControls(text: string): string {
  return text.replace(controls, '');
}

/**
 * Control characters as visible escapes (`\x1b`, `\u2028`), never acted on by a terminal.
 * `multiline` keeps newline and tab, one line per line still.
 */
export function showControls(text: string, multiline = false): string {
  return text.replace(multiline ? controlsInLines : controls, (c) => {
    const code = c.charCodeAt(0);
    return code > 0xff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\x${code.toString(16).padStart(2, '0')}`;
  });
}
