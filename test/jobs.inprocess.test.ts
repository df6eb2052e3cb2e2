import { InProcessJobRunner } from '../src/jobs/in-process.ts';
import { jobRunnerSuite } from './support/job-runner-suite.ts';

jobRunnerSuite('InProcessJobRunner', { create: (deps) => new InProcessJobRunner(deps) });
