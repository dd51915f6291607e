/** @jsxImportSource hono/jsx */
import type { Child } from "hono/jsx";
import type { z } from "zod";
import { DomainError, type ErrorCode } from "../domain/shared/errors.ts";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ERROR_STATUS } from "../http/problem.ts";
import { validationError } from "../http/validation.ts";
import type { ConsoleContext } from "./context.ts";

/**
 * Form helpers. Input is checked with the REST routes' own request schemas (imported from
 * src/http/routes/*), so a rule is written once; a field's error is shown beside it.
 */

/** What went wrong with a submitted form: a message for the form, and one per field (by field name). */
export interface FormErrors {
  message?: string | undefined;
  fields: Record<string, string>;
}

export const noErrors: FormErrors = { fields: {} };

/** A submitted form's fields (each value as sent; repeated fields as lists). */
export interface FormValues {
  /** The field's value, or undefined when absent or blank. */
  text(name: string): string | undefined;
  /** Every value of a repeated field (blank ones dropped). */
  all(name: string): string[];
  /** Whether a checkbox was ticked. */
  checked(name: string): boolean;
  /** The raw values, to refill a form after an error. */
  raw: Record<string, string>;
}

/** Reads an url-encoded or multipart form. */
export async function readForm(c: ConsoleContext): Promise<FormValues> {
  const body = await c.req.parseBody({ all: true });
  const lists: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(body)) {
    lists[name] = (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === "string");
  }
  const raw = Object.fromEntries(Object.entries(lists).map(([k, v]) => [k, v[0] ?? ""]));
  return {
    text: (name) => {
      const v = lists[name]?.[0];
      return v === undefined || v.trim() === "" ? undefined : v;
    },
    all: (name) => (lists[name] ?? []).filter((v) => v.trim() !== ""),
    checked: (name) => (lists[name] ?? []).some((v) => v !== ""),
    raw,
  };
}

/** Error codes that concern one field of a form (the rest are shown for the whole form). */
const CODE_FIELDS: Partial<Record<ErrorCode, string>> = {
  name_taken: "name",
  email_taken: "email",
  slug_taken: "slug",
  invalid_key: "publicKey",
  key_exists: "kid",
  token_lifetime_exceeded: "expiresAt",
  invalid_duration: "expiresAt",
};

/** A DomainError as form errors: field errors from its `errors` list (body.name -> name) or its code. */
export function formErrors(err: DomainError, fieldAliases: Record<string, string> = {}): FormErrors {
  const fields: Record<string, string> = {};
  for (const e of err.data.errors ?? []) {
    const path = e.path.replace(/^body\./, "");
    const top = path.split(/[.[]/)[0]!;
    const name = fieldAliases[path] ?? fieldAliases[top] ?? top;
    fields[name] ??= e.message;
  }
  const byCode = CODE_FIELDS[err.code];
  const field = byCode ? (fieldAliases[byCode] ?? byCode) : undefined;
  if (field && !fields[field]) fields[field] = err.detail;
  return { message: Object.keys(fields).length > 0 ? "The form has errors; see the fields marked below." : err.detail, fields };
}

/** Checks input against a REST request schema: its data, or the DomainError the API would answer. */
export function parseWith<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (!result.success) throw validationError(result.error, "form");
  return result.data;
}

/** Errors that are about the request as a whole, never about a form's input: they go to the error handler. */
const NOT_INPUT: ErrorCode[] = ["unauthenticated", "not_found", "permission_denied", "rate_limited", "internal_error", "signing_not_configured"];

/**
 * Runs a form's action (which redirects, PRG); a DomainError about the input re-renders the form
 * with the errors inline, with the status the API answers for the code (400, 409, 422...).
 */
export async function handleForm(
  c: ConsoleContext,
  action: (form: FormValues) => Promise<Response>,
  rerender: (errors: FormErrors, values: Record<string, string>, status: ContentfulStatusCode, err: DomainError) => Promise<Response>,
  fieldAliases: Record<string, string> = {},
): Promise<Response> {
  const form = await readForm(c);
  try {
    return await action(form);
  } catch (err) {
    if (!(err instanceof DomainError) || NOT_INPUT.includes(err.code)) throw err;
    return rerender(formErrors(err, fieldAliases), form.raw, ERROR_STATUS[err.code], err);
  }
}

const fid = (name: string, prefix = "") => `f-${prefix}${name.replace(/[^A-Za-z0-9_-]/g, "-")}`;

interface FieldProps {
  name: string;
  /** Prefixes the element ids when two forms of a page have a field of the same name. */
  idPrefix?: string | undefined;
  label: string;
  errors?: FormErrors | undefined;
  value?: string | undefined;
  hint?: string | undefined;
  required?: boolean;
  type?: "text" | "email" | "password" | "number" | "datetime-local" | "search";
  autocomplete?: string;
  min?: number;
  max?: number;
}

function described(name: string, hint?: string, error?: string, prefix?: string): string | undefined {
  const ids = [hint ? `${fid(name, prefix)}-hint` : "", error ? `${fid(name, prefix)}-error` : ""].filter(Boolean);
  return ids.length > 0 ? ids.join(" ") : undefined;
}

