import type { Command } from "commander";
import { listPages, seg } from "../api.ts";
import { verb, withJson, withOrg, withPaging, type Run } from "../command.ts";
import { usageError } from "../errors.ts";
import { info, printList, printOne, type Column } from "../output.ts";

interface Node {
  id: string;
  slug: string;
  name: string;
  createdAt: string;
}
const columns: Column<Node>[] = [
  ["id", (n) => n.id],
  ["slug", (n) => n.slug],
  ["name", (n) => n.name],
  ["created", (n) => n.createdAt],
];

/** `--policy '{"maxTokenLifetimeDays":90}'`: the org policy fields as JSON. */
function policy(value: string | undefined): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  try {
    const p = JSON.parse(value);
    if (p && typeof p === "object" && !Array.isArray(p)) return p;
  } catch {
    // reported below
  }
  throw usageError(`--policy takes a JSON object, e.g. '{"maxTokenLifetimeDays":90}'`);
}

const orgPath = (run: Run) => `/api/v1/orgs/${seg(run.org())}`;
function projectPath(run: Run): string {
  if (!run.opts.project) throw usageError("Give the project: --project PROJECT (id or slug)");
  return `${orgPath(run)}/projects/${seg(run.opts.project)}`;
}

export function orgCommands(program: Command): void {
  const orgs = program.command("orgs").description("Organizations: create, list, get, edit");
  withJson(
    verb(orgs, "create <slug>", "Create an org", async (run, slug) => {
      printOne(await run.api().request("POST", "/api/v1/orgs", { body: { slug, name: run.opts.name ?? slug, ...(run.opts.policy ? { policy: policy(run.opts.policy) } : {}) } }), run.opts.json, run.opts.json ? undefined : ["id", "slug", "name", "createdAt"]);
    }),
  )
    .option("--name <name>", "display name (default: the slug)")
    .option("--policy <json>", "org policy fields as a JSON object");
  withPaging(
    withJson(
      verb(orgs, "list", "The orgs the caller sees", async (run) => {
        printList(await listPages<Node>(run.api(), "/api/v1/orgs", { limit: run.opts.limit, cursor: run.opts.cursor }, Boolean(run.opts.all)), columns, run.opts.json);
      }),
    ),
  );
  withJson(
    verb(orgs, "get [org]", "Show an org and its policy (default: --org or the profile's)", async (run, org) => {
      printOne(await run.api().request("GET", `/api/v1/orgs/${seg(org ?? run.org())}`), run.opts.json);
    }),
  ).option("--org <org>", "org id or slug");
  withJson(
    verb(orgs, "edit [org]", "Rename an org or change its policy", async (run, org) => {
      const body = { ...(run.opts.name ? { name: run.opts.name } : {}), ...(run.opts.policy ? { policy: policy(run.opts.policy) } : {}) };
      if (!Object.keys(body).length) throw usageError("Nothing to change: give --name or --policy");
      printOne(await run.api().request("PATCH", `/api/v1/orgs/${seg(org ?? run.org())}`, { body }), run.opts.json);
    }),
  )
    .option("--org <org>", "org id or slug")
    .option("--name <name>", "new display name")
    .option("--policy <json>", "policy fields to change, as a JSON object");

  const projects = program.command("projects").description("Projects of an org: create, list, get, delete");
  withJson(
    withOrg(
      verb(projects, "create <slug>", "Create a project", async (run, slug) => {
        printOne(await run.api().request("POST", `${orgPath(run)}/projects`, { body: { slug, name: run.opts.name ?? slug } }), run.opts.json);
      }),
    ),
  ).option("--name <name>", "display name (default: the slug)");
  withPaging(
    withJson(
      withOrg(
        verb(projects, "list", "List projects", async (run) => {
          printList(await listPages<Node>(run.api(), `${orgPath(run)}/projects`, { limit: run.opts.limit, cursor: run.opts.cursor }, Boolean(run.opts.all)), columns, run.opts.json);
        }),
      ),
    ),
  );
  withJson(
    withOrg(
      verb(projects, "get <project>", "Show a project", async (run, prj) => {
        printOne(await run.api().request("GET", `${orgPath(run)}/projects/${seg(prj!)}`), run.opts.json);
      }),
    ),
  );
  withOrg(
    verb(projects, "delete <project>", "Delete a project, its environments and the roles granted on them", async (run, prj) => {
      await run.api().request("DELETE", `${orgPath(run)}/projects/${seg(prj!)}`);
      info(`Deleted ${prj}`);
    }),
  );

  const envs = program.command("environments").alias("envs").description("Environments of a project: create, list, get, delete");
  const withProject = (cmd: Command) => cmd.requiredOption("--project <project>", "project id or slug");
  withProject(
    withJson(
      withOrg(
        verb(envs, "create <slug>", "Create an environment", async (run, slug) => {
          printOne(await run.api().request("POST", `${projectPath(run)}/environments`, { body: { slug, name: run.opts.name ?? slug } }), run.opts.json);
        }),
      ),
    ),
  ).option("--name <name>", "display name (default: the slug)");
  withPaging(
    withProject(
      withJson(
        withOrg(
          verb(envs, "list", "List a project's environments", async (run) => {
            printList(await listPages<Node>(run.api(), `${projectPath(run)}/environments`, { limit: run.opts.limit, cursor: run.opts.cursor }, Boolean(run.opts.all)), columns, run.opts.json);
          }),
        ),
      ),
    ),
  );
  withProject(
    withJson(
      withOrg(
        verb(envs, "get <environment>", "Show an environment", async (run, env) => {
          printOne(await run.api().request("GET", `${projectPath(run)}/environments/${seg(env!)}`), run.opts.json);
        }),
      ),
    ),
  );
  withProject(
    withOrg(
      verb(envs, "delete <environment>", "Delete an environment and the roles granted on it", async (run, env) => {
        await run.api().request("DELETE", `${projectPath(run)}/environments/${seg(env!)}`);
        info(`Deleted ${env}`);
      }),
    ),
  );
}
