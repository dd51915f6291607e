/** @jsxImportSource hono/jsx */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { accountPermissions, assignRole, listAccountAssignments, unassignRole } from "../domain/access/account-roles.ts";
import { listRoles } from "../domain/access/roles.ts";
import { readAccount } from "../domain/registry/accounts.ts";
import { DomainError } from "../domain/shared/errors.ts";
import { assignmentBody } from "../http/routes/service-accounts.ts";
import { roleText, scopeText } from "./access-labels.ts";
import { addAccountSection } from "./account-sections.ts";
import { buttonAction } from "./actions.ts";
import { consoleCtx, consoleRouter, operationsAt, pageOrg, paths, principalOf, type ConsoleContext } from "./context.ts";
import { redirectWith } from "./flash.ts";
import { Confirm, ErrorSummary, handleForm, noErrors, parseWith, PostForm, readForm, Select, type FormErrors, type FormValues } from "./forms.tsx";
import { Heading, page, Table, When } from "./layout.tsx";
import { scopeInput, scopeOptions, ScopeSelect } from "./scope-picker.tsx";

/**
 * An account's access: its role assignments (assign, unassign) and its effective operations at a
 * chosen scope. The account page shows it as its "Access" section (account-sections.ts); `/access`
 * is the same on a page of its own, where a form with errors is shown again.
 */

const isDenied = (err: unknown) => err instanceof DomainError && err.code === "permission_denied";

export const accessPath = (org: string, sa: string) => `${paths.account(org, sa)}/access`;

/** Where a form of the section goes back to: the account page it was on, or the access page. */
const backTo = (form: FormValues, org: string, sa: string) => (form.text("from") === "account" ? `${paths.account(org, sa)}#access-heading` : accessPath(org, sa));

interface SectionInput {
  org: { id: string; slug: string; name: string };
  accountId: string;
  /** The page the section is on (its forms come back to it). */
  on: "account" | "access";
  errors?: FormErrors | undefined;
  values?: Record<string, string> | undefined;
}

