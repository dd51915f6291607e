import { z } from "zod";
import { DomainError } from "../domain/shared/errors.ts";

/** Field paths say where the field was: body.name, query.limit, path.org. */
const TARGET_NAMES: Record<string, string> = { json: "body", form: "body", param: "path" };

const MAX_LISTED = 5;

/**
 * Turns zod issues into the `errors` list of a validation problem: each item keeps its field path
 * (`body.name`) and says in words what is wrong with it ("name is required"); the detail lists the
 * first few. Input values are never echoed (a body may carry a secret in the wrong field).
 */
export function validationError(error: z.ZodError, target: string): DomainError {
  const where = TARGET_NAMES[target] ?? target;
  const errors = error.issues.map((issue) => ({
    path: [where, ...issue.path.map(String)].join("."),
    message: fieldSentence(fieldName(issue.path, where), issue.message),
  }));
  const listed = errors.slice(0, MAX_LISTED).map((e) => e.message);
  const more = errors.length > MAX_LISTED ? `; and ${errors.length - MAX_LISTED} more (see errors)` : "";
  return new DomainError("validation_failed", `Invalid ${where}: ${listed.join("; ")}${more}`, { errors });
}

/** `roles[0].scope.type`; the part itself (`the body`) when the issue is about all of it. */
function fieldName(path: PropertyKey[], where: string): string {
  if (path.length === 0) return `the ${where}`;
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`)).join("");
}

/** A predicate ("is required", "must be ...") follows its field; any other message is quoted after it. */
const PREDICATE = /^(?:is|are|must|has|have|does|cannot) /;
const fieldSentence = (field: string, message: string) => (PREDICATE.test(message) ? `${field} ${message}` : `${field}: ${message}`);

const article = (noun: string) => (/^[aeio]/.test(noun) ? `an ${noun}` : `a ${noun}`);
const EXPECTED: Record<string, string> = { int: "an integer", array: "an array", object: "an object", null: "null", undefined: "absent", nan: "NaN" };
const expectedType = (t: string) => EXPECTED[t] ?? article(t);

/** What a value is, in words: its type, never the value itself. */
function kindOf(input: unknown): string | undefined {
  if (input === null) return "null";
  if (Array.isArray(input)) return "an array";
  if (typeof input === "number" && Number.isNaN(input)) return undefined;
  return typeof input === "object" ? "an object" : article(typeof input);
}

const FORMATS: Record<string, string> = {
  email: "must be an email address",
  datetime: "must be an ISO 8601 date-time with a time zone, e.g. 2030-01-31T12:00:00Z",
  date: "must be an ISO 8601 date, e.g. 2030-01-31",
  url: "must be a URL",
  uuid: "must be a UUID",
};
const counted = (n: number | bigint, one: string) => `${n} ${one}${n === 1 ? "" : "s"}`;

function sizeBound(origin: string, bound: number | bigint, atLeast: boolean, inclusive: boolean | undefined): string {
  const most = atLeast ? "at least" : "at most";
  if (origin === "string") return atLeast && bound === 1 ? "must not be empty" : `must be ${most} ${counted(bound, "character")} long`;
  if (origin === "array" || origin === "set") return atLeast && bound === 1 ? "must not be empty" : `must have ${most} ${counted(bound, "item")}`;
  if (inclusive === false) return `must be ${atLeast ? "greater" : "less"} than ${bound}`;
  return `must be ${most} ${bound}`;
}

function listOf(values: readonly unknown[]): string {
  const shown = values.slice(0, 12).map((v) => JSON.stringify(v));
  return values.length > 12 ? `${shown.join(", ")}, ...` : shown.join(", ");
}

/** Union branches that each want another type at the union itself: "must be a boolean or an object, not a string". */
function unionTypes(branches: readonly (readonly z.core.$ZodIssue[])[]): string[] | undefined {
  const wanted = branches.map((issues) => issues.find((i) => i.code === "invalid_type" && i.path.length === 0) as z.core.$ZodIssueInvalidType | undefined);
  return wanted.every((w) => w !== undefined) ? [...new Set(wanted.map((w) => expectedType(w!.expected)))] : undefined;
}

/**
 * The default message of each zod issue, as a predicate on its field ("is required", "must be at
 * most 64 characters long"): installed as zod's error map, so a message written on a schema
 * (`.regex(re, "...")`) still wins.
 */
export function issueMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type": {
      if (issue.input === undefined) return "is required";
      if (issue.expected === "int" && typeof issue.input === "number") return "must be an integer";
      const got = kindOf(issue.input);
      return `must be ${expectedType(issue.expected)}${got ? `, not ${got}` : ""}`;
    }
    case "too_small":
      return sizeBound(issue.origin, issue.minimum, true, issue.inclusive);
    case "too_big":
      return sizeBound(issue.origin, issue.maximum, false, issue.inclusive);
    case "invalid_value":
      return issue.values.length === 1 ? `must be ${JSON.stringify(issue.values[0])}` : `must be one of ${listOf(issue.values)}`;
    case "unrecognized_keys": {
      const keys = issue.keys.map((k) => (k.length > 64 ? `${k.slice(0, 64)}...` : k));
      return `has ${keys.length === 1 ? "an unknown field" : "unknown fields"} ${listOf(keys)} (not allowed here)`;
    }
    case "invalid_format":
      if (issue.format === "regex") return `must match the pattern ${issue.pattern ?? ""}`.trimEnd();
      return FORMATS[issue.format] ?? `must be a valid ${issue.format}`;
    case "not_multiple_of":
      return `must be a multiple of ${issue.divisor}`;
    case "invalid_union": {
      const types = "errors" in issue && issue.errors.length > 0 ? unionTypes(issue.errors) : undefined;
      const got = kindOf(issue.input);
      return types ? `must be ${types.join(" or ")}${got ? `, not ${got}` : ""}` : "does not match any of the accepted forms";
    }
    case "invalid_key":
      return "has a key that is not allowed";
    case "invalid_element":
      return "has an element that is not allowed";
    default:
      return undefined;
  }
}

z.config({ customError: issueMessage });

