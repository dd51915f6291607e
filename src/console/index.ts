import type { MiddlewareHandler } from "hono";
import { csrf } from "hono/csrf";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import { getConfig, type Bindings } from "../env.ts";
import { assetRoutes } from "./assets.ts";
import { consoleRouter, type ConsoleEnv } from "./context.ts";
import { notFoundPage, onConsoleError } from "./errors.tsx";
import { orgPages } from "./orgs.tsx";
import { serviceAccountPages } from "./account-pages.tsx";
import { accessPages } from "./access.tsx";
import { auditPages } from "./audit.tsx";
import { federatedCredentialPages } from "./federated-credentials.tsx";
import { invitationPages } from "./invitations.tsx";
import { reviewPages } from "./review.tsx";
import { rolePages } from "./roles.tsx";
import { requireSession, sessionRoutes } from "./session.tsx";

/** No inline script or style anywhere: the one stylesheet and script are files of this origin. */
const headers = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", "data:"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
  xFrameOptions: "DENY",
  // Not no-referrer: with it a browser sends `Origin: null` on form posts, and the CSRF check needs the origin.
  referrerPolicy: "same-origin",
});

const FORM_TYPES = /^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i;
const ownOrigin = (origin: string, url: string, env: Bindings) => origin === new URL(url).origin || origin === new URL(getConfig(env).ISSUER).origin;
const sameOrigin = csrf({ origin: (origin, c) => ownOrigin(origin, c.req.url, c.env) });

/**
 * Every state change is a form post from a console page: Hono's csrf() checks the Origin (or
 * Sec-Fetch-Site: same-origin); on top, a Sec-Fetch-Site that names another site is refused even
 * with a matching Origin, an Origin of another site is refused whatever Sec-Fetch-Site says, and a
 * post that is not a form is refused (403, nothing changed).
 */
const csrfGuard: MiddlewareHandler<ConsoleEnv> = async (c, next) => {
  if (c.req.method !== "GET" && c.req.method !== "HEAD") {
    const site = c.req.header("sec-fetch-site");
    if (site !== undefined && site !== "same-origin" && site !== "none") throw new HTTPException(403);
    const origin = c.req.header("origin");
    if (origin !== undefined && !ownOrigin(origin, c.req.url, c.env)) throw new HTTPException(403);
    if (!FORM_TYPES.test(c.req.header("content-type") ?? "")) throw new HTTPException(403);
  }
  return sameOrigin(c, next);
};

/**
 * The console at /console: server-rendered pages over the domain services. To add a page group,
 * write its router (consoleRouter()) in its own module and route it here.
 */
export const consoleRoutes = consoleRouter();
consoleRoutes.onError(onConsoleError);
consoleRoutes.use("*", headers, csrfGuard);
consoleRoutes.route("/assets", assetRoutes);
consoleRoutes.use("*", requireSession);
consoleRoutes.route("/", sessionRoutes);
consoleRoutes.route("/", orgPages);
// Page groups: one line each.
consoleRoutes.route("/", serviceAccountPages);
consoleRoutes.route("/", rolePages);
consoleRoutes.route("/", accessPages);
consoleRoutes.route("/", federatedCredentialPages);
consoleRoutes.route("/", invitationPages);
consoleRoutes.route("/", reviewPages);
consoleRoutes.route("/", auditPages);
consoleRoutes.all("*", notFoundPage);
