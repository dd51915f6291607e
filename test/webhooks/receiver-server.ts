import { createHash } from "node:crypto";
import http from "node:http";
import { Webhook } from "standardwebhooks";

/**
 * A webhook receiver on loopback, run by Node in the workers project's globalSetup: the Worker
 * under test POSTs to it over real HTTP, and it verifies every request with the `standardwebhooks`
 * package (the Standard Webhooks reference library), as a customer's receiver would. Each
 * receiver lives under `/hook/<name>`; tests set its secrets and behaviour with
 * `POST /__control/<name>` and read what it received from `GET /__control/<name>`.
 *
 * Modes: ok (204); fail (500 always); flaky (500 for about 30 % of requests, chosen by a hash of
 * the webhook-id and how often it came, so a run is reproducible); down (503 until `downUntil`,
 * epoch ms, then ok); retry-after (429 with `Retry-After: retryAfter` to a webhook-id's first
 * request, then ok); slow (answers after 3 s); redirect (302 to another receiver).
 */

export type ReceiverMode = "ok" | "fail" | "flaky" | "down" | "retry-after" | "slow" | "redirect";

export interface ReceivedRequest {
  id: string;
  at: number;
  status: number;
  /** For each registered secret, whether `standardwebhooks` verified the request with it. */
  verifiedWith: boolean[];
  signatures: number;
  type: string | null;
}

interface ReceiverState {
  secrets: string[];
  mode: ReceiverMode;
  downUntil: number;
  retryAfter: number;
  requests: ReceivedRequest[];
  /** webhook-id -> how many requests it got a 2xx for. */
  accepted: Record<string, number>;
  seen: Record<string, number>;
  /** The last accepted payload of each webhook-id. */
  bodies: Record<string, unknown>;
}

const receivers = new Map<string, ReceiverState>();
const fresh = (): ReceiverState => ({ secrets: [], mode: "ok", downUntil: 0, retryAfter: 1, requests: [], accepted: {}, seen: {}, bodies: {} });
const stateOf = (name: string) => {
  let s = receivers.get(name);
  if (!s) receivers.set(name, (s = fresh()));
  return s;
};

async function readBody(req: http.IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}

function answerFor(state: ReceiverState, id: string, nth: number): { status: number; headers?: Record<string, string>; delayMs?: number } {
  switch (state.mode) {
    case "fail":
      return { status: 500 };
    case "flaky":
      return createHash("sha256").update(`${id}:${nth}`).digest()[0]! % 10 < 3 ? { status: 500 } : { status: 204 };
    case "down":
      return Date.now() < state.downUntil ? { status: 503 } : { status: 204 };
    case "retry-after":
      return nth === 1 ? { status: 429, headers: { "retry-after": String(state.retryAfter) } } : { status: 204 };
    case "slow":
      return { status: 204, delayMs: 3000 };
    case "redirect":
      return { status: 302, headers: { location: "/hook/elsewhere" } };
    default:
      return { status: 204 };
  }
}

/** Starts the receiver on 127.0.0.1:`port`; returns a function that stops it. */
export async function startWebhookReceiver(port: number): Promise<() => Promise<void>> {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", `http://127.0.0.1:${port}`);
    const [first, name] = url.pathname.split("/").filter(Boolean);
    const body = await readBody(req);
    if (first === "__control" && name) {
      if (req.method === "POST") {
        const patch = JSON.parse(body || "{}");
        if (patch.reset) receivers.set(name, fresh());
        const state = stateOf(name);
        for (const k of ["secrets", "mode", "downUntil", "retryAfter"] as const) if (k in patch) (state as unknown as Record<string, unknown>)[k] = patch[k];
      }
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify(stateOf(name)));
    }
    if (first !== "hook" || !name || req.method !== "POST") {
      res.writeHead(404);
      return res.end();
    }
    const state = stateOf(name);
    const headers = { "webhook-id": String(req.headers["webhook-id"] ?? ""), "webhook-timestamp": String(req.headers["webhook-timestamp"] ?? ""), "webhook-signature": String(req.headers["webhook-signature"] ?? "") };
    const verifiedWith = state.secrets.map((secret) => {
      try {
        new Webhook(secret).verify(body, headers);
        return true;
      } catch {
        return false;
      }
    });
    const id = headers["webhook-id"];
    const nth = (state.seen[id] = (state.seen[id] ?? 0) + 1);
    const answer = answerFor(state, id, nth);
    if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
    let type: string | null = null;
    try {
      type = JSON.parse(body).type ?? null;
    } catch {
      type = null;
    }
    state.requests.push({ id, at: Date.now(), status: answer.status, verifiedWith, signatures: headers["webhook-signature"].split(" ").filter(Boolean).length, type });
    if (answer.status >= 200 && answer.status < 300) {
      state.accepted[id] = (state.accepted[id] ?? 0) + 1;
      state.bodies[id] = JSON.parse(body);
    }
    res.writeHead(answer.status, answer.headers ?? {});
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return () => new Promise((resolve) => server.close(() => resolve()));
}
