import { createRoute, z } from "@hono/zod-openapi";
import { createOrg, listOrgs, patchOrg, readOrg } from "../../domain/registry/orgs.ts";
import { createEnvironment, createProject, deleteEnvironment, deleteProject, listEnvironments, listProjects, readEnvironment, readProject } from "../../domain/registry/projects.ts";
import { ctxOf, displayText, errors, jsonBody, jsonResponse, needs, pageOf, pageQuery, router, slugSchema } from "./common.ts";
import { environmentSchema, orgPolicySchema, orgSchema, projectSchema, toEnvironmentDto, toOrgDto, toProjectDto } from "./dto.ts";

export const createOrgBody = z
  .object({ slug: slugSchema, name: displayText(128), policy: orgPolicySchema.partial().strict().optional() })
  .strict()
  .openapi("CreateOrg", { example: { slug: "acme", name: "Acme Corp", policy: { maxActiveTokensPerAccount: 2 } } });
export const patchOrgBody = z.object({ name: displayText(128).optional(), policy: orgPolicySchema.partial().strict().optional() }).strict().openapi("PatchOrg", { example: { name: "Acme Corporation", policy: { maxTokenLifetimeDays: 90 } } });
export const nodeBody = z.object({ slug: slugSchema, name: displayText(128) }).strict().openapi({ example: { slug: "payments", name: "Payments" } });

const orgParam = z.object({ org: z.string().max(100).openapi({ description: "Org id or slug" }) });
const projectParam = orgParam.extend({ prj: z.string().max(100).openapi({ description: "Project id or slug" }) });
const envParam = projectParam.extend({ env: z.string().max(100).openapi({ description: "Environment id or slug" }) });
const tags = ["Organizations"];

export const orgRoutes = router()
  .openapi(
    createRoute({ method: "post", path: "/", tags, summary: "Create an org", ...needs(createOrg), request: jsonBody(createOrgBody), responses: { 201: jsonResponse("The org", orgSchema), ...errors(400, 401, 403, 409) } }),
    async (c) => c.json(toOrgDto(await createOrg(ctxOf(c), c.get("principal"), c.req.valid("json"))), 201),
  )
  .openapi(
    createRoute({ method: "get", path: "/", tags, summary: "List the orgs visible to the caller", security: [{ bearer: [] }], request: { query: pageQuery }, responses: { 200: jsonResponse("A page of orgs", pageOf(orgSchema)), ...errors(400, 401) } }),
    async (c) => {
      const page = await listOrgs(ctxOf(c), c.get("principal"), c.req.valid("query"));
      return c.json({ items: page.items.map(toOrgDto), nextCursor: page.nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}", tags, summary: "Read an org and its policy", ...needs(readOrg), request: { params: orgParam }, responses: { 200: jsonResponse("The org", orgSchema), ...errors(401, 403, 404) } }),
    async (c) => c.json(toOrgDto(await readOrg(ctxOf(c), c.get("principal"), c.req.valid("param").org)), 200),
  )
  .openapi(
    createRoute({ method: "patch", path: "/{org}", tags, summary: "Rename an org or set its policy", ...needs(patchOrg), request: { params: orgParam, ...jsonBody(patchOrgBody) }, responses: { 200: jsonResponse("The org", orgSchema), ...errors(400, 401, 403, 404, 409) } }),
    async (c) => c.json(toOrgDto(await patchOrg(ctxOf(c), c.get("principal"), c.req.valid("param").org, c.req.valid("json"))), 200),
  )
  .openapi(
    createRoute({ method: "post", path: "/{org}/projects", tags: ["Projects"], summary: "Create a project", ...needs(createProject), request: { params: orgParam, ...jsonBody(nodeBody) }, responses: { 201: jsonResponse("The project", projectSchema), ...errors(400, 401, 403, 404, 409) } }),
    async (c) => c.json(toProjectDto(await createProject(ctxOf(c), c.get("principal"), c.req.valid("param").org, c.req.valid("json"))), 201),
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}/projects", tags: ["Projects"], summary: "List projects", ...needs(listProjects), request: { params: orgParam, query: pageQuery }, responses: { 200: jsonResponse("A page of projects", pageOf(projectSchema)), ...errors(400, 401, 403, 404) } }),
    async (c) => {
      const page = await listProjects(ctxOf(c), c.get("principal"), c.req.valid("param").org, c.req.valid("query"));
      return c.json({ items: page.items.map(toProjectDto), nextCursor: page.nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}/projects/{prj}", tags: ["Projects"], summary: "Read a project", ...needs(readProject), request: { params: projectParam }, responses: { 200: jsonResponse("The project", projectSchema), ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, prj } = c.req.valid("param");
      return c.json(toProjectDto(await readProject(ctxOf(c), c.get("principal"), org, prj)), 200);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: "/{org}/projects/{prj}", tags: ["Projects"], summary: "Delete a project, its environments and the roles granted on them", ...needs(deleteProject), request: { params: projectParam }, responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, prj } = c.req.valid("param");
      await deleteProject(ctxOf(c), c.get("principal"), org, prj);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({ method: "post", path: "/{org}/projects/{prj}/environments", tags: ["Projects"], summary: "Create an environment", ...needs(createEnvironment), request: { params: projectParam, ...jsonBody(nodeBody) }, responses: { 201: jsonResponse("The environment", environmentSchema), ...errors(400, 401, 403, 404, 409) } }),
    async (c) => {
      const { org, prj } = c.req.valid("param");
      return c.json(toEnvironmentDto(await createEnvironment(ctxOf(c), c.get("principal"), org, prj, c.req.valid("json"))), 201);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}/projects/{prj}/environments", tags: ["Projects"], summary: "List environments", ...needs(listEnvironments), request: { params: projectParam, query: pageQuery }, responses: { 200: jsonResponse("A page of environments", pageOf(environmentSchema)), ...errors(400, 401, 403, 404) } }),
    async (c) => {
      const { org, prj } = c.req.valid("param");
      const page = await listEnvironments(ctxOf(c), c.get("principal"), org, prj, c.req.valid("query"));
      return c.json({ items: page.items.map(toEnvironmentDto), nextCursor: page.nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}/projects/{prj}/environments/{env}", tags: ["Projects"], summary: "Read an environment", ...needs(readEnvironment), request: { params: envParam }, responses: { 200: jsonResponse("The environment", environmentSchema), ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, prj, env } = c.req.valid("param");
      return c.json(toEnvironmentDto(await readEnvironment(ctxOf(c), c.get("principal"), org, prj, env)), 200);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: "/{org}/projects/{prj}/environments/{env}", tags: ["Projects"], summary: "Delete an environment and the roles granted on it", ...needs(deleteEnvironment), request: { params: envParam }, responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, prj, env } = c.req.valid("param");
      await deleteEnvironment(ctxOf(c), c.get("principal"), org, prj, env);
      return c.body(null, 204);
    },
  );
