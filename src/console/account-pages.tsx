/** @jsxImportSource hono/jsx */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ServiceAccount } from "../db/schema.ts";
import { BUILTIN_ROLES } from "../domain/access/permissions.ts";
import { listRoles } from "../domain/access/roles.ts";
import { listKeys } from "../domain/credentials/public-keys.ts";
import { listTokens, tokenStatus } from "../domain/credentials/tokens.ts";
import { accountStatus, deleteAccount, listAccounts, patchAccount, readAccount } from "../domain/registry/accounts.ts";
import { policyOf, visibleOrg } from "../domain/registry/orgs.ts";
import { provisionAccount } from "../domain/registry/provision.ts";
import { createAccountBody, listQuery, patchAccountBody } from "../http/routes/service-accounts.ts";
import { accountSections } from "./account-sections.ts";
import { consoleCtx, consoleRouter, operationsAt, pageOrg, paths, principalOf, type ConsoleContext } from "./context.ts";
import { redirectWith } from "./flash.ts";
import { Check, Confirm, ErrorSummary, Field, formErrors, handleForm, noErrors, parseWith, PostButton, Select, TextArea, type FormErrors, type FormValues } from "./forms.tsx";
import { Heading, page, Pager, Table, When } from "./layout.tsx";
import { scopeInput, scopeOptions, ScopeSelect } from "./scope-picker.tsx";
import { keyPages, KeysSection } from "./key-pages.tsx";
import { SecretOnce, tokenPages, TokensSection, type RenderAccount } from "./token-pages.tsx";
import { DomainError } from "../domain/shared/errors.ts";

/** Service accounts: list (search, group, status, pages), create, the account page, edit, disable/enable, delete. */

const STATUSES = [
  { value: "", label: "Any status" },
  { value: "active", label: "Active" },
  { value: "disabled", label: "Disabled" },
  { value: "expired", label: "Expired" },
];

const listHref = (base: string, q: Record<string, string | undefined>) => {
  const params = new URLSearchParams(Object.entries(q).filter((e): e is [string, string] => !!e[1]));
  const s = params.toString();
  return s ? `${base}?${s}` : base;
};

async function listPage(c: ConsoleContext) {
  const org = await pageOrg(c, c.req.param("org")!);
  const raw = { q: c.req.query("q") || undefined, group: c.req.query("group") || undefined, status: c.req.query("status") || undefined, cursor: c.req.query("cursor") || undefined };
  let errors: FormErrors = noErrors;
  let result: { items: ServiceAccount[]; nextCursor: string | null } = { items: [], nextCursor: null };
  try {
    result = await listAccounts(consoleCtx(c), principalOf(c), org.id, parseWith(listQuery, { ...raw, limit: "25" }));
  } catch (err) {
    if (!(err instanceof DomainError) || err.code !== "validation_failed") throw err;
    errors = formErrors(err);
  }
  const can = await operationsAt(c, org.id);
  const base = paths.accounts(org.slug);
  const now = Date.now();
  return page(
    c,
    {
      title: `Service accounts · ${org.name}`,
      org,
      nav: "service-accounts",
      children: (
        <>
          <Heading title="Service accounts">
            {can("service-accounts.edit") && (
              <a class="button" href={`${base}/new`}>
                New service account
              </a>
            )}
          </Heading>
          <form method="get" action={base} class="panel filters" role="search" aria-label="Filter service accounts">
            <Field name="q" label="Search" type="search" value={raw.q} errors={errors} hint="Name, email or display name" />
            <Field name="group" label="Group" value={raw.group} errors={errors} />
            <Select name="status" label="Status" options={STATUSES} value={raw.status} errors={errors} />
            <button type="submit" class="secondary">
              Filter
            </button>
          </form>
          <ErrorSummary errors={errors} />
          <Table caption="Service accounts" head={["Name", "Email", "Groups", "Status", "Expires", "Last used"]} rows={result.items.length} empty="No service account matches.">
            {result.items.map((a) => (
              <tr>
                <td>
                  <a href={paths.account(org.slug, a.id)}>{a.displayName ?? a.name}</a>
                  {a.displayName && <div class="muted mono">{a.name}</div>}
                </td>
                <td>{a.email}</td>
                <td>{a.groups.join(", ")}</td>
                <td>
                  <span class={`badge ${accountStatus(a, now)}`}>{accountStatus(a, now)}</span>
                </td>
                <td>
                  <When ms={a.expiresAt} none="Never" />
                </td>
                <td>
                  <When ms={a.lastUsedAt} none="Never" />
                </td>
              </tr>
            ))}
          </Table>
          <Pager nextHref={result.nextCursor ? listHref(base, { ...raw, cursor: result.nextCursor }) : null} firstHref={raw.cursor ? listHref(base, { ...raw, cursor: undefined }) : null} />
        </>
      ),
    },
    errors === noErrors ? 200 : 400,
  );
}

