import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';

/** Small deterministic PRNG so every benchmark run generates the same corpus. */
export function rng(seed = 42) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOPICS = ['expense approval', 'incident response', 'vendor onboarding', 'access review', 'data retention', 'release process',
  'on-call rotation', 'budget planning', 'hiring loop', 'security training', 'customer escalation', 'travel policy',
  'backup restore', 'contract renewal', 'laptop provisioning', 'quarterly forecast'];
const WORDS = ('the team owner must review approve submit document record ticket within days manager finance engineering ' +
  'policy request system customer report weekly monthly quarterly threshold escalate notify audit evidence control ' +
  'service outage severity runbook deploy rollback staging production access grant revoke vendor invoice payment ' +
  'budget forecast headcount candidate interview offer training deadline exception risk compliance legal privacy ' +
  'retention archive backup restore laptop device account password rotation key secret region cluster database').split(' ');

export function paragraph(r: () => number, words = 60): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(r() * WORDS.length)]!);
  out[0] = out[0]![0]!.toUpperCase() + out[0]!.slice(1);
  return out.join(' ') + '.';
}

export function markdownDoc(r: () => number, i: number): string {
  const topic = TOPICS[i % TOPICS.length]!;
  const sections = 1 + Math.floor(r() * 3);
  let md = `# ${topic[0]!.toUpperCase()}${topic.slice(1)} guide ${i}\n\n${paragraph(r, 40)}\n`;
  for (let s = 0; s < sections; s++) md += `\n## Step ${s + 1}: ${TOPICS[Math.floor(r() * TOPICS.length)]}\n\n${paragraph(r, 50 + Math.floor(r() * 60))}\n`;
  return md;
}

/**
 * Writes `docs` Markdown files into `folders` folders, each folder with its own ACL file
 * (a team group, plus a couple of named users), so ingest exercises the real ACL path.
 */
export async function writeCorpus(dir: string, docs: number, folders = 20, seed = 42, make: (r: () => number, i: number) => string = markdownDoc): Promise<string[]> {
  const r = rng(seed);
  const files: string[] = [];
  for (let f = 0; f < folders; f++) {
    const folder = path.join(dir, `team-${f}`);
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, '.clearance-acl.json'), JSON.stringify({ read: [`group:team-${f}`, `user:lead${f}@acme.test`] }));
  }
  for (let i = 0; i < docs; i++) {
    const file = path.join(dir, `team-${i % folders}`, `doc-${String(i).padStart(5, '0')}.md`);
    await writeFile(file, make(r, i));
    files.push(file);
  }
  return files;
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Benchmarks use the offline model next to the checkout unless LOCAL_MODEL_PATH/EMBEDDING_MODEL say otherwise. */
export function benchModelEnv(): Record<string, string> {
  if (process.env.LOCAL_MODEL_PATH || process.env.EMBEDDING_MODEL || process.env.EMBEDDING_PROVIDER) return {};
  const shared = path.resolve(import.meta.dirname, '../../../shared/models/universal-sentence-encoder-lite');
  return { LOCAL_MODEL_PATH: shared };
}

/**
 * A full GC, so memory figures compare live data rather than garbage not yet collected; also
 * without --expose-gc, which `npx clearance` does not pass.
 */
export function collectGarbage() {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}
