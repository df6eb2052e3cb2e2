export * from './principals.ts';
export * from './filter.ts';
