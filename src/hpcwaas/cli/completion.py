"""`waas completion bash|zsh|fish`: shell completion scripts generated from the parser tree.

Every script tracks the command path the same way: each word that names a
subcommand (or one of its aliases) of the current command descends into it,
so `waas wf t <TAB>` completes like `waas workflows trigger <TAB>`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from hpcwaas.cli.parsing import WaasParser

if TYPE_CHECKING:
    from hpcwaas.cli.context import Context

SHELLS = ("bash", "zsh", "fish")
# Positional arguments completed with the IDs the API lists (`waas completion --ids KIND`).
ID_KINDS = {"workflow_id": "workflows", "execution_id": "executions", "execution_ids": "executions"}
# Executions offered: the newest ones.
EXECUTION_IDS = 50
FILE_OPTIONS = frozenset({"config", "ca_file", "key_file", "cert_file"})
DIR_OPTIONS = frozenset({"ca_path", "download"})


class Option:
    """One option of a command, as completion needs it."""

    # A plain class, not a dataclass: importing dataclasses (and inspect) cost every `waas`
    # command about a tenth of its start-up.
    __slots__ = ("choices", "dest", "flags", "help", "takes_value")

    def __init__(
        self, flags: list[str], help: str, takes_value: bool, choices: list[str], dest: str
    ) -> None:
        self.flags = flags
        self.help = help
        self.takes_value = takes_value
        self.choices = choices
        self.dest = dest


class Node:
    """One command of the tree: its names, options, positional choices and subcommands."""

    __slots__ = ("aliases", "children", "help", "ids", "key", "name", "options", "words")

    def __init__(
        self,
        key: str,
        name: str,
        aliases: tuple[str, ...],
        help: str,
        options: list[Option] | None = None,
        words: list[str] | None = None,
        children: list[Node] | None = None,
    ) -> None:
        self.key = key  # the path of primary names, e.g. "waas_workflows_trigger"
        self.name = name
        self.aliases = aliases
        self.help = help
        self.options = options if options is not None else []
        self.words = words if words is not None else []  # choices of positional arguments
        self.children = children if children is not None else []
        self.ids: str | None = None  # the kind of IDs its positional argument takes

    def walk(self) -> list[Node]:
        """This node and all below it, depth first."""
        return [self, *(n for child in self.children for n in child.walk())]


def fill(command: WaasParser) -> None:
    """Add the argument of `completion` and the function running it."""
    command.description = (
        "Print a completion script for bash, zsh or fish.\n\n"
        "  bash: source <(waas completion bash)         (in ~/.bashrc)\n"
        "  zsh:  source <(waas completion zsh)          (in ~/.zshrc, after compinit)\n"
        "  fish: waas completion fish > ~/.config/fish/completions/waas.fish"
    )
    command.add_argument("shell", choices=SHELLS, nargs="?")
    # What the scripts run to complete IDs: one per line (not for people: no help).
    command.add_argument("--ids", choices=sorted(set(ID_KINDS.values())), help=argparse.SUPPRESS)
    command.set_defaults(func=run_completion)


def run_completion(ctx: Context) -> int:
    """Print the script for the requested shell, or the IDs a script completes."""
    from hpcwaas.cli.main import build_parser
    from hpcwaas.cli.parsing import UsageError

    if ctx.args.ids:
        print_ids(ctx, ctx.args.ids)
        return 0
    if ctx.args.shell is None:
        raise UsageError(f"name a shell: {', '.join(SHELLS)}", ctx.args.command_parser)

    tree = build_tree(build_parser())
    for node in tree.children:
        if node.name == "help":  # `waas help <TAB>` offers the commands
            node.words = [child.name for child in tree.children if child is not node]
    print({"bash": bash_script, "zsh": zsh_script, "fish": fish_script}[ctx.args.shell](tree))
    return 0


def print_ids(ctx: Context, kind: str) -> None:
    """The workflows' IDs, or those of the newest executions, one per line."""
    client = ctx.client()
    if kind == "workflows":
        ids = [w.id for w in client.list_workflows().workflows]
    else:
        ids = [e.id for e in client.list_executions(limit=EXECUTION_IDS).executions]
    print("\n".join(ids))


