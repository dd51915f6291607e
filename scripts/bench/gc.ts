/**
 * `BENCH_GC=1`: V8's garbage collections in the Worker's workerd, per round. workerd runs with
 * `--trace-gc-nvp` (one line per collection; it changes no GC setting) and, where coreutils'
 * libstdbuf exists, line-buffered stdout, so each line reaches us as the collection ends and is
 * counted in the round that was running. A round reports the share of its time the isolates spent
 * paused in GC, the longest pause, and the count of scavenges and full (mark-compact) collections.
 */
import { existsSync } from "node:fs";

export interface GcEvent {
  /** The workerd process (the scale check traces two). */
  pid: number;
  /** When the line arrived (ms since the epoch). */
  at: number;
  /** "s" scavenge, "mc" mark-compact (full), or another collector's code. */
  kind: string;
  pauseMs: number;
}

export interface GcStats {
  pausePct: number;
  maxPauseMs: number;
  scavenges: number;
  fullGcs: number;
}

const STDBUF = "/usr/libexec/coreutils/libstdbuf.so";
const events: GcEvent[] = [];
/** `[pid:isolate:thread]  1234 ms: ...`, how V8 starts its trace lines. */
const V8_TRACE = /^\[(\d+):0x[0-9a-f]+(:\d+)?\]\s+\d+ ms: /;

/** The workerd environment and V8 flags for tracing, and the log handler that collects the lines. */
export function gcTracing() {
  const lineBuffered = existsSync(STDBUF);
  return {
    v8Flags: "--trace-gc-nvp",
    runtimeEnv: (lineBuffered ? { LD_PRELOAD: STDBUF, _STDBUF_O: "L" } : {}) as Record<string, string>,
    lineBuffered,
    /** Takes a workerd log line; false if it was not V8's (its other trace lines are dropped). */
    take(message: string, at: number): boolean {
      const trace = V8_TRACE.exec(message);
      if (!trace) return false;
      const i = message.indexOf(" GC: {");
      if (i < 0) return true;
      try {
        const nvp = JSON.parse(message.slice(i + 5)) as { gc?: string; pause?: number };
        events.push({ pid: Number(trace[1]), at, kind: String(nvp.gc), pauseMs: Number(nvp.pause) || 0 });
      } catch {
        // a line cut by the pipe: not counted
      }
      return true;
    },
  };
}

/** The collections of the processes `pids` whose lines arrived between `from` and `to` (ms since the epoch); null when nothing was traced. */
export function gcBetween(pids: number[], from: number, to: number): GcStats | null {
  if (events.length === 0) return null;
  const inRound = events.filter((e) => e.at >= from && e.at <= to && pids.includes(e.pid));
  const paused = inRound.reduce((s, e) => s + e.pauseMs, 0);
  return {
    pausePct: (100 * paused) / Math.max(1, to - from),
    maxPauseMs: Math.max(0, ...inRound.map((e) => e.pauseMs)),
    scavenges: inRound.filter((e) => e.kind === "s").length,
    fullGcs: inRound.filter((e) => e.kind === "mc").length,
  };
}
