/** @jsxImportSource hono/jsx */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ORG_OPERATIONS, OPERATIONS, type Operation } from "../domain/access/permissions.ts";
import { createRole, deleteRole, getRole, listRoles, patchRole, type RoleDef } from "../domain/access/roles.ts";
import { roleBody } from "../http/routes/roles.ts";
import { consoleCtx, consoleRouter, operationsAt, pageOrg, paths, principalOf, type Can, type ConsoleContext } from "./context.ts";
import { buttonAction } from "./actions.ts";
import { redirectWith } from "./flash.ts";
import { Check, Confirm, ErrorSummary, Field, handleForm, noErrors, parseWith, PostForm, TextArea, type FormErrors, type FormValues } from "./forms.tsx";
import { Heading, page, Table } from "./layout.tsx";

/** Roles: the built-in ones and the org's custom roles; custom roles are created, edited and deleted here. */

const rolePath = (org: string, role: string) => `${paths.roles(org)}/${encodeURIComponent(role)}`;

/** What the role form holds when it is (re)shown. */
interface RoleValues {
  name?: string | undefined;
  description?: string | undefined;
  operations: string[];
  assignable: boolean;
}

const fromRole = (r: RoleDef): RoleValues => ({ name: r.name, description: r.description ?? undefined, operations: r.operations, assignable: r.assignableToServiceAccounts });
const NEW_ROLE: RoleValues = { operations: [], assignable: true };

/** A custom role may be changed by whoever may edit roles and holds every operation it has (the domain's escalation rule). */
const canChange = (can: Can, role: RoleDef) => !role.builtin && can("roles.edit") && role.operations.every((op) => can(op));

/** The operations as checkboxes, from the catalogue; the ones the principal does not hold cannot be granted (disabled). */
function OperationBoxes(p: { values: RoleValues; can: Can; errors: FormErrors }) {
  const error = p.errors.fields.operations;
  return (
    <fieldset class="field checks" aria-describedby={error ? "f-operations-error" : undefined}>
      <legend>Operations</legend>
      {ORG_OPERATIONS.map((op) => {
        const id = `f-op-${op.replace(/[^a-z0-9-]/g, "-")}`;
        const held = p.can(op);
        return (
          <div class="field check">
            <input id={id} type="checkbox" name="operations" value={op} checked={p.values.operations.includes(op)} disabled={!held} aria-describedby={`${id}-hint`} />
            <label for={id}>
              <code>{op}</code>
            </label>
            <span class="hint" id={`${id}-hint`}>
              {OPERATIONS[op]}
              {held ? "" : " (you do not hold it, so you cannot grant it)"}
            </span>
          </div>
        );
      })}
      {error && (
        <span class="error" id="f-operations-error">
          {error}
        </span>
      )}
    </fieldset>
  );
}

function RoleForm(p: { action: string; title: string; submit: string; values: RoleValues; can: Can; errors: FormErrors }) {
  return (
    <PostForm action={p.action} label={p.title}>
      <h2>{p.title}</h2>
      <ErrorSummary errors={p.errors} />
      <Field name="name" label="Name" required value={p.values.name} errors={p.errors} hint="Lowercase letters, digits, . _ - (up to 63)" />
      <TextArea name="description" label="Description" value={p.values.description} errors={p.errors} />
      <OperationBoxes values={p.values} can={p.can} errors={p.errors} />
      <Check name="assignable" label="Assignable to service accounts" checked={p.values.assignable} errors={p.errors} />
      <button type="submit">{p.submit}</button>
    </PostForm>
  );
}

const OperationList = (p: { operations: readonly Operation[] }) => (
  <ul class="actions">
    {p.operations.map((op) => (
      <li>
        <code>{op}</code>
      </li>
    ))}
  </ul>
);

async function rolesPage(c: ConsoleContext, errors: FormErrors = noErrors, values: RoleValues = NEW_ROLE, status: ContentfulStatusCode = 200) {
  const org = await pageOrg(c, c.req.param("org")!);
  const roles = await listRoles(consoleCtx(c), principalOf(c), org.id);
  const can = await operationsAt(c, org.id);
  return page(
    c,
    {
      title: `Roles · ${org.name}`,
      org,
      nav: "roles",
      children: (
        <>
          <h1>Roles</h1>
          <Table caption={`Built-in and custom roles of ${org.name}`} head={["Name", "Kind", "Description", "Operations", "For service accounts"]} rows={roles.length}>
            {roles.map((r) => (
              <tr>
                <td>{r.builtin ? <strong>{r.name}</strong> : <a href={rolePath(org.slug, r.name)}>{r.name}</a>}</td>
                <td>
                  <span class="badge">{r.builtin ? "built-in" : "custom"}</span>
                </td>
                <td>{r.description ?? <span class="muted">—</span>}</td>
                <td>
                  <OperationList operations={r.operations} />
                </td>
                <td>{r.assignableToServiceAccounts ? "Yes" : "No"}</td>
              </tr>
            ))}
          </Table>
          {can("roles.edit") && <RoleForm action={paths.roles(org.slug)} title="Create a custom role" submit="Create role" values={values} can={can} errors={errors} />}
        </>
      ),
    },
    status,
  );
}

