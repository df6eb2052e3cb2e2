#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx so that `npm install` is the only set-up step.
import { register } from 'tsx/esm/api';
register();
const args = process.argv.slice(2);
if (args[0] === 'worker' && args.includes('--health')) {
  // The container healthcheck: reads the running worker's heartbeat file, starts nothing.
  const { healthMain } = await import('../workers/health.ts');
  healthMain();
} else if (args[0] === 'worker' && !args.includes('--help') && !args.includes('-h')) {
  // The worker process entry point lives in workers/ (src never imports it).
  const { main } = await import('../workers/main.ts');
  await main();
} else {
  const { main } = await import('../src/cli/main.ts');
  await main(process.argv);
}