def build_tree(
    parser: argparse.ArgumentParser, key: str = "waas", helps: dict[str, str] | None = None
) -> Node:
    """The completion tree of a parser and its subparsers; `helps`: the top level's option
    texts, for the global options a command's help leaves out."""
    if isinstance(parser, WaasParser):
        parser.filled()
    if helps is None:
        helps = {a.dest: a.help or "" for a in parser._actions if a.option_strings}
    name = getattr(parser, "command_name", "waas")
    node = Node(key, name, getattr(parser, "command_aliases", ()), parser.description or "")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._get_subactions()}
            seen: set[int] = set()
            for sub in action.choices.values():
                if id(sub) in seen or not isinstance(sub, WaasParser):
                    continue
                seen.add(id(sub))
                child = build_tree(sub, f"{key}_{sub.command_name}".replace("-", "_"), helps)
                child.help = helps.get(sub.command_name, child.help)
                node.children.append(child)
        elif action.dest == "ids":
            continue  # the scripts' own option
        elif action.option_strings:
            text = helps.get(action.dest, "") if action.help == argparse.SUPPRESS else action.help
            node.options.append(
                Option(
                    flags=list(action.option_strings),
                    help=(text or "").replace("%%", "%"),
                    takes_value=action.nargs != 0,
                    choices=[str(c) for c in action.choices or ()],
                    dest=action.dest,
                )
            )
        elif action.choices:
            node.words.extend(str(c) for c in action.choices)
        elif action.dest in ID_KINDS:
            node.ids = ID_KINDS[action.dest]
    return node


def _ids_command(kind: str) -> str:
    """The shell command printing the IDs of `kind`; quiet when the API cannot be asked."""
    return f"waas completion --ids {kind} 2>/dev/null"


def _value_options(tree: Node) -> dict[str, Option]:
    return {f: o for n in tree.walk() for o in n.options if o.takes_value for f in o.flags}


def _descents(tree: Node) -> list[tuple[list[str], str]]:
    """(labels, key) pairs: the `<parent key>:<word>` labels that descend into each command."""
    return [
        ([f"{node.key}:{name}" for name in (child.name, *child.aliases)], child.key)
        for node in tree.walk()
        for child in node.children
    ]


def bash_script(tree: Node) -> str:
    """A bash completion script (`complete -F`)."""
    descend = [
        f"            {'|'.join(labels)}) cmdpath={key} ;;" for labels, key in _descents(tree)
    ]
    values = _value_cases(tree, "        {flags})\n            {action}\n            return ;;")
    words = [
        f'        {n.key}) words="{" ".join(_words(n))}'
        + (f" $({_ids_command(n.ids)})" if n.ids else "")
        + '" ;;'
        for n in tree.walk()
    ]
    return "\n".join(
        [
            "# bash completion for waas; generated by `waas completion bash`",
            "_waas_complete() {",
            '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
            "    local cmdpath=waas words i",
            "    for ((i = 1; i < COMP_CWORD; i++)); do",
            '        case "$cmdpath:${COMP_WORDS[i]}" in',
            *descend,
            "        esac",
            "    done",
            '    case "$prev" in',
            *values,
            "    esac",
            '    case "$cmdpath" in',
            *words,
            "    esac",
            '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
            "}",
            "complete -F _waas_complete waas",
        ]
    )


def _value_cases(tree: Node, fmt: str) -> list[str]:
    lines = []
    by_action: dict[str, list[str]] = {}
    for flag, option in sorted(_value_options(tree).items()):
        if option.choices:
            action = f'COMPREPLY=($(compgen -W "{" ".join(option.choices)}" -- "$cur"))'
        elif option.dest in FILE_OPTIONS:
            action = 'COMPREPLY=($(compgen -f -- "$cur"))'
        elif option.dest in DIR_OPTIONS:
            action = 'COMPREPLY=($(compgen -d -- "$cur"))'
        else:
            action = "COMPREPLY=()"
        by_action.setdefault(action, []).append(flag)
    for action, flags in by_action.items():
        lines.append(fmt.format(flags="|".join(flags), action=action))
    return lines


