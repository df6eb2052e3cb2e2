/**
 * Where to cut `s` at or just before `at` without splitting a surrogate pair: a lone half is not
 * text (stores replace it with U+FFFD, and segmenters see an unknown character).
 */
export function cutAt(s: string, at: number): number {
  if (at <= 0 || at >= s.length) return Math.max(0, Math.min(at, s.length));
  const c = s.charCodeAt(at - 1);
  return c >= 0xd800 && c <= 0xdbff ? at - 1 : at;
}
