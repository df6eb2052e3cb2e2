/**
 * Where to cut `s` at or just before `at` without splitting a surrogate pair: a lone half is not
 * text (stores replace it with U+FFFD, and segmenters see an unknown character).
 */
export function cutAt(s: string, at: number): number {
  if (at <= 0 || at >= s.length) return Math.max(0, Math.min(at, s.length));
  const c = s.charCodeAt(at - 1);
  return c >= 0xd800 && c <= 0xdbff ? at - 1 : at;
}

/** `s` cut to at most `at` characters (see cutAt), trailing space dropped, with an ellipsis. */
export function shortened(s: string, at: number): string {
  return `${s.slice(0, cutAt(s, at)).trimEnd()}…`;
}

/**
 * The end of a window of at most `size` characters of `s` from `start`: the end of `s` when that is
 * within reach, else its last space in reach (so no word is cut), else `size` characters on (see cutAt).
 * Segmenters are handed long text in such windows: V8's Intl.Segmenter slows with its input's length.
 */
export function windowEnd(s: string, start: number, size: number): number {
  if (s.length - start <= size) return s.length;
  const space = s.lastIndexOf(' ', start + size);
  return space > start ? space : cutAt(s, start + size);
}
