/** @jsxImportSource hono/jsx */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AccessToken, PublicKey, ServiceAccount } from "../db/schema.ts";
import { accountStatus, listAccounts } from "../domain/registry/accounts.ts";
import { listOrgTokens, tokenStatus } from "../domain/credentials/tokens.ts";
import { DomainError } from "../domain/shared/errors.ts";
import { reviewQuery } from "../http/routes/tokens.ts";
import { keyStatus, listOrgKeys } from "../domain/credentials/public-keys.ts";
import { keyReviewQuery } from "../http/routes/keys.ts";
import { consoleCtx, consoleRouter, pageOf, pageOrg, paths, principalOf, type ConsoleContext } from "./context.ts";
import { ErrorSummary, Field, formErrors, noErrors, parseWith, type FormErrors } from "./forms.tsx";
import { page, Pager, Table, When } from "./layout.tsx";
import { TokenCells } from "./token-pages.tsx";

/**
 * Credential review, over the review filters of the API (`GET …/tokens`, `GET …/service-accounts`):
 * stale accounts (not used for N days), tokens expiring within N days, tokens never used, tokens
 * not used for N days. Candidates to rotate, revoke or delete.
 */

type View = "stale" | "expiring" | "never-used" | "unused" | "expiring-keys" | "expired-keys";

const VIEWS: { key: View; label: string; days: number | null; about: (days: number) => string }[] = [
  { key: "stale", label: "Stale accounts", days: 90, about: (d) => `Active service accounts not used for ${d} days or more (never used: counted from creation).` },
  { key: "expiring", label: "Expiring tokens", days: 14, about: (d) => `Active tokens that expire within ${d} days.` },
  { key: "never-used", label: "Never used", days: null, about: () => "Active tokens that have never been used." },
  { key: "unused", label: "Unused tokens", days: 30, about: (d) => `Active tokens not used for ${d} days or more (never used: counted from creation).` },
  { key: "expiring-keys", label: "Expiring keys", days: 30, about: (d) => `Active public keys that expire within ${d} days.` },
  { key: "expired-keys", label: "Expired keys", days: null, about: () => "Public keys past their expiry: they no longer authenticate." },
];

/** A list's link: its view, days and (when a link set it) page size, and the cursor of a page. */
const reviewHref = (org: string, view: View, days?: string, cursor?: string | null, limit?: string) => {
  const q = new URLSearchParams({ view });
  if (days) q.set("days", days);
  if (limit) q.set("limit", limit);
  if (cursor) q.set("cursor", cursor);
  return `${paths.review(org)}?${q}`;
};

const TokenRows = (p: { org: string; items: AccessToken[]; now: number }) => (
  <>
    {p.items.map((t) => (
      <tr>
        <td>
          <a href={paths.account(p.org, t.accountId)}>
            <code>{t.accountId}</code>
          </a>
        </td>
        <TokenCells token={t} status={tokenStatus(t, p.now)} unnamed="—" />
      </tr>
    ))}
  </>
);

const KeyRows = (p: { org: string; items: PublicKey[]; now: number }) => (
  <>
    {p.items.map((k) => (
      <tr>
        <td>
          <a href={paths.account(p.org, k.accountId)}>
            <code>{k.accountId}</code>
          </a>
        </td>
        <td>{k.name ?? <span class="muted">unnamed</span>}</td>
        <td>
          <code>{k.kid}</code>
        </td>
        <td>
          <span class={`badge ${keyStatus(k, p.now)}`}>{keyStatus(k, p.now)}</span>
        </td>
        <td>
          <When ms={k.expiresAt} none="Never" />
        </td>
      </tr>
    ))}
  </>
);

const AccountRows = (p: { org: string; items: ServiceAccount[]; now: number }) => (
  <>
    {p.items.map((a) => (
      <tr>
        <td>
          <a href={paths.account(p.org, a.id)}>{a.name}</a>
        </td>
        <td>{a.email}</td>
        <td>
          <span class={`badge ${accountStatus(a, p.now)}`}>{accountStatus(a, p.now)}</span>
        </td>
        <td>
          <When ms={a.createdAt} />
        </td>
        <td>
          <When ms={a.lastUsedAt} none="Never" />
        </td>
      </tr>
    ))}
  </>
);

