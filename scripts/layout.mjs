// Layout check for src/: import circles, files over 400 lines, functions over 60 lines.
//
// How: TypeScript's own parser (the `typescript` devDependency; from 7.0 its JS API is
// `typescript/unstable/sync`, which asks the bundled tsgo binary for the program of tsconfig.json)
// gives each src/ file's syntax tree. The import graph has an edge A → B for every relative module
// specifier in A that names B: `import` and `import type`, `export … from`, and `import('…')`
// calls (a type-only import is still a dependency of the code's shape, and the issue's
// agent.ts ↔ run.ts circle is one). './x.js' names src/x.ts. Circles are the strongly connected
// components of that graph (Tarjan), each printed with the edges inside it. A function's size runs
// from the line of its first token (after comments) to the line of its last: declarations,
// methods, constructors, accessors, function expressions and arrow functions, each counted on
// its own (an inner function also counts in its outer one).
//
// Usage: node scripts/layout.mjs [--json]; exits 1 when there is a circle, else 0 (sizes only
// print here; test/unit/layout.test.ts fails on them, but for the files it lists as known).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { API } from 'typescript/unstable/sync';
import { SyntaxKind } from 'typescript/unstable/ast';

const root = new URL('..', import.meta.url).pathname;
const srcDir = join(root, 'src');
const maxFileLines = 400;
const maxFunctionLines = 60;
const functionKinds = new Set([SyntaxKind.FunctionDeclaration, SyntaxKind.MethodDeclaration, SyntaxKind.Constructor, SyntaxKind.GetAccessor, SyntaxKind.SetAccessor, SyntaxKind.FunctionExpression, SyntaxKind.ArrowFunction]);

const files = listTs(srcDir);
const api = new API({ cwd: root });
let report;
try {
  const project = api.updateSnapshot({ openProject: join(root, 'tsconfig.json') }).getProjects()[0];
  report = analyse(project.program);
} finally {
  api.close();
}

if (process.argv.includes('--json')) console.log(JSON.stringify(report, null, 2));
else print(report);
process.exitCode = report.circles.length ? 1 : 0;

function listTs(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return listTs(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

function analyse(program) {
  const edges = new Map(files.map((f) => [f, new Set()]));
  const bigFiles = [];
  const bigFunctions = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > maxFileLines) bigFiles.push({ file: rel(file), lines });
    const sf = program.getSourceFile(file);
    if (!sf) throw new Error(`${rel(file)} is not in tsconfig.json's program`);
    const lineOf = lineIndex(text);
    const visit = (node) => {
      const target = importTarget(node);
      if (target !== undefined && target.startsWith('.')) {
        const to = resolve(dirname(file), target.replace(/\.js$/, '.ts'));
        if (edges.has(to)) edges.get(file).add(to);
      }
      if (isFunctionLike(node)) {
        const size = lineOf(node.end) - lineOf(node.getStart()) + 1;
        if (size > maxFunctionLines) bigFunctions.push({ file: rel(file), line: lineOf(node.getStart()), name: nameOf(node), lines: size });
      }
      node.forEachChild(visit);
    };
    sf.forEachChild(visit);
  }
  const circles = stronglyConnected(edges)
    .filter((c) => c.length > 1 || edges.get(c[0]).has(c[0]))
    .map((c) => {
      const inside = new Set(c);
      return { files: c.map(rel).sort(), edges: c.flatMap((f) => [...edges.get(f)].filter((t) => inside.has(t)).map((t) => `${rel(f)} → ${rel(t)}`)).sort() };
    });
  bigFiles.sort((a, b) => b.lines - a.lines);
  bigFunctions.sort((a, b) => b.lines - a.lines);
  return { files: files.length, imports: [...edges.values()].reduce((n, s) => n + s.size, 0), circles, bigFiles, bigFunctions };
}

/** The module specifier of an import/export declaration or an import() call, else undefined. */
function importTarget(node) {
  if ((node.kind === SyntaxKind.ImportDeclaration || node.kind === SyntaxKind.ExportDeclaration) && node.moduleSpecifier?.kind === SyntaxKind.StringLiteral) return node.moduleSpecifier.text;
  if (node.kind === SyntaxKind.CallExpression && node.expression.kind === SyntaxKind.ImportKeyword && node.arguments[0]?.kind === SyntaxKind.StringLiteral) return node.arguments[0].text;
  return undefined;
}

function isFunctionLike(node) {
  return functionKinds.has(node.kind) && node.body !== undefined;
}

/** `name`, `Class.method`, or for an expression the variable or property it is assigned to. */
function nameOf(node) {
  const own = node.kind === SyntaxKind.Constructor ? 'constructor' : node.name?.text;
  const holder = node.parent;
  if (own && (holder?.kind === SyntaxKind.ClassDeclaration || holder?.kind === SyntaxKind.ClassExpression)) return `${holder.name?.text ?? '(class)'}.${own}`;
  if (own) return own;
  if (holder && (holder.kind === SyntaxKind.VariableDeclaration || holder.kind === SyntaxKind.PropertyAssignment || holder.kind === SyntaxKind.PropertyDeclaration) && holder.name?.text) return holder.name.text;
  return `(${node.kind === SyntaxKind.ArrowFunction ? 'arrow' : 'function'})`;
}

/** Position → 1-based line, by binary search over the line starts. */
function lineIndex(text) {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return (pos) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}

/** Tarjan's strongly connected components, iterative over a Map<node, Set<node>>. */
function stronglyConnected(graph) {
  let next = 0;
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const out = [];
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work = [[start, [...graph.get(start)], 0]];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length) {
      const frame = work[work.length - 1];
      const [v, succ] = frame;
      if (frame[2] < succ.length) {
        const w = succ[frame[2]++];
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push([w, [...graph.get(w)], 0]);
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
        continue;
      }
      work.pop();
      if (work.length) {
        const u = work[work.length - 1][0];
        low.set(u, Math.min(low.get(u), low.get(v)));
      }
      if (low.get(v) === index.get(v)) {
        const component = [];
        let w;
        do {
          w = stack.pop();
          onStack.delete(w);
          component.push(w);
        } while (w !== v);
        out.push(component);
      }
    }
  }
  return out;
}

function rel(file) {
  return relative(root, file);
}

function print(r) {
  console.log(`layout: ${r.files} files in src/, ${r.imports} relative imports`);
  console.log(`\nimport circles: ${r.circles.length}`);
  for (const c of r.circles) {
    console.log(`  ${c.files.join(', ')}`);
    for (const e of c.edges) console.log(`    ${e}`);
  }
  console.log(`\nfiles over ${maxFileLines} lines: ${r.bigFiles.length}`);
  for (const f of r.bigFiles) console.log(`  ${String(f.lines).padStart(5)}  ${f.file}`);
  console.log(`\nfunctions over ${maxFunctionLines} lines: ${r.bigFunctions.length}`);
  for (const f of r.bigFunctions) console.log(`  ${String(f.lines).padStart(5)}  ${f.file}:${f.line}  ${f.name}`);
}