/** Roles offered when creating an account: the assignable built-in ones and the org's custom ones. */
async function roleOptions(c: ConsoleContext, orgId: string) {
  let roles: { name: string; assignable: boolean }[] = BUILTIN_ROLES.map((r) => ({ name: r.name, assignable: r.assignableToServiceAccounts }));
  try {
    roles = (await listRoles(consoleCtx(c), principalOf(c), orgId)).map((r) => ({ name: r.name, assignable: r.assignableToServiceAccounts }));
  } catch {
    // Built-in roles only.
  }
  return [{ value: "", label: "No role" }, ...roles.filter((r) => r.assignable).map((r) => ({ value: r.name, label: r.name }))];
}

/** A date-time input (UTC) in the API's ISO form. */
const isoOf = (local: string | undefined) => (local === undefined ? undefined : /^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(local) ? `${local}:00Z` : local);
const daysOf = (text: string | undefined) => (text === undefined ? undefined : /^\d{1,5}$/.test(text.trim()) ? Number(text) : text);
const listOf = (text: string | undefined) => (text ?? "").split(",").map((g) => g.trim()).filter(Boolean);

function createInput(form: FormValues) {
  const role = form.text("role");
  const text = (name: string) => (form.text(name) !== undefined ? { [name]: form.text(name) } : {});
  return parseWith(createAccountBody, {
    name: form.text("name") ?? "",
    ...text("displayName"),
    ...text("description"),
    ...text("email"),
    ...text("externalId"),
    ...(form.text("groups") ? { groups: listOf(form.text("groups")) } : {}),
    ...(form.text("daysValid") ? { daysValid: daysOf(form.text("daysValid")) } : {}),
    ...(form.text("expiresAt") ? { expiresAt: isoOf(form.text("expiresAt")) } : {}),
    ...(role ? { roles: [{ role, ...(scopeInput(form.text("scope")) ? { scope: scopeInput(form.text("scope")) } : {}) }] } : {}),
    ...(form.checked("issueToken") ? { issueToken: true } : {}),
  });
}

const CREATE_FIELDS = { roles: "role", "roles[0].scope": "scope", issueToken: "issueToken" };

function AccountFields(p: { errors: FormErrors; values: Record<string, string>; creating: boolean }) {
  const v = p.values;
  return (
    <>
      <Field name="name" label="Name" required={p.creating} value={v.name} errors={p.errors} hint="Unique in the org, e.g. deploy-bot" />
      <Field name="displayName" label="Display name" value={v.displayName} errors={p.errors} />
      <TextArea name="description" label="Description" value={v.description} errors={p.errors} />
      {p.creating && <Field name="email" label="Email" type="email" value={v.email} errors={p.errors} hint="Empty: generated as <name>@<org>.<domain>" />}
      <Field name="groups" label="Groups" value={v.groups} errors={p.errors} hint="Comma separated, e.g. ci, web" />
      <Field name="externalId" label="External id" value={v.externalId} errors={p.errors} />
      <Field name="daysValid" label="Days valid" type="number" min={1} max={730} value={v.daysValid} errors={p.errors} hint={p.creating ? "1-730; empty with no expiry below: never expires" : "Empty: unchanged"} />
      <Field name="expiresAt" label="Or valid until (UTC)" type="datetime-local" value={v.expiresAt} errors={p.errors} />
    </>
  );
}

async function newPage(c: ConsoleContext, errors: FormErrors = noErrors, values: Record<string, string> = {}, status: ContentfulStatusCode = 200) {
  const org = await pageOrg(c, c.req.param("org")!);
  const [roles, scopes] = await Promise.all([roleOptions(c, org.id), scopeOptions(c, org.id)]);
  return page(
    c,
    {
      title: `New service account · ${org.name}`,
      org,
      nav: "service-accounts",
      children: (
        <>
          <h1>New service account</h1>
          <form method="post" action={paths.accounts(org.slug)} class="panel" aria-label="Create a service account">
            <ErrorSummary errors={errors} />
            <AccountFields errors={errors} values={values} creating />
            <Select name="role" label="Role" options={roles} value={values.role} errors={errors} hint="More roles can be assigned on the account's page" />
            <ScopeSelect options={scopes} value={values.scope} errors={errors} label="Role scope" />
            <Check name="issueToken" label="Issue a first access token (shown once, on the next page)" checked={values.issueToken === "on"} errors={errors} />
            <button type="submit">Create service account</button>
          </form>
        </>
      ),
    },
    status,
  );
}

