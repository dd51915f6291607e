import { sha256Hex } from "../lib/sha256.ts";
import { CONSOLE_CSS } from "./assets/console.css.ts";
import { CONSOLE_JS } from "./assets/console.js.ts";
import { consoleRouter } from "./context.ts";

/**
 * The console's static files, served from the Worker at `/console/assets/<name>.<hash>.<ext>`
 * with a year of caching: the hash of the content is in the name, so a change is a new URL.
 */
interface Asset {
  file: string;
  type: string;
  body: string;
}

function asset(name: string, ext: string, type: string, body: string): Asset {
  return { file: `${name}.${sha256Hex(body).slice(0, 12)}.${ext}`, type, body };
}

const ASSETS = {
  "console.css": asset("console", "css", "text/css; charset=utf-8", CONSOLE_CSS),
  "console.js": asset("console", "js", "text/javascript; charset=utf-8", CONSOLE_JS),
};
const BY_FILE = new Map(Object.values(ASSETS).map((a) => [a.file, a]));

/** The URL of an asset (its current hash in the name). */
export const assetUrl = (name: keyof typeof ASSETS) => `/console/assets/${ASSETS[name].file}`;

export const assetRoutes = consoleRouter().get("/:file", (c) => {
  const found = BY_FILE.get(c.req.param("file"));
  if (!found) return c.text("Not found", 404);
  return c.body(found.body, 200, { "content-type": found.type, "cache-control": "public, max-age=31536000, immutable" });
});
