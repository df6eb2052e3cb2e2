import type { Reporter, RunnerTestFile, RunnerTask } from 'vitest';

/** Prints the plain "N passed, N failed" closing line that CI tooling reads. */
export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = []) {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const visit = (task: RunnerTask) => {
      if (task.type === 'suite') return task.tasks.forEach(visit);
      const state = task.result?.state;
      if (state === 'pass') passed++;
      else if (state === 'fail') failed++;
      else skipped++;
    };
    for (const f of files) {
      if (f.result?.state === 'fail' && f.tasks.length === 0) failed++; // a file that failed to load
      f.tasks.forEach(visit);
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
