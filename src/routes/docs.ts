import { Hono } from "hono";
import { html, raw } from "hono/html";
import type { AppEnv } from "../env.ts";

type OpenApiDoc = {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, { summary?: string; description?: string; tags?: string[]; "x-required-permission"?: string; responses?: Record<string, unknown> }>>;
};

const escape = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/**
 * A self-contained reference page rendered from the OpenAPI document: no script, no third-party
 * assets, so the page works offline and under a strict CSP.
 */
export function docsRoutes(getDoc: (origin: string) => OpenApiDoc) {
  return new Hono<AppEnv>().get("/", (c) => {
    const doc = getDoc(new URL(c.req.url).origin);
    const nonce = crypto.randomUUID().replaceAll("-", "");
    const rows = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(
        ([method, op]) =>
          `<tr><td><code class="m">${method.toUpperCase()}</code></td><td><code>${escape(path)}</code></td><td>${escape(op.summary ?? "")}</td><td>${
            op["x-required-permission"] ? `<code>${escape(op["x-required-permission"])}</code>` : ""
          }</td><td>${Object.keys(op.responses ?? {}).join(" ")}</td></tr>`,
      ),
    );
    c.header("content-security-policy", `default-src 'none'; style-src 'nonce-${nonce}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`);
    c.header("cache-control", "public, max-age=300");
    return c.html(html`<!doctype html>
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <title>${doc.info.title} API reference</title>
          <style nonce="${nonce}">
            body { font: 14px/1.5 system-ui, sans-serif; margin: 2rem; color: #1b1b1f; }
            table { border-collapse: collapse; width: 100%; }
            td, th { border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
            code { font-size: 13px; } .m { font-weight: 600; }
          </style>
        </head>
        <body>
          <h1>${doc.info.title} ${doc.info.version}</h1>
          <p>${doc.info.description ?? ""}</p>
          <p>The machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
          <table>
            <thead><tr><th>Method</th><th>Path</th><th>What</th><th>Permission</th><th>Statuses</th></tr></thead>
            <tbody>${raw(rows.join(""))}</tbody>
          </table>
        </body>
      </html>`);
  });
}
