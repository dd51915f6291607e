/** @jsxImportSource hono/jsx */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { createFederatedCredential, deleteFederatedCredential, listFederatedCredentials, updateFederatedCredential, type TrustPolicy } from "../domain/credentials/federated-credentials.ts";
import { readAccount } from "../domain/registry/accounts.ts";
import { DomainError } from "../domain/shared/errors.ts";
import { createFederatedCredentialBody, patchFederatedCredentialBody } from "../http/routes/federated-credentials.ts";
import { addAccountSection } from "./account-sections.ts";
import { buttonAction } from "./actions.ts";
import { consoleCtx, consoleRouter, operationsAt, pageOrg, paths, principalOf, type Can, type ConsoleContext } from "./context.ts";
import { redirectWith } from "./flash.ts";
import { Check, Confirm, ErrorSummary, Field, handleForm, noErrors, parseWith, PostButton, PostForm, readForm, Select, TextArea, type FormErrors, type FormValues } from "./forms.tsx";
import { Heading, page, Table } from "./layout.tsx";

/**
 * An account's federated credentials (trust policies, docs/federation.md): listed on the account
 * page as its "Federated credentials" section (account-sections.ts); add, enable/disable and
 * remove for a principal holding service-accounts.federated-credentials.edit. `/federated-credentials`
 * is the same section on a page of its own, where a form with errors is shown again.
 */

const EDIT = "service-accounts.federated-credentials.edit";
const HEADING = "federated-heading";

export const federatedPath = (org: string, sa: string) => `${paths.account(org, sa)}/federated-credentials`;

/** Where a form of the section goes back to: the account page it was on, or the section's page. */
const backTo = (form: FormValues, org: string, sa: string) => (form.text("from") === "account" ? `${paths.account(org, sa)}#${HEADING}` : federatedPath(org, sa));

const claimLines = (claims: Record<string, string>) =>
  Object.entries(claims)
    .map(([name, pattern]) => `${name}=${pattern}`)
    .join("\n");

function PolicyRow(p: { policy: TrustPolicy; base: string; write: boolean; from: string }) {
  const { policy } = p;
  const at = `${p.base}/${encodeURIComponent(policy.id)}`;
  const claims = Object.entries(policy.claims);
  return (
    <tr>
      <td>
        {policy.name}
        {policy.description && <div class="muted">{policy.description}</div>}
      </td>
      <td>
        <code>{policy.issuer}</code>
      </td>
      <td>{policy.subject === null ? <span class="muted">any</span> : <code>{policy.subject}</code>}</td>
      <td>
        {claims.length === 0 ? (
          <span class="muted">none</span>
        ) : (
          <ul class="plain">
            {claims.map(([name, pattern]) => (
              <li>
                <code>
                  {name}={pattern}
                </code>
              </li>
            ))}
          </ul>
        )}
      </td>
      <td>
        <ul class="plain">
          {policy.audiences.map((a) => (
            <li>
              <code>{a}</code>
            </li>
          ))}
        </ul>
      </td>
      <td>{policy.maxTokenAgeSeconds === null ? <span class="muted">no bound</span> : `${policy.maxTokenAgeSeconds} s`}</td>
      <td>{policy.singleUse ? "once" : "until it expires"}</td>
      <td>
        <span class={`badge ${policy.enabled ? "active" : "disabled"}`}>{policy.enabled ? "enabled" : "disabled"}</span>
      </td>
      {p.write && (
        <td>
          <div class="actions">
            {policy.enabled ? (
              <PostButton action={`${at}/disable`} label={`Disable ${policy.name}`} variant="secondary" fields={{ from: p.from }} />
            ) : (
              <PostButton action={`${at}/enable`} label={`Enable ${policy.name}`} variant="secondary" fields={{ from: p.from }} />
            )}
            <Confirm
              action={`${at}/remove`}
              label="Remove"
              confirmLabel={`Remove ${policy.name}`}
              consequences={[`Tokens of ${policy.issuer} matching ${policy.name} can no longer act as this account.`, "JWTs already issued through it stay valid until they expire."]}
              fields={{ from: p.from }}
            />
          </div>
        </td>
      )}
    </tr>
  );
}

