/** @jsxImportSource hono/jsx */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Invitation, InvitationState } from "../db/schema.ts";
import { listRoles } from "../domain/access/roles.ts";
import { answerInvitation, cancelInvitation, invite, listOrgInvitations, listReceivedInvitations } from "../domain/registry/invitations.ts";
import { answerBody, inviteBody } from "../http/routes/invitations.ts";
import { consoleCtx, consoleRouter, operationsAt, pageOrg, paths, principalOf, type ConsoleContext } from "./context.ts";
import { redirectWith } from "./flash.ts";
import { buttonAction } from "./actions.ts";
import { Confirm, ErrorSummary, Field, handleForm, noErrors, parseWith, PostForm, readForm, Select, type FormErrors } from "./forms.tsx";
import { page, Table, When } from "./layout.tsx";
import { roleText, scopeText } from "./access-labels.ts";
import { scopeInput, scopeOptions, ScopeSelect } from "./scope-picker.tsx";

/**
 * Invitations: this org invites accounts of other orgs (by email) to a role at a scope, and answers
 * the invitations its own accounts received, on their behalf. The inviting side sees the email it
 * gave, never which account has it (the domain's rule); the received side names its own account.
 */

const STATES: InvitationState[] = ["pending", "accepted", "declined", "cancelled"];
const stateOf = (raw: string | undefined): InvitationState | undefined => (raw === "all" ? undefined : STATES.find((s) => s === raw) ?? "pending");

function StateFilter(p: { name: string; label: string; value: string; base: string; other: Record<string, string> }) {
  return (
    <form method="get" action={p.base} class="filters" aria-label={p.label}>
      {Object.entries(p.other).map(([k, v]) => (
        <input type="hidden" name={k} value={v} />
      ))}
      <Select name={p.name} label={p.label} value={p.value} options={[...STATES.map((s) => ({ value: s, label: s })), { value: "all", label: "all" }]} />
      <button type="submit" class="secondary">
        Filter
      </button>
    </form>
  );
}

/** Accept or decline: a short visible label, the account named for screen readers. */
const AnswerButton = (p: { action: string; state: "accepted" | "declined"; email: string }) => (
  <form method="post" action={p.action} class="inline">
    <input type="hidden" name="state" value={p.state} />
    <button type="submit" class={p.state === "declined" ? "secondary" : undefined} aria-label={`${p.state === "accepted" ? "Accept" : "Decline"} the invitation for ${p.email}`}>
      {p.state === "accepted" ? "Accept" : "Decline"}
    </button>
  </form>
);

