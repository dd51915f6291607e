/** @jsxImportSource hono/jsx */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AuditEvent } from "../db/schema.ts";
import { orgAuditEvents, platformAuditEvents, type AuditQuery } from "../domain/audit/audit-query.ts";
import { DomainError } from "../domain/shared/errors.ts";
import { auditQuery } from "../http/routes/audit.ts";
import { consoleCtx, consoleRouter, pageOf, pageOrg, paths, principalOf, type ConsoleContext } from "./context.ts";
import { ErrorSummary, Field, formErrors, noErrors, parseWith, type FormErrors } from "./forms.tsx";
import { page, Pager, Table, When, type PageOrg } from "./layout.tsx";

/** The audit log: an org's (audit.read) and, for the platform root, the platform-level one. */

/** The filters, and the page size (not in the form; a link may carry it). */
const FILTERS = ["actor", "action", "target", "from", "to", "limit"] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;

/** A time field of the form: `datetime-local` gives no zone; the console's times are UTC. */
const utc = (v: string | undefined) => (v === undefined ? undefined : /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(v) ? `${v.length === 16 ? `${v}:00` : v}Z` : v);

function filtersOf(c: ConsoleContext): Filters {
  const out: Filters = {};
  for (const f of FILTERS) {
    const v = c.req.query(f)?.trim();
    if (v) out[f] = v;
  }
  return out;
}

/** The filters as the API's audit query (the same schema checks both). */
function queryOf(c: ConsoleContext, f: Filters): AuditQuery {
  const { cursor } = pageOf(c);
  return parseWith(auditQuery, { limit: f.limit ?? 50, cursor, actor: f.actor, action: f.action, target: f.target, since: utc(f.from), until: utc(f.to) });
}

const hrefOf = (base: string, f: Filters, cursor?: string | null) => {
  const q = new URLSearchParams(Object.entries(f).filter((e): e is [string, string] => e[1] !== undefined));
  if (cursor) q.set("cursor", cursor);
  const s = q.toString();
  return s ? `${base}?${s}` : base;
};

/** Details in one line (small, secret-free facts by the audit rule). */
const detailsText = (d: Record<string, unknown>) => {
  const s = JSON.stringify(d);
  return s === "{}" ? "" : s.length > 200 ? `${s.slice(0, 200)}…` : s;
};

/** The events; an actor or a target links to the log filtered by it. */
function AuditTable(p: { items: AuditEvent[]; caption: string; base: string; f: Filters }) {
  const by = (filter: Filters) => hrefOf(p.base, { ...p.f, ...filter });
  return (
    <Table caption={p.caption} head={["Time", "Actor", "Action", "Target", "Details", "Request"]} rows={p.items.length} empty="No event matches.">
      {p.items.map((e) => (
        <tr>
          <td>
            <When ms={e.createdAt} />
          </td>
          <td>
            <a href={by({ actor: e.actorId })}>
              <code>{e.actorId}</code>
            </a>
          </td>
          <td>
            <code>{e.action}</code>
          </td>
          <td>
            {e.targetType}{" "}
            <a href={by({ target: e.targetId })}>
              <code>{e.targetId}</code>
            </a>
          </td>
          <td class="mono">{detailsText(e.details)}</td>
          <td>
            <code>{e.requestId ?? ""}</code>
          </td>
        </tr>
      ))}
    </Table>
  );
}

function FilterForm(p: { base: string; f: Filters; errors: FormErrors }) {
  return (
    <form method="get" action={p.base} class="filters" aria-label="Filter the audit log">
      <ErrorSummary errors={p.errors} />
      <Field name="actor" label="Actor (account id)" value={p.f.actor} errors={p.errors} />
      <Field name="action" label="Action" value={p.f.action} errors={p.errors} hint="e.g. access_token.created, or a family: access_token.*" />
      <Field name="target" label="Target id" value={p.f.target} errors={p.errors} />
      <Field name="from" label="From (UTC)" type="datetime-local" value={p.f.from} errors={p.errors} />
      <Field name="to" label="To (UTC)" type="datetime-local" value={p.f.to} errors={p.errors} />
      <button type="submit" class="secondary">
        Filter
      </button>
      {p.f.limit && <input type="hidden" name="limit" value={p.f.limit} />}
      {Object.keys(p.f).length > 0 && <a href={p.base}>Clear filters</a>}
    </form>
  );
}

/** One audit page: the filters, a page of events (newest first), the pager; a bad filter is shown beside its field (400). */
async function auditPage(c: ConsoleContext, o: { title: string; base: string; org?: PageOrg; load: (q: AuditQuery) => Promise<{ items: AuditEvent[]; nextCursor: string | null }> }) {
  const f = filtersOf(c);
  let errors: FormErrors = noErrors;
  let status: ContentfulStatusCode = 200;
  let result: { items: AuditEvent[]; nextCursor: string | null } | null = null;
  try {
    result = await o.load(queryOf(c, f));
  } catch (err) {
    if (!(err instanceof DomainError) || err.code !== "validation_failed") throw err;
    // A filter form: the detail names the bad filter also when it has no field (cursor, limit).
    errors = { ...formErrors(err, { since: "from", until: "to" }), message: err.detail };
    status = 400;
  }
  return page(
    c,
    {
      title: o.title,
      org: o.org,
      nav: o.org ? "audit" : undefined,
      children: (
        <>
          <h1>{o.title}</h1>
          <FilterForm base={o.base} f={f} errors={errors} />
          {result && (
            <>
              <AuditTable items={result.items} caption={`${o.title}, newest first`} base={o.base} f={f} />
              <Pager nextHref={result.nextCursor ? hrefOf(o.base, f, result.nextCursor) : null} firstHref={c.req.query("cursor") ? hrefOf(o.base, f) : null} />
            </>
          )}
        </>
      ),
    },
    status,
  );
}

export const auditPages = consoleRouter()
  .get("/orgs/:org/audit", async (c) => {
    const org = await pageOrg(c, c.req.param("org"));
    return auditPage(c, { title: `Audit log · ${org.name}`, base: paths.audit(org.slug), org, load: (q) => orgAuditEvents(consoleCtx(c), principalOf(c), org.id, q) });
  })
  .get("/audit", (c) => auditPage(c, { title: "Platform audit log", base: paths.platformAudit, load: (q) => platformAuditEvents(consoleCtx(c), principalOf(c), q) }));
