import { env, exports } from "cloudflare:workers";
import type { z } from "zod";
import { describe, expect, it } from "vitest";
import { runJobsBody } from "../../src/http/routes/admin.ts";
import { exchangeBody } from "../../src/http/routes/exchange.ts";
import { answerBody, inviteBody } from "../../src/http/routes/invitations.ts";
import { addKeyBody } from "../../src/http/routes/keys.ts";
import { createOrgBody, nodeBody, patchOrgBody } from "../../src/http/routes/orgs.ts";
import { createPlatformAccountBody } from "../../src/http/routes/platform-accounts.ts";
import { roleBody } from "../../src/http/routes/roles.ts";
import { assignmentBody, createAccountBody, patchAccountBody } from "../../src/http/routes/service-accounts.ts";
import { issueTokenBody, regenerateBody } from "../../src/http/routes/tokens.ts";
import { BASE } from "../helpers.ts";

/** The public surface's reference: GET /openapi.json and /docs (issue 16). */

type Doc = { servers?: { url: string }[]; paths: Record<string, Record<string, any>>; components: { schemas: Record<string, any>; securitySchemes?: Record<string, any> } };

async function fetchDoc(origin = BASE): Promise<Doc> {
  const res = await exports.default.fetch(new Request(`${origin}/openapi.json`));
  expect(res.status).toBe(200);
  return (await res.json()) as Doc;
}

const resolve = (doc: Doc, schema: any): any => (schema?.$ref ? resolve(doc, doc.components.schemas[schema.$ref.split("/").pop()]) : schema);

interface PatternSite {
  where: string;
  pattern: string;
  /** The field's own example, or the one its enclosing object's example gives it. */
  example: unknown;
}

/** Every `pattern` of the document, with the example that documents a valid value for it. */
function patternSites(doc: Doc): PatternSite[] {
  const sites: PatternSite[] = [];
  const visit = (node: any, where: string, inherited: unknown) => {
    if (!node || typeof node !== "object") return;
    if (Array.isArray(node)) return node.forEach((n, i) => visit(n, `${where}/${i}`, inherited));
    const example = node.example ?? inherited;
    if (typeof node.pattern === "string") sites.push({ where, pattern: node.pattern, example });
    for (const [key, child] of Object.entries(node)) {
      if (key === "example" || key === "examples") continue;
      if (key === "properties") {
        for (const [prop, schema] of Object.entries(child as Record<string, unknown>)) {
          const fromParent = example && typeof example === "object" ? (example as Record<string, unknown>)[prop] : undefined;
          visit(schema, `${where}/properties/${prop}`, fromParent);
        }
      } else if (key === "items") {
        visit(child, `${where}/items`, Array.isArray(example) ? example[0] : undefined);
      } else {
        visit(child, `${where}/${key}`, undefined);
      }
    }
  };
  visit(doc, "#", undefined);
  return sites;
}

describe("OpenAPI patterns (issue 16)", () => {
  it("every pattern is an ECMA-262 pattern (compiled with the u flag) that its field's example matches", async () => {
    const doc = await fetchDoc();
    const sites = patternSites(doc);
    expect(sites.length, "the document has patterns to check").toBeGreaterThanOrEqual(20);
    const broken: string[] = [];
    for (const { where, pattern, example } of sites) {
      let re: RegExp;
      try {
        re = new RegExp(pattern, "u");
      } catch (err) {
        broken.push(`${where}: ${pattern} does not compile: ${(err as Error).message}`);
        continue;
      }
      if (typeof example !== "string") broken.push(`${where}: ${pattern} has no example to check it against`);
      else if (!re.test(example)) broken.push(`${where}: ${pattern} does not match its example ${JSON.stringify(example)}`);
    }
    expect(broken, broken.join("\n")).toEqual([]);
  });

  it("no pattern keeps a regex literal's flag suffix, and case-insensitive ones spell both cases", async () => {
    const sites = patternSites(await fetchDoc());
    expect(sites.filter((s) => /\$\/[a-z]+$/.test(s.pattern)).map((s) => `${s.where}: ${s.pattern}`)).toEqual([]);
    const slug = sites.find((s) => s.where.endsWith("/CreateOrg/properties/slug"));
    expect(slug, "CreateOrg.slug has a pattern").toBeDefined();
    expect(new RegExp(slug!.pattern, "u").test("Acme-01")).toBe(true);
    expect(new RegExp(slug!.pattern, "u").test("-acme")).toBe(false);
  });
});

