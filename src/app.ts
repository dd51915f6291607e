import { d1Sessions } from "./http/middleware/d1-session.ts";
import type { Context } from "hono";
import { getConfig } from "./env.ts";
import type { AppEnv } from "./http/app-env.ts";
import { onError, problem } from "./http/problem.ts";
import { DomainError } from "./domain/shared/errors.ts";
import { requireAuth } from "./http/middleware/auth.ts";
import { jsonBodies, requestContext } from "./http/middleware/request.ts";
import { wellKnownRoutes } from "./oauth/metadata.ts";
import { registerOAuthDocs } from "./oauth/openapi.ts";
import { m2mRoutes, oauthRoutes } from "./oauth/routes.ts";
import { adminRoutes } from "./http/routes/admin.ts";
import { exchangeRoutes } from "./http/routes/exchange.ts";
import { keyRoutes } from "./http/routes/keys.ts";
import { federatedCredentialRoutes } from "./http/routes/federated-credentials.ts";
import { webhookRoutes } from "./http/routes/webhooks.ts";
import { enqueueAfterChanges } from "./http/middleware/webhooks.ts";
import { roleRoutes } from "./http/routes/roles.ts";
import { orgAuditRoutes, platformAuditRoutes } from "./http/routes/audit.ts";
import { authorizeRoutes, invitationRoutes } from "./http/routes/invitations.ts";
import { platformAccountRoutes } from "./http/routes/platform-accounts.ts";
import { router } from "./http/routes/common.ts";
import { docsRoutes } from "./http/routes/docs.ts";
import { permissionRoutes, publicRoutes } from "./http/routes/meta.ts";
import { orgRoutes } from "./http/routes/orgs.ts";
import { serviceAccountRoutes } from "./http/routes/service-accounts.ts";
import { tokenRoutes } from "./http/routes/tokens.ts";
import { currentTokenRoutes, leakReportRoutes } from "./http/routes/leaks.ts";
import { statusListRoutes } from "./http/routes/status-lists.ts";
import { consoleRoutes } from "./console/index.ts";
import { STATUS_LIST_PATH } from "./domain/signing/status-list.ts";

const API_INFO = {
  title: "Keyward",
  version: "0.1.0",
  description: "Service accounts and machine identities at the edge. Errors are RFC 9457 problem+json with a stable `code`.",
};

/** 405 instead of 404 when the path exists under another method. */
function methodNotAllowed(routes: { method: string; path: string }[]) {
  let table: { re: RegExp; method: string }[] | undefined;
  return (c: Context<AppEnv>) => {
    table ??= routes
      .filter((r) => r.method !== "ALL" && !r.path.includes("*"))
      .map((r) => ({ method: r.method, re: new RegExp(`^${r.path.replace(/:[A-Za-z0-9_]+/g, "[^/]+")}/?$`) }));
    const allowed = [...new Set(table.filter((r) => r.re.test(c.req.path)).map((r) => r.method))];
    if (allowed.length > 0) {
      return problem(c, new DomainError("method_not_allowed", `Use ${allowed.join(", ")} on this path`, { allow: allowed }));
    }
    return problem(c, new DomainError("route_not_found", `No route for ${c.req.method} ${c.req.path}`));
  };
}

/** Builds the whole HTTP app: middleware, routes, the OpenAPI document and the error handling. */
export function buildApp() {
  const app = router();
  app.use("*", requestContext);
  app.use("*", enqueueAfterChanges);
  for (const path of ["/api/v1/*", "/api/auth/*", "/api/service-accounts", "/api/service-accounts/*"]) app.use(path, jsonBodies);
  // Management requests run in a D1 session (read replicas; the bookmark header reads your own writes).
  for (const path of ["/api/v1/*", "/api/service-accounts", "/api/service-accounts/*"]) app.use(path, d1Sessions());
  app.use("/console/*", d1Sessions({ cookie: true }));
  // The admin console: its own middleware (session, CSRF, headers), before the API's.
  app.route("/console", consoleRoutes);
  app.route("/", publicRoutes);
  app.route("/api/auth/access-tokens", exchangeRoutes);
  app.route("/oauth", oauthRoutes);
  app.route("/api/m2m/oauth", m2mRoutes);
  app.route("/.well-known", wellKnownRoutes);
  // Leak reports authenticate by signature or not at all: before bearer authentication.
  app.route("/", leakReportRoutes);
  app.route(STATUS_LIST_PATH, statusListRoutes);
  app.use("/api/v1/*", requireAuth);
  app.use("/api/service-accounts/*", requireAuth);
  app.use("/api/service-accounts", requireAuth);
  app.route("/api/v1/permissions", permissionRoutes);
  app.route("/api/v1/admin", adminRoutes);
  app.route("/api/v1/orgs", orgRoutes);
  app.route("/api/v1/orgs", serviceAccountRoutes);
  app.route("/api/v1/orgs", tokenRoutes);
  app.route("/api/v1/tokens", currentTokenRoutes);
  app.route("/api/v1/orgs", keyRoutes);
  app.route("/api/v1/orgs", federatedCredentialRoutes);
  app.route("/api/v1/orgs", webhookRoutes);
  app.route("/api/v1/orgs", roleRoutes);
  app.route("/api/v1/orgs", invitationRoutes);
  app.route("/api/v1/auth", authorizeRoutes);
  app.route("/api/v1/orgs", orgAuditRoutes);
  app.route("/api/v1/audit-events", platformAuditRoutes);
  app.route("/api/service-accounts", platformAccountRoutes);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "An access token (sat_...) or a JWT issued by Keyward",
  });
  registerOAuthDocs(app.openAPIRegistry);
  // Built once, from the routes alone: nothing of a request goes into it (a Host header must not
  // end up in a document that shared caches keep). `servers` is the configured ISSUER, the same
  // public URL the RFC 8414 metadata names.
  let doc: ReturnType<typeof app.getOpenAPI31Document> | undefined;
  const document = () => (doc ??= app.getOpenAPI31Document({ openapi: "3.1.0", info: API_INFO }));
  app.get("/openapi.json", (c) => {
    c.header("cache-control", "public, max-age=300");
    return c.json({ ...document(), servers: [{ url: getConfig(c.env).ISSUER }] });
  });
  app.route("/docs", docsRoutes(document as never));
  app.notFound(methodNotAllowed(app.routes));
  app.onError(onError);
  return app;
}
