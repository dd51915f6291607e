/** Another commit of this repository, checked out beside it for an A/B run (bench:compare, bench:loop). */
import { spawnSync } from "node:child_process";
import { mkdtempSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { onCleanup } from "./lifecycle.ts";
import { root } from "./runtime.ts";

/** A detached worktree of `ref` (removed at exit), sharing this checkout's node_modules. */
export function worktree(ref: string): string {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), "keyward-ab-")), "tree");
  const git = (...args: string[]) => spawnSync("git", ["-C", root, ...args], { encoding: "utf8" });
  const added = git("worktree", "add", "--detach", dir, ref);
  if (added.status !== 0) throw new Error(`git worktree add ${ref}: ${added.stderr}`);
  onCleanup(() => void git("worktree", "remove", "--force", dir));
  symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"));
  return dir;
}
