/** @jsxImportSource hono/jsx */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AccessToken } from "../db/schema.ts";
import { issueToken, regenerateToken, revokeToken, tokenStatus } from "../domain/credentials/tokens.ts";
import { DomainError } from "../domain/shared/errors.ts";
import { issueTokenBody, regenerateBody } from "../http/routes/tokens.ts";
import { consoleCtx, consoleRouter, paths, principalOf, type Can, type ConsoleContext } from "./context.ts";
import { redirectWith } from "./flash.ts";
import { ErrorSummary, Field, handleForm, parseWith, PostButton, type FormErrors, type FormValues } from "./forms.tsx";
import { Table, When } from "./layout.tsx";

/** Access tokens on the account page: issue (secret shown once), list by hint, regenerate, revoke. */

/** A secret just issued, rendered in the response to the POST that made it and never again. */
export interface NewSecret {
  secret: string;
  token: AccessToken;
  regenerated?: boolean;
}

/** What the account page renders with (a new secret, a form's errors), from token-pages.tsx and key-pages.tsx. */
export interface AccountPageExtras {
  secret?: NewSecret;
  tokenErrors?: FormErrors;
  tokenValues?: Record<string, string>;
  keyErrors?: FormErrors;
  keyValues?: Record<string, string>;
}

/** Renders the account page (`refs`: the org and account, by default the route's :org and :sa). */
export type RenderAccount = (c: ConsoleContext, extras: AccountPageExtras, status?: ContentfulStatusCode, refs?: { org: string; sa: string }) => Promise<Response>;

export function SecretOnce(p: { secret: NewSecret }) {
  return (
    <section class="panel" aria-labelledby="new-secret-title">
      <h2 id="new-secret-title">{p.secret.regenerated ? "New secret of the token" : "New access token"}</h2>
      <div class="alert warn" role="status">
        <strong>This token will not be shown again.</strong> Copy it now and store it somewhere safe; the console keeps only its hint ({p.secret.token.hint}).
      </div>
      <div class="secret">
        <code id="new-secret">{p.secret.secret}</code>
        <button type="button" class="secondary" data-copy="new-secret" hidden>
          Copy
        </button>
        <span id="new-secret-status" role="status" aria-live="polite"></span>
      </div>
      {p.secret.token.expiresAt !== null && (
        <p class="muted">
          Expires <When ms={p.secret.token.expiresAt} />.
        </p>
      )}
    </section>
  );
}

const GRACE = [
  { value: "0", label: "None: the old secret stops at once" },
  { value: "300", label: "5 minutes" },
  { value: "3600", label: "1 hour" },
  { value: "86400", label: "24 hours" },
];

/** A token's cells in every token table: name, hint (never the secret), status and its dates. */
export const TokenCells = (p: { token: AccessToken; status: string; unnamed: string }) => (
  <>
    <td>{p.token.name ?? <span class="muted">{p.unnamed}</span>}</td>
    <td>
      <code>{p.token.hint}</code>
      {p.token.scopes && <span class="muted"> · scopes: {p.token.scopes.join(" ")}</span>}
      {p.token.allowedCidrs && <span class="muted"> · networks: {p.token.allowedCidrs.join(", ")}</span>}
      {p.token.remainingUses !== null && p.token.remainingUses !== undefined && <span class="muted"> · {p.token.remainingUses} uses left</span>}
    </td>
    <td>
      <span class={`badge ${p.status}`}>{p.status}</span>
    </td>
    <td>
      <When ms={p.token.createdAt} />
    </td>
    <td>
      <When ms={p.token.expiresAt} none="Never" />
    </td>
    <td>
      <When ms={p.token.lastUsedAt} none="Never" />
    </td>
  </>
);

