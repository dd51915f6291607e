/**
 * A value at hand, or a promise of it when it had to be fetched. The token endpoints' cached paths
 * stay synchronous this way: every `await` and async frame costs a request promises and closures,
 * and the garbage collections they bring set the p99 (docs/performance.md, "The p99 and the
 * garbage collector").
 */
export type MaybePromise<T> = T | Promise<T>;
