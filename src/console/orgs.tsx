/** @jsxImportSource hono/jsx */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { isPlatformRoot } from "../domain/access/permissions.ts";
import { createOrg, listOrgs, readOrg, policyOf } from "../domain/registry/orgs.ts";
import { createEnvironment, createProject, deleteEnvironment, deleteProject, listEnvironments, listProjects, readProject } from "../domain/registry/projects.ts";
import { createOrgBody, nodeBody } from "../http/routes/orgs.ts";
import { consoleCtx, consoleRouter, operationsAt, pageOf, pageOrg, paths, principalOf, type ConsoleContext } from "./context.ts";
import { redirectWith } from "./flash.ts";
import { Confirm, ErrorSummary, Field, handleForm, noErrors, parseWith, PostForm, type FormErrors, type FormValues } from "./forms.tsx";
import { Heading, page, Pager, Table, When } from "./layout.tsx";

/** The hierarchy: orgs (root sees all, others their own), an org's overview, projects and environments. */

const withCursor = (base: string, cursor: string | null) => (cursor ? `${base}?cursor=${encodeURIComponent(cursor)}` : null);

/** Slug and name: the form of an org, a project and an environment. */
const NodeFields = (p: { errors: FormErrors; values?: Record<string, string> }) => (
  <>
    <Field name="slug" label="Slug" required value={p.values?.slug} errors={p.errors} hint="1-40 letters, digits or dashes; used in URLs" />
    <Field name="name" label="Name" required value={p.values?.name} errors={p.errors} />
  </>
);

async function orgsPage(c: ConsoleContext, errors: FormErrors = noErrors, values?: Record<string, string>, status: ContentfulStatusCode = 200) {
  const result = await listOrgs(consoleCtx(c), principalOf(c), pageOf(c, 50));
  const root = isPlatformRoot(principalOf(c));
  return page(
    c,
    {
      title: "Organizations",
      children: (
        <>
          <h1>Organizations</h1>
          <Table caption="Organizations you can see" head={["Name", "Slug", "Created"]} rows={result.items.length} empty="No organization yet.">
            {result.items.map((o) => (
              <tr>
                <td>
                  <a href={paths.org(o.slug)}>{o.name}</a>
                </td>
                <td>
                  <code>{o.slug}</code>
                </td>
                <td>
                  <When ms={o.createdAt} />
                </td>
              </tr>
            ))}
          </Table>
          <Pager nextHref={withCursor(paths.home, result.nextCursor)} firstHref={c.req.query("cursor") ? paths.home : null} />
          {root && (
            <PostForm action="/console/orgs" label="Create an organization">
              <h2>Create an organization</h2>
              <ErrorSummary errors={errors} />
              <NodeFields errors={errors} values={values} />
              <button type="submit">Create organization</button>
            </PostForm>
          )}
        </>
      ),
    },
    status,
  );
}

async function overviewPage(c: ConsoleContext) {
  const ctx = consoleCtx(c);
  const org = await readOrg(ctx, principalOf(c), c.req.param("org")!);
  const policy = policyOf(org);
  return page(c, {
    title: org.name,
    org,
    nav: "overview",
    children: (
      <>
        <h1>{org.name}</h1>
        <section class="panel" aria-labelledby="org-facts">
          <h2 id="org-facts">Organization</h2>
          <dl class="facts">
            <dt>Slug</dt>
            <dd>
              <code>{org.slug}</code>
            </dd>
            <dt>Id</dt>
            <dd>
              <code>{org.id}</code>
            </dd>
            <dt>Created</dt>
            <dd>
              <When ms={org.createdAt} />
            </dd>
            <dt>Active tokens per account</dt>
            <dd>{policy.maxActiveTokensPerAccount}</dd>
            <dt>Longest token lifetime</dt>
            <dd>{policy.maxTokenLifetimeDays === null ? "No limit" : `${policy.maxTokenLifetimeDays} days`}</dd>
          </dl>
        </section>
        <p class="actions">
          <a class="button secondary" href={paths.projects(org.slug)}>
            Projects
          </a>
          <a class="button secondary" href={paths.accounts(org.slug)}>
            Service accounts
          </a>
        </p>
      </>
    ),
  });
}

async function projectsPage(c: ConsoleContext, errors: FormErrors = noErrors, values?: Record<string, string>, status: ContentfulStatusCode = 200) {
  const ctx = consoleCtx(c);
  const org = await pageOrg(c, c.req.param("org")!);
  const result = await listProjects(ctx, principalOf(c), org.id, pageOf(c, 50));
  const can = await operationsAt(c, org.id);
  const base = paths.projects(org.slug);
  return page(
    c,
    {
      title: `Projects · ${org.name}`,
      org,
      nav: "projects",
      children: (
        <>
          <h1>Projects</h1>
          <Table caption={`Projects of ${org.name}`} head={["Name", "Slug", "Created"]} rows={result.items.length} empty="No project yet.">
            {result.items.map((p) => (
              <tr>
                <td>
                  <a href={paths.project(org.slug, p.slug)}>{p.name}</a>
                </td>
                <td>
                  <code>{p.slug}</code>
                </td>
                <td>
                  <When ms={p.createdAt} />
                </td>
              </tr>
            ))}
          </Table>
          <Pager nextHref={withCursor(base, result.nextCursor)} firstHref={c.req.query("cursor") ? base : null} />
          {can("orgs.admin") && (
            <PostForm action={base} label="Create a project">
              <h2>Create a project</h2>
              <ErrorSummary errors={errors} />
              <NodeFields errors={errors} values={values} />
              <button type="submit">Create project</button>
            </PostForm>
          )}
        </>
      ),
    },
    status,
  );
}

