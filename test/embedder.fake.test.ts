import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../src/errors.ts';
import { FakeEmbedder } from './fakes/embedder.ts';
import { dot } from '../src/embedder/vector.ts';

describe('FakeEmbedder', () => {
  it('is deterministic, unit-length and puts word-sharing texts closer', async () => {
    const e = new FakeEmbedder({ dimension: 128 });
    const [a, b, c, empty] = await e.embed([
      'parental leave policy for employees',
      'employees parental leave rules',
      'quarterly revenue forecast spreadsheet',
      '',
    ]);
    for (const v of [a, b, c, empty]) {
      expect(v).toHaveLength(128);
      expect(dot(v, v)).toBeCloseTo(1, 9);
    }
    expect(dot(a, b)).toBeGreaterThan(dot(a, c) + 0.3);
    expect(await new FakeEmbedder({ dimension: 128 }).embed(['parental leave policy for employees'])).toEqual([a]);
    expect(await e.embedQuery('Parental LEAVE policy for employees!')).toEqual(a);
  });

  it('counts calls and texts, and can be told to fail', async () => {
    const e = new FakeEmbedder({ maxTokens: 32 });
    expect(e.modelId).toBe('fake:64');
    expect(e.maxTokens).toBe(32);
    await e.embed(['one', 'two']);
    await e.embed(['three']);
    expect(e.calls).toBe(2);
    expect(e.textsEmbedded).toBe(3);
    expect(e.embeddedTexts).toEqual(['one', 'two', 'three']);
    e.failNext(new UpstreamError('rate limited', { retryable: true, retryAfterSeconds: 1 }));
    await expect(e.embed(['four'])).rejects.toBeInstanceOf(UpstreamError);
    expect(await e.embed(['four'])).toHaveLength(1);
    e.resetCounters();
    expect(e.textsEmbedded).toBe(0);
  });

  it('counts words and punctuation as tokens, long words as several', () => {
    const e = new FakeEmbedder();
    expect(e.countTokens('')).toBe(0);
    expect(e.countTokens('Hello, world!')).toBe(4);
    expect(e.countTokens('x'.repeat(50))).toBe(10);
  });
});
