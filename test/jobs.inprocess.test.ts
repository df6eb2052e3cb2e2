import { InProcessJobRunner } from '../src/jobs/in-process.ts';
import { jobRunnerSuite } from './support/job-runner-suite.ts';

jobRunnerSuite('InProcessJobRunner', { create: (services) => new InProcessJobRunner(services) });