/** The "Access" section of a service account: assignments, the assign form, effective operations at the page's `at` scope. */
export async function accessSection(c: ConsoleContext, p: SectionInput) {
  const ctx = consoleCtx(c);
  const principal = principalOf(c);
  const { org, accountId } = p;
  const errors = p.errors ?? noErrors;
  const [assignments, options, can, roles] = await Promise.all([
    listAccountAssignments(ctx, principal, org.id, accountId),
    scopeOptions(c, org.id),
    operationsAt(c, org.id),
    listRoles(ctx, principal, org.id).catch((err) => (isDenied(err) ? [] : Promise.reject(err))),
  ]);
  const at = options.find((o) => o.value === c.req.query("at"))?.value ?? "org";
  const effective = await accountPermissions(ctx, principal, org.id, accountId, scopeInput(at)?.id);
  const base = accessPath(org.slug, accountId);
  const page = p.on === "account" ? paths.account(org.slug, accountId) : base;
  const from = <input type="hidden" name="from" value={p.on} />;
  const names = new Map(roles.map((r) => [r.id, r.name]));
  // Roles it holds in other orgs come from invitations it accepted; those orgs manage them.
  const here = assignments.filter((a) => a.orgId === org.id);
  const elsewhere = assignments.filter((a) => a.orgId !== org.id);
  const assignable = roles.filter((r) => r.assignableToServiceAccounts);
  return (
    <section class="panel" aria-labelledby="access-heading">
      <h2 id="access-heading">Access</h2>
      <Table caption="Role assignments" head={["Role", "Scope", "Granted", ""]} rows={here.length} empty="This account holds no role in this organization.">
        {here.map((a) => {
          const role = roleText(a.roleId, names);
          const where = scopeText(options, a.scopeType, a.scopeId);
          return (
            <tr>
              <td>{role}</td>
              <td>{where}</td>
              <td>
                <When ms={a.createdAt} />
              </td>
              <td>
                {can("roles.edit") && (
                  <Confirm
                    action={`${base}/assignments/${encodeURIComponent(a.id)}/delete`}
                    label={`Unassign ${role}`}
                    confirmLabel={`Unassign ${role} at ${where}`}
                    consequences={[`The account loses the role ${role} at ${where}, and every operation it gives there.`]}
                    fields={{ from: p.on }}
                  />
                )}
              </td>
            </tr>
          );
        })}
      </Table>
      {elsewhere.length > 0 && (
        <Table caption="Roles held in other organizations (accepted invitations; those organizations manage them)" head={["Organization", "Role", "Scope"]} rows={elsewhere.length}>
          {elsewhere.map((a) => (
            <tr>
              <td>
                <code>{a.orgId}</code>
              </td>
              <td>{roleText(a.roleId, new Map(a.roleName ? [[a.roleId, a.roleName]] : []))}</td>
              <td>
                {a.scopeType} <code>{a.scopeId}</code>
              </td>
            </tr>
          ))}
        </Table>
      )}
      {can("roles.edit") && (
        <PostForm action={`${base}/assignments`} label="Assign a role">
          <h3>Assign a role</h3>
          {from}
          <ErrorSummary errors={errors} />
          <Select name="role" label="Role" required value={p.values?.role} errors={errors} options={assignable.map((r) => ({ value: r.id, label: r.builtin ? r.name : `${r.name} (custom)` }))} />
          <ScopeSelect options={options} value={p.values?.scope} errors={errors} hint="Granted at the org, a project or an environment; it is inherited below" />
          <button type="submit">Assign role</button>
        </PostForm>
      )}
      <form method="get" action={`${page}#access-heading`} class="filters" aria-label="Effective permissions scope">
        <h3>Effective permissions</h3>
        <Select name="at" label="At scope" value={at} options={options} />
        <button type="submit" class="secondary">
          Show
        </button>
      </form>
      <p>
        At <strong>{scopeText(options, effective.scope.type, effective.scope.id)}</strong> the account holds{" "}
        {effective.operations.length === 0 ? "no operation." : `${effective.operations.length} operation(s):`}
      </p>
      {effective.operations.length > 0 && (
        <ul class="actions" aria-label="Effective operations">
          {effective.operations.map((op) => (
            <li>
              <code>{op}</code>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

addAccountSection({ id: "access", order: 10, render: ({ c, org, account }) => accessSection(c, { org, accountId: account.id, on: "account" }) });

async function accessPage(c: ConsoleContext, errors: FormErrors = noErrors, values?: Record<string, string>, status: ContentfulStatusCode = 200) {
  const org = await pageOrg(c, c.req.param("org")!);
  const account = await readAccount(consoleCtx(c), principalOf(c), org.id, c.req.param("sa")!);
  const section = await accessSection(c, { org, accountId: account.id, on: "access", errors, values });
  return page(
    c,
    {
      title: `Access of ${account.name} · ${org.name}`,
      org,
      nav: "service-accounts",
      children: (
        <>
          <Heading title={`Access of ${account.name}`}>
            <a href={paths.account(org.slug, account.id)}>Back to the account</a>
          </Heading>
          {section}
        </>
      ),
    },
    status,
  );
}

export const accessPages = consoleRouter()
  .get("/orgs/:org/service-accounts/:sa/access", (c) => accessPage(c))
  .post("/orgs/:org/service-accounts/:sa/access/assignments", (c) =>
    handleForm(
      c,
      async (form) => {
        const { org, sa } = c.req.param();
        const scope = scopeInput(form.text("scope"));
        const input = parseWith(assignmentBody, { role: form.text("role") ?? "", ...(scope ? { scope } : {}) });
        await assignRole(consoleCtx(c), principalOf(c), org, sa, input);
        return redirectWith(c, backTo(form, org, sa), "Role assigned.");
      },
      (errors, values, status) => accessPage(c, errors, values, status),
    ),
  )
  .post("/orgs/:org/service-accounts/:sa/access/assignments/:ra/delete", async (c) => {
    const { org, sa, ra } = c.req.param();
    const back = backTo(await readForm(c), org, sa);
    return buttonAction(c, back, async () => {
      await unassignRole(consoleCtx(c), principalOf(c), org, sa, ra);
      return redirectWith(c, back, "Role unassigned.");
    });
  });
