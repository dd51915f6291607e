import { generateKeyPairSync } from "node:crypto";
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import type { Command } from "commander";
import { listPages, seg } from "../api.ts";
import { choice, verb, withJson, withOrg, type Run } from "../command.ts";
import { usageError } from "../errors.ts";
import { info, json, printList, printOne, type Column } from "../output.ts";

interface Key {
  id: string;
  accountId: string;
  kid: string;
  alg: string;
  fingerprint: string;
  name: string | null;
  createdAt: string;
}
const columns: Column<Key>[] = [
  ["id", (k) => k.id],
  ["kid", (k) => k.kid],
  ["alg", (k) => k.alg],
  ["name", (k) => k.name],
  ["created", (k) => k.createdAt],
];

const keysPath = (run: Run) => `/api/v1/orgs/${seg(run.org())}/service-accounts/${seg(run.opts.account)}/keys`;
const withAccount = (cmd: Command) => cmd.requiredOption("--account <account>", "the service account id");

function addBody(run: Run, publicKey: string | Record<string, unknown>, alg?: string) {
  return { publicKey, ...(alg ?? run.opts.alg ? { alg: alg ?? run.opts.alg } : {}), ...(run.opts.kid ? { kid: run.opts.kid } : {}), ...(run.opts.name ? { name: run.opts.name } : {}) };
}

/** A key pair for `alg`, both halves PEM (SPKI, PKCS#8). */
function generate(alg: string): { publicKey: string; privateKey: string } {
  const publicKeyEncoding = { type: "spki", format: "pem" } as const;
  const privateKeyEncoding = { type: "pkcs8", format: "pem" } as const;
  if (alg === "ES256") return generateKeyPairSync("ec", { namedCurve: "P-256", publicKeyEncoding, privateKeyEncoding });
  if (alg === "RS256") return generateKeyPairSync("rsa", { modulusLength: 3072, publicKeyEncoding, privateKeyEncoding });
  return generateKeyPairSync("ed25519", { publicKeyEncoding, privateKeyEncoding });
}

export function keyCommands(program: Command): void {
  const keys = program.command("keys").description("Public keys for private_key_jwt: add, generate, list, delete");

  withAccount(
    withJson(
      withOrg(
        verb(keys, "add", "Register a public key (PEM SPKI or a JWK file)", async (run) => {
          let text: string;
          try {
            text = readFileSync(run.opts.file, "utf8");
          } catch (err) {
            throw usageError(`Cannot read ${run.opts.file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
          }
          if (text.includes("PRIVATE KEY")) throw usageError(`${run.opts.file} holds a private key: register the public half only (openssl pkey -pubout)`);
          const trimmed = text.trim();
          const publicKey = trimmed.startsWith("{") ? (JSON.parse(trimmed) as Record<string, unknown>) : trimmed;
          printOne(await run.api().request("POST", keysPath(run), { body: addBody(run, publicKey) }), run.opts.json, run.opts.json ? undefined : ["id", "kid", "alg", "fingerprint", "name"]);
        }),
      ),
    ),
  )
    .requiredOption("--file <path>", "the public key: PEM (-----BEGIN PUBLIC KEY-----) or a JWK as JSON")
    .addOption(choice("--alg <alg>", "the algorithm (default: inferred from the key)", ["ES256", "RS256", "EdDSA"]))
    .option("--kid <kid>", "the kid your assertions carry (default: the JWK's kid, else its thumbprint)")
    .option("--name <name>", "a name for it");

  withAccount(
    withJson(
      withOrg(
        verb(keys, "generate", "Make a key pair here, register the public half and write the private key (mode 0600)", async (run) => {
          const alg: string = run.opts.alg ?? "ES256";
          const out: string = run.opts.out;
          const pair = generate(alg);
          let fd: number;
          try {
            // wx: never overwrite an existing key; 0600 from the first byte.
            fd = openSync(out, "wx", 0o600);
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            throw usageError(code === "EEXIST" ? `${out} exists: choose another --out (keys are never overwritten)` : `Cannot create ${out} (${code})`);
          }
          try {
            writeSync(fd, pair.privateKey);
          } finally {
            closeSync(fd);
          }
          let key: Key;
          try {
            key = await run.api().request<Key>("POST", keysPath(run), { body: addBody(run, pair.publicKey, alg) });
          } catch (err) {
            rmSync(out, { force: true });
            throw err;
          }
          if (run.opts.json) return json({ ...key, privateKeyFile: out });
          printOne(key, false, ["id", "kid", "alg", "fingerprint", "name"]);
          info(`Private key written to ${out} (mode 0600). Use it with: keyward jwt --client-id ${key.accountId} --key-file ${out}`);
        }),
      ),
    ),
  )
    .requiredOption("--out <path>", "where to write the private key (PKCS#8 PEM); must not exist")
    .addOption(choice("--alg <alg>", "the algorithm", ["ES256", "RS256", "EdDSA"]).default("ES256"))
    .option("--kid <kid>", "the kid (default: the key's RFC 7638 thumbprint)")
    .option("--name <name>", "a name for it");

  withAccount(
    withJson(
      withOrg(
        verb(keys, "list", "List an account's public keys", async (run) => {
          printList(await listPages<Key>(run.api(), keysPath(run), {}, false), columns, run.opts.json);
        }),
      ),
    ),
  );

  withAccount(
    withOrg(
      verb(keys, "delete <key>", "Remove a public key (assertions signed with it stop working)", async (run, id) => {
        await run.api().request("DELETE", `${keysPath(run)}/${seg(id!)}`);
        info(`Deleted ${id}`);
      }),
    ),
  );
}

