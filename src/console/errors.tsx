/** @jsxImportSource hono/jsx */
import { HTTPException } from "hono/http-exception";
import { DomainError, ERROR_TITLES } from "../domain/shared/errors.ts";
import { asDomainError, ERROR_STATUS } from "../http/problem.ts";
import { clearCookie, SESSION_COOKIE } from "./cookies.ts";
import { paths, type ConsoleContext } from "./context.ts";
import { page } from "./layout.tsx";

/** The status of a DomainError from the management API's table (one table for both). */
export const statusOf = (err: DomainError) => ERROR_STATUS[err.code];

/** An error page naming the problem's code (and the request id for support). */
export function errorPage(c: ConsoleContext, err: DomainError) {
  const status = statusOf(err);
  if (err.data.retryAfterSeconds !== undefined) c.header("retry-after", String(err.data.retryAfterSeconds));
  return page(
    c,
    {
      title: ERROR_TITLES[err.code],
      children: (
        <section class="panel">
          <h1>{ERROR_TITLES[err.code]}</h1>
          <p>{err.detail}</p>
          <p class="muted">
            Code <code>{err.code}</code> · request <code>{c.get("requestId")}</code>
          </p>
          <p>
            <a href={paths.home}>Back to the console</a>
          </p>
        </section>
      ),
    },
    status,
  );
}

/** The console's error handler: an ended session goes to sign-in, anything else to an error page. */
export function onConsoleError(err: Error, c: ConsoleContext) {
  if (err instanceof HTTPException && err.status === 403) {
    return errorPage(c, new DomainError("permission_denied", "The request did not come from a console page of this site (cross-site request refused)"));
  }
  const domainError = asDomainError(err, c.get("requestId") ?? "");
  if (domainError.code === "unauthenticated") {
    clearCookie(c, SESSION_COOKIE);
    return c.redirect(`${paths.login}?expired=1`, 303);
  }
  return errorPage(c, domainError);
}

export const notFoundPage = (c: ConsoleContext) => errorPage(c, new DomainError("route_not_found", `No console page at ${c.req.path}`));
