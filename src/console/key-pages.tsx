/** @jsxImportSource hono/jsx */
import type { PublicKey } from "../db/schema.ts";
import { addKey, keyStatus, removeKey, setKeyStatus } from "../domain/credentials/public-keys.ts";
import { DomainError } from "../domain/shared/errors.ts";
import { addKeyBody } from "../http/routes/keys.ts";
import { consoleCtx, consoleRouter, paths, principalOf, type Can } from "./context.ts";
import { redirectWith } from "./flash.ts";
import { Confirm, ErrorSummary, Field, handleForm, parseWith, PostButton, TextArea, type FormErrors, type FormValues } from "./forms.tsx";
import { Table, When } from "./layout.tsx";
import type { RenderAccount } from "./token-pages.tsx";

/** Public keys on the account page (private_key_jwt): add a PEM or a JWK (the algorithm is detected), list by fingerprint, remove. */

export function KeysSection(p: { base: string; keys: PublicKey[]; can: Can; errors?: FormErrors | undefined; values?: Record<string, string> | undefined }) {
  const write = p.can("service-accounts.access-tokens.edit");
  const now = Date.now();
  return (
    <section class="panel" aria-labelledby="keys-title" id="keys">
      <h2 id="keys-title">Public keys</h2>
      <Table caption="Public keys for private_key_jwt" head={["Name", "kid", "Algorithm", "Fingerprint (SHA-256 thumbprint)", "Status", "Added", "Expires", ...(write ? ["Actions"] : [])]} rows={p.keys.length} empty="No public key.">
        {p.keys.map((k) => (
          <tr>
            <td>{k.name ?? <span class="muted">unnamed</span>}</td>
            <td>
              <code>{k.kid}</code>
            </td>
            <td>{k.alg}</td>
            <td>
              <code>{k.fingerprint}</code>
            </td>
            <td>
              <span class={`badge ${keyStatus(k, now)}`}>{keyStatus(k, now)}</span>
            </td>
            <td>
              <When ms={k.createdAt} />
            </td>
            <td>
              <When ms={k.expiresAt} none="Never" />
            </td>
            {write && (
              <td>
                {keyStatus(k, now) === "active" && <PostButton action={`${p.base}/keys/${k.id}/disable`} label="Disable" variant="secondary" />}
                {keyStatus(k, now) === "disabled" && <PostButton action={`${p.base}/keys/${k.id}/enable`} label="Enable" variant="secondary" />}
                <Confirm
                  action={`${p.base}/keys/${k.id}/remove`}
                  label="Remove"
                  confirmLabel={`Remove key ${k.kid}`}
                  consequences={[`Client assertions signed with the key ${k.kid} are refused from now on.`, "JWTs already issued stay valid until they expire."]}
                />
              </td>
            )}
          </tr>
        ))}
      </Table>
      {write && (
        <form method="post" action={`${p.base}/keys`} aria-label="Add a public key">
          <h3>Add a public key</h3>
          <ErrorSummary errors={p.errors} />
          <TextArea name="publicKey" label="Public key (PEM or JWK)" required value={p.values?.publicKey} errors={p.errors} idPrefix="key-" hint="-----BEGIN PUBLIC KEY----- ... or a JSON Web Key; ES256, RS256 or EdDSA, detected from the key" />
          <Field name="name" label="Name (optional)" value={p.values?.name} errors={p.errors} idPrefix="key-" />
          <Field name="kid" label="Key id, kid (optional)" value={p.values?.kid} errors={p.errors} idPrefix="key-" hint="Default: the JWK's kid, else its thumbprint" />
          <button type="submit">Add key</button>
        </form>
      )}
    </section>
  );
}

/** A pasted key: a JWK when it is JSON, else PEM text. */
function keyInput(form: FormValues) {
  const text = form.text("publicKey")?.trim() ?? "";
  let publicKey: unknown = text;
  if (text.startsWith("{")) {
    try {
      publicKey = JSON.parse(text);
    } catch {
      throw new DomainError("invalid_key", "The JWK is not valid JSON");
    }
  }
  return parseWith(addKeyBody, { publicKey, ...(form.text("name") ? { name: form.text("name") } : {}), ...(form.text("kid") ? { kid: form.text("kid")!.trim() } : {}) });
}

export const keyPages = (render: RenderAccount) =>
  consoleRouter()
    .post("/orgs/:org/service-accounts/:sa/keys", (c) =>
      handleForm(
        c,
        async (form) => {
          const { org, sa } = c.req.param();
          const key = await addKey(consoleCtx(c), principalOf(c), org, sa, keyInput(form));
          return redirectWith(c, `${paths.account(org, sa)}#keys`, `Key ${key.kid} added (${key.alg}, fingerprint ${key.fingerprint}).`);
        },
        // A pasted private key is not echoed back.
        (errors, values, status) => render(c, { keyErrors: errors, keyValues: /"d"\s*:|PRIVATE KEY/.test(values.publicKey ?? "") ? { ...values, publicKey: "" } : values }, status),
        { "publicKey.kid": "kid" },
      ),
    )
    .post("/orgs/:org/service-accounts/:sa/keys/:key/disable", async (c) => {
      const { org, sa, key } = c.req.param();
      const done = await setKeyStatus(consoleCtx(c), principalOf(c), org, sa, key, "disabled");
      return redirectWith(c, `${paths.account(org, sa)}#keys`, `Key ${done.kid} disabled: assertions signed with it are refused until it is enabled.`);
    })
    .post("/orgs/:org/service-accounts/:sa/keys/:key/enable", async (c) => {
      const { org, sa, key } = c.req.param();
      const done = await setKeyStatus(consoleCtx(c), principalOf(c), org, sa, key, "active");
      return redirectWith(c, `${paths.account(org, sa)}#keys`, `Key ${done.kid} enabled.`);
    })
    .post("/orgs/:org/service-accounts/:sa/keys/:key/remove", async (c) => {
      const { org, sa, key } = c.req.param();
      await removeKey(consoleCtx(c), principalOf(c), org, sa, key);
      return redirectWith(c, `${paths.account(org, sa)}#keys`, "Key removed.");
    });