describe("the OAuth endpoints and discovery documents in the reference (issue 16)", () => {
  const oauthPaths: [string, string][] = [
    ["/oauth/token", "post"],
    ["/api/m2m/oauth/token", "post"],
    ["/oauth/introspect", "post"],
    ["/oauth/revoke", "post"],
    ["/.well-known/oauth-authorization-server", "get"],
    ["/.well-known/openid-configuration", "get"],
    ["/.well-known/jwks.json", "get"],
    ["/statuslists/{n}", "get"],
  ];

  it("/openapi.json lists them, with their form parameters, client authentication and RFC 6749 errors", async () => {
    const doc = await fetchDoc();
    for (const [path, method] of oauthPaths) expect(doc.paths[path]?.[method], `${method.toUpperCase()} ${path}`).toBeDefined();
    const token = doc.paths["/oauth/token"]!.post;
    const form = token.requestBody.content["application/x-www-form-urlencoded"];
    const params = resolve(doc, form.schema);
    expect(params.properties.grant_type.enum).toEqual(["client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange", "urn:ietf:params:oauth:grant-type:jwt-bearer"]);
    for (const p of ["scope", "resource", "assertion", "subject_token", "subject_token_type", "requested_token_type", "client_id", "client_secret", "client_assertion_type", "client_assertion"]) {
      expect(Object.keys(params.properties), p).toContain(p);
    }
    expect(Object.keys(form.examples)).toEqual(["client_credentials", "private_key_jwt", "token_exchange", "jwt_bearer"]);
    expect(token.description).toMatch(/client_secret_basic.*client_secret_post.*private_key_jwt/);
    expect(doc.components.securitySchemes?.clientSecretBasic).toEqual(expect.objectContaining({ type: "http", scheme: "basic" }));
    expect(Object.keys(resolve(doc, token.responses["200"].content["application/json"].schema).properties)).toEqual(
      expect.arrayContaining(["access_token", "token_type", "expires_in", "scope", "issued_token_type"]),
    );
    const error = resolve(doc, token.responses["401"].content["application/json"].schema);
    expect(error.properties.error.enum).toContain("invalid_client");
    expect(Object.keys(token.responses)).toEqual(expect.arrayContaining(["200", "400", "401"]));
    expect(Object.keys(resolve(doc, doc.paths["/oauth/introspect"]!.post.responses["200"].content["application/json"].schema).properties)).toContain("active");
  });

  it("/docs renders them, and request examples of the management API and of the token endpoint", async () => {
    const res = await exports.default.fetch(new Request(`${BASE}/docs`));
    const html = await res.text();
    expect(res.status).toBe(200);
    for (const [path] of oauthPaths) expect(html, path).toContain(`<code>${path}</code>`);
    expect(html).toContain("grant_type=client_credentials");
    expect(html).toContain("&#34;name&#34;: &#34;deploy-bot&#34;");
    expect(html).toContain("&#34;slug&#34;: &#34;acme&#34;");
    expect(html).not.toMatch(/<script/i);
  });
});

describe("request examples (issue 16)", () => {
  /** Each documented request body of the management API, by its component name, with the schema that validates it. */
  const bodies: [string, z.ZodType][] = [
    ["CreateOrg", createOrgBody],
    ["PatchOrg", patchOrgBody],
    ["CreateServiceAccount", createAccountBody],
    ["PatchServiceAccount", patchAccountBody],
    ["CreateRoleAssignment", assignmentBody],
    ["IssueAccessToken", issueTokenBody],
    ["RegenerateAccessToken", regenerateBody],
    ["AddPublicKey", addKeyBody],
    ["CreateRole", roleBody],
    ["CreateInvitation", inviteBody],
    ["AnswerInvitation", answerBody],
    ["AccessTokenExchange", exchangeBody],
    ["CreatePlatformServiceAccount", createPlatformAccountBody],
    ["RunJobs", runJobsBody],
  ];

  it.each(bodies)("%s has an example that its own schema accepts", async (name, schema) => {
    const doc = await fetchDoc();
    const example = doc.components.schemas[name]?.example;
    expect(example, `${name} has an example`).toBeDefined();
    const parsed = schema.safeParse(example);
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
  });

  it("the project and environment bodies have an example too", async () => {
    const doc = await fetchDoc();
    const schema = doc.paths["/api/v1/orgs/{org}/projects"]!.post.requestBody.content["application/json"].schema;
    expect(nodeBody.safeParse(resolve(doc, schema).example).success).toBe(true);
  });
});

describe("servers (issue 16)", () => {
  it("names the configured ISSUER, whatever Host a request came with (the first one is not cached into it)", async () => {
    const first = await fetchDoc("http://first.example");
    const second = await fetchDoc("http://second.example");
    expect(first.servers).toEqual([{ url: env.ISSUER }]);
    expect(second.servers).toEqual([{ url: env.ISSUER }]);
    expect(JSON.stringify(second)).not.toContain("first.example");
  });
});