/** The account page: details, actions, tokens, keys, then the sections of other groups (account-sections.ts). */
const renderAccount: RenderAccount = async (c, extras, status = 200, refs = { org: c.req.param("org")!, sa: c.req.param("sa")! }) => {
  const ctx = consoleCtx(c);
  const principal = principalOf(c);
  const org = await visibleOrg(ctx, principal, refs.org);
  const account = await readAccount(ctx, principal, org.id, refs.sa);
  const [tokens, keys, can] = await Promise.all([listTokens(ctx, principal, org.id, account.id, { limit: 100 }), listKeys(ctx, principal, org.id, account.id), operationsAt(c, org.id)]);
  const now = ctx.now();
  const base = paths.account(org.slug, account.id);
  const view = accountStatus(account, now);
  const input = { c, org: { id: org.id, slug: org.slug, name: org.name }, account, can };
  const extra = await Promise.all(accountSections().map(async (s) => ({ id: s.id, body: await s.render(input) })));
  const activeTokens = tokens.items.filter((t) => tokenStatus(t, now) === "active").length;
  return page(
    c,
    {
      title: `${account.name} · ${org.name}`,
      org,
      nav: "service-accounts",
      children: (
        <>
          <Heading title={account.displayName ?? account.name}>
            <span class={`badge ${view}`}>{view}</span>
          </Heading>
          {extras.secret && <SecretOnce secret={extras.secret} />}
          <section class="panel" aria-labelledby="details-title">
            <h2 id="details-title">Details</h2>
            <dl class="facts">
              <dt>Name</dt>
              <dd>
                <code>{account.name}</code>
              </dd>
              <dt>Id (client_id)</dt>
              <dd>
                <code>{account.id}</code>
              </dd>
              <dt>Email</dt>
              <dd>{account.email}</dd>
              <dt>Description</dt>
              <dd>{account.description ?? <span class="muted">—</span>}</dd>
              <dt>Groups</dt>
              <dd>{account.groups.length > 0 ? account.groups.join(", ") : <span class="muted">—</span>}</dd>
              <dt>External id</dt>
              <dd>{account.externalId ?? <span class="muted">—</span>}</dd>
              <dt>JWKS URL (private_key_jwt)</dt>
              <dd>{account.jwksUri ? <code>{account.jwksUri}</code> : <span class="muted">—</span>}</dd>
              <dt>Valid until</dt>
              <dd>
                <When ms={account.expiresAt} none="No expiry" />
              </dd>
              <dt>Created</dt>
              <dd>
                <When ms={account.createdAt} />
              </dd>
              <dt>Last used</dt>
              <dd>
                <When ms={account.lastUsedAt} none="Never" />
              </dd>
            </dl>
            {can("service-accounts.edit") && (
              <div class="actions">
                <a class="button secondary" href={`${base}/edit`}>
                  Edit
                </a>
                {account.status === "active" ? <PostButton action={`${base}/disable`} label="Disable" variant="secondary" /> : <PostButton action={`${base}/enable`} label="Enable" variant="secondary" />}
                <Confirm
                  action={`${base}/delete`}
                  label="Delete"
                  confirmLabel={`Delete ${account.name}`}
                  consequences={[
                    `The service account ${account.name} is deleted.`,
                    `Its ${activeTokens} active access token(s) are revoked, and every JWT issued from them stops working.`,
                    `Its ${keys.length} public key(s) are removed.`,
                    "Its role assignments, pending invitations and federated credentials (trust policies) are removed.",
                  ]}
                />
              </div>
            )}
          </section>
          <TokensSection base={base} tokens={tokens.items} can={can} now={now} errors={extras.tokenErrors} values={extras.tokenValues} limit={policyOf(org).maxActiveTokensPerAccount} />
          <KeysSection base={base} keys={keys} can={can} errors={extras.keyErrors} values={extras.keyValues} />
          {extra.map((s) => (
            <div id={`section-${s.id}`}>{s.body}</div>
          ))}
        </>
      ),
    },
    status,
  );
};

