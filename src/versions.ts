// Version ordering for products: upgrade refuses a downgrade unless asked, by comparing the
// requested version with the one recorded in state.

/**
 * Orders versions as people read them: digit runs numerically (2.10 > 2.9), letter runs by
 * bytes, a longer version after its prefix (1.4.1 > 1.4); `~` sorts before anything (1.0~rc1 <
 * 1.0), as in Debian.
 */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) => v.split(/(~)|[.+_-]/).filter((p) => p !== undefined && p !== '').flatMap((p) => p.match(/~|\d+|[^\d~]+/g) ?? []);
  const x = parts(a);
  const y = parts(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i];
    const q = y[i];
    if (p === q) continue;
    if (p === '~' || q === undefined) return p === '~' ? -1 : 1;
    if (q === '~' || p === undefined) return q === '~' ? 1 : -1;
    const np = /^\d+$/.test(p);
    const nq = /^\d+$/.test(q);
    if (np && nq) {
      // 01 and 1 are the same number: the parts after them decide (as dpkg compares).
      if (BigInt(p) === BigInt(q)) continue;
      return BigInt(p) < BigInt(q) ? -1 : 1;
    }
    if (np !== nq) return np ? 1 : -1;
    return p < q ? -1 : 1;
  }
  return 0;
}
