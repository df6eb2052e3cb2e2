export * from './principals.ts';
export * from './filter.ts';
export * from './explain.ts';