function AddForm(p: { base: string; from: string; issuers: readonly string[]; errors: FormErrors; values?: Record<string, string> | undefined }) {
  const v = p.values ?? {};
  if (p.issuers.length === 0) return <p class="muted">Federation is off: FEDERATION_ALLOWED_ISSUERS names no issuer, so no trust policy can be added.</p>;
  return (
    <PostForm action={p.base} label="Add a federated credential">
      <h3>Add a federated credential</h3>
      <input type="hidden" name="from" value={p.from} />
      <input type="hidden" name="singleUseOffered" value="1" />
      <ErrorSummary errors={p.errors} />
      <Field name="name" label="Name" required value={v.name} errors={p.errors} idPrefix="fed-" />
      <Field name="description" label="Description (optional)" value={v.description} errors={p.errors} idPrefix="fed-" />
      <Select name="issuer" label="Issuer" required value={v.issuer} errors={p.errors} idPrefix="fed-" options={p.issuers.map((i) => ({ value: i, label: i }))} hint="The issuers this deployment trusts (FEDERATION_ALLOWED_ISSUERS)" />
      <Field name="subject" label="Subject, sub (exact; optional)" value={v.subject} errors={p.errors} idPrefix="fed-" hint="e.g. repo:acme/deploy-bot:environment:prod" />
      <TextArea
        name="claims"
        label="Claim conditions (optional), one name=pattern a line"
        value={v.claims}
        errors={p.errors} idPrefix="fed-"
        hint="Exact, or a glob: * within one : segment, ** anything. A subject or at least one condition is required."
      />
      <TextArea name="audiences" label="Audiences (optional), one a line" value={v.audiences} errors={p.errors} idPrefix="fed-" hint="Default: this Keyward's issuer" />
      <Field name="maxTokenAgeSeconds" label="Max token age in seconds (optional)" type="number" min={60} max={86400} value={v.maxTokenAgeSeconds} errors={p.errors} idPrefix="fed-" />
      <Check
        name="singleUse"
        label="Each token is accepted once (uncheck for Kubernetes projected tokens that a pod re-reads)"
        checked={p.values === undefined || v.singleUse === "on"}
        hint="Unchecked, a token may be exchanged again until it expires: a stolen one too."
        errors={p.errors}
        idPrefix="fed-"
      />
      <button type="submit">Add federated credential</button>
    </PostForm>
  );
}

interface SectionInput {
  org: { id: string; slug: string; name: string };
  accountId: string;
  can: Can;
  on: "account" | "page";
  errors?: FormErrors | undefined;
  values?: Record<string, string> | undefined;
}

/** The "Federated credentials" section of a service account. */
export async function federatedSection(c: ConsoleContext, p: SectionInput) {
  const ctx = consoleCtx(c);
  const policies = await listFederatedCredentials(ctx, principalOf(c), p.org.id, p.accountId);
  const write = p.can(EDIT);
  const base = federatedPath(p.org.slug, p.accountId);
  return (
    <section class="panel" aria-labelledby={HEADING}>
      <h2 id={HEADING}>Federated credentials</h2>
      <p class="muted">Tokens of an external OIDC issuer (a CI job's, a Kubernetes workload's) that may act as this account, with no stored secret.</p>
      <Table
        caption="Trust policies"
        head={["Name", "Issuer", "Subject", "Claim conditions", "Audiences", "Max token age", "Token accepted", "Status", ...(write ? ["Actions"] : [])]}
        rows={policies.length}
        empty="No federated credential."
      >
        {policies.map((policy) => (
          <PolicyRow policy={policy} base={base} write={write} from={p.on} />
        ))}
      </Table>
      {write && <AddForm base={base} from={p.on} issuers={ctx.config.FEDERATION_ALLOWED_ISSUERS} errors={p.errors ?? noErrors} values={p.values} />}
    </section>
  );
}

addAccountSection({ id: "federated-credentials", order: 20, render: ({ c, org, account, can }) => federatedSection(c, { org, accountId: account.id, can, on: "account" }) });

async function federatedPage(c: ConsoleContext, errors: FormErrors = noErrors, values?: Record<string, string>, status: ContentfulStatusCode = 200) {
  const org = await pageOrg(c, c.req.param("org")!);
  const account = await readAccount(consoleCtx(c), principalOf(c), org.id, c.req.param("sa")!);
  const section = await federatedSection(c, { org, accountId: account.id, can: await operationsAt(c, org.id), on: "page", errors, values });
  return page(
    c,
    {
      title: `Federated credentials of ${account.name} · ${org.name}`,
      org,
      nav: "service-accounts",
      children: (
        <>
          <Heading title={`Federated credentials of ${account.name}`}>
            <a href={paths.account(org.slug, account.id)}>Back to the account</a>
          </Heading>
          {section}
        </>
      ),
    },
    status,
  );
}

