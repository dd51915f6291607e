/** @jsxImportSource hono/jsx */
import type { Child } from "hono/jsx";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { isPlatformRoot } from "../domain/access/permissions.ts";
import { assetUrl } from "./assets.ts";
import { paths, principalOf, type ConsoleContext } from "./context.ts";
import { takeFlash, type Flash } from "./flash.ts";

/** The sections of an org's navigation (`active` marks the current one with aria-current). */
export type NavKey = "overview" | "projects" | "service-accounts" | "roles" | "invitations" | "review" | "audit";

export const ORG_NAV: { key: NavKey; label: string; href: (org: string) => string }[] = [
  { key: "overview", label: "Overview", href: paths.org },
  { key: "projects", label: "Projects", href: paths.projects },
  { key: "service-accounts", label: "Service accounts", href: paths.accounts },
  { key: "roles", label: "Roles", href: paths.roles },
  { key: "invitations", label: "Invitations", href: paths.invitations },
  { key: "review", label: "Review", href: paths.review },
  { key: "audit", label: "Audit", href: paths.audit },
];

/** The org a page belongs to (its slug goes into the links). */
export interface PageOrg {
  slug: string;
  name: string;
}

export interface PageProps {
  title: string;
  org?: PageOrg | undefined;
  nav?: NavKey | undefined;
  children?: Child;
}

interface ShellProps extends PageProps {
  who: { name: string; root: boolean } | null;
  flash: Flash | null;
}

function Shell(props: ShellProps) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · Keyward console`}</title>
        <link rel="stylesheet" href={assetUrl("console.css")} />
        <script src={assetUrl("console.js")} defer></script>
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <a class="brand" href={paths.home}>
            Keyward console
          </a>
          {props.who && (
            <div class="who">
              {props.who.root && <a href={paths.platformAudit}>Platform audit</a>}
              <span>
                Signed in as <strong>{props.who.name}</strong>
              </span>
              <form method="post" action={paths.logout} class="inline">
                <button type="submit">Sign out</button>
              </form>
            </div>
          )}
        </header>
        {props.org && (
          <nav class="org" aria-label="Organization">
            <ul>
              <li class="org-name">{props.org.name}</li>
              {ORG_NAV.map((item) => (
                <li>
                  <a href={item.href(props.org!.slug)} aria-current={props.nav === item.key ? "page" : undefined}>
                    {item.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        )}
        <main id="main">
          {props.flash && (
            <div class={`flash ${props.flash.kind}`} role={props.flash.kind === "error" ? "alert" : "status"}>
              {props.flash.message}
            </div>
          )}
          {props.children}
        </main>
      </body>
    </html>
  );
}

/** Renders a page in the shell (header, org nav, flash message) with a status. */
export async function page(c: ConsoleContext, props: PageProps, status: ContentfulStatusCode = 200) {
  const session = c.get("session");
  const who = session ? { name: session.name, root: isPlatformRoot(principalOf(c)) } : null;
  const html = await (<Shell {...props} who={who} flash={takeFlash(c)} />).toString();
  return c.html(`<!DOCTYPE html>${html}`, status);
}

/** A page heading with actions beside it. */
export const Heading = (props: { title: string; children?: Child }) => (
  <div class="actions">
    <h1>{props.title}</h1>
    {props.children}
  </div>
);

/** A table with a caption (visible or for screen readers), horizontally scrollable on small screens. */
export const Table = (props: { caption: string; head: string[]; children?: Child; empty?: string; rows: number }) =>
  props.rows === 0 ? (
    <p class="muted">{props.empty ?? "Nothing here yet."}</p>
  ) : (
    // Focusable so that a table wider than the screen can be scrolled from the keyboard.
    <div class="table-wrap" role="region" aria-label={props.caption} tabindex={0}>
      <table>
        <caption class="muted">
          {props.caption}
        </caption>
        <thead>
          <tr>
            {props.head.map((h) => (
              <th scope="col">{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );

/** A date as the ISO text, in a <time> element; a dash for none. */
export const When = (props: { ms: number | null | undefined; none?: string }) =>
  props.ms === null || props.ms === undefined ? <span class="muted">{props.none ?? "—"}</span> : <time datetime={new Date(props.ms).toISOString()}>{new Date(props.ms).toISOString().replace("T", " ").slice(0, 16)} UTC</time>;

/** "Previous / next" links of a cursor-paged list (the API's cursor). */
export const Pager = (props: { nextHref: string | null; firstHref?: string | null }) =>
  props.nextHref || props.firstHref ? (
    <nav class="pager" aria-label="Pages">
      {props.firstHref && <a href={props.firstHref}>First page</a>}
      {props.nextHref && <a href={props.nextHref}>Next page</a>}
    </nav>
  ) : null;