const Hint = (p: { name: string; hint?: string | undefined; idPrefix?: string | undefined }) => (p.hint ? <span class="hint" id={`${fid(p.name, p.idPrefix)}-hint`}>{p.hint}</span> : null);
const FieldError = (p: { name: string; error?: string | undefined; idPrefix?: string | undefined }) =>
  p.error ? (
    <span class="error" id={`${fid(p.name, p.idPrefix)}-error`}>
      {p.error}
    </span>
  ) : null;

/** An input with its label, hint and inline error. */
export function Field(p: FieldProps) {
  const error = p.errors?.fields[p.name];
  return (
    <div class="field">
      <label for={fid(p.name, p.idPrefix)}>{p.label}</label>
      <Hint name={p.name} hint={p.hint} idPrefix={p.idPrefix} />
      <input
        id={fid(p.name, p.idPrefix)}
        name={p.name}
        type={p.type ?? "text"}
        value={p.value ?? ""}
        required={p.required}
        autocomplete={p.autocomplete}
        min={p.min}
        max={p.max}
        aria-invalid={error ? "true" : undefined}
        aria-describedby={described(p.name, p.hint, error, p.idPrefix)}
      />
      <FieldError name={p.name} error={error} idPrefix={p.idPrefix} />
    </div>
  );
}

/** A textarea with its label, hint and inline error. */
export function TextArea(p: Omit<FieldProps, "type">) {
  const error = p.errors?.fields[p.name];
  return (
    <div class="field">
      <label for={fid(p.name, p.idPrefix)}>{p.label}</label>
      <Hint name={p.name} hint={p.hint} idPrefix={p.idPrefix} />
      <textarea id={fid(p.name, p.idPrefix)} name={p.name} required={p.required} aria-invalid={error ? "true" : undefined} aria-describedby={described(p.name, p.hint, error, p.idPrefix)}>
        {p.value ?? ""}
      </textarea>
      <FieldError name={p.name} error={error} idPrefix={p.idPrefix} />
    </div>
  );
}

/** A select with its label and inline error. */
export function Select(p: Omit<FieldProps, "type"> & { options: { value: string; label: string }[] }) {
  const error = p.errors?.fields[p.name];
  return (
    <div class="field">
      <label for={fid(p.name, p.idPrefix)}>{p.label}</label>
      <Hint name={p.name} hint={p.hint} idPrefix={p.idPrefix} />
      <select id={fid(p.name, p.idPrefix)} name={p.name} required={p.required} aria-invalid={error ? "true" : undefined} aria-describedby={described(p.name, p.hint, error, p.idPrefix)}>
        {p.options.map((o) => (
          <option value={o.value} selected={o.value === (p.value ?? "")}>
            {o.label}
          </option>
        ))}
      </select>
      <FieldError name={p.name} error={error} idPrefix={p.idPrefix} />
    </div>
  );
}

/** A checkbox with its label. */
export function Check(p: { name: string; label: string; checked?: boolean; hint?: string; errors?: FormErrors | undefined; idPrefix?: string | undefined }) {
  const error = p.errors?.fields[p.name];
  return (
    <div class="field check">
      <input id={fid(p.name, p.idPrefix)} name={p.name} type="checkbox" value="on" checked={p.checked} aria-describedby={described(p.name, p.hint, error, p.idPrefix)} />
      <label for={fid(p.name, p.idPrefix)}>{p.label}</label>
      <Hint name={p.name} hint={p.hint} idPrefix={p.idPrefix} />
      <FieldError name={p.name} error={error} idPrefix={p.idPrefix} />
    </div>
  );
}

/** The form-level message of a failed submission (announced to screen readers). */
export const ErrorSummary = (p: { errors?: FormErrors | undefined }) =>
  p.errors?.message ? (
    <div class="alert error" role="alert">
      {p.errors.message}
    </div>
  ) : null;

/** A form that posts to a console route (the CSRF check needs nothing in it: it reads Origin and Sec-Fetch-Site). */
export const PostForm = (p: { action: string; children?: Child; class?: string; label?: string }) => (
  <form method="post" action={p.action} class={p.class ?? "panel"} aria-label={p.label}>
    {p.children}
  </form>
);

/** One button that posts (enable, disable, revoke...). */
export const PostButton = (p: { action: string; label: string; variant?: "secondary" | "danger"; fields?: Record<string, string> }) => (
  <form method="post" action={p.action} class="inline">
    {Object.entries(p.fields ?? {}).map(([name, value]) => (
      <input type="hidden" name={name} value={value} />
    ))}
    <button type="submit" class={p.variant}>
      {p.label}
    </button>
  </form>
);

/**
 * The confirmation pattern: a disclosure that names what the action does (what will be revoked)
 * before its button; it works without scripts, and nothing happens until the button is pressed.
 */
export const Confirm = (p: { action: string; label: string; consequences: Child[]; confirmLabel?: string; fields?: Record<string, string> }) => (
  <details class="confirm">
    <summary>{p.label}</summary>
    <div class="confirm-body">
      <p>
        <strong>This cannot be undone.</strong>
      </p>
      <ul>
        {p.consequences.map((c) => (
          <li>{c}</li>
        ))}
      </ul>
      <PostButton action={p.action} label={p.confirmLabel ?? p.label} variant="danger" fields={p.fields} />
    </div>
  </details>
);
