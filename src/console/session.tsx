/** @jsxImportSource hono/jsx */
import type { MiddlewareHandler } from "hono";
import { closeConsoleSession, openConsoleSession, resumeConsoleSession } from "../domain/issuance/console-session.ts";
import { DomainError } from "../domain/shared/errors.ts";
import { clearCookie, readCookie, SESSION_COOKIE, writeCookie } from "./cookies.ts";
import { consoleCtx, consoleRouter, paths, type ConsoleEnv } from "./context.ts";
import { statusOf } from "./errors.tsx";
import { ErrorSummary, Field, readForm, type FormErrors } from "./forms.tsx";
import { page } from "./layout.tsx";

/**
 * Sign-in and sign-out. The credential pasted into the form is exchanged for a session JWT
 * (src/domain/issuance/console-session.ts) and never stored in the browser; the cookie holds the
 * session JWT only.
 */

function LoginForm(p: { errors?: FormErrors; expired?: boolean }) {
  return (
    <section class="panel">
      <h1>Sign in</h1>
      {p.expired && (
        <div class="alert warn" role="status">
          Your session expired, sign in again.
        </div>
      )}
      <ErrorSummary errors={p.errors} />
      <form method="post" action={paths.login} aria-label="Sign in">
        <Field
          name="token"
          label="Access token or JWT"
          type="password"
          autocomplete="off"
          required
          errors={p.errors}
          hint="A Keyward credential, e.g. the root token that npm run dev prints. It is exchanged for a session of at most an hour and not kept in the browser."
        />
        <button type="submit">Sign in</button>
      </form>
    </section>
  );
}

export const sessionRoutes = consoleRouter()
  .get("/login", (c) => page(c, { title: "Sign in", children: <LoginForm expired={c.req.query("expired") === "1"} /> }))
  .post("/login", async (c) => {
    const form = await readForm(c);
    const ctx = consoleCtx(c);
    try {
      const session = await openConsoleSession(ctx, form.text("token")?.trim() ?? "");
      writeCookie(c, SESSION_COOKIE, session.jws, Math.max(0, session.exp - Math.floor(ctx.now() / 1000)));
      return c.redirect(paths.home, 303);
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      if (err.data.retryAfterSeconds !== undefined) c.header("retry-after", String(err.data.retryAfterSeconds));
      const message =
        err.code === "rate_limited"
          ? `Too many failed sign-ins from this address; try again in ${err.data.retryAfterSeconds ?? 60} seconds.`
          : err.code === "unauthenticated"
            ? "That credential is invalid, expired or revoked."
            : err.detail;
      const errors: FormErrors = { message, fields: err.code === "unauthenticated" ? { token: message } : {} };
      return page(c, { title: "Sign in", children: <LoginForm errors={errors} /> }, statusOf(err));
    }
  })
  .post("/logout", async (c) => {
    const session = c.get("session");
    if (session) await closeConsoleSession(consoleCtx(c), { principal: c.get("principal"), jti: session.jti, exp: session.exp });
    clearCookie(c, SESSION_COOKIE);
    return c.redirect(paths.login, 303);
  });

/** Pages that need no session. */
const PUBLIC = (path: string) => path === paths.login || path.startsWith("/console/assets/");

/**
 * Every console page but sign-in needs a live session: its principal goes on the context. A missing
 * one sends the browser to sign in; an invalid, expired or revoked one says that it expired.
 */
export const requireSession: MiddlewareHandler<ConsoleEnv> = async (c, next) => {
  if (PUBLIC(c.req.path)) return next();
  const cookie = readCookie(c, SESSION_COOKIE);
  if (!cookie) return c.redirect(paths.login, 303);
  const session = await resumeConsoleSession(consoleCtx(c), cookie);
  if (!session) {
    clearCookie(c, SESSION_COOKIE);
    return c.redirect(`${paths.login}?expired=1`, 303);
  }
  c.set("principal", session.principal);
  c.set("session", { name: session.name, jti: session.jti, exp: session.exp });
  await next();
};