async function rolePage(c: ConsoleContext, errors: FormErrors = noErrors, values?: RoleValues, status: ContentfulStatusCode = 200) {
  const org = await pageOrg(c, c.req.param("org")!);
  const role = await getRole(consoleCtx(c), principalOf(c), org.id, c.req.param("role")!);
  const can = await operationsAt(c, org.id);
  const changeable = canChange(can, role);
  return page(
    c,
    {
      title: `Role ${role.name} · ${org.name}`,
      org,
      nav: "roles",
      children: (
        <>
          <Heading title={`Role ${role.name}`}>
            <a href={paths.roles(org.slug)}>All roles</a>
          </Heading>
          <section class="panel" aria-labelledby="role-facts">
            <h2 id="role-facts">{role.builtin ? "Built-in role" : "Custom role"}</h2>
            <dl class="facts">
              <dt>Id</dt>
              <dd>
                <code>{role.id}</code>
              </dd>
              <dt>Description</dt>
              <dd>{role.description ?? "—"}</dd>
              <dt>Assignable to service accounts</dt>
              <dd>{role.assignableToServiceAccounts ? "Yes" : "No"}</dd>
              <dt>Operations</dt>
              <dd>
                <OperationList operations={role.operations} />
              </dd>
            </dl>
          </section>
          {!role.builtin && can("roles.edit") && !changeable && <p class="muted">This role holds operations you do not hold; only someone who holds all of them can change or delete it.</p>}
          {changeable && (
            <>
              <RoleForm action={rolePath(org.slug, role.id)} title="Edit the role" submit="Save role" values={values ?? fromRole(role)} can={can} errors={errors} />
              <section class="panel" aria-labelledby="delete-role">
                <h2 id="delete-role">Delete the role</h2>
                <Confirm
                  action={`${rolePath(org.slug, role.id)}/delete`}
                  label={`Delete role ${role.name}`}
                  consequences={[`The role ${role.name} is deleted.`, "Every assignment of it is removed: the accounts holding it lose its operations.", "Pending invitations to it are withdrawn."]}
                />
              </section>
            </>
          )}
        </>
      ),
    },
    status,
  );
}

/** The role form as the REST body (the same schema checks both). */
function roleInput(form: FormValues) {
  return parseWith(roleBody, {
    name: form.text("name") ?? "",
    description: form.text("description") ?? null,
    operations: form.all("operations"),
    assignableToServiceAccounts: form.checked("assignable"),
  });
}

const valuesOf = (form: FormValues): RoleValues => ({ name: form.raw.name, description: form.raw.description, operations: form.all("operations"), assignable: form.checked("assignable") });
const ALIASES = { assignableToServiceAccounts: "assignable" };

export const rolePages = consoleRouter()
  .get("/orgs/:org/roles", (c) => rolesPage(c))
  .post("/orgs/:org/roles", (c) => {
    let values = NEW_ROLE;
    return handleForm(
      c,
      async (form) => {
        values = valuesOf(form);
        const role = await createRole(consoleCtx(c), principalOf(c), c.req.param("org"), roleInput(form));
        return redirectWith(c, rolePath(c.req.param("org"), role.name), `Role ${role.name} created.`);
      },
      (errors, _raw, status) => rolesPage(c, errors, values, status),
      ALIASES,
    );
  })
  .get("/orgs/:org/roles/:role", (c) => rolePage(c))
  .post("/orgs/:org/roles/:role", (c) => {
    let values = NEW_ROLE;
    return handleForm(
      c,
      async (form) => {
        values = valuesOf(form);
        const { org, role } = c.req.param();
        const saved = await patchRole(consoleCtx(c), principalOf(c), org, role, roleInput(form));
        return redirectWith(c, rolePath(org, saved.name), `Role ${saved.name} saved.`);
      },
      (errors, _raw, status) => rolePage(c, errors, values, status),
      ALIASES,
    );
  })
  .post("/orgs/:org/roles/:role/delete", (c) => {
    const { org, role } = c.req.param();
    return buttonAction(c, rolePath(org, role), async () => {
      await deleteRole(consoleCtx(c), principalOf(c), org, role);
      return redirectWith(c, paths.roles(org), "Role deleted.");
    });
  });
