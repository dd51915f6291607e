import { Hono } from "hono";
import { html, raw } from "hono/html";
import type { AppEnv } from "../app-env.ts";

type MediaType = { schema?: { $ref?: string; example?: unknown }; example?: unknown; examples?: Record<string, { summary?: string; value?: unknown }> };
type Operation = {
  summary?: string;
  description?: string;
  tags?: string[];
  "x-required-permission"?: string;
  requestBody?: { content?: Record<string, MediaType> };
  responses?: Record<string, unknown>;
};
type OpenApiDoc = {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, { example?: unknown }> };
};

const escape = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A request example: JSON pretty-printed, a form's fields one a line (not percent-encoded, to be read). */
function exampleText(type: string, value: unknown): string {
  if (type === "application/x-www-form-urlencoded" && value && typeof value === "object") {
    return Object.entries(value).map(([k, v]) => `${k}=${String(v)}`).join("&\n");
  }
  return JSON.stringify(value, null, 2);
}

/** The request examples of an operation: the media type's own, else its schema's. */
function requestExamples(doc: OpenApiDoc, op: Operation): { label: string; text: string }[] {
  return Object.entries(op.requestBody?.content ?? {}).flatMap(([type, media]) => {
    if (media.examples) return Object.entries(media.examples).map(([name, ex]) => ({ label: `${type}: ${ex.summary ?? name}`, text: exampleText(type, ex.value) }));
    const ref = media.schema?.$ref?.split("/").pop();
    const example = media.example ?? media.schema?.example ?? (ref ? doc.components?.schemas?.[ref]?.example : undefined);
    return example === undefined ? [] : [{ label: type, text: exampleText(type, example) }];
  });
}

const requestCell = (doc: OpenApiDoc, op: Operation) =>
  requestExamples(doc, op)
    .map(({ label, text }) => `<details><summary>${escape(label)}</summary><pre>${escape(text)}</pre></details>`)
    .join("");

/**
 * A self-contained reference page rendered from the OpenAPI document: no script, no third-party
 * assets, so the page works offline and under a strict CSP.
 */
export function docsRoutes(getDoc: () => OpenApiDoc) {
  return new Hono<AppEnv>().get("/", (c) => {
    const doc = getDoc();
    const nonce = crypto.randomUUID().replaceAll("-", "");
    const rows = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(
        ([method, op]) =>
          `<tr><td><code class="m">${method.toUpperCase()}</code></td><td><code>${escape(path)}</code></td><td>${escape(op.summary ?? "")}</td><td>${
            op["x-required-permission"] ? `<code>${escape(op["x-required-permission"])}</code>` : ""
          }</td><td>${requestCell(doc, op)}</td><td>${Object.keys(op.responses ?? {}).join(" ")}</td></tr>`,
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
            code, pre { font-size: 13px; } .m { font-weight: 600; }
            pre { margin: .25rem 0; white-space: pre-wrap; background: #f5f5f7; padding: .4rem; }
          </style>
        </head>
        <body>
          <h1>${doc.info.title} ${doc.info.version}</h1>
          <p>${doc.info.description ?? ""}</p>
          <p>The machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
          <table>
            <thead><tr><th>Method</th><th>Path</th><th>What</th><th>Permission</th><th>Request example</th><th>Statuses</th></tr></thead>
            <tbody>${raw(rows.join(""))}</tbody>
          </table>
        </body>
      </html>`);
  });
}
