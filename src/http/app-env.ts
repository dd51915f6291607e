import type { Principal } from "../domain/shared/principal.ts";
import type { Bindings } from "../env.ts";

export interface Variables {
  requestId: string;
  principal: Principal;
}

/** The Hono environment of the whole app. */
export type AppEnv = { Bindings: Bindings; Variables: Variables };
