"""The entry of train.py and sample.py: `<script> MODEL [flags]` runs that model's command module."""

import importlib

MODELS = ("iddpm", "ddgan")


def dispatch(kind, argv):
    """Run ddx.cli.<kind>_<model>.main(flags) for argv = [model, *flags]; returns the exit code."""
    usage = f"usage: python {kind}.py {{{','.join(MODELS)}}} [flags]   (python {kind}.py MODEL --help for the flags)"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    model, flags = argv[0], argv[1:]
    if model not in MODELS:
        print(f"error: unknown model {model!r}; choose one of: {', '.join(MODELS)}\n{usage}")
        return 2
    command = importlib.import_module(f"ddx.cli.{kind}_{model}")
    return command.main(flags) or 0