def _words(node: Node) -> list[str]:
    return [c.name for c in node.children] + node.words + [f for o in node.options for f in o.flags]


def zsh_script(tree: Node) -> str:
    """A zsh completion script, usable from fpath (as _waas) or sourced."""
    descend = [f"      ({'|'.join(labels)}) cmdpath={key} ;;" for labels, key in _descents(tree)]
    values = []
    for flag, option in sorted(_value_options(tree).items()):
        if option.choices:
            action = f"compadd -- {' '.join(option.choices)}"
        elif option.dest in FILE_OPTIONS:
            action = "_files"
        elif option.dest in DIR_OPTIONS:
            action = "_files -/"
        else:
            action = ":"
        values.append(f"    ({flag}) {action}; return ;;")
    cases = []
    for node in tree.walk():
        commands = " ".join(_zsh_quote(f"{c.name}:{_first_line(c.help)}") for c in node.children)
        flags = " ".join(_zsh_quote(f) for f in _words(node)[len(node.children) :])
        ids = f'\n      compadd -- ${{(f)"$({_ids_command(node.ids)})"}}' if node.ids else ""
        cases.append(
            f"    ({node.key})\n"
            f"      local -a subcmds=({commands})\n"
            f"      (( ${{#subcmds}} )) && _describe -t commands 'waas command' subcmds\n"
            f"      compadd -- {flags}{ids} ;;"
        )
    return "\n".join(
        [
            "#compdef waas",
            "# zsh completion for waas; generated by `waas completion zsh`",
            "_waas() {",
            "  local cmdpath=waas i",
            "  for ((i = 2; i < CURRENT; i++)); do",
            '    case "$cmdpath:${words[i]}" in',
            *descend,
            "    esac",
            "  done",
            '  case "${words[CURRENT-1]}" in',
            *values,
            "  esac",
            '  case "$cmdpath" in',
            *cases,
            "  esac",
            "}",
            'if [[ "${zsh_eval_context[-1]}" == loadautofunc ]]; then',
            '  _waas "$@"',
            "else",
            "  compdef _waas waas",
            "fi",
        ]
    )


def fish_script(tree: Node) -> str:
    """A fish completion script."""
    descend = [
        f"            case {' '.join(_fish_quote(label) for label in labels)}\n"
        f"                set cmdpath {key}"
        for labels, key in _descents(tree)
    ]
    lines = [
        "# fish completion for waas; generated by `waas completion fish`",
        "function __waas_cmdpath",
        "    set -l cmdpath waas",
        "    for word in (commandline -opc)[2..-1]",
        '        switch "$cmdpath:$word"',
        *descend,
        "        end",
        "    end",
        "    echo $cmdpath",
        "end",
        "complete -c waas -f",
    ]
    for node in tree.walk():
        when = f"-n 'test (__waas_cmdpath) = {node.key}'"
        for child in node.children:
            lines.append(
                f"complete -c waas {when} -a {child.name} -d {_fish_quote(_first_line(child.help))}"
            )
        if node.words:
            lines.append(f"complete -c waas {when} -a {_fish_quote(' '.join(node.words))}")
        if node.ids:
            lines.append(f"complete -c waas {when} -a {_fish_quote(f'({_ids_command(node.ids)})')}")
        for option in node.options:
            parts = ["complete -c waas", when]
            for flag in option.flags:
                parts.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
            if option.choices:
                parts.append(f"-x -a {_fish_quote(' '.join(option.choices))}")
            elif option.dest in FILE_OPTIONS | DIR_OPTIONS:
                parts.append("-r -F")
            elif option.takes_value:
                parts.append("-x")
            parts.append(f"-d {_fish_quote(_first_line(option.help))}")
            lines.append(" ".join(parts))
    return "\n".join(lines)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
