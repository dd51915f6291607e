import type { Command } from "commander";
import { usageError } from "./errors.ts";
import { out } from "./output.ts";

interface Node {
  path: string[];
  words: string[];
}

/** Every command path with the words that may follow it (subcommands, then flags). */
function walk(cmd: Command, path: string[] = []): Node[] {
  const subs = cmd.commands.filter((c) => c.name() !== "help");
  const flags = cmd.options.map((o) => o.long).filter((f): f is string => Boolean(f));
  const words = [...subs.flatMap((c) => [c.name(), ...c.aliases()]), ...flags, "--help"];
  return [{ path, words }, ...subs.flatMap((c) => [c.name(), ...c.aliases()].flatMap((n) => walk(c, [...path, n])))];
}

function bash(program: Command): string {
  const cases = walk(program)
    .map((n) => `    "${n.path.join(" ")}") words="${n.words.join(" ")}" ;;`)
    .join("\n");
  return `# keyward bash completion: eval "$(keyward completion bash)" (or save it under bash-completion's completions dir)
_keyward() {
  local cur path="" w i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    local next="\${path:+$path }$w"
    _keyward_words "$next" && path="$next"
  done
  local words
  _keyward_words "$path" || return 0
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
_keyward_words() {
  case "$1" in
${cases}
    *) return 1 ;;
  esac
}
complete -F _keyward keyward
`;
}

function zsh(program: Command): string {
  return `#compdef keyward
# keyward zsh completion: eval "$(keyward completion zsh)" (after compinit), or save it as _keyward in your fpath
autoload -U bashcompinit && bashcompinit
${bash(program)}`;
}

export function completionCommand(program: Command): void {
  program
    .command("completion <shell>")
    .description("Print a shell completion script: bash or zsh (eval \"$(keyward completion bash)\")")
    .action((shell: string) => {
      if (shell === "bash") return out(bash(program));
      if (shell === "zsh") return out(zsh(program));
      throw usageError(`No completion for "${shell}": bash or zsh`);
    });
}
