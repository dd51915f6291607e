/**
 * CPU profiles of the Worker under load, through workerd's V8 inspector (`BENCH_PROFILE=1`):
 * where the time of a scenario goes, by function. Used to choose what to optimize; the figures
 * of a profiled run are not reported (the profiler slows the isolate down).
 */
import { writeFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
export interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** A Chrome DevTools Protocol session with one Worker's isolate in workerd. */
export class Inspector {
  private next = 1;
  private readonly pending = new Map<number, (result: unknown) => void>();
  private readonly ws: WebSocket;
  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.addEventListener("message", (event) => {
      const msg = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: unknown };
      if (msg.id !== undefined) this.pending.get(msg.id)?.(msg.error ? Promise.reject(new Error(JSON.stringify(msg.error))) : msg.result);
    });
  }

  static async connect(port: number, worker: string): Promise<Inspector> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/core:user:${worker}`);
    await new Promise((resolve, reject) => {
      ws.addEventListener("open", resolve, { once: true });
      ws.addEventListener("error", () => reject(new Error(`cannot reach the inspector of ${worker} on ${port}`)), { once: true });
    });
    return new Inspector(ws);
  }

  send<T>(method: string, params: object = {}): Promise<T> {
    const id = this.next++;
    this.ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve) => this.pending.set(id, resolve as (r: unknown) => void));
  }

  close() {
    this.ws.close();
  }
}

/** Self time per function (ms, share of all samples), largest first. */
export function selfTimes(profile: Profile): { fn: string; ms: number; share: number }[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  const deltas = profile.timeDeltas ?? [];
  let all = 0;
  (profile.samples ?? []).forEach((id, i) => {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = `${functionName || "(anonymous)"} ${url ? `${url.split("/").pop()}:${lineNumber + 1}` : ""}`.trim();
    const dt = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000;
    totals.set(name, (totals.get(name) ?? 0) + dt);
    all += dt;
  });
  return [...totals.entries()].map(([fn, ms]) => ({ fn, ms, share: ms / all })).sort((a, b) => b.ms - a.ms);
}

/** Profiles the worker while `run` drives load; writes the .cpuprofile and prints the top functions. */
export async function profileWhile(port: number, worker: string, file: string, run: () => Promise<unknown>, log: (line: string) => void): Promise<void> {
  const inspector = await Inspector.connect(port, worker);
  try {
    await inspector.send("Profiler.enable");
    await inspector.send("Profiler.setSamplingInterval", { interval: 100 });
    await inspector.send("Profiler.start");
    await run();
    const { profile } = await inspector.send<{ profile: Profile }>("Profiler.stop");
    writeFileSync(file, JSON.stringify(profile));
    log(`profile written to ${file}; self time by function:`);
    for (const row of selfTimes(profile).slice(0, 30)) log(`  ${(row.share * 100).toFixed(1).padStart(5)}%  ${row.fn}`);
  } finally {
    inspector.close();
  }
}

interface SamplingHeapNode {
  callFrame: ProfileNode["callFrame"];
  selfSize: number;
  children: SamplingHeapNode[];
}

/**
 * Bytes allocated by function while `run` runs (V8's sampling heap profiler, every 128 bytes on
 * average, collected objects included), largest first.
 */
export async function allocationsWhile(inspector: Inspector, run: () => Promise<unknown>): Promise<{ fn: string; bytes: number }[]> {
  await inspector.send("HeapProfiler.enable");
  await inspector.send("HeapProfiler.startSampling", { samplingInterval: 128, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  await run();
  const { profile } = await inspector.send<{ profile: { head: SamplingHeapNode } }>("HeapProfiler.stopSampling");
  const bytes = new Map<string, number>();
  const walk = (node: SamplingHeapNode) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const name = `${functionName || "(anonymous)"} ${url ? `${url.split("/").pop()}:${lineNumber + 1}` : ""}`.trim();
    bytes.set(name, (bytes.get(name) ?? 0) + node.selfSize);
    for (const child of node.children) walk(child);
  };
  walk(profile.head);
  return [...bytes].map(([fn, b]) => ({ fn, bytes: b })).sort((a, b) => b.bytes - a.bytes);
}
