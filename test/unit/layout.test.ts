// The layout check (scripts/layout.mjs) over src/: no import circle. The sizes it prints (files
// over 400 lines, functions over 60) are not asserted yet.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

// dist/test/unit/layout.test.js → the repository root.
const root = fileURLToPath(new URL('../../../', import.meta.url));

interface Layout {
  files: number;
  imports: number;
  circles: Array<{ files: string[]; edges: string[] }>;
}

function layout(): Promise<{ code: number | null; report: Layout; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['scripts/layout.mjs', '--json'], { cwd: root, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      try {
        resolve({ code: err ? (err.code as number) : 0, report: JSON.parse(stdout) as Layout, stderr });
      } catch {
        reject(new Error(`layout.mjs printed no JSON:\n${stdout}\n${stderr}`));
      }
    });
  });
}

describe('layout of src/', () => {
  it('has no import circle', async () => {
    const { code, report, stderr } = await layout();
    assert.ok(report.files > 40 && report.imports > 100, `layout.mjs saw ${report.files} files and ${report.imports} imports: is it reading src/? ${stderr}`);
    assert.equal(code, report.circles.length ? 1 : 0, 'exit 1 exactly when there is a circle');
    assert.deepEqual(report.circles, [], 'import circles (node scripts/layout.mjs shows them)');
  });
});
