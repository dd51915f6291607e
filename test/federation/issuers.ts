/**
 * The loopback OIDC issuers the workers tests trust (test/federation/issuer-server.ts serves them,
 * vitest.config.ts puts them in FEDERATION_ALLOWED_ISSUERS). Each test file uses its own names, so
 * files running at once never share an issuer's keys or caches. NOT_ALLOWED is served but left out
 * of the allow-list.
 */
export const TEST_ISSUER_NAMES = [
  "gha",
  "k8s",
  "grant-misc",
  "sec-main",
  "sec-kid",
  "sec-down",
  "sec-nocache",
  "sec-big",
  "sec-redirect",
  "sec-otherhost",
  "sec-wrongiss",
  "sec-html",
  "sec-slow",
  "sec-cache",
  "sec-glob",
  "sec-two",
] as const;

export type TestIssuerName = (typeof TEST_ISSUER_NAMES)[number] | "not-allowed";

export const testIssuerUrl = (base: string, name: TestIssuerName) => `${base}/${name}`;

/** FEDERATION_ALLOWED_ISSUERS for the tests: every name above, on the server's base URL. */
export const allowedTestIssuers = (base: string) => TEST_ISSUER_NAMES.map((n) => testIssuerUrl(base, n)).join(",");
