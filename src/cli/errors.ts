/** Exit codes (docs/cli.md): scripts tell a typo from a bad token from a down server. */
export const EXIT = { ok: 0, usage: 2, auth: 3, client: 4, server: 5 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports with a message of its own and a chosen exit code. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  /** Extra lines printed after the message (problem details, hints). */
  readonly details: string[];
  constructor(message: string, exitCode: ExitCode, details: string[] = []) {
    super(message);
    this.exitCode = exitCode;
    this.details = details;
  }
}

export const usageError = (message: string, ...details: string[]) => new CliError(message, EXIT.usage, details);

/** The exit code for an HTTP error status. */
export function exitForStatus(status: number): ExitCode {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status >= 400 && status < 500) return EXIT.client;
  return EXIT.server;
}
