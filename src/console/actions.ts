import { DomainError } from "../domain/shared/errors.ts";
import { ERROR_STATUS } from "../http/problem.ts";
import type { ConsoleContext } from "./context.ts";
import { redirectWith } from "./flash.ts";

/**
 * Runs the action of a button (accept, decline, cancel, unassign, delete), which has no form to
 * show errors in: a DomainError about the state of things (a 400, 409 or 422 in the API's table,
 * e.g. "already accepted") goes back to `back` as an error message; a refusal (401, 403, 404, 429)
 * or a failure keeps its error page.
 */
export async function buttonAction(c: ConsoleContext, back: string, action: () => Promise<Response>): Promise<Response> {
  try {
    return await action();
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    const status = ERROR_STATUS[err.code];
    if (status !== 400 && status !== 409 && status !== 422) throw err;
    return redirectWith(c, back, err.detail, "error");
  }
}
