import type { Principal } from "../domain/shared/principal.ts";
import type { Bindings } from "../env.ts";

export interface Variables {
  requestId: string;
  principal: Principal;
  /** The request's D1 session (management requests only; see middleware/d1-session.ts). */
  d1Session?: D1DatabaseSession;
}

/** The Hono environment of the whole app. */
export type AppEnv = { Bindings: Bindings; Variables: Variables };