const invalid = (field: string, message: string) => new DomainError("validation_failed", message, { errors: [{ path: `body.${field}`, message }] });

/** `name=pattern` lines as the API's claims object. */
function claimsOf(text: string | undefined): Record<string, string> | undefined {
  if (text === undefined) return undefined;
  const claims: Record<string, string> = {};
  for (const line of text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf("=");
    if (at <= 0) throw invalid("claims", `"${line.slice(0, 64)}" is not name=pattern`);
    const name = line.slice(0, at).trim();
    if (name in claims) throw invalid("claims", `The claim ${name.slice(0, 64)} is given twice`);
    claims[name] = line.slice(at + 1).trim();
  }
  return Object.keys(claims).length > 0 ? claims : undefined;
}

/** The add form as the REST route's request body, checked with its schema. */
function createInput(form: FormValues) {
  const audiences = form.text("audiences")?.split(/[\s,]+/).filter(Boolean);
  const age = form.text("maxTokenAgeSeconds")?.trim();
  const claims = claimsOf(form.text("claims"));
  return parseWith(createFederatedCredentialBody, {
    name: form.text("name") ?? "",
    issuer: form.text("issuer") ?? "",
    ...(form.text("description") ? { description: form.text("description") } : {}),
    ...(form.text("subject") ? { subject: form.text("subject")!.trim() } : {}),
    ...(claims ? { claims } : {}),
    ...(audiences && audiences.length > 0 ? { audiences } : {}),
    ...(age ? { maxTokenAgeSeconds: Number(age) } : {}),
    // An unticked box sends nothing: only a form that offered it (not an older page) may turn it off.
    singleUse: form.text("singleUseOffered") === undefined || form.checked("singleUse"),
  });
}

/** A policy with neither subject nor claims is refused for the two fields that would narrow it. */
function withCodeFields(errors: FormErrors, err: DomainError): FormErrors {
  if (err.code === "policy_too_broad") return { message: err.detail, fields: { ...errors.fields, subject: "Give a subject or a claim condition", claims: "Give a claim condition or a subject" } };
  if (err.code === "issuer_not_allowed") return { message: err.detail, fields: { ...errors.fields, issuer: err.detail } };
  return errors;
}

const setEnabled = (enabled: boolean) => async (c: ConsoleContext) => {
  const { org, sa, fed } = c.req.param() as { org: string; sa: string; fed: string };
  const back = backTo(await readForm(c), org, sa);
  return buttonAction(c, back, async () => {
    const policy = await updateFederatedCredential(consoleCtx(c), principalOf(c), org, sa, fed, parseWith(patchFederatedCredentialBody, { enabled }));
    return redirectWith(c, back, `${policy.name} ${enabled ? "enabled" : "disabled: its tokens are refused until it is enabled"}.`);
  });
};

export const federatedCredentialPages = consoleRouter()
  .get("/orgs/:org/service-accounts/:sa/federated-credentials", (c) => federatedPage(c))
  .post("/orgs/:org/service-accounts/:sa/federated-credentials", (c) =>
    handleForm(
      c,
      async (form) => {
        const { org, sa } = c.req.param();
        const policy = await createFederatedCredential(consoleCtx(c), principalOf(c), org, sa, createInput(form));
        return redirectWith(c, backTo(form, org, sa), `Federated credential ${policy.name} added.`);
      },
      (errors, values, status, err) => federatedPage(c, withCodeFields(errors, err), values, status),
    ),
  )
  .post("/orgs/:org/service-accounts/:sa/federated-credentials/:fed/enable", setEnabled(true))
  .post("/orgs/:org/service-accounts/:sa/federated-credentials/:fed/disable", setEnabled(false))
  .post("/orgs/:org/service-accounts/:sa/federated-credentials/:fed/remove", async (c) => {
    const { org, sa, fed } = c.req.param();
    const back = backTo(await readForm(c), org, sa);
    await deleteFederatedCredential(consoleCtx(c), principalOf(c), org, sa, fed);
    return redirectWith(c, back, "Federated credential removed.");
  });
