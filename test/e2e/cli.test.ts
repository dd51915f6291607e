import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { createRemoteJWKSet, decodeJwt, exportJWK, generateKeyPair, jwtVerify, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startDevServer, type DevServer } from "../../scripts/dev-server.ts";

/**
 * Issue 21, the `keyward` CLI end to end: spawned processes against the real dev server, as a user
 * types them (a temporary XDG_CONFIG_HOME each, no KEYWARD_* from the outer environment). A small
 * loopback OIDC issuer stands in for GitHub Actions and a Kubernetes cluster for the federation method.
 */
const ROOT = path.resolve(import.meta.dirname, "..", "..");
const MAIN = path.join(ROOT, "src", "cli", "main.ts");

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function spawnResult(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<Result> {
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  child.stdin.end(stdin ?? "");
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

/** A clean environment: the outer KEYWARD_* and GitHub Actions variables never leak in. */
function baseEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(KEYWARD_|ACTIONS_ID_TOKEN_)/.test(k)) env[k] = v;
  return { ...env, HOME: home, XDG_CONFIG_HOME: path.join(home, "config"), NO_COLOR: "1", ...extra };
}

describe("the keyward CLI against the dev server", () => {
  let server: DevServer;
  let home: string;
  let idp: http.Server;
  let idpBase: string;
  let idpKey: CryptoKey;
  const GHA_BEARER = "gha-request-token-0123456789";
  let org: { id: string; slug: string };

  /** `keyward ...args` with the test's config dir; `env` adds to it. */
  const kw = (args: string[], env: Record<string, string> = {}, stdin?: string) => spawnResult(process.execPath, [MAIN, ...args], baseEnv(home, env), stdin);
  /** As the root operator, by environment (the CI way). */
  const root = (args: string[], env: Record<string, string> = {}) => kw(args, { KEYWARD_URL: server.base, KEYWARD_TOKEN: server.rootToken, ...env });
  const ok = async (args: string[], env: Record<string, string> = {}) => {
    const r = await root(args, env);
    expect(r.code, `keyward ${args.join(" ")}\n${r.stderr}`).toBe(0);
    return r;
  };
  const okJson = async <T = any>(args: string[], env: Record<string, string> = {}): Promise<T> => JSON.parse((await ok([...args, "--json"], env)).stdout) as T;

  /** What a shell script does: `jwt=$(keyward jwt ...)`, then uses "$jwt". */
  const shellJwt = (args: string[], env: Record<string, string>) =>
    spawnResult("sh", ["-c", 'main=$1; shift; jwt=$("$0" "$main" jwt "$@") || exit $?; printf "%s" "$jwt"', process.execPath, MAIN, ...args], baseEnv(home, { KEYWARD_URL: server.base, ...env }));

  const verifyKeyward = async (jwt: string) => {
    const jwks = createRemoteJWKSet(new URL(`${server.base}/.well-known/jwks.json`));
    return (await jwtVerify(jwt, jwks, { issuer: server.base, audience: server.base, typ: "at+jwt" })).payload;
  };

  /** A JWT from the loopback issuer, as GitHub Actions or a projected service account token would be. */
  const foreignJwt = (sub: string, aud: string) =>
    new SignJWT({ repository: "acme/web" })
      .setProtectedHeader({ alg: "ES256", kid: "idp-1", typ: "JWT" })
      .setIssuer(idpBase)
      .setSubject(sub)
      .setAudience(aud)
      .setIssuedAt()
      .setExpirationTime("5m")
      .setJti(crypto.randomUUID())
      .sign(idpKey);

  beforeAll(async () => {
    home = mkdtempSync(path.join(tmpdir(), "keyward-cli-"));
    const pair = await generateKeyPair("ES256", { extractable: true });
    idpKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "idp-1", alg: "ES256", use: "sig" };
    const port = await freePort();
    idpBase = `http://127.0.0.1:${port}`;
    idp = http.createServer(async (req, res) => {
      const url = new URL(req.url ?? "/", idpBase);
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (url.pathname === "/.well-known/openid-configuration") {
        return send(200, { issuer: idpBase, jwks_uri: `${idpBase}/jwks`, response_types_supported: ["id_token"], subject_types_supported: ["public"], id_token_signing_alg_values_supported: ["ES256"] });
      }
      if (url.pathname === "/jwks") return send(200, { keys: [jwk] });
      // GitHub Actions' ID token endpoint: bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN, ?audience=...
      if (url.pathname === "/gha-token") {
        if (req.headers.authorization !== `Bearer ${GHA_BEARER}`) return send(401, { message: "bad token" });
        return send(200, { value: await foreignJwt("repo:acme/web:ref:refs/heads/main", url.searchParams.get("audience") ?? "") });
      }
      send(404, {});
    });
    await new Promise<void>((r) => idp.listen(port, "127.0.0.1", r));
    server = await startDevServer({ federationAllowedIssuers: [idpBase] });
    org = await okJson(["orgs", "create", "cli-e2e", "--name", "CLI e2e"]);
  });
  afterAll(async () => {
    await server?.stop();
    await new Promise((r) => (idp ? idp.close(r) : r(undefined)));
    if (home) rmSync(home, { recursive: true, force: true });
  });

  describe("parser and help", () => {
    it("--help on the program and on every command, exit 0", async () => {
      const top = await kw(["--help"]);
      expect(top.code).toBe(0);
      for (const resource of ["login", "orgs", "projects", "environments", "service-accounts", "tokens", "keys", "jwt"]) expect(top.stdout).toContain(resource);
      const verbHelp = await kw(["service-accounts", "create", "--help"]);
      expect(verbHelp.code).toBe(0);
      expect(verbHelp.stdout).toContain("Usage: keyward service-accounts create [options] <name>");
      expect(verbHelp.stdout).toContain("--org <org>");
    });

    it("npx keyward works in this repository (the bin launcher)", async () => {
      const r = await spawnResult("npx", ["--no-install", "keyward", "--version"], baseEnv(home));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe("0.1.0");
    });

    it("an unknown command: a message, a suggestion and exit 2", async () => {
      const r = await kw(["service-acounts", "list"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("unknown command 'service-acounts'");
      expect(r.stderr).toContain("service-accounts");
      const verbTypo = await kw(["tokens", "isue"]);
      expect(verbTypo.code).toBe(2);
      expect(verbTypo.stderr).toContain("unknown command 'isue'");
    });

    it("a missing argument or required flag: exit 2 before any request", async () => {
      const noArg = await root(["service-accounts", "get", "--org", org.id]);
      expect(noArg.code).toBe(2);
      expect(noArg.stderr).toContain("missing required argument 'account'");
      const noFlag = await root(["tokens", "issue", "--org", org.id]);
      expect(noFlag.code).toBe(2);
      expect(noFlag.stderr).toContain("--account");
      const badNumber = await root(["service-accounts", "list", "--org", org.id, "--limit", "many"]);
      expect(badNumber.code).toBe(2);
      expect(badNumber.stderr).toContain("positive integer");
      const noOrg = await root(["service-accounts", "list"]);
      expect(noOrg.code).toBe(2);
      expect(noOrg.stderr).toContain("No org");
      const resourceAlone = await kw(["tokens"]);
      expect(resourceAlone.code).toBe(2);
      expect(resourceAlone.stderr).toContain("regenerate");
    });

    it("the server down: a clear message and exit 5", async () => {
      const port = await freePort();
      const r = await kw(["orgs", "list"], { KEYWARD_URL: `http://127.0.0.1:${port}`, KEYWARD_TOKEN: server.rootToken });
      expect(r.code).toBe(5);
      expect(r.stderr).toContain(`Cannot reach http://127.0.0.1:${port}`);
      expect(r.stderr).not.toContain(server.rootToken);
      const jwt = await kw(["jwt"], { KEYWARD_URL: `http://127.0.0.1:${port}`, KEYWARD_TOKEN: server.rootToken });
      expect(jwt.code).toBe(5);
      expect(jwt.stdout).toBe("");
    });

    it("not logged in: exit 3; no URL: exit 2", async () => {
      const noToken = await kw(["orgs", "list"], { KEYWARD_URL: server.base });
      expect(noToken.code).toBe(3);
      expect(noToken.stderr).toContain("Not logged in");
      const noUrl = await kw(["orgs", "list"], { KEYWARD_TOKEN: server.rootToken });
      expect(noUrl.code).toBe(2);
      expect(noUrl.stderr).toContain("No server URL");
    });
  });

  describe("login, profiles and the environment", () => {
    it("login reads the token from stdin, checks it, and writes a 0600 config without echoing it", async () => {
      const r = await kw(["login", "--url", server.base], {}, `${server.rootToken}\n`);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout + r.stderr).not.toContain(server.rootToken);
      expect(r.stderr).toContain('profile "default"');
      const file = path.join(home, "config", "keyward", "config.json");
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
      const config = JSON.parse(readFileSync(file, "utf8"));
      expect(config).toMatchObject({ defaultProfile: "default", profiles: { default: { url: server.base, token: server.rootToken } } });
      // The profile now works with no environment at all.
      const list = await kw(["orgs", "list", "--json"]);
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout).items.map((o: { id: string }) => o.id)).toContain(org.id);
      const show = await kw(["config", "show"]);
      expect(show.stdout).toContain("set (profile default)");
      expect(show.stdout).not.toContain(server.rootToken);
    });

    it("login on a terminal: a prompt with echo off (through a pseudo-terminal)", async () => {
      // python3's pty module plays the terminal: it answers the prompt and returns everything the terminal showed.
      const driver = path.join(home, "pty-driver.py");
      writeFileSync(
        driver,
        [
          "import os, pty, sys, time",
          "pid, fd = pty.fork()",
          "if pid == 0:",
          "    os.execv(sys.argv[1], sys.argv[1:])",
          'out, sent = b"", False',
          "while True:",
          "    try:",
          "        data = os.read(fd, 1024)",
          "    except OSError:",
          "        break",
          "    if not data:",
          "        break",
          "    out += data",
          '    if not sent and b"Access token" in out:',
          "        time.sleep(0.2)",
          '        os.write(fd, os.environ["PTY_INPUT"].encode() + b"\\r")',
          "        sent = True",
          "_, status = os.waitpid(pid, 0)",
          'sys.stdout.write(out.decode(errors="replace"))',
          "sys.exit(os.waitstatus_to_exitcode(status))",
        ].join("\n"),
      );
      const r = await spawnResult("python3", [driver, process.execPath, MAIN, "login", "--url", server.base, "--profile", "tty"], baseEnv(home, { PTY_INPUT: server.rootToken }));
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`Access token for ${server.base}:`);
      expect(r.stdout).toContain('profile "tty"');
      expect(r.stdout).not.toContain(server.rootToken);
      const config = JSON.parse(readFileSync(path.join(home, "config", "keyward", "config.json"), "utf8"));
      expect(config.profiles.tty.token).toBe(server.rootToken);
    });

    it("a bad token is refused at login (exit 3) and not saved", async () => {
      const r = await kw(["login", "--url", server.base, "--profile", "wrong"], {}, "sat_0000000000000000000000000000000000000000\n");
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/401/);
      const config = JSON.parse(readFileSync(path.join(home, "config", "keyward", "config.json"), "utf8"));
      expect(config.profiles.wrong).toBeUndefined();
      const empty = await kw(["login", "--url", server.base, "--profile", "empty"], {}, "\n");
      expect(empty.code).toBe(2);
      const noUrl = await kw(["login", "--profile", "nourl"], {}, `${server.rootToken}\n`);
      expect(noUrl.code).toBe(2);
    });

    it("a second profile with a default org; KEYWARD_URL, KEYWARD_TOKEN and KEYWARD_PROFILE win over the file", async () => {
      const login = await kw(["login", "--url", server.base, "--profile", "acme", "--org", org.slug], {}, `${server.rootToken}\n`);
      expect(login.code, login.stderr).toBe(0);
      // --org resolved to the id and kept as the profile's default: no --org needed.
      const list = await kw(["service-accounts", "list", "--json"], { KEYWARD_PROFILE: "acme" });
      expect(list.code, list.stderr).toBe(0);
      const profiles = await kw(["config", "profiles"]);
      expect(profiles.stdout).toMatch(/\* default/);
      expect(profiles.stdout).toContain(`acme  ${server.base}  org ${org.id}`);
      // The file's URL is dead; KEYWARD_URL wins.
      const dead = `http://127.0.0.1:${await freePort()}`;
      const file = path.join(home, "config", "keyward", "config.json");
      const config = JSON.parse(readFileSync(file, "utf8"));
      config.profiles.dead = { url: dead, token: server.rootToken };
      writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
      expect((await kw(["orgs", "list"], { KEYWARD_PROFILE: "dead" })).code).toBe(5);
      expect((await kw(["orgs", "list"], { KEYWARD_PROFILE: "dead", KEYWARD_URL: server.base })).code).toBe(0);
      // A bad KEYWARD_TOKEN wins over the file's good one.
      const bad = await kw(["orgs", "list"], { KEYWARD_TOKEN: "sat_0000000000000000000000000000000000000000" });
      expect(bad.code).toBe(3);
      expect(bad.stderr).toContain("401");
    });
  });

  describe("create, issue, use, revoke", () => {
    let account: string;
    let secret: string;
    let tokenId: string;

    it("service-accounts create / get / list / edit / disable / enable", async () => {
      const created = await okJson(["service-accounts", "create", "deploy-bot", "--org", org.id, "--role", "viewer", "--group", "ci", "--description", "Deploys"]);
      account = created.id;
      expect(created).toMatchObject({ name: "deploy-bot", status: "active", groups: ["ci"] });
      const table = await ok(["service-accounts", "list", "--org", org.id]);
      expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+NAME\s+STATUS\s+EMAIL/);
      expect(table.stdout).toContain(account);
      const got = await okJson(["service-accounts", "get", account, "--org", org.slug]);
      expect(got.description).toBe("Deploys");
      const edited = await okJson(["service-accounts", "edit", account, "--org", org.id, "--display-name", "Deploy bot", "--group", "ci", "--group", "web"]);
      expect(edited).toMatchObject({ displayName: "Deploy bot", groups: ["ci", "web"] });
      expect((await okJson(["service-accounts", "disable", account, "--org", org.id])).status).toBe("disabled");
      expect((await okJson(["service-accounts", "list", "--org", org.id, "--status", "disabled"])).items.map((a: { id: string }) => a.id)).toEqual([account]);
      expect((await okJson(["service-accounts", "enable", account, "--org", org.id])).status).toBe("active");
      const nothing = await root(["service-accounts", "edit", account, "--org", org.id]);
      expect(nothing.code).toBe(2);
    });

    it("tokens issue -q prints the secret alone; tokens list shows hints only", async () => {
      const r = await ok(["tokens", "issue", "--org", org.id, "--account", account, "--name", "ci", "--expires-in", "1d", "-q"]);
      secret = r.stdout.trim();
      expect(r.stdout).toMatch(/^sat_[0-9A-Za-z]+\n$/);
      const list = await okJson(["tokens", "list", "--org", org.id, "--account", account]);
      expect(list.items).toHaveLength(1);
      tokenId = list.items[0].id;
      expect(JSON.stringify(list)).not.toContain(secret);
      const table = await ok(["tokens", "list", "--org", org.id, "--account", account]);
      expect(table.stdout).toContain(tokenId);
      expect(table.stdout).not.toContain(secret);
      // The org-wide review list (no --account), with a filter.
      const review = await okJson(["tokens", "list", "--org", org.id, "--never-used"]);
      expect(review.items.map((t: { id: string }) => t.id)).toContain(tokenId);
    });

    it("$(keyward jwt) with the sat_ token in KEYWARD_TOKEN: a JWT for the account, nothing else on stdout", async () => {
      const r = await shellJwt([], { KEYWARD_TOKEN: secret });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      const claims = await verifyKeyward(r.stdout);
      expect(claims.sub).toBe(account);
      expect(claims.org_id).toBe(org.id);
      const scoped = await kw(["jwt", "--scope", "service-accounts.read", "--duration", "120", "--json"], { KEYWARD_URL: server.base, KEYWARD_TOKEN: secret });
      expect(scoped.code, scoped.stderr).toBe(0);
      const payload = decodeJwt(JSON.parse(scoped.stdout).jwt);
      expect(payload.exp! - payload.iat!).toBe(120);
      // The JWT works on the API as the account.
      const me = await fetch(`${server.base}/api/v1/orgs/${org.id}/service-accounts/${account}`, { headers: { authorization: `Bearer ${r.stdout}` } });
      expect(me.status).toBe(200);
    });

    it("$(keyward jwt --client-id SA) by client_credentials with a secret (KEYWARD_CLIENT_SECRET or a file)", async () => {
      const r = await shellJwt(["--client-id", account], { KEYWARD_CLIENT_SECRET: secret });
      expect(r.code, r.stderr).toBe(0);
      expect((await verifyKeyward(r.stdout)).sub).toBe(account);
      const file = path.join(home, "secret.txt");
      writeFileSync(file, `${secret}\n`, { mode: 0o600 });
      const fromFile = await shellJwt(["--client-id", account, "--client-secret-file", file, "--scope", "service-accounts.read"], {});
      expect(fromFile.code, fromFile.stderr).toBe(0);
      expect(decodeJwt(fromFile.stdout).scope).toBe("service-accounts.read");
      const wrong = await shellJwt(["--client-id", account], { KEYWARD_CLIENT_SECRET: "sat_0000000000000000000000000000000000000000" });
      expect(wrong.code).toBe(3);
      expect(wrong.stdout).toBe("");
      expect(wrong.stderr).toContain("invalid_client");
    });

    it("tokens regenerate --grace: a new secret, the old one still works for the grace period", async () => {
      const r = await ok(["tokens", "regenerate", tokenId, "--org", org.id, "--account", account, "--grace", "1h", "-q"]);
      const fresh = r.stdout.trim();
      expect(fresh).toMatch(/^sat_/);
      expect(fresh).not.toBe(secret);
      const old = await shellJwt([], { KEYWARD_TOKEN: secret });
      expect(old.code, old.stderr).toBe(0);
      const now = await shellJwt([], { KEYWARD_TOKEN: fresh });
      expect(now.code, now.stderr).toBe(0);
      const body = await okJson(["tokens", "list", "--org", org.id, "--account", account]);
      expect(body.items[0].previousSecretExpiresAt).not.toBeNull();
      secret = fresh;
    });

    it("tokens revoke: the secret stops working (jwt exits 3, prints no JWT)", async () => {
      await ok(["tokens", "revoke", tokenId, "--org", org.id, "--account", account]);
      const r = await shellJwt([], { KEYWARD_TOKEN: secret });
      expect(r.code).toBe(3);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain("401");
      expect(r.stderr).not.toContain(secret);
      const list = await okJson(["tokens", "list", "--org", org.id, "--account", account, "--status", "revoked"]);
      expect(list.items.map((t: { id: string }) => t.id)).toEqual([tokenId]);
    });

    it("jwt with a token that is not sat_: exit 2", async () => {
      const r = await kw(["jwt"], { KEYWARD_URL: server.base, KEYWARD_TOKEN: "eyJhbGciOi.x.y" });
      expect(r.code).toBe(2);
    });
  });

  describe("keys: private_key_jwt", () => {
    let account: string;
    it("keys generate writes a 0600 private key and registers the public half; $(keyward jwt --key-file) works", async () => {
      account = (await okJson(["service-accounts", "create", "signer", "--org", org.id, "--role", "viewer"])).id;
      const keyFile = path.join(home, "signer.pem");
      const gen = await okJson(["keys", "generate", "--org", org.id, "--account", account, "--out", keyFile, "--name", "ci key"]);
      expect(gen).toMatchObject({ accountId: account, alg: "ES256", name: "ci key", privateKeyFile: keyFile });
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      expect(readFileSync(keyFile, "utf8")).toContain("BEGIN PRIVATE KEY");
      expect(JSON.stringify(gen)).not.toContain("PRIVATE");
      const again = await root(["keys", "generate", "--org", org.id, "--account", account, "--out", keyFile]);
      expect(again.code).toBe(2);
      expect(again.stderr).toContain("exists");
      const r = await shellJwt(["--client-id", account, "--key-file", keyFile], {});
      expect(r.code, r.stderr).toBe(0);
      expect((await verifyKeyward(r.stdout)).sub).toBe(account);
      const listed = await okJson(["keys", "list", "--org", org.id, "--account", account]);
      expect(listed.items.map((k: { kid: string }) => k.kid)).toEqual([gen.kid]);
    });

    it("keys add --file registers a PEM public key (an RSA one here); a private key file is refused", async () => {
      const { generateKeyPairSync } = await import("node:crypto");
      const pair = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
      const pub = path.join(home, "rsa.pub.pem");
      const priv = path.join(home, "rsa.pem");
      writeFileSync(pub, pair.publicKey);
      writeFileSync(priv, pair.privateKey, { mode: 0o600 });
      const added = await okJson(["keys", "add", "--org", org.id, "--account", account, "--file", pub, "--kid", "rsa-1"]);
      expect(added).toMatchObject({ alg: "RS256", kid: "rsa-1" });
      const refused = await root(["keys", "add", "--org", org.id, "--account", account, "--file", priv]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain("private key");
      const r = await shellJwt(["--client-id", account, "--key-file", priv, "--kid", "rsa-1"], {});
      expect(r.code, r.stderr).toBe(0);
      // Deleted, it no longer signs in.
      await ok(["keys", "delete", added.id, "--org", org.id, "--account", account]);
      const after = await shellJwt(["--client-id", account, "--key-file", priv, "--kid", "rsa-1"], {});
      expect(after.code).toBe(3);
    });
  });

  describe("federation", () => {
    let account: string;
    beforeAll(async () => {
      account = (await okJson(["service-accounts", "create", "ci-federated", "--org", org.id, "--role", "viewer"])).id;
      const policy = await okJson(["federated-credentials", "create", "acme-web", "--org", org.id, "--account", account, "--issuer", idpBase, "--subject", "repo:acme/web:ref:refs/heads/main", "--max-token-age", "600"]);
      expect(policy).toMatchObject({ issuer: idpBase, subject: "repo:acme/web:ref:refs/heads/main", enabled: true });
      const listed = await ok(["federated-credentials", "list", "--org", org.id, "--account", account]);
      expect(listed.stdout).toContain(policy.id);
    });

    it("$(keyward jwt --federated) on GitHub Actions: asks ACTIONS_ID_TOKEN_REQUEST_URL for Keyward's audience", async () => {
      const r = await shellJwt(["--federated"], { ACTIONS_ID_TOKEN_REQUEST_URL: `${idpBase}/gha-token?api-version=2.0`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: GHA_BEARER });
      expect(r.code, r.stderr).toBe(0);
      const claims = await verifyKeyward(r.stdout);
      expect(claims.sub).toBe(account);
      expect(claims.federated).toMatchObject({ iss: idpBase, sub: "repo:acme/web:ref:refs/heads/main" });
      const refused = await shellJwt(["--federated"], { ACTIONS_ID_TOKEN_REQUEST_URL: `${idpBase}/gha-token`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: "wrong" });
      expect(refused.code).toBe(3);
      const missing = await shellJwt(["--federated"], {});
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain("ACTIONS_ID_TOKEN_REQUEST_URL");
    });

    it("$(keyward jwt --id-token-file) with a projected token file; a token for another audience is refused", async () => {
      const file = path.join(home, "k8s-token");
      writeFileSync(file, await foreignJwt("repo:acme/web:ref:refs/heads/main", server.base));
      const r = await shellJwt(["--id-token-file", file, "--scope", "service-accounts.read"], {});
      expect(r.code, r.stderr).toBe(0);
      expect((await verifyKeyward(r.stdout)).scope).toBe("service-accounts.read");
      writeFileSync(file, await foreignJwt("repo:acme/web:ref:refs/heads/main", "https://elsewhere.example"));
      const wrong = await shellJwt(["--id-token-file", file], {});
      expect(wrong.code).toBe(4);
      expect(wrong.stderr).toContain("invalid_grant");
      const absent = await shellJwt(["--id-token-file", path.join(home, "nope")], {});
      expect(absent.code).toBe(2);
      expect(absent.stderr).toContain("ENOENT");
    });
  });

  describe("the other resources", () => {
    it("projects and environments: create, list, get, delete", async () => {
      const prj = await okJson(["projects", "create", "payments", "--org", org.id, "--name", "Payments"]);
      expect(prj).toMatchObject({ slug: "payments", name: "Payments" });
      const env = await okJson(["environments", "create", "prod", "--org", org.id, "--project", "payments"]);
      expect(env).toMatchObject({ slug: "prod", projectId: prj.id });
      expect((await ok(["environments", "list", "--org", org.id, "--project", prj.id])).stdout).toContain(env.id);
      expect((await okJson(["projects", "get", "payments", "--org", org.id])).id).toBe(prj.id);
      const noProject = await root(["environments", "list", "--org", org.id]);
      expect(noProject.code).toBe(2);
      await ok(["environments", "delete", "prod", "--org", org.id, "--project", "payments"]);
      await ok(["projects", "delete", "payments", "--org", org.id]);
      expect((await root(["projects", "get", "payments", "--org", org.id])).code).toBe(4);
    });

    it("roles and role-assignments: a custom role granted on a project, then removed", async () => {
      const prj = await okJson(["projects", "create", "web", "--org", org.id]);
      const role = await okJson(["roles", "create", "reader", "--org", org.id, "--operation", "service-accounts.read", "--description", "Reads accounts"]);
      expect(role).toMatchObject({ name: "reader", operations: ["service-accounts.read"] });
      const roles = await ok(["roles", "list", "--org", org.id]);
      expect(roles.stdout).toMatch(/reader\s+custom/);
      expect(roles.stdout).toMatch(/viewer\s+built-in/);
      const edited = await okJson(["roles", "edit", role.id, "--org", org.id, "--description", "Reads"]);
      expect(edited.description).toBe("Reads");
      const account = (await okJson(["service-accounts", "create", "web-reader", "--org", org.id])).id;
      const ra = await okJson(["role-assignments", "create", `reader@project:${prj.id}`, "--org", org.id, "--account", account]);
      expect(ra).toMatchObject({ roleId: role.id, scope: { type: "project", id: prj.id } });
      expect((await ok(["role-assignments", "list", "--org", org.id, "--account", account])).stdout).toContain(`project:${prj.id}`);
      const perms = await ok(["service-accounts", "permissions", account, "--org", org.id, "--scope", prj.id]);
      expect(perms.stdout).toContain("service-accounts.read");
      const badSpec = await root(["role-assignments", "create", "reader@galaxy:x", "--org", org.id, "--account", account]);
      expect(badSpec.code).toBe(2);
      await ok(["role-assignments", "delete", ra.id, "--org", org.id, "--account", account]);
      expect((await okJson(["role-assignments", "list", "--org", org.id, "--account", account])).items).toEqual([]);
      await ok(["roles", "delete", role.id, "--org", org.id]);
    });

    it("invitations: sent by one org, accepted for an account of another, listed, cancelled", async () => {
      const partner = await okJson(["orgs", "create", "cli-partner"]);
      const bot = await okJson(["service-accounts", "create", "partner-bot", "--org", partner.id]);
      const inv = await okJson(["invitations", "create", bot.email, "--org", org.id, "--role", "viewer"]);
      expect(inv.state).toBe("pending");
      const received = await okJson(["invitations", "list", "--org", partner.id, "--account", bot.id]);
      expect(received.items.map((i: { id: string }) => i.id)).toContain(inv.id);
      expect((await okJson(["invitations", "accept", inv.id, "--org", partner.id, "--account", bot.id])).state).toBe("accepted");
      expect((await okJson(["invitations", "list", "--org", org.id, "--state", "accepted"])).items.map((i: { id: string }) => i.id)).toEqual([inv.id]);
      // The partner's token exchanges into the inviting org.
      const secret = (await ok(["tokens", "issue", "--org", partner.id, "--account", bot.id, "-q"])).stdout.trim();
      const jwt = await shellJwt(["--target-org", org.id], { KEYWARD_TOKEN: secret });
      expect(jwt.code, jwt.stderr).toBe(0);
      expect((await verifyKeyward(jwt.stdout)).org_id).toBe(org.id);
      await ok(["invitations", "delete", inv.id, "--org", org.id]);
      expect((await okJson(["invitations", "list", "--org", org.id, "--state", "cancelled"])).items.map((i: { id: string }) => i.id)).toEqual([inv.id]);
    });

    it("audit-events list, and --follow printing new events as they happen", async () => {
      const list = await okJson(["audit-events", "list", "--org", org.id, "--limit", "5"]);
      expect(list.items.length).toBe(5);
      const child = spawn(process.execPath, [MAIN, "audit-events", "list", "--org", org.id, "--follow", "--interval", "1", "--limit", "1", "--json"], {
        cwd: ROOT,
        env: baseEnv(home, { KEYWARD_URL: server.base, KEYWARD_TOKEN: server.rootToken }),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      child.stdout.on("data", (d) => (stdout += d));
      try {
        const waitFor = async (pred: () => boolean) => {
          for (let i = 0; i < 150 && !pred(); i++) await new Promise((r) => setTimeout(r, 200));
          expect(pred(), stdout).toBe(true);
        };
        await waitFor(() => stdout.split("\n").filter(Boolean).length >= 1);
        const created = await okJson(["service-accounts", "create", "followed-bot", "--org", org.id]);
        await waitFor(() => stdout.includes(created.id));
        const events = stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
        expect(new Set(events.map((e: { id: string }) => e.id)).size).toBe(events.length);
        expect(events.at(-1).target.id).toBe(created.id);
      } finally {
        child.kill("SIGTERM");
      }
    });

    it("completion bash: a script bash accepts that completes resources, verbs and flags", async () => {
      const script = (await kw(["completion", "bash"])).stdout;
      const probe = `${script}\nCOMP_WORDS=(keyward service-accounts l); COMP_CWORD=2; _keyward; echo "\${COMPREPLY[*]}"\nCOMP_WORDS=(keyward tokens issue --acc); COMP_CWORD=3; _keyward; echo "\${COMPREPLY[*]}"`;
      const r = await spawnResult("bash", ["-c", probe], baseEnv(home));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe("list\n--account\n");
      expect((await kw(["completion", "zsh"])).stdout).toContain("#compdef keyward");
      expect((await kw(["completion", "fish"])).code).toBe(2);
    });
  });

  describe("problem details", () => {
    it("404 and validation errors: readable, exit 4, the request id shown", async () => {
      const missing = await root(["service-accounts", "get", "sa_doesnotexist0000000000", "--org", org.id]);
      expect(missing.code).toBe(4);
      expect(missing.stderr).toMatch(/\(404 [a-z_]+\)/);
      expect(missing.stderr).toContain("request id:");
      const invalid = await root(["service-accounts", "create", "too-long", "--org", org.id, "--days-valid", "9999"]);
      expect(invalid.code).toBe(4);
      expect(invalid.stderr).toMatch(/\(400 validation_failed\)|\(422 /);
      expect(invalid.stderr).toMatch(/daysValid: /);
    });

    it("a token without the permission: exit 3 and the missing permission named", async () => {
      const viewer = (await okJson(["service-accounts", "create", "viewer-bot", "--org", org.id, "--role", "viewer"])).id;
      const secret = (await ok(["tokens", "issue", "--org", org.id, "--account", viewer, "-q"])).stdout.trim();
      const r = await kw(["service-accounts", "create", "sneaky", "--org", org.id], { KEYWARD_URL: server.base, KEYWARD_TOKEN: secret });
      expect(r.code).toBe(3);
      expect(r.stderr).toContain("403");
    });
  });
});