async function invitationsPage(c: ConsoleContext, errors: FormErrors = noErrors, values?: Record<string, string>, status: ContentfulStatusCode = 200) {
  const ctx = consoleCtx(c);
  const principal = principalOf(c);
  const org = await pageOrg(c, c.req.param("org")!);
  const can = await operationsAt(c, org.id);
  const sentState = c.req.query("sent") ?? "pending";
  const receivedState = c.req.query("received") ?? "pending";
  const [sent, received, roles, options] = await Promise.all([
    can("orgs.read") ? listOrgInvitations(ctx, principal, org.id, stateOf(sentState)) : Promise.resolve(null),
    can("service-accounts.read") ? listReceivedInvitations(ctx, principal, org.id, stateOf(receivedState)) : Promise.resolve(null),
    can("orgs.read") ? listRoles(ctx, principal, org.id) : Promise.resolve([]),
    scopeOptions(c, org.id),
  ]);
  const names = new Map(roles.map((r) => [r.id, r.name]));
  const base = paths.invitations(org.slug);
  const answerable = (i: Invitation) => can("invitations.edit") && i.state === "pending" && i.accountId;
  return page(
    c,
    {
      title: `Invitations · ${org.name}`,
      org,
      nav: "invitations",
      children: (
        <>
          <h1>Invitations</h1>
          {can("invitations.edit") && (
            <PostForm action={base} label="Invite a service account of another org">
              <h2>Invite a service account of another organization</h2>
              <p class="hint">The answer is the same whether an account has the email yet or not; its own organization accepts or declines.</p>
              <ErrorSummary errors={errors} />
              <Field name="email" label="The account's email" type="email" required value={values?.email} errors={errors} autocomplete="off" />
              <Select name="role" label="Role" required value={values?.role} errors={errors} options={roles.filter((r) => r.assignableToServiceAccounts).map((r) => ({ value: r.id, label: r.name }))} />
              <ScopeSelect options={options} value={values?.scope} errors={errors} />
              <button type="submit">Send invitation</button>
            </PostForm>
          )}
          {sent && (
            <section aria-labelledby="sent-heading">
              <h2 id="sent-heading">Sent</h2>
              <StateFilter name="sent" label="State of sent invitations" value={sentState} base={base} other={{ received: receivedState }} />
              <Table caption="Invitations this organization sent" head={["Email", "Role", "Scope", "State", "Sent", ""]} rows={sent.length} empty="No invitation in this state.">
                {sent.map((i) => (
                  <tr>
                    <td>{i.email}</td>
                    <td>{roleText(i.roleId, names)}</td>
                    <td>{scopeText(options, i.scopeType, i.scopeId)}</td>
                    <td>
                      <span class="badge">{i.state}</span>
                    </td>
                    <td>
                      <When ms={i.createdAt} />
                    </td>
                    <td>
                      {can("invitations.edit") && (i.state === "pending" || i.state === "accepted") && (
                        <Confirm
                          action={`${base}/${encodeURIComponent(i.id)}/cancel`}
                          label={`Cancel the invitation to ${i.email}`}
                          confirmLabel="Cancel invitation"
                          consequences={[i.state === "accepted" ? `The account with ${i.email} loses the role it was granted here.` : `The invitation to ${i.email} is withdrawn.`]}
                        />
                      )}
                    </td>
                  </tr>
                ))}
              </Table>
            </section>
          )}
          {received && (
            <section aria-labelledby="received-heading">
              <h2 id="received-heading">Received by this organization's accounts</h2>
              <StateFilter name="received" label="State of received invitations" value={receivedState} base={base} other={{ sent: sentState }} />
              <Table caption="Invitations this organization's accounts received" head={["Account", "From organization", "Role", "Scope", "State", "Received", ""]} rows={received.length} empty="No invitation in this state.">
                {received.map((i) => (
                  <tr>
                    <td>
                      <a href={paths.account(org.slug, i.accountId ?? "")}>{i.email}</a>
                    </td>
                    <td>
                      <code>{i.orgId}</code>
                    </td>
                    <td>{roleText(i.roleId)}</td>
                    <td>{i.scopeType === "org" ? "Their whole organization" : <>{i.scopeType === "project" ? "Project" : "Environment"} <code>{i.scopeId}</code></>}</td>
                    <td>
                      <span class="badge">{i.state}</span>
                    </td>
                    <td>
                      <When ms={i.createdAt} />
                    </td>
                    <td>
                      {answerable(i) && (
                        <div class="actions">
                          <AnswerButton action={`${paths.account(org.slug, i.accountId!)}/invitations/${encodeURIComponent(i.id)}/answer`} state="accepted" email={i.email} />
                          <AnswerButton action={`${paths.account(org.slug, i.accountId!)}/invitations/${encodeURIComponent(i.id)}/answer`} state="declined" email={i.email} />
                        </div>
                      )}
                    </td>
                  </tr>
                ))}
              </Table>
            </section>
          )}
        </>
      ),
    },
    status,
  );
}

export const invitationPages = consoleRouter()
  .get("/orgs/:org/invitations", (c) => invitationsPage(c))
  .post("/orgs/:org/invitations", (c) =>
    handleForm(
      c,
      async (form) => {
        const org = await pageOrg(c, c.req.param("org"));
        const scope = scopeInput(form.text("scope"));
        const input = parseWith(inviteBody, { email: form.text("email") ?? "", role: form.text("role") ?? "", ...(scope ? { scope } : {}) });
        const sent = await invite(consoleCtx(c), principalOf(c), org.id, input);
        return redirectWith(c, paths.invitations(org.slug), `Invitation sent to ${sent.email}.`);
      },
      (errors, values, status) => invitationsPage(c, errors, values, status),
    ),
  )
  .post("/orgs/:org/invitations/:inv/cancel", (c) => {
    const { org, inv } = c.req.param();
    return buttonAction(c, paths.invitations(org), async () => {
      const cancelled = await cancelInvitation(consoleCtx(c), principalOf(c), org, inv);
      return redirectWith(c, paths.invitations(org), `Invitation to ${cancelled.email} cancelled.`);
    });
  })
  .post("/orgs/:org/service-accounts/:sa/invitations/:inv/answer", (c) => {
    const { org, sa, inv } = c.req.param();
    return buttonAction(c, paths.invitations(org), async () => {
      const form = await readForm(c);
      const { state } = parseWith(answerBody, { state: form.text("state") });
      const answered = await answerInvitation(consoleCtx(c), principalOf(c), org, sa, inv, state);
      return redirectWith(c, paths.invitations(org), `Invitation ${answered.state} for ${answered.email}.`);
    });
  });
