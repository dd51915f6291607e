import { getKeyset, rotateSigningKey } from "./jwt.ts";
import { withPermission } from "../access/permissions.ts";

/** Platform administration of the JWT signing keys (root only). */

export const listSigningKeys = withPermission("platform.root", async (gate) => {
  gate.authorizePlatform();
  return getKeyset(gate.ctx);
});

/** Publishes a new key now and signs with it from `activateInSeconds` on. */
export const rotateSigningKeys = withPermission("platform.root", async (gate, activateInSeconds: number) => {
  gate.authorizePlatform();
  return rotateSigningKey(gate.ctx, activateInSeconds);
});