export function TokensSection(p: { base: string; tokens: AccessToken[]; can: Can; now: number; errors?: FormErrors | undefined; values?: Record<string, string> | undefined; limit: number }) {
  const write = p.can("service-accounts.access-tokens.edit");
  const active = p.tokens.filter((t) => tokenStatus(t, p.now) === "active").length;
  return (
    <section class="panel" aria-labelledby="tokens-title" id="tokens">
      <h2 id="tokens-title">Access tokens</h2>
      <p class="muted">
        {active} of at most {p.limit} active {p.limit === 1 ? "token (the org's one-active-token rule)" : "tokens"}.
      </p>
      <Table caption="Access tokens (hints only)" head={["Name", "Hint", "Status", "Created", "Expires", "Last used", ...(write ? ["Actions"] : [])]} rows={p.tokens.length} empty="No token yet.">
        {p.tokens.map((t) => {
          const status = tokenStatus(t, p.now);
          return (
            <tr>
              <TokenCells token={t} status={status} unnamed="unnamed" />
              {write && (
                <td>
                  {status === "active" && (
                    <div class="actions">
                      <form method="post" action={`${p.base}/tokens/${t.id}/regenerate`} class="inline" aria-label={`Regenerate ${t.hint}`}>
                        <label for={`grace-${t.id}`}>Old secret keeps working</label>{" "}
                        <select id={`grace-${t.id}`} name="graceSeconds">
                          {GRACE.map((g) => (
                            <option value={g.value}>{g.label}</option>
                          ))}
                        </select>{" "}
                        <button type="submit" class="secondary">
                          Regenerate
                        </button>
                      </form>
                      <PostButton action={`${p.base}/tokens/${t.id}/revoke`} label={`Revoke`} variant="danger" />
                    </div>
                  )}
                </td>
              )}
            </tr>
          );
        })}
      </Table>
      {write && (
        <form method="post" action={`${p.base}/tokens`} aria-label="Issue an access token">
          <h3>Issue a token</h3>
          <ErrorSummary errors={p.errors} />
          <Field name="name" label="Name (optional)" value={p.values?.name} errors={p.errors} />
          <Field name="expiresInDays" label="Expires in days (optional)" type="number" min={1} max={3650} value={p.values?.expiresInDays} errors={p.errors} hint="Empty: the org's policy and the account's validity decide" />
          <button type="submit">Issue token</button>
        </form>
      )}
    </section>
  );
}

/** The form's token input in the API's shape (days become expiresInSeconds). */
export function tokenInput(form: FormValues) {
  const days = form.text("expiresInDays");
  return parseWith(issueTokenBody, {
    ...(form.text("name") ? { name: form.text("name") } : {}),
    ...(days !== undefined ? { expiresInSeconds: /^\d{1,5}$/.test(days.trim()) ? Number(days) * 86_400 : days } : {}),
  });
}

export const TOKEN_FIELDS = { expiresInSeconds: "expiresInDays", expiresAt: "expiresInDays" };

/** A limit reached is a message on the account page, not an error page. */
const limitMessage = (err: DomainError): FormErrors => ({ message: `${err.detail.replace(/\.$/, "")}. Revoke a token (or regenerate the active one) before issuing another.`, fields: {} });

export const tokenPages = (render: RenderAccount) =>
  consoleRouter()
    .post("/orgs/:org/service-accounts/:sa/tokens", (c) =>
      handleForm(
        c,
        async (form) => {
          const { org, sa } = c.req.param();
          const issued = await issueToken(consoleCtx(c), principalOf(c), org, sa, tokenInput(form));
          return render(c, { secret: { secret: issued.secret, token: issued.token } });
        },
        (errors, values, status, err) => render(c, { tokenErrors: err.code === "token_limit_reached" ? limitMessage(err) : errors, tokenValues: values }, status),
        TOKEN_FIELDS,
      ),
    )
    .post("/orgs/:org/service-accounts/:sa/tokens/:tok/regenerate", (c) =>
      handleForm(
        c,
        async (form) => {
          const { org, sa, tok } = c.req.param();
          const grace = form.text("graceSeconds");
          const { graceSeconds } = parseWith(regenerateBody, grace === undefined ? {} : { graceSeconds: /^\d+$/.test(grace) ? Number(grace) : grace });
          const issued = await regenerateToken(consoleCtx(c), principalOf(c), org, sa, tok, graceSeconds);
          return render(c, { secret: { secret: issued.secret, token: issued.token, regenerated: true } });
        },
        (errors, _values, status) => render(c, { tokenErrors: errors }, status),
      ),
    )
    .post("/orgs/:org/service-accounts/:sa/tokens/:tok/revoke", async (c) => {
      const { org, sa, tok } = c.req.param();
      const token = await revokeToken(consoleCtx(c), principalOf(c), org, sa, tok);
      return redirectWith(c, `${paths.account(org, sa)}#tokens`, `Token ${token.hint} revoked.`);
    });
