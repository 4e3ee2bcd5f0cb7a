// The README and docs/ link to each other: every relative link must name a file that exists and
// every #anchor a heading of that file (GitHub's slugs), so moving a section cannot leave a link
// dangling; and nothing may point at the design notes users never get (../shared).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

// dist/test/unit/docs.test.js → the repository root.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The text outside fenced code blocks, line by line. */
function prose(text: string): string[] {
  let fenced = false;
  return text.split('\n').filter((line) => {
    if (line.startsWith('```')) fenced = !fenced;
    return !fenced && !line.startsWith('```');
  });
}

/** GitHub's heading slug: lower case, punctuation but - and _ dropped, spaces to -. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/ /g, '-');
}

/** The anchors of a markdown file, with GitHub's -1, -2 … for repeated headings. */
function anchors(path: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of prose(readFileSync(path, 'utf8'))) {
    const m = /^#{1,6} (.*)$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Every link target of a page's prose, inline code left out. */
function links(path: string): string[] {
  const text = prose(readFileSync(path, 'utf8')).join('\n').replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
}

describe('docs: links cannot rot', () => {
  it('GitHub slugs: punctuation dropped, spaces to dashes', () => {
    assert.equal(slug('The --json interface'), 'the---json-interface');
    assert.equal(slug('Environment of steps, checks, backouts and error.d'), 'environment-of-steps-checks-backouts-and-errord');
  });

  it('the README links into docs/, and docs/ has an index and the contract', () => {
    assert.ok(pages.includes('docs/README.md') && pages.includes('docs/contract.md'));
    assert.ok(links(join(root, 'README.md')).includes('docs/contract.md'), 'README links the contract');
  });

  it('every relative link names an existing file, every #anchor an existing heading', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const page of pages) {
      for (const target of links(join(root, page))) {
        if (/^[a-z]+:/i.test(target)) continue;
        checked++;
        const [file, anchor] = target.split('#') as [string, string | undefined];
        const path = file === '' ? join(root, page) : join(root, dirname(page), file);
        if (!existsSync(path)) broken.push(`${page}: ${target} (no file ${relative(root, path)})`);
        else if (anchor !== undefined && (!path.endsWith('.md') || !anchors(path).has(anchor))) broken.push(`${page}: ${target} (no heading #${anchor})`);
      }
    }
    assert.ok(checked > 20, `links checked: ${checked}`);
    assert.deepEqual(broken, []);
  });

  it('no page names ../shared (design notes users never have)', () => {
    for (const page of pages) assert.doesNotMatch(readFileSync(join(root, page), 'utf8'), /\.\.\/shared|shared\/design/, page);
  });
});