async function editPage(c: ConsoleContext, errors: FormErrors = noErrors, values?: Record<string, string>, status: ContentfulStatusCode = 200) {
  const org = await pageOrg(c, c.req.param("org")!);
  const account = await readAccount(consoleCtx(c), principalOf(c), org.id, c.req.param("sa")!);
  const current = values ?? { name: account.name, displayName: account.displayName ?? "", description: account.description ?? "", groups: account.groups.join(", "), externalId: account.externalId ?? "" };
  return page(
    c,
    {
      title: `Edit ${account.name} · ${org.name}`,
      org,
      nav: "service-accounts",
      children: (
        <>
          <h1>Edit {account.name}</h1>
          <form method="post" action={`${paths.account(org.slug, account.id)}/edit`} class="panel" aria-label="Edit the service account">
            <ErrorSummary errors={errors} />
            <AccountFields errors={errors} values={current} creating={false} />
            <div class="actions">
              <button type="submit">Save</button>
              <a href={paths.account(org.slug, account.id)}>Cancel</a>
            </div>
          </form>
        </>
      ),
    },
    status,
  );
}

function editInput(form: FormValues) {
  const orNull = (name: string) => form.text(name) ?? null;
  return parseWith(patchAccountBody, {
    ...(form.text("name") ? { name: form.text("name") } : {}),
    displayName: orNull("displayName"),
    description: orNull("description"),
    externalId: orNull("externalId"),
    groups: listOf(form.text("groups")),
    ...(form.text("daysValid") ? { daysValid: daysOf(form.text("daysValid")) } : {}),
    ...(form.text("expiresAt") ? { expiresAt: isoOf(form.text("expiresAt")) } : {}),
  });
}

const setStatus = (status: "active" | "disabled") => async (c: ConsoleContext) => {
  const { org, sa } = c.req.param() as { org: string; sa: string };
  const account = await patchAccount(consoleCtx(c), principalOf(c), org, sa, { status });
  return redirectWith(c, paths.account(org, sa), `${account.name} ${status === "active" ? "enabled" : "disabled: its credentials stop working until it is enabled"}.`);
};

export const serviceAccountPages = consoleRouter()
  .get("/orgs/:org/service-accounts", (c) => listPage(c))
  .get("/orgs/:org/service-accounts/new", (c) => newPage(c))
  .post("/orgs/:org/service-accounts", (c) =>
    handleForm(
      c,
      async (form) => {
        const { account, issued } = await provisionAccount(consoleCtx(c), principalOf(c), c.req.param("org"), createInput(form));
        if (!issued) return redirectWith(c, paths.account(c.req.param("org"), account.id), `Service account ${account.name} created.`);
        // The first token's secret is shown in this response only: the account page, rendered here.
        return renderAccount(c, { secret: { secret: issued.secret, token: issued.token } }, 201, { org: c.req.param("org"), sa: account.id });
      },
      (errors, values, status) => newPage(c, errors, values, status),
      CREATE_FIELDS,
    ),
  )
  .get("/orgs/:org/service-accounts/:sa", (c) => renderAccount(c, {}))
  .get("/orgs/:org/service-accounts/:sa/edit", (c) => editPage(c))
  .post("/orgs/:org/service-accounts/:sa/edit", (c) =>
    handleForm(
      c,
      async (form) => {
        const { org, sa } = c.req.param();
        const account = await patchAccount(consoleCtx(c), principalOf(c), org, sa, editInput(form));
        return redirectWith(c, paths.account(org, sa), `${account.name} saved.`);
      },
      (errors, values, status) => editPage(c, errors, values, status),
    ),
  )
  .post("/orgs/:org/service-accounts/:sa/disable", setStatus("disabled"))
  .post("/orgs/:org/service-accounts/:sa/enable", setStatus("active"))
  .post("/orgs/:org/service-accounts/:sa/delete", async (c) => {
    const { org, sa } = c.req.param();
    const account = await readAccount(consoleCtx(c), principalOf(c), org, sa);
    await deleteAccount(consoleCtx(c), principalOf(c), org, sa);
    return redirectWith(c, paths.accounts(org), `${account.name} deleted; its credentials are revoked.`);
  })
  .route("/", tokenPages(renderAccount))
  .route("/", keyPages(renderAccount));
