/** @jsxImportSource hono/jsx */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { accountPermissions, assignRole, listAccountAssignments, unassignRole } from "../domain/access/account-roles.ts";
import { listRoles } from "../domain/access/roles.ts";
import { readAccount } from "../domain/registry/accounts.ts";
import { DomainError } from "../domain/shared/errors.ts";
import { assignmentBody } from "../http/routes/service-accounts.ts";
import { consoleCtx, consoleRouter, operationsAt, pageOrg, paths, principalOf, type ConsoleContext } from "./context.ts";
import { buttonAction } from "./actions.ts";
import { redirectWith } from "./flash.ts";
import { Confirm, ErrorSummary, handleForm, noErrors, parseWith, PostForm, Select, type FormErrors } from "./forms.tsx";
import { Heading, page, Table, When } from "./layout.tsx";
import { roleText, scopeInput, scopeOptions, scopeText } from "./scopes.tsx";

/**
 * An account's access: its role assignments (assign, unassign) and its effective operations at a
 * chosen scope. `accessSection` is the part the account page shows; `/access` is the same on a page
 * of its own (where the forms post back to).
 */

const isDenied = (err: unknown) => err instanceof DomainError && err.code === "permission_denied";

export const accessPath = (org: string, sa: string) => `${paths.account(org, sa)}/access`;

interface SectionInput {
  org: { id: string; slug: string; name: string };
  accountId: string;
  /** The scope whose effective operations are shown (a picker value; the page's `at` query). */
  scope?: string | undefined;
  errors?: FormErrors;
  values?: Record<string, string>;
}

/** The "Access" section of a service account: assignments, the assign form, effective operations. */
export async function accessSection(c: ConsoleContext, p: SectionInput) {
  const ctx = consoleCtx(c);
  const principal = principalOf(c);
  const { org, accountId } = p;
  const errors = p.errors ?? noErrors;
  const [assignments, options, can, roles] = await Promise.all([
    listAccountAssignments(ctx, principal, org.id, accountId),
    scopeOptions(c, org),
    operationsAt(c, org.id),
    listRoles(ctx, principal, org.id).catch((err) => (isDenied(err) ? [] : Promise.reject(err))),
  ]);
  const scope = options.some((o) => o.value === p.scope) ? p.scope : "org";
  const effective = await accountPermissions(ctx, principal, org.id, accountId, scope);
  const base = accessPath(org.slug, accountId);
  const names = new Map(roles.map((r) => [r.id, r.name]));
  const assignable = roles.filter((r) => r.assignableToServiceAccounts);
  return (
    <section class="panel" aria-labelledby="access-heading">
      <h2 id="access-heading">Access</h2>
      <Table caption="Role assignments" head={["Role", "Scope", "Granted", ""]} rows={assignments.length} empty="This account holds no role.">
        {assignments.map((a) => {
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
                  <Confirm action={`${base}/assignments/${encodeURIComponent(a.id)}/delete`} label={`Unassign ${role}`} confirmLabel={`Unassign ${role} at ${where}`} consequences={[`The account loses the role ${role} at ${where}, and every operation it gives there.`]} />
                )}
              </td>
            </tr>
          );
        })}
      </Table>
      {can("roles.edit") && (
        <PostForm action={`${base}/assignments`} label="Assign a role" class="panel">
          <h3>Assign a role</h3>
          <ErrorSummary errors={errors} />
          <Select name="role" label="Role" required value={p.values?.role} errors={errors} options={assignable.map((r) => ({ value: r.id, label: r.builtin ? r.name : `${r.name} (custom)` }))} />
          <Select name="scope" label="Scope" value={p.values?.scope ?? "org"} errors={errors} options={options} hint="Granted at the org, a project or an environment; it is inherited below" />
          <button type="submit">Assign role</button>
        </PostForm>
      )}
      <form method="get" action={base} class="filters" aria-label="Effective permissions scope">
        <h3>Effective permissions</h3>
        <Select name="at" label="At scope" value={scope} options={options} />
        <button type="submit" class="secondary">
          Show
        </button>
      </form>
      <p>
        At <strong>{scopeText(options, effective.scope.type, effective.scope.id)}</strong> the account holds {effective.operations.length === 0 ? "no operation." : `${effective.operations.length} operation(s):`}
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

async function accessPage(c: ConsoleContext, errors: FormErrors = noErrors, values?: Record<string, string>, status: ContentfulStatusCode = 200) {
  const org = await pageOrg(c, c.req.param("org")!);
  const account = await readAccount(consoleCtx(c), principalOf(c), org.id, c.req.param("sa")!);
  const section = await accessSection(c, { org, accountId: account.id, scope: c.req.query("at"), errors, ...(values ? { values } : {}) });
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
        const target = await pageOrg(c, org);
        const scope = scopeInput(form.text("scope"), target.id);
        const input = parseWith(assignmentBody, { role: form.text("role") ?? "", ...(scope ? { scope } : {}) });
        await assignRole(consoleCtx(c), principalOf(c), target.id, sa, input);
        return redirectWith(c, accessPath(org, sa), "Role assigned.");
      },
      (errors, values, status) => accessPage(c, errors, values, status),
    ),
  )
  .post("/orgs/:org/service-accounts/:sa/access/assignments/:ra/delete", (c) => {
    const { org, sa, ra } = c.req.param();
    return buttonAction(c, accessPath(org, sa), async () => {
      await unassignRole(consoleCtx(c), principalOf(c), org, sa, ra);
      return redirectWith(c, accessPath(org, sa), "Role unassigned.");
    });
  });
