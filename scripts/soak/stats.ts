/**
 * What the soak counts: per sample window (req/s, latency percentiles, unexpected errors and
 * statuses, expected rejections, workerd's RSS, the Keyward isolate's V8 heap) and over the whole
 * run (totals, and per kind).
 */
import { percentile } from "../bench/load.ts";
import { KINDS, type Kind, type Planned } from "./mix.ts";

export interface Sample {
  index: number;
  /** Seconds since the load started, at the end of the window. */
  elapsedSeconds: number;
  seconds: number;
  /** A shorter last window (the run's length is not a multiple of the sample length). */
  partial: boolean;
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  /** Connection errors and timeouts. */
  errors: number;
  /** Statuses a request of its kind should not get (any non-2xx but a wrong secret's 401/429; a wrong secret's 2xx). */
  unexpected: number;
  expected401: number;
  expected429: number;
  rssMiB: number;
  /** The Keyward isolate's V8 heap in use (garbage included: no GC is forced). */
  heapUsedMiB: number | null;
}

interface Counts {
  requests: number;
  errors: number;
  unexpected: number;
  expected401: number;
  expected429: number;
}

const zero = (): Counts => ({ requests: 0, errors: 0, unexpected: 0, expected401: 0, expected429: 0 });

interface KindTotals {
  latencies: number[];
  statusCodes: Record<string, number>;
}

const sorted = (xs: number[]) => Float64Array.from(xs).sort();

export class SoakStats {
  readonly byKind = new Map<Kind, KindTotals>(KINDS.map((k) => [k, { latencies: [], statusCodes: {} }]));
  readonly samples: Sample[] = [];
  /** The first unexpected responses and errors (kind, status, the start of the body), for diagnosis. */
  readonly firstUnexpected: string[] = [];
  /** Over the whole run, including the tail after the last sample. */
  readonly totals = zero();
  private window = { ...zero(), latencies: [] as number[] };
  private windowStart: number;
  private readonly start: number;
  /** The kind of the response being recorded: autocannon reports its latency right after its body. */
  private current: Kind = "exchange";

  constructor(now: number) {
    this.start = now;
    this.windowStart = now;
  }

  private note(line: string) {
    if (this.firstUnexpected.length < 10) this.firstUnexpected.push(line);
  }

  /** A response's status and body (autocannon's onResponse). */
  response(planned: Planned, status: number, body: string): void {
    this.current = planned.kind;
    const codes = this.byKind.get(planned.kind)!.statusCodes;
    codes[status] = (codes[status] ?? 0) + 1;
    const outcome: keyof Counts | null = !planned.expected.includes(status) ? "unexpected" : status === 401 ? "expected401" : status === 429 ? "expected429" : null;
    if (outcome === "unexpected") this.note(`${planned.kind} ${planned.request.method} ${planned.request.path}: ${status} ${body.slice(0, 300)}`);
    if (outcome) this.count(outcome);
  }

  private count(what: keyof Counts) {
    this.window[what]++;
    this.totals[what]++;
  }

  /** The latency of the response just recorded (autocannon's 'response' event). */
  latency(ms: number): void {
    this.count("requests");
    this.window.latencies.push(ms);
    this.byKind.get(this.current)!.latencies.push(ms);
  }

  /** A connection error or a timeout (autocannon's 'reqError'). */
  error(err: Error): void {
    this.count("errors");
    this.note(`error: ${err.message}`);
  }

  /** Closes the current window. */
  sample(now: number, rssMiB: number, heapUsedMiB: number | null, partial = false): Sample {
    const w = this.window;
    const seconds = (now - this.windowStart) / 1000;
    const latencies = sorted(w.latencies);
    const sample: Sample = {
      index: this.samples.length + 1,
      elapsedSeconds: (now - this.start) / 1000,
      seconds,
      partial,
      requests: latencies.length,
      rps: latencies.length / seconds,
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      errors: w.errors,
      unexpected: w.unexpected,
      expected401: w.expected401,
      expected429: w.expected429,
      rssMiB,
      heapUsedMiB,
    };
    this.samples.push(sample);
    this.window = { ...zero(), latencies: [] };
    this.windowStart = now;
    return sample;
  }

  /** Requests, statuses and latency percentiles per kind over the whole run. */
  kinds() {
    return KINDS.map((kind) => {
      const { latencies, statusCodes } = this.byKind.get(kind)!;
      const s = sorted(latencies);
      return { kind, requests: s.length, statusCodes, p50: percentile(s, 0.5), p99: percentile(s, 0.99) };
    });
  }
}

/** Least-squares slope of y over x. */
export function slope(points: [number, number][]): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxx === 0 ? 0 : points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / sxx;
}
