import { CliError, EXIT } from "./errors.ts";

/**
 * A secret from the terminal (echo off) or, when stdin is not a terminal, its first line: never
 * from argv, where shells keep history and `ps` shows it.
 */
export async function readSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  const value = stdin.isTTY ? await readHidden(prompt) : await readPiped();
  if (!value) throw new CliError("No token given (type it at the prompt or pipe it on stdin)", EXIT.usage);
  return value;
}

async function readPiped(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    if (Buffer.concat(chunks).includes(10)) break;
  }
  return (Buffer.concat(chunks).toString("utf8").split(/\r?\n/)[0] ?? "").trim();
}

function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let value = "";
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(value.trim());
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return done();
        if (ch === "\u0003") return done(new CliError("Cancelled", EXIT.usage));
        if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
        else if (ch >= " ") value += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on("data", onData);
  });
}