async function projectPage(c: ConsoleContext, errors: FormErrors = noErrors, values?: Record<string, string>, status: ContentfulStatusCode = 200) {
  const ctx = consoleCtx(c);
  const org = await pageOrg(c, c.req.param("org")!);
  const project = await readProject(ctx, principalOf(c), org.id, c.req.param("prj")!);
  const envs = await listEnvironments(ctx, principalOf(c), org.id, project.id, { limit: 200 });
  const can = await operationsAt(c, org.id, { projectId: project.id });
  const base = paths.project(org.slug, project.slug);
  return page(
    c,
    {
      title: `${project.name} · ${org.name}`,
      org,
      nav: "projects",
      children: (
        <>
          <Heading title={`Project ${project.name}`} />
          <p class="muted">
            Slug <code>{project.slug}</code> · id <code>{project.id}</code>
          </p>
          <h2>Environments</h2>
          <Table caption={`Environments of ${project.name}`} head={["Name", "Slug", "Id", "Created", ""]} rows={envs.items.length} empty="No environment yet.">
            {envs.items.map((e) => (
              <tr>
                <td>{e.name}</td>
                <td>
                  <code>{e.slug}</code>
                </td>
                <td>
                  <code>{e.id}</code>
                </td>
                <td>
                  <When ms={e.createdAt} />
                </td>
                <td>
                  {can("orgs.admin") && (
                    <Confirm
                      action={`${base}/environments/${e.slug}/delete`}
                      label={`Delete ${e.name}`}
                      consequences={[`The environment ${e.name} is deleted.`, "Every role granted on it is removed, and pending invitations to it are withdrawn."]}
                    />
                  )}
                </td>
              </tr>
            ))}
          </Table>
          {can("orgs.admin") && (
            <>
              <PostForm action={`${base}/environments`} label="Create an environment">
                <h2>Create an environment</h2>
                <ErrorSummary errors={errors} />
                <NodeFields errors={errors} values={values} />
                <button type="submit">Create environment</button>
              </PostForm>
              <section class="panel" aria-labelledby="danger-zone">
                <h2 id="danger-zone">Delete the project</h2>
                <Confirm
                  action={`${base}/delete`}
                  label={`Delete project ${project.name}`}
                  consequences={[
                    `The project ${project.name} and its ${envs.items.length} environment(s) are deleted.`,
                    "Every role granted on the project or its environments is removed, and pending invitations to them are withdrawn.",
                  ]}
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

const nodeInput = (form: FormValues) => parseWith(nodeBody, { slug: form.text("slug") ?? "", name: form.text("name") ?? "" });

export const orgPages = consoleRouter()
  .get("/", (c) => orgsPage(c))
  .post("/orgs", (c) =>
    handleForm(
      c,
      async (form) => {
        const input = parseWith(createOrgBody, { slug: form.text("slug") ?? "", name: form.text("name") ?? "" });
        const org = await createOrg(consoleCtx(c), principalOf(c), input);
        return redirectWith(c, paths.org(org.slug), `Organization ${org.name} created.`);
      },
      (errors, values, status) => orgsPage(c, errors, values, status),
    ),
  )
  .get("/orgs/:org", (c) => overviewPage(c))
  .get("/orgs/:org/projects", (c) => projectsPage(c))
  .post("/orgs/:org/projects", (c) =>
    handleForm(
      c,
      async (form) => {
        const project = await createProject(consoleCtx(c), principalOf(c), c.req.param("org"), nodeInput(form));
        return redirectWith(c, paths.project(c.req.param("org"), project.slug), `Project ${project.name} created.`);
      },
      (errors, values, status) => projectsPage(c, errors, values, status),
    ),
  )
  .get("/orgs/:org/projects/:prj", (c) => projectPage(c))
  .post("/orgs/:org/projects/:prj/environments", (c) =>
    handleForm(
      c,
      async (form) => {
        const { org, prj } = c.req.param();
        const env = await createEnvironment(consoleCtx(c), principalOf(c), org, prj, nodeInput(form));
        return redirectWith(c, paths.project(org, prj), `Environment ${env.name} created.`);
      },
      (errors, values, status) => projectPage(c, errors, values, status),
    ),
  )
  .post("/orgs/:org/projects/:prj/delete", async (c) => {
    const { org, prj } = c.req.param();
    await deleteProject(consoleCtx(c), principalOf(c), org, prj);
    return redirectWith(c, paths.projects(org), "Project deleted.");
  })
  .post("/orgs/:org/projects/:prj/environments/:env/delete", async (c) => {
    const { org, prj, env } = c.req.param();
    await deleteEnvironment(consoleCtx(c), principalOf(c), org, prj, env);
    return redirectWith(c, paths.project(org, prj), "Environment deleted.");
  });
