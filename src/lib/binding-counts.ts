/**
 * Binding calls counted in the Worker (BINDING_COUNTS=on; docs/benchmarking.md): the bindings are
 * wrapped once per env object with counting proxies, so the bench divides each kind by the requests
 * of a round. Off (the default), nothing is wrapped: the env is returned as is.
 */

export interface BindingCounts {
  kvRead: number;
  kvWrite: number;
  d1: number;
  d1Batch: number;
  doCall: number;
  fetch: number;
  queue: number;
  cache: number;
}

const zero = (): BindingCounts => ({ kvRead: 0, kvWrite: 0, d1: 0, d1Batch: 0, doCall: 0, fetch: 0, queue: 0, cache: 0 });

/** This isolate's totals (a Durable Object in another isolate has its own; served by /__binding-counts). */
export const counts: BindingCounts = zero();

export function resetCounts(): BindingCounts {
  const before = { ...counts };
  Object.assign(counts, zero());
  return before;
}

export const countingOn = (env: object) => (env as Record<string, unknown>).BINDING_COUNTS === "on";

const KV_READS = new Set(["get", "getWithMetadata", "list"]);
const KV_WRITES = new Set(["put", "delete"]);

function wrapKv(kv: KVNamespace): KVNamespace {
  return new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      const kind = KV_READS.has(prop as string) ? "kvRead" : KV_WRITES.has(prop as string) ? "kvWrite" : null;
      return (...args: unknown[]) => {
        if (kind) counts[kind]++;
        return Reflect.apply(value, target, args);
      };
    },
  });
}

const STATEMENT_RUNS = new Set(["first", "all", "run", "raw"]);

/** The real statement behind a counting proxy (batch must receive workerd's own objects). */
const unwrapped = new WeakMap<object, D1PreparedStatement>();

function wrapD1<T extends object>(db: T): T {
  return new Proxy(db, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "prepare") {
        return (...args: unknown[]) => {
          const real = Reflect.apply(value, target, args) as D1PreparedStatement;
          const proxy = wrapStatementTracked(real);
          return proxy;
        };
      }
      if (prop === "batch") {
        return (statements: D1PreparedStatement[]) => {
          counts.d1Batch++;
          counts.d1 += statements.length;
          return value.call(target, statements.map((s) => unwrapped.get(s) ?? s));
        };
      }
      if (prop === "withSession") return (...args: unknown[]) => wrapD1(Reflect.apply(value, target, args));
      if (prop === "exec") {
        return (...args: unknown[]) => {
          counts.d1++;
          return Reflect.apply(value, target, args);
        };
      }
      return value.bind(target);
    },
  });
}

function wrapStatementTracked(real: D1PreparedStatement): D1PreparedStatement {
  const proxy: D1PreparedStatement = new Proxy(real, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "bind") return (...args: unknown[]) => wrapStatementTracked(Reflect.apply(value, target, args));
      return (...args: unknown[]) => {
        if (STATEMENT_RUNS.has(prop as string)) counts.d1++;
        return Reflect.apply(value, target, args);
      };
    },
  });
  unwrapped.set(proxy, real);
  return proxy;
}

function wrapStub<T extends object>(stub: T): T {
  return new Proxy(stub, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof prop !== "string" || prop === "then" || prop === "id" || prop === "name") return value;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        counts.doCall++;
        return Reflect.apply(value, target, args);
      };
    },
  });
}

function wrapNamespace(ns: DurableObjectNamespace): DurableObjectNamespace {
  return new Proxy(ns, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "get" || prop === "getByName") return (...args: unknown[]) => wrapStub(Reflect.apply(value, target, args) as object);
      return value.bind(target);
    },
  });
}

function wrapQueue(queue: Queue<unknown>): Queue<unknown> {
  return new Proxy(queue, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (prop === "send" || prop === "sendBatch") counts.queue++;
        return Reflect.apply(value, target, args);
      };
    },
  });
}

const isKv = (v: object) => "getWithMetadata" in v;
const isD1 = (v: object) => "prepare" in v && "batch" in v;
const isNamespace = (v: object) => "idFromName" in v;
const isQueue = (v: object) => "sendBatch" in v;

const wrapped = new WeakMap<object, object>();
let globalsPatched = false;

/** Counts globalThis.fetch (outbound requests) and caches.default match/put, once per isolate. */
function patchGlobals() {
  if (globalsPatched) return;
  globalsPatched = true;
  const realFetch = globalThis.fetch;
  globalThis.fetch = ((...args: Parameters<typeof fetch>) => {
    counts.fetch++;
    return realFetch(...args);
  }) as typeof fetch;
  if (typeof caches !== "undefined") {
    const cache = caches.default;
    for (const method of ["match", "put", "delete"] as const) {
      const real = cache[method].bind(cache) as (...a: unknown[]) => unknown;
      (cache as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
        counts.cache++;
        return real(...args);
      };
    }
  }
}

/** The env with counting bindings when BINDING_COUNTS is "on", else `env` itself. */
export function countedEnv<E extends object>(env: E): E {
  if (!countingOn(env)) return env;
  const hit = wrapped.get(env);
  if (hit) return hit as E;
  patchGlobals();
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === null || typeof value !== "object") out[key] = value;
    else if (isKv(value)) out[key] = wrapKv(value as KVNamespace);
    else if (isD1(value)) out[key] = wrapD1(value);
    else if (isNamespace(value)) out[key] = wrapNamespace(value as DurableObjectNamespace);
    else if (isQueue(value)) out[key] = wrapQueue(value as Queue<unknown>);
    else out[key] = value;
  }
  wrapped.set(env, out);
  return out as E;
}