/** The view's list through the domain's review functions, the days checked by the API's review query. */
async function reviewList(c: ConsoleContext, orgId: string, view: View, days: string | undefined) {
  const ctx = consoleCtx(c);
  const principal = principalOf(c);
  const { cursor } = pageOf(c);
  const limit = c.req.query("limit") || 25;
  const def = VIEWS.find((v) => v.key === view)!;
  const n = days ?? (def.days === null ? undefined : String(def.days));
  if (view === "expiring-keys" || view === "expired-keys") {
    const q = parseWith(keyReviewQuery, { limit, cursor, ...(view === "expiring-keys" && n !== undefined ? { expiringWithinDays: n } : {}) });
    const filters = view === "expiring-keys" ? { expiringWithinDays: q.expiringWithinDays } : { status: "expired" as const };
    const result = await listOrgKeys(ctx, principal, orgId, { limit: q.limit, cursor: q.cursor, ...filters });
    return { about: def.about(q.expiringWithinDays ?? 0), accounts: null, tokens: null, keys: result.items, nextCursor: result.nextCursor };
  }
  const field = view === "expiring" ? "expiringWithinDays" : "unusedForDays";
  const q = parseWith(reviewQuery, { limit, cursor, ...(n !== undefined && def.days !== null ? { [field]: n } : {}) });
  const about = def.about(q[field] ?? 0);
  if (view === "stale") {
    const result = await listAccounts(ctx, principal, orgId, { limit: q.limit, cursor: q.cursor, status: "active", unusedForDays: q.unusedForDays });
    return { about, accounts: result.items, tokens: null, keys: null, nextCursor: result.nextCursor };
  }
  const filters = view === "expiring" ? { expiringWithinDays: q.expiringWithinDays } : view === "never-used" ? { status: "active" as const, neverUsed: true } : { status: "active" as const, unusedForDays: q.unusedForDays };
  const result = await listOrgTokens(ctx, principal, orgId, { limit: q.limit, cursor: q.cursor, ...filters });
  return { about, accounts: null, tokens: result.items, keys: null, nextCursor: result.nextCursor };
}

async function reviewPage(c: ConsoleContext) {
  const org = await pageOrg(c, c.req.param("org")!);
  const view = VIEWS.find((v) => v.key === c.req.query("view"))?.key ?? "stale";
  const def = VIEWS.find((v) => v.key === view)!;
  const days = c.req.query("days") || undefined;
  const limit = c.req.query("limit") || undefined;
  let errors: FormErrors = noErrors;
  let status: ContentfulStatusCode = 200;
  let list: Awaited<ReturnType<typeof reviewList>> | null = null;
  try {
    list = await reviewList(c, org.id, view, days);
  } catch (err) {
    if (!(err instanceof DomainError) || err.code !== "validation_failed") throw err;
    errors = { ...formErrors(err, { expiringWithinDays: "days", unusedForDays: "days" }), message: err.detail };
    status = 400;
  }
  const now = Date.now();
  return page(
    c,
    {
      title: `Review · ${org.name}`,
      org,
      nav: "review",
      children: (
        <>
          <h1>Review</h1>
          <nav aria-label="Review lists">
            <ul class="actions">
              {VIEWS.map((v) => (
                <li>
                  <a href={reviewHref(org.slug, v.key)} aria-current={v.key === view ? "page" : undefined}>
                    {v.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          {def.days !== null && (
            <form method="get" action={paths.review(org.slug)} class="filters" aria-label="Review period">
              <input type="hidden" name="view" value={view} />
              {limit && <input type="hidden" name="limit" value={limit} />}
              <ErrorSummary errors={errors} />
              <Field name="days" label="Days" type="number" min={0} max={3650} value={days ?? String(def.days)} errors={errors} />
              <button type="submit" class="secondary">
                Show
              </button>
            </form>
          )}
          {list && <p>{list.about}</p>}
          {list?.accounts && (
            <Table caption={def.label} head={["Name", "Email", "Status", "Created", "Last used"]} rows={list.accounts.length} empty="No account in this list.">
              <AccountRows org={org.slug} items={list.accounts} now={now} />
            </Table>
          )}
          {list?.tokens && (
            <Table caption={def.label} head={["Account", "Token", "Hint", "Status", "Created", "Expires", "Last used"]} rows={list.tokens.length} empty="No token in this list.">
              <TokenRows org={org.slug} items={list.tokens} now={now} />
            </Table>
          )}
          {list?.keys && (
            <Table caption={def.label} head={["Account", "Key", "kid", "Status", "Expires"]} rows={list.keys.length} empty="No key in this list.">
              <KeyRows org={org.slug} items={list.keys} now={now} />
            </Table>
          )}
          {list && <Pager nextHref={list.nextCursor ? reviewHref(org.slug, view, days, list.nextCursor, limit) : null} firstHref={c.req.query("cursor") ? reviewHref(org.slug, view, days, null, limit) : null} />}
        </>
      ),
    },
    status,
  );
}

export const reviewPages = consoleRouter().get("/orgs/:org/review", (c) => reviewPage(c));
