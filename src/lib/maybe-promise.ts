/**
 * A value at hand, or a promise of it when it had to be fetched. The token endpoints' cached paths
 * stay synchronous this way: every `await` and async frame costs a request a few hundred bytes of
 * promises and closures, and their garbage collections set the p99 (README, "Performance").
 */
export type MaybePromise<T> = T | Promise<T>;

/** `f` of the value, now if it is at hand, else once it is. (Not named `then`: a module that exports `then` is a thenable, and `import()` of it calls that function.) */
export function andThen<T, R>(value: MaybePromise<T>, f: (value: T) => MaybePromise<R>): MaybePromise<R> {
  return value instanceof Promise ? value.then(f) : f(value);
}
